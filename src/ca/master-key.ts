/**
 * Where the key-encryption key (KEK) for sealed CA keys comes from:
 * `KEYFLEET_MASTER_KEY` (32 bytes as 64 hex digits or base64), else the
 * file `<data>/master.key`, created with 32 random bytes and mode 0600 on
 * first initialisation. The environment wins so that deployments can keep
 * the KEK out of the data directory (and its backups) altogether.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeyfleetError } from '../errors.ts';

export const MASTER_KEY_ENV = 'KEYFLEET_MASTER_KEY';
export const MASTER_KEY_FILE = 'master.key';

/** 32 bytes from 64 hex digits or base64 (padding optional). Never echoes the value in errors. */
export function parseMasterKey(text: string, source: string): Uint8Array {
  const t = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(t)) key = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/]{43}=?$/.test(t) || /^[A-Za-z0-9_-]{43}=?$/.test(t)) key = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (key?.length !== 32) throw new KeyfleetError('KF_MASTER_KEY', `${source} must hold a 32-byte key as 64 hex digits or base64`);
  return key;
}

export interface MasterKeyOptions {
  /** The data directory holding master.key. */
  readonly dataDir: string;
  /** Environment to read KEYFLEET_MASTER_KEY from (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Create the key file when neither the variable nor the file exists (`ca init`); otherwise that is KF_MASTER_KEY. */
  readonly create?: boolean;
  readonly random?: (n: number) => Uint8Array;
}

/** The KEK, and where it came from (for `ca show`). */
export function resolveMasterKey(options: MasterKeyOptions): { readonly key: Uint8Array; readonly source: 'env' | 'file' | 'new-file' } {
  const fromEnv = (options.env ?? process.env)[MASTER_KEY_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return { key: parseMasterKey(fromEnv, MASTER_KEY_ENV), source: 'env' };
  const path = join(options.dataDir, MASTER_KEY_FILE);
  const existing = readKeyFile(path);
  if (existing) return { key: existing, source: 'file' };
  if (!options.create) throw new KeyfleetError('KF_MASTER_KEY', `no key-encryption key: set ${MASTER_KEY_ENV} or restore ${path}`);
  const key = Buffer.from((options.random ?? randomBytes)(32));
  if (key.length !== 32) throw new KeyfleetError('KF_MASTER_KEY', 'random source returned the wrong number of bytes');
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  try {
    // 'wx': never overwrite a key another process created meanwhile; that one wins.
    writeFileSync(path, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      const raced = readKeyFile(path);
      if (raced) return { key: raced, source: 'file' };
    }
    throw new KeyfleetError('KF_MASTER_KEY', `cannot create ${path}`, { cause: e });
  }
  return { key, source: 'new-file' };
}

function readKeyFile(path: string): Uint8Array | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KeyfleetError('KF_MASTER_KEY', `cannot read ${path}`, { cause: e });
  }
  return parseMasterKey(text, path);
}
