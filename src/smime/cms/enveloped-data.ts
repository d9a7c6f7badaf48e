/**
 * Encrypting and decrypting CMS content: EnvelopedData (RFC 5652 §6) for
 * AES-CBC and AuthEnvelopedData (RFC 5083) for AES-GCM (RFC 5084). GCM is
 * never put in EnvelopedData (REFERENCE.md pitfall 1: OpenSSL refuses it).
 *
 *   EnvelopedData ::= SEQUENCE {
 *     version CMSVersion,
 *     originatorInfo [0] IMPLICIT OriginatorInfo OPTIONAL,
 *     recipientInfos RecipientInfos,
 *     encryptedContentInfo EncryptedContentInfo,
 *     unprotectedAttrs [1] IMPLICIT UnprotectedAttributes OPTIONAL }
 *
 *   AuthEnvelopedData ::= SEQUENCE {
 *     version CMSVersion,   -- always 0
 *     originatorInfo [0] IMPLICIT OriginatorInfo OPTIONAL,
 *     recipientInfos RecipientInfos,
 *     authEncryptedContentInfo EncryptedContentInfo,
 *     authAttrs [1] IMPLICIT AuthAttributes OPTIONAL,
 *     mac MessageAuthenticationCode,
 *     unauthAttrs [2] IMPLICIT UnauthAttributes OPTIONAL }
 *
 *   EncryptedContentInfo ::= SEQUENCE {
 *     contentType ContentType,
 *     contentEncryptionAlgorithm ContentEncryptionAlgorithmIdentifier,
 *     encryptedContent [0] IMPLICIT EncryptedContent OPTIONAL }
 *
 * Output is DER: the ciphertext length is known up front, so the headers
 * are written first and the ciphertext straight after them, into one
 * preallocated buffer or, piece by piece, to a consumer that encodes it on
 * the fly (encryptContentStream). Input may be BER with indefinite lengths
 * and a constructed encryptedContent of many segments (Outlook, OpenSSL
 * streaming); it is decrypted segment by segment without joining the
 * segments first. A large DER-shaped input can also be decrypted as it
 * arrives, e.g. while its base64 is decoded (decryptContentStream).
 */
import { type KeyObject, createPublicKey, randomBytes } from 'node:crypto';
import { KeyfleetError, isKeyfleetError } from '../../errors.ts';
import { type Tlv, SequenceReader, Tag, children, contents, octetSegments, raw, readOctets, readOid, readSmallInt, readTlv } from '../../asn1/reader.ts';
import { OID, oidName } from '../../asn1/oids.ts';
import * as der from '../../asn1/writer.ts';
import { type AlgorithmIdentifier, decodeAlgorithmIdentifier } from '../../x509/algorithm.ts';
import type { Certificate } from '../../x509/certificate.ts';
import { nameToString } from '../../x509/name.ts';
import { decodeContentInfo } from './content-info.ts';
import {
  type ContentCipher,
  GCM_NONCE_LENGTH,
  GCM_TAG_LENGTH,
  ciphertextLength,
  cmsMalformed,
  contentCipherSpec,
  decodeContentEncryptionAlgorithm,
  ContentDecipher,
  type ContentEncryption,
  decryptSegments,
  encodeContentEncryptionAlgorithm,
  encryptStream,
} from './content-encryption.ts';
import { type RecipientInfo, type RecipientSpec, type RecipientSummary, decodeRecipientInfo, decryptContentKey, encodeRecipientInfo, identifies, keyFits, summarizeRecipientInfo } from './recipient-info.ts';

export type { ContentCipher } from './content-encryption.ts';
export type { RecipientSpec, RecipientSummary } from './recipient-info.ts';

export interface EncryptOptions {
  readonly cipher: ContentCipher;
  /** The content type of what is encrypted; default id-data. */
  readonly contentType?: string;
  /** Source of the content-encryption key and IV/nonce; default crypto.randomBytes (tests inject their own). */
  readonly random?: (n: number) => Uint8Array;
}

/** A certificate and its private key: one entry of a user's key history. */
export interface KeyPair {
  readonly certificate: Certificate;
  readonly key: KeyObject;
}

export interface DecryptResult {
  readonly content: Uint8Array;
  readonly contentType: string;
  /** The content-encryption algorithm OID. */
  readonly contentCipher: string;
  /** The key pair that opened the message. */
  readonly recipient: KeyPair;
}

