/**
 * Content-encryption algorithms for EnvelopedData and AuthEnvelopedData:
 * AES-CBC (RFC 3565 §4.1), AES-GCM (RFC 5084 §3.2) and, for reading only,
 * DES-EDE3-CBC (RFC 3370 §5.1), which Outlook and older clients still send.
 *
 *   AES-IV ::= OCTET STRING (SIZE(16))            -- CBC parameters
 *   CBCParameter ::= IV                            -- DES-EDE3-CBC, 8 octets
 *   GCMParameters ::= SEQUENCE {
 *     aes-nonce        OCTET STRING,               -- 12 octets recommended
 *     aes-ICVlen       AES-GCM-ICVlen DEFAULT 12 }
 *   AES-GCM-ICVlen ::= INTEGER (12 | 13 | 14 | 15 | 16)
 *
 * Content is processed segment by segment (a constructed BER OCTET STRING
 * arrives as many segments) into one preallocated output buffer, so a large
 * message costs its input, its output and one chunk — never a concatenation.
 */
import { createCipheriv, createDecipheriv, createSecretKey, type CipherGCM, type DecipherGCM, type KeyObject } from 'node:crypto';
import { KeyfleetError } from '../../errors.ts';
import { type Tlv, SequenceReader, Tag, contents, readSmallInt } from '../../asn1/reader.ts';
import { OID, oidName } from '../../asn1/oids.ts';
import * as der from '../../asn1/writer.ts';
import type { AlgorithmIdentifier } from '../../x509/algorithm.ts';

export type ContentCipher = 'aes-128-cbc' | 'aes-192-cbc' | 'aes-256-cbc' | 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm';

export interface CipherSpec {
  /** node:crypto cipher name. */
  readonly name: string;
  readonly oid: string;
  readonly keyLength: number;
  /** CBC block size (the IV length); 1 for GCM, which is a stream mode. */
  readonly blockSize: number;
  /** True for AES-GCM: only valid in AuthEnvelopedData (RFC 5083; REFERENCE.md pitfall 1). */
  readonly aead: boolean;
}

const spec = (name: string, oid: string, keyLength: number, blockSize: number, aead: boolean): CipherSpec => ({ name, oid, keyLength, blockSize, aead });

const writable: Readonly<Record<ContentCipher, CipherSpec>> = {
  'aes-128-cbc': spec('aes-128-cbc', OID.aes128CBC, 16, 16, false),
  'aes-192-cbc': spec('aes-192-cbc', OID.aes192CBC, 24, 16, false),
  'aes-256-cbc': spec('aes-256-cbc', OID.aes256CBC, 32, 16, false),
  'aes-128-gcm': spec('aes-128-gcm', OID.aes128GCM, 16, 1, true),
  'aes-192-gcm': spec('aes-192-gcm', OID.aes192GCM, 24, 1, true),
  'aes-256-gcm': spec('aes-256-gcm', OID.aes256GCM, 32, 1, true),
};

const readable = new Map<string, CipherSpec>([
  ...Object.values(writable).map((s) => [s.oid, s] as const),
  [OID.desEde3CBC, spec('des-ede3-cbc', OID.desEde3CBC, 24, 8, false)],
]);

/** The nonce length we write: RFC 5084 §3.2 recommends 12 octets. */
export const GCM_NONCE_LENGTH = 12;
/** The tag length we write, stated explicitly as OpenSSL does (the DEFAULT is 12). */
export const GCM_TAG_LENGTH = 16;

/** Input is fed to the cipher in pieces of at most this size, bounding the temporary buffers. */
const CHUNK = 1 << 20;

/**
 * A symmetric key as a KeyObject. Node 24 tells a KeyObject or CryptoKey from
 * a buffer by letting an internal private-field check throw, and the stack
 * traces of those throw-away errors cost more than the cipher itself for a
 * 1 KB message (measured: createCipheriv 18 µs with a Buffer key, 2 µs with a
 * KeyObject, 1.5 µs to make one).
 */
