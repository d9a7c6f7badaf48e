/**
 * RecipientInfo (RFC 5652 §6.2): how each recipient finds the
 * content-encryption key. We write KeyTransRecipientInfo for RSA recipients
 * and KeyAgreeRecipientInfo for EC/X25519/X448 ones; we read all five
 * choices, so that a message also addressed to others can be described and
 * decrypted.
 *
 *   RecipientInfo ::= CHOICE {
 *     ktri KeyTransRecipientInfo,
 *     kari [1] KeyAgreeRecipientInfo,
 *     kekri [2] KEKRecipientInfo,
 *     pwri [3] PasswordRecipientinfo,
 *     ori [4] OtherRecipientInfo }
 *
 *   KeyTransRecipientInfo ::= SEQUENCE {
 *     version CMSVersion,  -- always set to 0 or 2
 *     rid RecipientIdentifier,
 *     keyEncryptionAlgorithm KeyEncryptionAlgorithmIdentifier,
 *     encryptedKey EncryptedKey }
 *
 *   RecipientIdentifier ::= CHOICE {
 *     issuerAndSerialNumber IssuerAndSerialNumber,
 *     subjectKeyIdentifier [0] SubjectKeyIdentifier }
 *
 *   KeyAgreeRecipientInfo ::= SEQUENCE {
 *     version CMSVersion,  -- always set to 3
 *     originator [0] EXPLICIT OriginatorIdentifierOrKey,
 *     ukm [1] EXPLICIT UserKeyingMaterial OPTIONAL,
 *     keyEncryptionAlgorithm KeyEncryptionAlgorithmIdentifier,
 *     recipientEncryptedKeys RecipientEncryptedKeys }
 *
 *   OriginatorIdentifierOrKey ::= CHOICE {
 *     issuerAndSerialNumber IssuerAndSerialNumber,
 *     subjectKeyIdentifier [0] SubjectKeyIdentifier,
 *     originatorKey [1] OriginatorPublicKey }
 *
 *   RecipientEncryptedKey ::= SEQUENCE {
 *     rid KeyAgreeRecipientIdentifier,
 *     encryptedKey EncryptedKey }
 *
 *   KeyAgreeRecipientIdentifier ::= CHOICE {
 *     issuerAndSerialNumber IssuerAndSerialNumber,
 *     rKeyId [0] IMPLICIT RecipientKeyIdentifier }
 *
 *   RecipientKeyIdentifier ::= SEQUENCE {
 *     subjectKeyIdentifier SubjectKeyIdentifier,
 *     date GeneralizedTime OPTIONAL,
 *     other OtherKeyAttribute OPTIONAL }
 */
import type { KeyObject } from 'node:crypto';
import { KeyfleetError } from '../../errors.ts';
import { type Tlv, SequenceReader, Tag, children, integerContents, readBitString, readOid, readOctets, readSmallInt } from '../../asn1/reader.ts';
import * as der from '../../asn1/writer.ts';
import { type AlgorithmIdentifier, decodeAlgorithmIdentifier } from '../../x509/algorithm.ts';
import type { Certificate } from '../../x509/certificate.ts';
import { type Name, decodeName, nameToString, namesEqual } from '../../x509/name.ts';
import { cmsMalformed, cmsUnsupported } from './content-encryption.ts';
import { type OriginatorPublicKey, agreeAsRecipient, agreeAsSender, decodeKeyAgreeAlgorithm, isKeyAgreementKey } from './key-agreement.ts';
import { decodeKeyTransportAlgorithm, encodeKeyTransportAlgorithm, rsaDecryptKey, rsaEncryptKey } from './key-transport.ts';

export interface RecipientSpec {
  readonly certificate: Certificate;
  /** Default issuerAndSerialNumber; subjectKeyIdentifier needs the certificate's SKI extension. */
  readonly identifier?: 'issuerAndSerialNumber' | 'subjectKeyIdentifier';
  /** RSA recipients; default pkcs1, which every client reads. */
  readonly rsaPadding?: 'oaep' | 'pkcs1';
  /** OAEP hash; default sha256. */
  readonly oaepHash?: 'sha256' | 'sha384' | 'sha512';
}

export type RecipientIdentifier =
  | { readonly issuer: Name; readonly serialNumber: Uint8Array; readonly subjectKeyIdentifier?: undefined }
  | { readonly subjectKeyIdentifier: Uint8Array; readonly issuer?: undefined };

/** One encrypted copy of the content-encryption key and whom it is for. */
export interface EncryptedKeyFor {
  readonly rid: RecipientIdentifier;
  readonly encryptedKey: Uint8Array;
}