export interface EnvelopeDescription {
  readonly contentType: 'enveloped-data' | 'auth-enveloped-data';
  /** The content-encryption algorithm OID. */
  readonly contentCipher: string;
  readonly recipients: RecipientSummary[];
}

/**
 * Encrypts `content` (one buffer, or several segments taken in order) for
 * every recipient. Returns a DER ContentInfo: EnvelopedData for CBC,
 * AuthEnvelopedData for GCM.
 */
export function encryptContent(content: Uint8Array | readonly Uint8Array[], recipients: readonly RecipientSpec[], options: EncryptOptions): Uint8Array {
  let out: Buffer | undefined;
  let p = 0;
  encryptContentStream(content, recipients, options, (length) => {
    out = Buffer.allocUnsafe(length);
    return (piece) => {
      out!.set(piece, p);
      p += piece.length;
    };
  });
  return out!;
}

/**
 * encryptContent without the DER in memory: `open` is told the DER's exact
 * length once, before anything is written, and returns where the DER goes,
 * piece by piece in order (headers, then the ciphertext as the cipher
 * produces it, then the GCM tag). A piece is not used after the call that
 * hands it over returns. The caller can so encode the output on the fly,
 * e.g. as base64 straight into a message (src/smime/message.ts).
 */
export function encryptContentStream(
  content: Uint8Array | readonly Uint8Array[],
  recipients: readonly RecipientSpec[],
  options: EncryptOptions,
  open: (length: number) => (piece: Uint8Array) => void,
): void {
  if (recipients.length === 0) throw new KeyfleetError('KF_USAGE', 'encryption needs at least one recipient');
  const spec = contentCipherSpec(options.cipher);
  const segments = content instanceof Uint8Array ? [content] : content;
  const random = options.random ?? randomBytes;
  const cek = Buffer.from(random(spec.keyLength));
  const iv = random(spec.aead ? GCM_NONCE_LENGTH : spec.blockSize);
  if (cek.length !== spec.keyLength || iv.length !== (spec.aead ? GCM_NONCE_LENGTH : spec.blockSize)) throw new KeyfleetError('KF_USAGE', 'the random source returned the wrong number of octets');
  const contentType = options.contentType ?? OID.data;
  if (!/^[0-2](\.(0|[1-9]\d{0,15}))+$/.test(contentType)) throw new KeyfleetError('KF_USAGE', `content type "${contentType}" is not an OBJECT IDENTIFIER`);
  try {
    const infos = recipients.map((r) => encodeRecipientInfo(r, cek));
    // RFC 5652 §6.1: version 0 when every RecipientInfo is version 0 (we write no originatorInfo,
    // unprotectedAttrs, pwri or ori), else 2. RFC 5083 §2.1: AuthEnvelopedData is always version 0.
    const version = spec.aead || infos.every((i) => i.version === 0) ? 0 : 2;
    let plainLength = 0;
    for (const s of segments) plainLength += s.length;
    const cipherLength = ciphertextLength(spec, plainLength);

    const eciHead = [der.oid(contentType), encodeContentEncryptionAlgorithm(spec, iv), der.header(0x80, cipherLength)];
    const eciLength = byteLength(eciHead) + cipherLength;
    const macHeader = spec.aead ? der.header(Tag.octetString, GCM_TAG_LENGTH) : new Uint8Array(0);
    const macLength = spec.aead ? macHeader.length + GCM_TAG_LENGTH : 0;
    const bodyHead = [der.integer(version), der.setOf(...infos.map((i) => i.der)), der.header(0x30, eciLength)];
    const bodyLength = byteLength(bodyHead) + eciLength + macLength;
    const envelopeHeader = der.header(0x30, bodyLength);
    const envelopeType = der.oid(spec.aead ? OID.authEnvelopedData : OID.envelopedData);
    const explicitHeader = der.header(0xa0, envelopeHeader.length + bodyLength);
    const infoLength = envelopeType.length + explicitHeader.length + envelopeHeader.length + bodyLength;
    const head = [der.header(0x30, infoLength), envelopeType, explicitHeader, envelopeHeader, ...bodyHead, ...eciHead];

    const emit = open(byteLength(head) + cipherLength + macLength);
    for (const h of head) emit(h);
    let produced = 0;
    const tag = encryptStream(spec, cek, iv, segments, (piece) => {
      produced += piece.length;
      emit(piece);
    });
    if (produced !== cipherLength) throw new Error(`cipher produced ${produced} of ${cipherLength} octets`);
    if (tag) {
      emit(macHeader);
      emit(tag);
    }
  } finally {
    cek.fill(0);
  }
}