export function secretKey(key: Uint8Array): KeyObject {
  return createSecretKey(key);
}

export function cmsMalformed(message: string, cause?: unknown): KeyfleetError {
  return new KeyfleetError('KF_CMS_MALFORMED', message, cause === undefined ? undefined : { cause });
}

export function cmsUnsupported(what: string, oid: string): KeyfleetError {
  const name = oidName(oid);
  return new KeyfleetError('KF_CMS_UNSUPPORTED', `unsupported ${what}: ${name === oid ? oid : `${name} (${oid})`}`, { detail: oid });
}

export function cmsDamaged(what: string, cause?: unknown): KeyfleetError {
  return new KeyfleetError('KF_CMS_DECRYPT_FAILED', `decryption failed, the message is damaged: ${what}`, cause === undefined ? undefined : { cause });
}

export function contentCipherSpec(cipher: ContentCipher): CipherSpec {
  const s = writable[cipher];
  if (!s) throw new KeyfleetError('KF_USAGE', `unknown content cipher "${String(cipher)}"`);
  return s;
}

/** The ciphertext length for `plainLength` octets: PKCS#7 padding for CBC (RFC 5652 §6.3), none for GCM. */
export function ciphertextLength(s: CipherSpec, plainLength: number): number {
  return s.aead ? plainLength : (Math.floor(plainLength / s.blockSize) + 1) * s.blockSize;
}

/** ContentEncryptionAlgorithmIdentifier for what we write. */
export function encodeContentEncryptionAlgorithm(s: CipherSpec, iv: Uint8Array): Uint8Array {
  const params = s.aead ? der.sequence(der.octetString(iv), der.integer(GCM_TAG_LENGTH)) : der.octetString(iv);
  return der.sequence(der.oid(s.oid), params);
}

/** A decoded content-encryption algorithm: cipher, IV or nonce, and (GCM) tag length. */
export interface ContentEncryption {
  readonly spec: CipherSpec;
  readonly iv: Uint8Array;
  readonly tagLength: number;
}

/**
 * Decodes the algorithm of a received EncryptedContentInfo. `authenticated`
 * says whether it came from AuthEnvelopedData: GCM belongs there and only
 * there (RFC 5083 §1, RFC 5084 §1), and CBC offers no authentication to check.
 */
export function decodeContentEncryptionAlgorithm(alg: AlgorithmIdentifier, authenticated: boolean): ContentEncryption {
  const s = readable.get(alg.algorithm);
  if (!s) throw cmsUnsupported('content-encryption algorithm', alg.algorithm);
  if (s.aead !== authenticated) {
    throw cmsUnsupported(authenticated ? 'content-encryption algorithm in AuthEnvelopedData (not an authenticated cipher)' : 'content-encryption algorithm in EnvelopedData (AES-GCM requires AuthEnvelopedData, RFC 5083)', alg.algorithm);
  }
  const params = alg.parameters;
  if (!params) throw cmsMalformed(`${oidName(alg.algorithm)} parameters are missing`);
  if (!s.aead) {
    const iv = octets(params, 'IV');
    if (iv.length !== s.blockSize) throw cmsMalformed(`${oidName(alg.algorithm)} IV must be ${s.blockSize} octets, got ${iv.length}`);
    return { spec: s, iv, tagLength: 0 };
  }
  const r = new SequenceReader(params, 'GCMParameters');
  const nonce = octets(r.next(Tag.octetString), 'GCM nonce');
  const icv = r.optional(Tag.integer);
  const tagLength = icv ? readSmallInt(icv) : 12;
  r.end();
  if (nonce.length < 1 || nonce.length > 64) throw cmsMalformed(`GCM nonce of ${nonce.length} octets`);
  if (tagLength < 12 || tagLength > 16) throw cmsMalformed(`GCM ICV length ${tagLength} is outside 12..16 (RFC 5084 §3.2)`);
  return { spec: s, iv: nonce, tagLength };
}

