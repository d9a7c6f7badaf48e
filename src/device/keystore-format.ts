/**
 * The keystore file's envelope: which key opens it, and AES-256-GCM around
 * the contents (keystore-data.ts).
 *
 *   "KFKS" | format 0x01 | header length (uint32 BE) | header (JSON, UTF-8)
 *          | ciphertext | GCM tag (16)
 *
 * The header says how the key is made (a 32-byte key file, or scrypt over
 * a passphrase with its salt and parameters), the GCM nonce, the
 * generation (one more at every write) and a key check value. Everything
 * before the ciphertext is the GCM additional data, so a changed header
 * fails the tag like a changed ciphertext.
 *
 * The file key is never used directly: HKDF-SHA-256 makes the AES key and,
 * separately, the key check value, which tells a wrong key or passphrase
 * ("wrong-key") from a file damaged or altered after it was written
 * ("damaged"); both are refused before any contents are parsed. The check
 * value lets nobody test keys faster than the GCM tag already does.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import { fstatSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { KeyfleetError } from '../errors.ts';
import { KEYSTORE_ERROR } from './keystore-errors.ts';

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** OWASP's scrypt minimum (N = 2^17, r = 8, p = 1): 128 MiB and a few hundred ms per open. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 17, r: 8, p: 1 };

/** What a file may ask of scrypt: a crafted header must not make opening it exhaust memory. */
const SCRYPT_LIMITS = { maxN: 2 ** 20, maxR: 32, maxP: 16, maxMem: 1024 * 1024 * 1024 };

/** Where the key comes from. */
export type KeystoreKeySource =
  | { readonly kind: 'key-file'; readonly path: string }
  | { readonly kind: 'passphrase'; readonly passphrase: string; readonly scrypt?: ScryptParams };

/** The KDF as recorded in the file. */
export type KdfRecord = { readonly name: 'key-file' } | { readonly name: 'scrypt'; readonly salt: string; readonly N: number; readonly r: number; readonly p: number };

export interface EnvelopeHeader {
  readonly kdf: KdfRecord;
  readonly generation: number;
  readonly writtenAt: string;
  readonly nonce: string;
  readonly check: string;
}

const MAGIC = Buffer.from('KFKS', 'latin1');
const FORMAT = 1;
const PREFIX = MAGIC.length + 1 + 4;
const MAX_HEADER = 4096;
const TAG = 16;
const NONCE = 12;
export const KEY_FILE_BYTES = 32;

function damaged(why: string): KeyfleetError {
  return new KeyfleetError(KEYSTORE_ERROR, `the keystore file is damaged or was altered (${why})`, { detail: 'damaged' });
}

// ------------------------------------------------------------------ keys

/** 32 random bytes, mode 0600; never overwrites an existing file. */
export function createKeyFile(path: string, random: (n: number) => Uint8Array = randomBytes): void {
  const key = Buffer.from(random(KEY_FILE_BYTES));
  try {
    writeFileSync(path, key, { mode: 0o600, flag: 'wx' });
  } finally {
    key.fill(0);
  }
}