function byteLength(parts: readonly Uint8Array[]): number {
  let n = 0;
  for (const part of parts) n += part.length;
  return n;
}

// ------------------------------------------------------------------ reading

interface Envelope {
  readonly kind: 'enveloped-data' | 'auth-enveloped-data';
  readonly recipientInfos: readonly RecipientInfo[];
  readonly contentType: string;
  readonly contentEncryptionAlgorithm: AlgorithmIdentifier;
  /** Segments of encryptedContent; undefined when the content is detached. */
  readonly encryptedContent: readonly Uint8Array[] | undefined;
  readonly mac: Uint8Array | undefined;
  readonly aad: Uint8Array | undefined;
}

function decodeEnvelope(bytes: Uint8Array): Envelope {
  const ci = decodeContentInfo(bytes);
  const kind = ci.contentType === OID.envelopedData ? 'enveloped-data' : ci.contentType === OID.authEnvelopedData ? 'auth-enveloped-data' : undefined;
  if (!kind) throw new KeyfleetError('KF_CMS_UNSUPPORTED', `content type ${oidName(ci.contentType)} is not enveloped-data or auth-enveloped-data`);
  const authenticated = kind === 'auth-enveloped-data';
  const r = new SequenceReader(ci.content, authenticated ? 'AuthEnvelopedData' : 'EnvelopedData');
  readSmallInt(r.next(Tag.integer)); // the version says what may follow; we read whatever does
  r.optionalContext(0); // originatorInfo: certificates for static-static agreement, which we do not use
  const recipientInfos = children(r.next(Tag.set)).map(decodeRecipientInfo);
  if (recipientInfos.length === 0) throw cmsMalformed('RecipientInfos is empty (SIZE (1..MAX), RFC 5652 §6.1)');
  const eci = new SequenceReader(r.next(Tag.sequence), 'EncryptedContentInfo');
  const contentType = readOid(eci.next(Tag.oid));
  const contentEncryptionAlgorithm = decodeAlgorithmIdentifier(eci.next(Tag.sequence));
  const encrypted = eci.optionalContext(0);
  eci.end();
  let mac: Uint8Array | undefined;
  let aad: Uint8Array | undefined;
  if (authenticated) {
    const authAttrs = r.optionalContext(1);
    if (authAttrs) aad = authenticatedAttributesAad(authAttrs);
    mac = readOctets(r.next(Tag.octetString));
    r.optionalContext(2); // unauthAttrs
  } else {
    r.optionalContext(1); // unprotectedAttrs
  }
  r.end();
  return { kind, recipientInfos, contentType, contentEncryptionAlgorithm, encryptedContent: encrypted ? octetSegments(encrypted) : undefined, mac, aad };
}

/** RFC 5083 §2.2: the AAD is authAttrs encoded with the EXPLICIT SET OF tag instead of [1] IMPLICIT. */
function authenticatedAttributesAad(tlv: Tlv): Uint8Array {
  const aad = Buffer.from(raw(tlv));
  aad[0] = 0x31;
  return aad;
}

const derivedPublicKeys = new WeakMap<KeyObject, KeyObject>();

/**
 * Whether the private key belongs to the certificate it came with. A history
 * with a mismatched pair would otherwise show as a "damaged" message, or with
 * RSA PKCS#1 v1.5 implicit rejection as garbage that happens to unpad.
 */
function keyMatchesCertificate(pair: KeyPair): boolean {
  let publicKey = derivedPublicKeys.get(pair.key);
  if (!publicKey) {
    publicKey = createPublicKey(pair.key);
    derivedPublicKeys.set(pair.key, publicKey);
  }
  return publicKey.equals(pair.certificate.publicKey);
}

/** ASN.1 errors inside a CMS structure are reported as a malformed CMS message. */
function asCms<T>(work: () => T): T {
  try {
    return work();
  } catch (e) {
    if (isKeyfleetError(e, 'KF_ASN1_MALFORMED')) throw cmsMalformed(`malformed CMS message: ${e.message}`, e);
    throw e;
  }
}

interface Candidate {
  readonly ri: RecipientInfo;
  readonly encryptedKey: Uint8Array;
  readonly pair: KeyPair;
}

/**
 * The (RecipientInfo, key pair) pairs that name each other. The key is
 * chosen by recipient identifier, never by trial: RSA PKCS#1 v1.5
 * decryption with implicit rejection yields a random key for a wrong
 * private key (REFERENCE.md pitfall 7).
 */