export type RecipientKind = 'ktri' | 'kari' | 'kekri' | 'pwri' | 'ori';

export interface RecipientInfo {
  readonly kind: RecipientKind;
  /** The key-encryption algorithm (for ori, the oriType). */
  readonly algorithm: string;
  readonly keyEncryptionAlgorithm: AlgorithmIdentifier | undefined;
  /** ktri: one; kari: one per RecipientEncryptedKey; others: none we can use. */
  readonly keys: readonly EncryptedKeyFor[];
  /** kari: the ephemeral key, or undefined when the originator is identified by certificate (static-static, RFC 6278). */
  readonly originator?: OriginatorPublicKey | undefined;
  readonly ukm?: Uint8Array | undefined;
}

/** What `keyfleet smime inspect` shows per recipient. */
export interface RecipientSummary {
  readonly kind: RecipientKind;
  readonly issuerAndSerial?: { readonly issuer: Name; readonly serialHex: string };
  readonly subjectKeyIdentifierHex?: string;
  readonly keyEncryptionAlgorithm: string;
  /** kari: the KeyWrapAlgorithm in the keyEncryptionAlgorithm parameters. */
  readonly keyWrapAlgorithm?: string;
}

// ------------------------------------------------------------------ writing

const issuerAndSerialCache = new WeakMap<Certificate, Uint8Array>();

/** IssuerAndSerialNumber (RFC 5652 §10.2.4) of a certificate, cached: the same recipients recur. */
function issuerAndSerialNumber(cert: Certificate): Uint8Array {
  let enc = issuerAndSerialCache.get(cert);
  if (!enc) {
    enc = der.sequence(cert.issuer.der, der.integerFromContents(cert.serialNumber));
    issuerAndSerialCache.set(cert, enc);
  }
  return enc;
}

function subjectKeyIdentifierOf(cert: Certificate): Uint8Array {
  const ski = cert.subjectKeyIdentifier;
  if (!ski) throw new KeyfleetError('KF_CMS_UNSUPPORTED', `recipient certificate ${nameToString(cert.subject)} has no subjectKeyIdentifier extension; identify it by issuerAndSerialNumber`);
  return ski;
}

export interface EncodedRecipientInfo {
  readonly der: Uint8Array;
  /** The RecipientInfo's version, which decides the EnvelopedData version (RFC 5652 §6.1). */
  readonly version: number;
}

/** Encrypts `cek` for one recipient: RSA key transport, or ephemeral-static key agreement for EC/X25519/X448 keys. */
export function encodeRecipientInfo(spec: RecipientSpec, cek: Uint8Array): EncodedRecipientInfo {
  const cert = spec.certificate;
  const publicKey = cert.publicKey;
  const bySki = spec.identifier === 'subjectKeyIdentifier';
  if (publicKey.asymmetricKeyType === 'rsa') {
    const padding = spec.rsaPadding ?? 'pkcs1';
    const hash = spec.oaepHash ?? 'sha256';
    const rid = bySki ? der.implicitPrimitive(0, subjectKeyIdentifierOf(cert)) : issuerAndSerialNumber(cert);
    const encryptedKey = rsaEncryptKey(publicKey, padding === 'pkcs1' ? { padding } : { padding, hash, label: undefined }, cek);
    // RFC 5652 §6.2.1: version 0 with issuerAndSerialNumber, 2 with subjectKeyIdentifier.
    const version = bySki ? 2 : 0;
    return { der: der.sequence(der.integer(version), rid, encodeKeyTransportAlgorithm(padding, hash), der.octetString(encryptedKey)), version };
  }
  if (isKeyAgreementKey(publicKey)) {
    const rid = bySki ? der.tlv(0xa0, der.octetString(subjectKeyIdentifierOf(cert))) : issuerAndSerialNumber(cert);
    const agreement = agreeAsSender(publicKey, cek);
    const recipientEncryptedKeys = der.sequence(der.sequence(rid, der.octetString(agreement.encryptedKey)));
    // RFC 5652 §6.2.2: version is always 3.
    return { der: der.tlv(0xa1, der.integer(3), der.explicit(0, agreement.originatorKey), agreement.keyEncryptionAlgorithm, recipientEncryptedKeys), version: 3 };
  }
  throw new KeyfleetError(
    'KF_CMS_UNSUPPORTED',
    `recipient certificate ${nameToString(cert.subject)} has a ${publicKey.asymmetricKeyType ?? 'unknown'} key; encryption supports RSA, EC P-256/P-384/P-521, X25519 and X448`,
    { detail: cert.publicKeyAlgorithm.algorithm },
  );
}

