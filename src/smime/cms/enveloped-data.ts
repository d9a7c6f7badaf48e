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
 * Output is DER, built in one preallocated buffer: the ciphertext length is
 * known up front, so the headers are written first and the cipher writes
 * straight after them. Input may be BER with indefinite lengths and a
 * constructed encryptedContent of many segments (Outlook, OpenSSL streaming);
 * it is decrypted segment by segment without joining the segments first.
 */
import { type KeyObject, createPublicKey, randomBytes } from 'node:crypto';
import { KeyfleetError, isKeyfleetError } from '../../errors.ts';
import { type Tlv, SequenceReader, Tag, children, octetSegments, raw, readOctets, readOid, readSmallInt } from '../../asn1/reader.ts';
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
  decryptSegments,
  encodeContentEncryptionAlgorithm,
  encryptInto,
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

    const out = Buffer.allocUnsafe(byteLength(head) + cipherLength + macLength);
    let p = 0;
    for (const h of head) {
      out.set(h, p);
      p += h.length;
    }
    const tag = encryptInto(spec, cek, iv, segments, out, p);
    p += cipherLength;
    if (tag) {
      out.set(macHeader, p);
      out.set(tag, p + macHeader.length);
    }
    return out;
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

/**
 * Decrypts an EnvelopedData or AuthEnvelopedData with one of `keys` (a user's
 * whole key history). The key is chosen by recipient identifier, never by
 * trial: RSA PKCS#1 v1.5 decryption with implicit rejection yields a random
 * key for a wrong private key (REFERENCE.md pitfall 7).
 */
export function decryptContent(contentInfoDer: Uint8Array, keys: readonly KeyPair[]): DecryptResult {
  return asCms(() => {
    const env = decodeEnvelope(contentInfoDer);
    const candidates: { ri: RecipientInfo; encryptedKey: Uint8Array; pair: KeyPair }[] = [];
    for (const ri of env.recipientInfos) {
      for (const { rid, encryptedKey } of ri.keys) {
        for (const pair of keys) {
          if (keyFits(ri, pair.key) && identifies(rid, pair.certificate)) candidates.push({ ri, encryptedKey, pair });
        }
      }
    }
    if (candidates.length === 0) {
      throw new KeyfleetError('KF_CMS_NO_MATCHING_KEY', `none of the message's ${env.recipientInfos.length} recipient(s) matches any of the ${keys.length} key(s) supplied`);
    }
    const encryption = decodeContentEncryptionAlgorithm(env.contentEncryptionAlgorithm, env.kind === 'auth-enveloped-data');
    if (!env.encryptedContent) throw new KeyfleetError('KF_CMS_UNSUPPORTED', 'the encrypted content is detached (not in the message); detached content is not supported');
    // Normally one candidate. Several arise when the message names more than one key of the history;
    // if one fails (a damaged copy), the next may still open the message.
    let failure: unknown;
    for (const { ri, encryptedKey, pair } of candidates) {
      let cek: Uint8Array | undefined;
      try {
        if (!keyMatchesCertificate(pair)) {
          throw new KeyfleetError('KF_KEY_INVALID', `the private key supplied for certificate ${nameToString(pair.certificate.subject)} (serial ${pair.certificate.serialHex}) does not belong to it`);
        }
        cek = decryptContentKey(ri, encryptedKey, pair.key);
        const content = decryptSegments({ encryption, key: cek, segments: env.encryptedContent, ...(env.mac ? { tag: env.mac } : {}), ...(env.aad ? { aad: env.aad } : {}) });
        return { content, contentType: env.contentType, contentCipher: env.contentEncryptionAlgorithm.algorithm, recipient: pair };
      } catch (e) {
        if (!isKeyfleetError(e, 'KF_CMS_DECRYPT_FAILED') && !isKeyfleetError(e, 'KF_CMS_UNSUPPORTED') && !isKeyfleetError(e, 'KF_KEY_INVALID')) throw e;
        failure ??= e;
      } finally {
        cek?.fill(0);
      }
    }
    throw failure;
  });
}

/** What a message is and whom it is for, without decrypting it (`keyfleet smime inspect`). */
export function describeEnvelope(contentInfoDer: Uint8Array): EnvelopeDescription {
  return asCms(() => {
    const env = decodeEnvelope(contentInfoDer);
    return { contentType: env.kind, contentCipher: env.contentEncryptionAlgorithm.algorithm, recipients: env.recipientInfos.flatMap(summarizeRecipientInfo) };
  });
}