function candidatesFor(recipientInfos: readonly RecipientInfo[], keys: readonly KeyPair[]): Candidate[] {
  const candidates: Candidate[] = [];
  for (const ri of recipientInfos) {
    for (const { rid, encryptedKey } of ri.keys) {
      for (const pair of keys) {
        if (keyFits(ri, pair.key) && identifies(rid, pair.certificate)) candidates.push({ ri, encryptedKey, pair });
      }
    }
  }
  if (candidates.length === 0) {
    throw new KeyfleetError('KF_CMS_NO_MATCHING_KEY', `none of the message's ${recipientInfos.length} recipient(s) matches any of the ${keys.length} key(s) supplied`);
  }
  return candidates;
}

/**
 * Runs `decrypt` with the content-encryption key of the first candidate
 * that opens the message. Normally there is one candidate. Several arise
 * when the message names more than one key of the history; if one fails (a
 * damaged copy), the next may still open the message.
 */
function withContentKey<T>(candidates: readonly Candidate[], decrypt: (cek: Uint8Array) => T): { value: T; recipient: KeyPair } {
  let failure: unknown;
  for (const { ri, encryptedKey, pair } of candidates) {
    let cek: Uint8Array | undefined;
    try {
      if (!keyMatchesCertificate(pair)) {
        throw new KeyfleetError('KF_KEY_INVALID', `the private key supplied for certificate ${nameToString(pair.certificate.subject)} (serial ${pair.certificate.serialHex}) does not belong to it`);
      }
      cek = decryptContentKey(ri, encryptedKey, pair.key);
      return { value: decrypt(cek), recipient: pair };
    } catch (e) {
      if (!isKeyfleetError(e, 'KF_CMS_DECRYPT_FAILED') && !isKeyfleetError(e, 'KF_CMS_UNSUPPORTED') && !isKeyfleetError(e, 'KF_KEY_INVALID')) throw e;
      failure ??= e;
    } finally {
      cek?.fill(0);
    }
  }
  throw failure;
}

/**
 * Decrypts an EnvelopedData or AuthEnvelopedData with one of `keys` (a user's
 * whole key history), chosen by recipient identifier (see candidatesFor).
 */
export function decryptContent(contentInfoDer: Uint8Array, keys: readonly KeyPair[]): DecryptResult {
  return asCms(() => {
    const env = decodeEnvelope(contentInfoDer);
    const candidates = candidatesFor(env.recipientInfos, keys);
    const encryption = decodeContentEncryptionAlgorithm(env.contentEncryptionAlgorithm, env.kind === 'auth-enveloped-data');
    const segments = env.encryptedContent;
    if (!segments) throw new KeyfleetError('KF_CMS_UNSUPPORTED', 'the encrypted content is detached (not in the message); detached content is not supported');
    const { value, recipient } = withContentKey(candidates, (key) =>
      decryptSegments({ encryption, key, segments, ...(env.mac ? { tag: env.mac } : {}), ...(env.aad ? { aad: env.aad } : {}) }),
    );
    return { content: value, contentType: env.contentType, contentCipher: env.contentEncryptionAlgorithm.algorithm, recipient };
  });
}

/** What a message is and whom it is for, without decrypting it (`keyfleet smime inspect`). */
export function describeEnvelope(contentInfoDer: Uint8Array): EnvelopeDescription {
  return asCms(() => {
    const env = decodeEnvelope(contentInfoDer);
    return { contentType: env.kind, contentCipher: env.contentEncryptionAlgorithm.algorithm, recipients: env.recipientInfos.flatMap(summarizeRecipientInfo) };
  });
}

// ------------------------------------------------------------ streaming

/**
 * DER arriving in order, e.g. decoded from base64 as it is read
 * (src/smime/mime/transfer-encoding.ts Base64Reader).
 */
export interface DerSource {
  /** Reads the next octets into `out` at `offset`, at most about `max` (`out` has room for `max` + 3); 0 at the end. */
  read(out: Buffer, offset: number, max: number): number;
  /** Returns a function that puts the source back where it is now. */
  mark(): () => void;
  /** At least the number of octets still to come. */
  readonly remainingBound: number;
}

export interface StreamDecryptResult {
  /** The plaintext is out[reserve, reserve + length); the first `reserve` octets are the caller's. */
  readonly out: Buffer;
  readonly length: number;
  readonly contentType: string;
  readonly contentCipher: string;
  readonly recipient: KeyPair;
}