// ------------------------------------------------------------------ reading

function decodeIssuerAndSerialNumber(tlv: Tlv): RecipientIdentifier {
  const r = new SequenceReader(tlv, 'IssuerAndSerialNumber');
  const issuer = decodeName(r.next(Tag.sequence));
  const serialNumber = integerContents(r.next(Tag.integer));
  r.end();
  return { issuer, serialNumber };
}

function decodeRecipientIdentifier(tlv: Tlv): RecipientIdentifier {
  if (tlv.cls === 0 && tlv.tag === Tag.sequence) return decodeIssuerAndSerialNumber(tlv);
  if (tlv.cls === 2 && tlv.tag === 0) return { subjectKeyIdentifier: readOctets(tlv) };
  throw cmsMalformed(`RecipientIdentifier has unexpected tag [${tlv.cls}:${tlv.tag}]`);
}

function decodeKeyAgreeRecipientIdentifier(tlv: Tlv): RecipientIdentifier {
  if (tlv.cls === 0 && tlv.tag === Tag.sequence) return decodeIssuerAndSerialNumber(tlv);
  if (tlv.cls === 2 && tlv.tag === 0) {
    const r = new SequenceReader(tlv, 'RecipientKeyIdentifier');
    return { subjectKeyIdentifier: readOctets(r.next(Tag.octetString)) };
  }
  throw cmsMalformed(`KeyAgreeRecipientIdentifier has unexpected tag [${tlv.cls}:${tlv.tag}]`);
}

function decodeVersion(r: SequenceReader): number {
  return readSmallInt(r.next(Tag.integer));
}

export function decodeRecipientInfo(tlv: Tlv): RecipientInfo {
  if (tlv.cls === 0 && tlv.tag === Tag.sequence) {
    const r = new SequenceReader(tlv, 'KeyTransRecipientInfo');
    decodeVersion(r);
    const rid = decodeRecipientIdentifier(r.next());
    const alg = decodeAlgorithmIdentifier(r.next(Tag.sequence));
    const encryptedKey = readOctets(r.next(Tag.octetString));
    r.end();
    return { kind: 'ktri', algorithm: alg.algorithm, keyEncryptionAlgorithm: alg, keys: [{ rid, encryptedKey }] };
  }
  if (tlv.cls !== 2 || !tlv.constructed) throw cmsMalformed(`RecipientInfo has unexpected tag [${tlv.cls}:${tlv.tag}]`);
  switch (tlv.tag) {
    case 1:
      return decodeKeyAgreeRecipientInfo(tlv);
    case 2: {
      const r = new SequenceReader(tlv, 'KEKRecipientInfo');
      decodeVersion(r);
      r.next(Tag.sequence); // kekid
      const alg = decodeAlgorithmIdentifier(r.next(Tag.sequence));
      return { kind: 'kekri', algorithm: alg.algorithm, keyEncryptionAlgorithm: alg, keys: [] };
    }
    case 3: {
      const r = new SequenceReader(tlv, 'PasswordRecipientInfo');
      decodeVersion(r);
      r.optionalContext(0); // keyDerivationAlgorithm
      const alg = decodeAlgorithmIdentifier(r.next(Tag.sequence));
      return { kind: 'pwri', algorithm: alg.algorithm, keyEncryptionAlgorithm: alg, keys: [] };
    }
    case 4: {
      const r = new SequenceReader(tlv, 'OtherRecipientInfo');
      return { kind: 'ori', algorithm: readOid(r.next(Tag.oid)), keyEncryptionAlgorithm: undefined, keys: [] };
    }
    default:
      throw cmsMalformed(`RecipientInfo has unknown choice [${tlv.tag}]`);
  }
}