function octets(tlv: Tlv, what: string): Uint8Array {
  if (tlv.cls !== 0 || tlv.tag !== Tag.octetString || tlv.constructed) throw cmsMalformed(`${what} must be a primitive OCTET STRING`);
  return contents(tlv);
}

/**
 * Frees the memory of a buffer node:crypto allocated for one update() as
 * soon as its bytes have been used. Such a buffer owns its ArrayBuffer;
 * detaching that (ArrayBuffer.prototype.transfer, ES2024) releases it now
 * rather than at the next garbage collection, which V8 starts only after
 * some 64 MB of such external memory: without this, encrypting 100 MB
 * would briefly hold 64 MB of ciphertext nobody uses (measured).
 */
function release(piece: Buffer): void {
  const ab = piece.buffer;
  if (piece.byteOffset === 0 && ab.byteLength === piece.length && ab instanceof ArrayBuffer && ab.byteLength >= 4096) ab.transfer(0);
}

/**
 * Encrypts `segments` (in order), handing each piece of ciphertext to
 * `emit` as the cipher produces it (at most CHUNK and a block at a time; a
 * piece is not used after `emit` returns). Returns the GCM tag, or
 * undefined for CBC.
 */
export function encryptStream(s: CipherSpec, key: Uint8Array, iv: Uint8Array, segments: readonly Uint8Array[], emit: (piece: Uint8Array) => void): Uint8Array | undefined {
  const k = secretKey(key);
  const cipher = s.aead ? createCipheriv(s.name as 'aes-256-gcm', k, iv, { authTagLength: GCM_TAG_LENGTH }) : createCipheriv(s.name, k, iv);
  const put = (piece: Buffer): void => {
    emit(piece);
    release(piece);
  };
  for (const segment of segments) {
    for (let i = 0; i < segment.length; i += CHUNK) put(cipher.update(segment.length <= CHUNK ? segment : segment.subarray(i, i + CHUNK)));
  }
  put(cipher.final());
  return s.aead ? (cipher as CipherGCM).getAuthTag() : undefined;
}

/**
 * Encrypts `segments` (in order) into `out` at `offset`, which must have
 * room for ciphertextLength(). Returns the GCM tag, or undefined for CBC.
 */
export function encryptInto(s: CipherSpec, key: Uint8Array, iv: Uint8Array, segments: readonly Uint8Array[], out: Uint8Array, offset: number): Uint8Array | undefined {
  let p = offset;
  return encryptStream(s, key, iv, segments, (piece) => {
    out.set(piece, p);
    p += piece.length;
  });
}

export interface DecryptInput {
  readonly encryption: ContentEncryption;
  readonly key: Uint8Array;
  /** The encrypted content, as the segments of its (possibly constructed) OCTET STRING. */
  readonly segments: readonly Uint8Array[];
  /** AuthEnvelopedData only: the mac field and the additional authenticated data (RFC 5083 §2.2). */
  readonly tag?: Uint8Array;
  readonly aad?: Uint8Array;
}

/**
 * Decrypts segment by segment into one buffer. For GCM nothing is returned
 * unless the tag verifies; the unauthenticated output is wiped.
 *
 * The cipher is fed at most CHUNK octets at a time: node:crypto allocates
 * each update()'s output at input size plus a block and then shrinks it by
 * copying, so one update() over a 100 MB segment would briefly hold two more
 * copies. CBC padding is checked here (auto-padding off), so the output is
 * exactly the ciphertext's length until the padding is cut off.
 */
export function decryptSegments(input: DecryptInput): Uint8Array {
  let total = 0;
  for (const seg of input.segments) total += seg.length;
  const out = Buffer.allocUnsafe(total);
  const d = new ContentDecipher(input.encryption, input.key, total, out, 0, input.aad);
  for (const segment of input.segments) {
    for (let i = 0; i < segment.length; i += CHUNK) d.update(segment.length <= CHUNK ? segment : segment.subarray(i, i + CHUNK));
  }
  return out.subarray(0, d.finish(input.tag));
}