/** Octets read before the envelope's fields must all be known: RecipientInfos of hundreds of recipients fit. */
const HEAD_PREFIX = 64 * 1024;
/** Ciphertext decrypted per step. */
const STREAM_SLICE = 1 << 20;
/** What may follow the ciphertext: the GCM mac, unprotected or unauthenticated attributes. */
const MAX_TAIL = 64 * 1024;

/** The envelope up to its ciphertext, with the DER offsets the stream needs. */
interface EnvelopeHead {
  readonly kind: 'enveloped-data' | 'auth-enveloped-data';
  readonly recipientInfos: readonly RecipientInfo[];
  readonly contentType: string;
  readonly contentEncryptionAlgorithm: AlgorithmIdentifier;
  readonly contentStart: number;
  readonly contentEnd: number;
  /** End of the ContentInfo, which is also the end of the envelope's fields. */
  readonly end: number;
}

/** The stream is not of the one shape decryptContentStream reads; the whole-DER path takes over. */
class NotStreamable extends Error {}

/**
 * Decrypts an EnvelopedData or AuthEnvelopedData read from `source`
 * without the DER or the ciphertext ever being whole in memory: the first
 * 64 KB give the envelope's fields up to the ciphertext, then the
 * ciphertext is decrypted slice by slice into one buffer, after `reserve`
 * octets left free for the caller (so that the outer header fields of a
 * message need no second copy), and the fields after the ciphertext (the
 * GCM tag) are read last.
 *
 * Only DER-like input is read this way: definite lengths, one primitive
 * encryptedContent, no authAttrs (their AAD would be needed before the
 * ciphertext). For anything else, including every malformed input, it
 * returns undefined and the caller decodes the whole DER with
 * decryptContent, which reports errors as usual. Results and errors from
 * the keys and the decryption are those of decryptContent.
 */
export function decryptContentStream(source: DerSource, keys: readonly KeyPair[], reserve: number): StreamDecryptResult | undefined {
  const prefix = Buffer.allocUnsafe(HEAD_PREFIX + 3);
  let length = 0;
  for (let n; length < HEAD_PREFIX && (n = source.read(prefix, length, HEAD_PREFIX - length)) > 0; ) length += n;
  const head = envelopeHead(prefix.subarray(0, length));
  if (!head || head.end - head.contentEnd > MAX_TAIL || head.end - length > source.remainingBound) return undefined;
  const restart = source.mark();
  try {
    return asCms(() => {
      const candidates = candidatesFor(head.recipientInfos, keys);
      const encryption = decodeContentEncryptionAlgorithm(head.contentEncryptionAlgorithm, head.kind === 'auth-enveloped-data');
      const out = Buffer.allocUnsafe(reserve + head.contentEnd - head.contentStart);
      const scratch = Buffer.allocUnsafe(STREAM_SLICE + 3);
      const { value, recipient } = withContentKey(candidates, (key) => {
        restart();
        return decryptStreamed(head, encryption, key, prefix.subarray(0, length), source, scratch, out, reserve);
      });
      return { out, length: value, contentType: head.contentType, contentCipher: head.contentEncryptionAlgorithm.algorithm, recipient };
    });
  } catch (e) {
    if (e instanceof NotStreamable) return undefined;
    throw e;
  }
}

function decryptStreamed(
  head: EnvelopeHead,
  encryption: ContentEncryption,
  key: Uint8Array,
  prefix: Buffer,
  source: DerSource,
  scratch: Buffer,
  out: Buffer,
  reserve: number,
): number {
  const d = new ContentDecipher(encryption, key, head.contentEnd - head.contentStart, out, reserve);
  const tail = Buffer.allocUnsafe(head.end - head.contentEnd);
  let t = 0;
  const toTail = (bytes: Buffer, start: number, end: number): void => {
    if (t + end - start > tail.length) throw new NotStreamable('data after the ContentInfo');
    t += bytes.copy(tail, t, start, end);
  };
  let pos = Math.min(prefix.length, head.contentEnd);
  if (pos > head.contentStart) d.update(prefix.subarray(head.contentStart, pos));
  if (prefix.length > head.contentEnd) toTail(prefix, head.contentEnd, prefix.length);
  for (;;) {
    let n = 0;
    for (let k; n < STREAM_SLICE && (k = source.read(scratch, n, STREAM_SLICE - n)) > 0; ) n += k;
    if (n === 0) break;
    const take = Math.min(n, head.contentEnd - pos);
    if (take > 0) d.update(scratch.subarray(0, take));
    pos += take;
    if (take < n) toTail(scratch, take, n);
  }
  if (pos < head.contentEnd || t !== tail.length) throw new NotStreamable('the DER ends early');
  const mac = envelopeTail(head, tail);
  try {
    return d.finish(mac);
  } catch (e) {
    d.wipe();
    throw e;
  }
}

