/**
 * The code of "this keystore cannot be opened": a wrong key file or
 * passphrase (`detail` wrong-key), a damaged, truncated or altered file
 * (damaged), an unusable key file (key-file), or a format or KDF setting
 * this version does not support (unsupported).
 */
import type { ErrorCode } from '../errors.ts';

export const KEYSTORE_ERROR: ErrorCode = 'KF_KEYSTORE_UNREADABLE';