function decodeKeyAgreeRecipientInfo(tlv: Tlv): RecipientInfo {
  const r = new SequenceReader(tlv, 'KeyAgreeRecipientInfo');
  decodeVersion(r);
  const originatorTlv = r.optionalContext(0);
  if (!originatorTlv) throw cmsMalformed('KeyAgreeRecipientInfo has no originator');
  const choice = children(originatorTlv);
  if (choice.length !== 1) throw cmsMalformed('KeyAgreeRecipientInfo originator must be one element');
  let originator: OriginatorPublicKey | undefined;
  const o = choice[0]!;
  if (o.cls === 2 && o.tag === 1) {
    const ok = new SequenceReader(o, 'OriginatorPublicKey');
    const algorithm = decodeAlgorithmIdentifier(ok.next(Tag.sequence));
    const bits = readBitString(ok.next(Tag.bitString));
    ok.end();
    if (bits.unusedBits !== 0) throw cmsMalformed('OriginatorPublicKey has unused bits');
    originator = { algorithm, publicKey: bits.bytes };
  }
  const ukmTlv = r.optionalContext(1);
  let ukm: Uint8Array | undefined;
  if (ukmTlv) {
    const inner = children(ukmTlv);
    if (inner.length !== 1 || inner[0]!.cls !== 0 || inner[0]!.tag !== Tag.octetString) throw cmsMalformed('ukm must be one OCTET STRING');
    ukm = readOctets(inner[0]!);
  }
  const alg = decodeAlgorithmIdentifier(r.next(Tag.sequence));
  const keys = children(r.next(Tag.sequence)).map((rek) => {
    const k = new SequenceReader(rek, 'RecipientEncryptedKey');
    const rid = decodeKeyAgreeRecipientIdentifier(k.next());
    const encryptedKey = readOctets(k.next(Tag.octetString));
    k.end();
    return { rid, encryptedKey };
  });
  r.end();
  return { kind: 'kari', algorithm: alg.algorithm, keyEncryptionAlgorithm: alg, keys, originator, ukm };
}

/** Whether `rid` names `cert`: issuer by RFC 5280 §7.1 comparison and serial by value, or SKI bytewise. */
export function identifies(rid: RecipientIdentifier, cert: Certificate): boolean {
  if (rid.subjectKeyIdentifier) {
    const ski = cert.subjectKeyIdentifier;
    return ski !== undefined && Buffer.compare(ski, rid.subjectKeyIdentifier) === 0;
  }
  return sameSerial(rid.serialNumber, cert.serialNumber) && namesEqual(rid.issuer, cert.issuer);
}

/** Serial numbers compared as positive integers: some producers add or drop a leading zero octet. */
function sameSerial(a: Uint8Array, b: Uint8Array): boolean {
  let i = 0;
  let j = 0;
  while (i < a.length - 1 && a[i] === 0) i++;
  while (j < b.length - 1 && b[j] === 0) j++;
  return Buffer.compare(a.subarray(i), b.subarray(j)) === 0;
}

/** Whether `key` is the kind of private key this RecipientInfo needs. */
export function keyFits(ri: RecipientInfo, key: KeyObject): boolean {
  if (ri.kind === 'ktri') return key.asymmetricKeyType === 'rsa';
  if (ri.kind === 'kari') return isKeyAgreementKey(key);
  return false;
}

/** Recovers the content-encryption key from one encrypted copy with the recipient's private key. */
export function decryptContentKey(ri: RecipientInfo, encryptedKey: Uint8Array, key: KeyObject): Uint8Array {
  const alg = ri.keyEncryptionAlgorithm;
  if (ri.kind === 'ktri' && alg) return rsaDecryptKey(key, decodeKeyTransportAlgorithm(alg), encryptedKey);
  if (ri.kind === 'kari' && alg) {
    const agreement = decodeKeyAgreeAlgorithm(alg);
    if (!ri.originator) throw cmsUnsupported('key agreement with a static originator key (RFC 6278)', alg.algorithm);
    return agreeAsRecipient(key, ri.originator, agreement, ri.ukm, encryptedKey);
  }
  throw cmsUnsupported(`${ri.kind} recipient`, ri.algorithm);
}

export function summarizeRecipientInfo(ri: RecipientInfo): RecipientSummary[] {
  let keyWrapAlgorithm: string | undefined;
  if (ri.kind === 'kari' && ri.keyEncryptionAlgorithm?.parameters?.tag === Tag.sequence) {
    try {
      keyWrapAlgorithm = decodeAlgorithmIdentifier(ri.keyEncryptionAlgorithm.parameters).algorithm;
    } catch {
      keyWrapAlgorithm = undefined;
    }
  }
  const base = { kind: ri.kind, keyEncryptionAlgorithm: ri.algorithm, ...(keyWrapAlgorithm ? { keyWrapAlgorithm } : {}) };
  if (ri.keys.length === 0) return [base];
  return ri.keys.map(({ rid }) =>
    rid.subjectKeyIdentifier
      ? { ...base, subjectKeyIdentifierHex: Buffer.from(rid.subjectKeyIdentifier).toString('hex') }
      : { ...base, issuerAndSerial: { issuer: rid.issuer, serialHex: Buffer.from(rid.serialNumber).toString('hex') } },
  );
}
