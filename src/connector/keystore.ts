/**
 * Where the connector's private key lives. The connector needs one thing of
 * it, RSA-OAEP decryption of PFX passwords, so that is the whole interface:
 * a PKCS#11 token (issue 5: "a KeyStore interface for PKCS#11 later") can
 * implement it without the key ever being in this process. Today's
 * implementation reads a PKCS#8 file made by `keyfleet connector keygen`.
 */
import { type KeyObject, constants, createPrivateKey, privateDecrypt } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { KeyfleetError } from '../errors.ts';

export type OaepHash = 'sha256' | 'sha384' | 'sha512';

/** Graph `userPfxPaddingScheme` → the OAEP hash (MGF1 with the same hash, empty label, as src/policy/pfx-import.ts encrypts). */
const paddingSchemes: Readonly<Record<string, OaepHash>> = { oaepSha256: 'sha256', oaepSha384: 'sha384', oaepSha512: 'sha512' };

export function oaepHashOf(paddingScheme: string): OaepHash | undefined {
  return Object.hasOwn(paddingSchemes, paddingScheme) ? paddingSchemes[paddingScheme] : undefined;
}

export interface ConnectorKey {
  /** RSAES-OAEP decryption (RFC 8017 §7.1.2); throws for a ciphertext this key did not encrypt. The caller zeroes the result. */
  decryptOaep(ciphertext: Uint8Array, hash: OaepHash): Promise<Uint8Array>;
}

/** A connector key held as a node:crypto KeyObject (a file's, or a test's). */
export function connectorKeyFrom(privateKey: KeyObject): ConnectorKey {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'rsa') {
    throw new KeyfleetError('KF_KEY_INVALID', 'the connector key must be an RSA private key');
  }
  return {
    decryptOaep: async (ciphertext, hash) => privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, ciphertext),
  };
}

/** A PEM or DER private key is a few KiB. */
const MAX_KEY_FILE = 64 * 1024;

/**
 * Reads the connector's key file. Refuses, as ssh does for its identity
 * files, a file that group or others may access at all: a key that others
 * could have read must be treated as compromised, and saying so at start-up
 * is the only moment anyone will notice. The mode is checked on the open
 * descriptor, so a file swapped between the check and the read is caught.
 */
export function loadConnectorKeyFile(path: string): ConnectorKey {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    throw new KeyfleetError('KF_USAGE', `cannot read the connector key "${path}"`);
  }
  let bytes: Buffer;
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new KeyfleetError('KF_USAGE', `the connector key "${path}" is not a file`);
    const mode = stat.mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new KeyfleetError('KF_KEY_INVALID', `permissions 0${mode.toString(8)} for the connector key "${path}" are too open: it must not be accessible by others (chmod 600)`);
    }
    if (stat.size > MAX_KEY_FILE) throw new KeyfleetError('KF_INPUT_TOO_LARGE', `the connector key "${path}" is larger than ${MAX_KEY_FILE} bytes`);
    bytes = Buffer.alloc(stat.size);
    let read = 0;
    while (read < bytes.length) {
      const n = readSync(fd, bytes, read, bytes.length - read, read);
      if (n === 0) break;
      read += n;
    }
    bytes = bytes.subarray(0, read);
  } finally {
    closeSync(fd);
  }
  try {
    const text = bytes.toString('latin1');
    const key = text.includes('-----BEGIN') ? createPrivateKey({ key: text, format: 'pem' }) : createPrivateKey({ key: bytes, format: 'der', type: 'pkcs8' });
    return connectorKeyFrom(key);
  } catch (e) {
    if (e instanceof KeyfleetError) throw e;
    throw new KeyfleetError('KF_KEY_INVALID', `"${path}" is not an unencrypted RSA private key (use connector.key from \`keyfleet connector keygen\`)`);
  } finally {
    bytes.fill(0);
  }
}