/**
 * Decryption of `total` octets of ciphertext given in pieces of any size,
 * written into `out` at `offset` (room for `total` octets). `finish` checks
 * the GCM tag (which may arrive after the ciphertext: AuthEnvelopedData
 * carries it last) or the CBC padding and returns the plaintext length; on
 * any failure the output is wiped.
 */
export class ContentDecipher {
  private readonly decipher: ReturnType<typeof createDecipheriv>;
  private readonly encryption: ContentEncryption;
  private readonly total: number;
  private readonly out: Uint8Array;
  private readonly offset: number;
  private p: number;

  constructor(encryption: ContentEncryption, key: Uint8Array, total: number, out: Uint8Array, offset: number, aad?: Uint8Array) {
    const { spec: s, iv, tagLength } = encryption;
    if (key.length !== s.keyLength) throw cmsDamaged(`content-encryption key has ${key.length} octets, ${oidName(s.oid)} needs ${s.keyLength}`);
    if (!s.aead && (total === 0 || total % s.blockSize !== 0)) throw cmsDamaged(`ciphertext length ${total} is not a positive multiple of ${s.blockSize}`);
    try {
      const k = secretKey(key);
      this.decipher = s.aead ? createDecipheriv(s.name as 'aes-256-gcm', k, iv, { authTagLength: tagLength }) : createDecipheriv(s.name, k, iv).setAutoPadding(false);
    } catch (e) {
      throw cmsMalformed(`cannot initialise ${oidName(s.oid)}`, e);
    }
    if (s.aead && aad) (this.decipher as DecipherGCM).setAAD(aad);
    this.encryption = encryption;
    this.total = total;
    this.out = out;
    this.offset = offset;
    this.p = offset;
  }

  update(piece: Uint8Array): void {
    try {
      const part = this.decipher.update(piece);
      if (this.p + part.length > this.offset + this.total) throw new Error('more ciphertext than announced');
      this.out.set(part, this.p);
      this.p += part.length;
      part.fill(0);
      release(part);
    } catch (e) {
      this.wipe();
      throw cmsDamaged(this.encryption.spec.aead ? 'authentication tag mismatch' : 'decryption failed', e);
    }
  }

  /** Checks the tag (GCM) or the padding (CBC); returns the plaintext length. */
  finish(tag: Uint8Array | undefined): number {
    const { spec: s, tagLength } = this.encryption;
    if (s.aead) {
      if (!tag || tag.length !== tagLength) {
        this.wipe();
        throw cmsDamaged(`authentication tag has ${tag?.length ?? 0} octets, expected ${tagLength}`);
      }
    }
    try {
      if (s.aead) (this.decipher as DecipherGCM).setAuthTag(tag!);
      this.decipher.final();
      const produced = this.p - this.offset;
      if (produced !== this.total) throw new Error(`decipher produced ${produced} of ${this.total} octets`);
    } catch (e) {
      this.wipe();
      throw cmsDamaged(s.aead ? 'authentication tag mismatch' : 'decryption failed', e);
    }
    if (s.aead) return this.total;
    const pad = padLength(this.out.subarray(this.offset, this.offset + this.total), s.blockSize);
    if (pad < 0) {
      this.wipe();
      throw cmsDamaged('bad padding after decryption');
    }
    return this.total - pad;
  }

  wipe(): void {
    this.out.fill(0, this.offset, this.offset + this.total);
  }
}

/** The PKCS#7 padding length (RFC 5652 §6.3), checking every padding octet in constant time; -1 when bad. */
function padLength(out: Uint8Array, blockSize: number): number {
  const n = out.length;
  const pad = out[n - 1]!;
  let bad = pad === 0 || pad > blockSize ? 1 : 0;
  for (let i = 1; i <= blockSize; i++) {
    if (i <= pad) bad |= out[n - i]! ^ pad;
  }
  return bad !== 0 ? -1 : pad;
}