/** A key file: exactly 32 bytes (or them as 64 hex digits or base64), readable by its owner only. */
export function readKeyFile(path: string): Buffer {
  let bytes: Buffer;
  try {
    const fd = openSync(path, 'r');
    try {
      const st = fstatSync(fd);
      if ((st.mode & 0o077) !== 0) {
        throw new KeyfleetError(KEYSTORE_ERROR, `the keystore key file ${path} is readable by others; make it mode 0600`, { detail: 'key-file' });
      }
      if (st.size > 256) throw new KeyfleetError(KEYSTORE_ERROR, `${path} is not a keystore key file`, { detail: 'key-file' });
      bytes = readFileSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if (e instanceof KeyfleetError) throw e;
    throw new KeyfleetError(KEYSTORE_ERROR, `cannot read the keystore key file ${path}`, { cause: e, detail: 'key-file' });
  }
  if (bytes.length === KEY_FILE_BYTES) return bytes;
  const text = bytes.toString('latin1').trim();
  bytes.fill(0);
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : /^[A-Za-z0-9+/]{43}=?$/.test(text) ? Buffer.from(text, 'base64') : undefined;
  if (key?.length !== KEY_FILE_BYTES) throw new KeyfleetError(KEYSTORE_ERROR, `${path} must hold a 32-byte key`, { detail: 'key-file' });
  return key;
}

function scrypt(passphrase: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const maxmem = 128 * params.N * params.r * params.p + 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    scryptCallback(passphrase.normalize('NFC'), salt, 32, { N: params.N, r: params.r, p: params.p, maxmem }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export function checkScryptParams(p: ScryptParams): void {
  const powerOfTwo = Number.isSafeInteger(p.N) && p.N > 1 && (p.N & (p.N - 1)) === 0;
  const ok =
    powerOfTwo &&
    p.N <= SCRYPT_LIMITS.maxN &&
    Number.isSafeInteger(p.r) && p.r >= 1 && p.r <= SCRYPT_LIMITS.maxR &&
    Number.isSafeInteger(p.p) && p.p >= 1 && p.p <= SCRYPT_LIMITS.maxP &&
    128 * p.N * p.r * p.p <= SCRYPT_LIMITS.maxMem;
  if (!ok) throw new KeyfleetError(KEYSTORE_ERROR, `scrypt parameters N=${p.N} r=${p.r} p=${p.p} are outside what a keystore may use`, { detail: 'unsupported' });
}

/** A new KDF record for `source` (a fresh salt for a passphrase). */
export function newKdfRecord(source: KeystoreKeySource, random: (n: number) => Uint8Array = randomBytes): KdfRecord {
  if (source.kind === 'key-file') return { name: 'key-file' };
  const params = source.scrypt ?? DEFAULT_SCRYPT;
  checkScryptParams(params);
  return { name: 'scrypt', salt: Buffer.from(random(16)).toString('base64'), N: params.N, r: params.r, p: params.p };
}

/** The file key: read from the key file, or scrypt over the passphrase with the record's salt and parameters. */
export async function deriveFileKey(source: KeystoreKeySource, kdf: KdfRecord): Promise<Buffer> {
  if (kdf.name === 'key-file') {
    if (source.kind !== 'key-file') throw new KeyfleetError(KEYSTORE_ERROR, 'this keystore is opened with its key file, not a passphrase', { detail: 'wrong-key' });
    return readKeyFile(source.path);
  }
  if (source.kind !== 'passphrase') throw new KeyfleetError(KEYSTORE_ERROR, 'this keystore is protected by a passphrase (scrypt), not a key file', { detail: 'wrong-key' });
  if (source.passphrase.length === 0) throw new KeyfleetError('KF_USAGE', 'the keystore passphrase must not be empty');
  checkScryptParams(kdf);
  return scrypt(source.passphrase, Buffer.from(kdf.salt, 'base64'), kdf);
}

/** The same KDF and salt: the same file key opens both. */
export function sameKdf(a: KdfRecord, b: KdfRecord): boolean {
  if (a.name === 'key-file' || b.name === 'key-file') return a.name === b.name;
  return a.salt === b.salt && a.N === b.N && a.r === b.r && a.p === b.p;
}

function subkeys(fileKey: Uint8Array): { readonly aes: Buffer; readonly check: Buffer } {
  const salt = Buffer.alloc(0);
  return {
    aes: Buffer.from(hkdfSync('sha256', fileKey, salt, 'keyfleet device keystore v1: aes-256-gcm', 32)),
    check: Buffer.from(hkdfSync('sha256', fileKey, salt, 'keyfleet device keystore v1: key check', 16)),
  };
}

// ------------------------------------------------------------------ envelope

export interface SealInput {
  readonly kdf: KdfRecord;
  readonly generation: number;
  readonly writtenAt: Date;
}

export function seal(plaintext: Uint8Array, fileKey: Uint8Array, input: SealInput, random: (n: number) => Uint8Array = randomBytes): Buffer {
  const { aes, check } = subkeys(fileKey);
  try {
    const nonce = Buffer.from(random(NONCE));
    const header: EnvelopeHeader = {
      kdf: input.kdf,
      generation: input.generation,
      writtenAt: input.writtenAt.toISOString(),
      nonce: nonce.toString('base64'),
      check: check.toString('base64'),
    };
    const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
    const prefix = Buffer.alloc(PREFIX);
    MAGIC.copy(prefix, 0);
    prefix[MAGIC.length] = FORMAT;
    prefix.writeUInt32BE(headerBytes.length, MAGIC.length + 1);
    const aad = Buffer.concat([prefix, headerBytes]);
    const cipher = createCipheriv('aes-256-gcm', aes, nonce);
    cipher.setAAD(aad);
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([aad, body, cipher.getAuthTag()]);
  } finally {
    aes.fill(0);
  }
}

/** The header of a keystore file, checked for shape; nothing is decrypted. */
export function readHeader(file: Uint8Array): { readonly header: EnvelopeHeader; readonly headerEnd: number } {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (buf.length < PREFIX || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw damaged('not a Keyfleet keystore');
  if (buf[MAGIC.length] !== FORMAT) {
    throw new KeyfleetError(KEYSTORE_ERROR, `keystore format ${buf[MAGIC.length]} is not supported by this version`, { detail: 'unsupported' });
  }
  const length = buf.readUInt32BE(MAGIC.length + 1);
  if (length > MAX_HEADER || PREFIX + length + TAG > buf.length) throw damaged('truncated header');
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(buf.toString('utf8', PREFIX, PREFIX + length)) as Record<string, unknown>;
  } catch {
    throw damaged('header is not JSON');
  }
  const kdf = parseKdf(v.kdf);
  const generation = v.generation;
  if (!Number.isSafeInteger(generation) || (generation as number) < 0) throw damaged('bad generation');
  if (typeof v.writtenAt !== 'string' || Number.isNaN(Date.parse(v.writtenAt))) throw damaged('bad time');
  if (typeof v.nonce !== 'string' || Buffer.from(v.nonce, 'base64').length !== NONCE) throw damaged('bad nonce');
  if (typeof v.check !== 'string' || Buffer.from(v.check, 'base64').length !== 16) throw damaged('bad key check');
  return { header: { kdf, generation: generation as number, writtenAt: v.writtenAt, nonce: v.nonce, check: v.check }, headerEnd: PREFIX + length };
}

function parseKdf(v: unknown): KdfRecord {
  const k = v as Record<string, unknown> | null;
  if (k?.name === 'key-file') return { name: 'key-file' };
  if (k?.name === 'scrypt' && typeof k.salt === 'string' && typeof k.N === 'number' && typeof k.r === 'number' && typeof k.p === 'number') {
    return { name: 'scrypt', salt: k.salt, N: k.N, r: k.r, p: k.p };
  }
  throw damaged('unknown key derivation');
}

/** Checks the key, then the tag; returns the plaintext. Never returns anything partial. */
export function open(file: Uint8Array, fileKey: Uint8Array): { readonly header: EnvelopeHeader; readonly plaintext: Buffer } {
  const { header, headerEnd } = readHeader(file);
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  const { aes, check } = subkeys(fileKey);
  try {
    if (!timingSafeEqual(check, Buffer.from(header.check, 'base64'))) {
      const what = header.kdf.name === 'scrypt' ? 'passphrase' : 'key file';
      throw new KeyfleetError(KEYSTORE_ERROR, `wrong ${what} for this keystore`, { detail: 'wrong-key' });
    }
    const decipher = createDecipheriv('aes-256-gcm', aes, Buffer.from(header.nonce, 'base64'));
    decipher.setAAD(buf.subarray(0, headerEnd));
    decipher.setAuthTag(buf.subarray(buf.length - TAG));
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([decipher.update(buf.subarray(headerEnd, buf.length - TAG)), decipher.final()]);
    } catch {
      throw damaged('authentication failed');
    }
    return { header, plaintext };
  } finally {
    aes.fill(0);
  }
}