/** Identifier and definite length of the element at `offset` (its contents need not be there yet). */
function definiteHeader(bytes: Uint8Array, offset: number): { readonly id: number; readonly contentStart: number; readonly end: number } | undefined {
  let p = offset;
  const id = bytes[p++];
  const first = bytes[p++];
  if (id === undefined || first === undefined || (id & 0x1f) === 0x1f || first === 0x80) return undefined;
  let length = first;
  if (first > 0x80) {
    const n = first & 0x7f;
    if (n > 6 || p + n > bytes.length) return undefined;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + bytes[p++]!;
  }
  return { id, contentStart: p, end: p + length };
}

/** The envelope's fields up to its ciphertext, from a prefix of the DER; undefined when not of the streamable shape. */
function envelopeHead(p: Uint8Array): EnvelopeHead | undefined {
  try {
    const ci = definiteHeader(p, 0);
    if (ci?.id !== 0x30) return undefined;
    const typeTlv = readTlv(p, ci.contentStart);
    if (typeTlv.cls !== 0 || typeTlv.tag !== Tag.oid) return undefined;
    const type = readOid(typeTlv);
    const kind = type === OID.envelopedData ? 'enveloped-data' : type === OID.authEnvelopedData ? 'auth-enveloped-data' : undefined;
    const wrapper = definiteHeader(p, typeTlv.end);
    if (!kind || wrapper?.id !== 0xa0 || wrapper.end !== ci.end) return undefined;
    const body = definiteHeader(p, wrapper.contentStart);
    if (body?.id !== 0x30 || body.end !== ci.end) return undefined;
    const version = readTlv(p, body.contentStart);
    if (version.cls !== 0 || version.tag !== Tag.integer) return undefined;
    readSmallInt(version);
    let q = version.end;
    if (p[q] === 0xa0) q = readTlv(p, q).end; // originatorInfo
    const ris = readTlv(p, q);
    if (ris.cls !== 0 || ris.tag !== Tag.set) return undefined;
    const recipientInfos = children(ris).map(decodeRecipientInfo);
    if (recipientInfos.length === 0) return undefined;
    const eci = definiteHeader(p, ris.end);
    if (eci?.id !== 0x30) return undefined;
    const contentTypeTlv = readTlv(p, eci.contentStart);
    if (contentTypeTlv.cls !== 0 || contentTypeTlv.tag !== Tag.oid) return undefined;
    const algorithm = readTlv(p, contentTypeTlv.end);
    if (algorithm.cls !== 0 || algorithm.tag !== Tag.sequence) return undefined;
    const encrypted = definiteHeader(p, algorithm.end);
    if (encrypted?.id !== 0x80 || encrypted.end !== eci.end) return undefined;
    return {
      kind,
      recipientInfos,
      contentType: readOid(contentTypeTlv),
      contentEncryptionAlgorithm: decodeAlgorithmIdentifier(algorithm),
      contentStart: encrypted.contentStart,
      contentEnd: encrypted.end,
      end: ci.end,
    };
  } catch {
    return undefined;
  }
}

/** The fields after the ciphertext, up to the end of the envelope; returns the GCM mac. */
function envelopeTail(head: EnvelopeHead, tail: Uint8Array): Uint8Array | undefined {
  try {
    let q = 0;
    const at = (id: number): Tlv | undefined => {
      if (tail[q] !== id) return undefined;
      const tlv = readTlv(tail, q);
      q = tlv.end;
      return tlv;
    };
    let mac: Uint8Array | undefined;
    if (head.kind === 'auth-enveloped-data') {
      if (tail[q] === 0xa1) throw new NotStreamable('authAttrs');
      const m = at(0x04);
      if (!m) throw new NotStreamable('no mac');
      mac = contents(m);
      at(0xa2); // unauthAttrs
    } else {
      at(0xa1); // unprotectedAttrs
    }
    if (q !== tail.length) throw new NotStreamable('unexpected fields after the ciphertext');
    return mac;
  } catch (e) {
    if (e instanceof NotStreamable) throw e;
    throw new NotStreamable('malformed fields after the ciphertext');
  }
}
