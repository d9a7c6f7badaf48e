/**
 * The SCEP pkiMessage (RFC 8894 §3.2): a CMS SignedData whose signed
 * attributes carry the SCEP transaction state, and whose content is the
 * pkcsPKIEnvelope (omitted in a CertRep that is not SUCCESS).
 *
 *   pkiMessage ::= ContentInfo(SignedData {
 *     encapContentInfo { id-data, eContent = pkcsPKIEnvelope (EnvelopedData) },
 *     certificates { signer certificate (and chain) },
 *     signerInfos { one SignerInfo with signedAttrs:
 *       contentType, messageDigest, signingTime (RFC 5652 §11),
 *       transactionID  PrintableString,          -- 2.16.840.1.113733.1.9.7
 *       messageType    PrintableString (decimal), -- .2
 *       senderNonce    OCTET STRING (16),         -- .5
 *       recipientNonce OCTET STRING (16),         -- .6, CertRep only
 *       pkiStatus      PrintableString,           -- .3, CertRep only
 *       failInfo       PrintableString            -- .4, CertRep FAILURE only
 *     } })
 *
 * The S/MIME signer writes S/MIME's own attributes, so SCEP signs here with
 * the CMS layer's SignerInfo and attribute encoders. Verification is over the
 * bytes as received (REFERENCE.md pitfalls 3, 4); no certificate path is
 * checked here: a PKCSReq signer is self-signed by design (RFC 8894 §2.3),
 * and callers decide what the signer must be.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import { type Tlv, Tag, isUniversal, readOctets, readString } from '../asn1/reader.ts';
import { OID } from '../asn1/oids.ts';
import * as der from '../asn1/writer.ts';
import { encodeAlgorithmIdentifier } from '../x509/algorithm.ts';
import type { Certificate } from '../x509/certificate.ts';
import { type HashName, createSignature, encodeSignatureAlgorithm, hashFromOid, hashOid, schemeForKey, signatureScheme, verifySignature } from '../x509/signature.ts';
import { type Attribute, contentTypeAttribute, encodeAttribute, messageDigestAttribute, signedAttributesForSignature, signingTimeAttribute, singleAttributeValue } from '../smime/cms/attributes.ts';
import { encodeContentInfo } from '../smime/cms/content-info.ts';
import { decodeSignedData } from '../smime/cms/signed-data.ts';
import { encodeSignerIdentifier, encodeSignerInfo, identifies } from '../smime/cms/signer-info.ts';
import { SCEP_OID } from './oids.ts';

/** messageType values (RFC 8894 §3.2.1.2). GetCertInitial is CertPoll in RFC 8894. */
export const MessageTypeCode = { CertRep: '3', RenewalReq: '17', PKCSReq: '19', GetCertInitial: '20', GetCert: '21', GetCRL: '22' } as const;
export type MessageType = keyof typeof MessageTypeCode;

/** pkiStatus values (RFC 8894 §3.2.1.3). */
export const PkiStatusCode = { SUCCESS: '0', FAILURE: '2', PENDING: '3' } as const;
export type PkiStatus = keyof typeof PkiStatusCode;

/** failInfo values (RFC 8894 §3.2.1.4). */
export const FailInfoCode = { badAlg: '0', badMessageCheck: '1', badRequest: '2', badTime: '3', badCertId: '4' } as const;
export type FailInfo = keyof typeof FailInfoCode;

const byCode = <T extends string>(table: Record<T, string>) => new Map(Object.entries(table).map(([k, v]) => [v as string, k as T]));
const messageTypeByCode = byCode<MessageType>(MessageTypeCode);
const pkiStatusByCode = byCode<PkiStatus>(PkiStatusCode);
const failInfoByCode = byCode<FailInfo>(FailInfoCode);

/** RFC 8894 §3.2.1.5: nonces are 16 octets. */
export const NONCE_LENGTH = 16;

export interface PkiMessageSigner {
  readonly certificate: Certificate;
  readonly key: KeyObject;
  /** Further certificates to include (the RA's CA chain). */
  readonly chain?: readonly Certificate[];
}

export interface PkiMessageFields {
  readonly messageType: MessageType;
  readonly transactionId: string;
  readonly senderNonce: Uint8Array;
  readonly recipientNonce?: Uint8Array;
  readonly pkiStatus?: PkiStatus;
  readonly failInfo?: FailInfo;
  /** The pkcsPKIEnvelope (a DER ContentInfo); omitted in a CertRep FAILURE or PENDING (RFC 8894 §3.3.2). */
  readonly envelope?: Uint8Array;
  readonly signer: PkiMessageSigner;
  /** Default sha256. */
  readonly digest?: 'sha1' | 'sha256' | 'sha512';
  /** Default now. */
  readonly signingTime?: Date;
}

/** Signs a pkiMessage; returns its DER ContentInfo(SignedData). */
export function encodePkiMessage(f: PkiMessageFields): Uint8Array {
  if (!/^[A-Za-z0-9 '()+,\-./:=?]{1,128}$/.test(f.transactionId)) throw new KeyfleetError('KF_USAGE', 'a transactionID must be 1 to 128 PrintableString characters');
  const hash: HashName = f.digest ?? 'sha256';
  const content = f.envelope ?? new Uint8Array(0);
  const attrs: Uint8Array[] = [
    contentTypeAttribute(OID.data),
    messageDigestAttribute(createHash(hash).update(content).digest()),
    signingTimeAttribute(f.signingTime ?? new Date()),
    encodeAttribute(SCEP_OID.transactionID, der.printableString(f.transactionId)),
    encodeAttribute(SCEP_OID.messageType, der.printableString(MessageTypeCode[f.messageType])),
    encodeAttribute(SCEP_OID.senderNonce, der.octetString(f.senderNonce)),
  ];
  if (f.recipientNonce) attrs.push(encodeAttribute(SCEP_OID.recipientNonce, der.octetString(f.recipientNonce)));
  if (f.pkiStatus) attrs.push(encodeAttribute(SCEP_OID.pkiStatus, der.printableString(PkiStatusCode[f.pkiStatus])));
  if (f.failInfo) attrs.push(encodeAttribute(SCEP_OID.failInfo, der.printableString(FailInfoCode[f.failInfo])));
  const signedAttrs = der.setOf(...attrs);
  const scheme = schemeForKey(f.signer.key, hash);
  const signerInfo = encodeSignerInfo({
    version: 1,
    sid: encodeSignerIdentifier(f.signer.certificate, 'issuerAndSerialNumber'),
    digestAlgorithm: encodeAlgorithmIdentifier(hashOid(hash)),
    signedAttrs,
    signatureAlgorithm: encodeSignatureAlgorithm(scheme, f.signer.key),
    signature: createSignature(scheme, signedAttrs, f.signer.key),
  });
  const certificates = [f.signer.certificate, ...(f.signer.chain ?? [])].map((c) => c.der);
  const encap = f.envelope ? der.sequence(der.oid(OID.data), der.explicit(0, der.octetString(f.envelope))) : der.sequence(der.oid(OID.data));
  const signedData = der.sequence(
    der.integer(1),
    der.setOf(encodeAlgorithmIdentifier(hashOid(hash))),
    encap,
    der.retag(der.set(...certificates), 0),
    der.setOf(signerInfo),
  );
  return encodeContentInfo(OID.signedData, signedData);
}

/** Why a pkiMessage's signature cannot be accepted. */
export type SignatureProblem = 'signer-certificate-missing' | 'unsupported-algorithm' | 'weak-algorithm' | 'digest-mismatch' | 'bad-signature';

export interface PkiMessage {
  readonly der: Uint8Array;
  readonly messageType: MessageType;
  readonly transactionId: string;
  readonly senderNonce: Uint8Array;
  readonly recipientNonce: Uint8Array | undefined;
  readonly pkiStatus: PkiStatus | undefined;
  readonly failInfo: FailInfo | undefined;
  /** The pkcsPKIEnvelope (eContent), when present. */
  readonly envelope: Uint8Array | undefined;
  /** The certificate the SignerInfo names, found among the message's certificates and the extra ones. */
  readonly signerCertificate: Certificate | undefined;
  readonly certificates: readonly Certificate[];
  readonly signingTime: Date | undefined;
  readonly digest: HashName | undefined;
  /** Undefined when the signature verifies with signerCertificate. */
  readonly signatureProblem: SignatureProblem | undefined;
}

export interface DecodeOptions {
  /** Certificates to look for the signer in besides the message's own (a client passes the RA certificates). */
  readonly extraCertificates?: readonly Certificate[];
  /** Accept SHA-1 digests (old SCEP clients); MD5 is never accepted. Default true. */
  readonly allowSha1?: boolean;
}

function malformed(message: string, cause?: unknown): KeyfleetError {
  return new KeyfleetError('KF_CMS_MALFORMED', `SCEP pkiMessage: ${message}`, cause === undefined ? undefined : { cause });
}

function printable(attributes: readonly Attribute[], type: string, what: string): string | undefined {
  const v = singleAttributeValue(attributes, type);
  if (v === undefined) return undefined;
  if (!isUniversal(v, Tag.printableString) && !isUniversal(v, Tag.utf8String) && !isUniversal(v, Tag.ia5String)) throw malformed(`${what} is not a string`);
  return readString(v);
}

function octets(attributes: readonly Attribute[], type: string, what: string): Uint8Array | undefined {
  const v: Tlv | undefined = singleAttributeValue(attributes, type);
  if (v === undefined) return undefined;
  if (!isUniversal(v, Tag.octetString)) throw malformed(`${what} is not an OCTET STRING`);
  return readOctets(v);
}

/**
 * Decodes a pkiMessage and checks its signature with the certificate its
 * SignerInfo names. Throws KF_CMS_MALFORMED when the structure or a required
 * SCEP attribute is missing or malformed; a signature that does not verify
 * is reported in `signatureProblem`, so a server can still answer with a
 * CertRep FAILURE badMessageCheck.
 */
export function decodePkiMessage(bytes: Uint8Array, options: DecodeOptions = {}): PkiMessage {
  let sd;
  try {
    sd = decodeSignedData(bytes);
  } catch (e) {
    if (isKeyfleetError(e, 'KF_CMS_MALFORMED') || isKeyfleetError(e, 'KF_CERT_INVALID') || isKeyfleetError(e, 'KF_ASN1_LIMIT')) throw malformed(e.message, e);
    throw e;
  }
  if (sd.signerInfos.length !== 1) throw malformed(`expected one SignerInfo, found ${sd.signerInfos.length}`);
  const si = sd.signerInfos[0]!;
  if (!si.signedAttrs) throw malformed('the SignerInfo has no signed attributes');
  const attributes = si.signedAttrs.attributes;
  let transactionId: string | undefined;
  let typeCode: string | undefined;
  let senderNonce: Uint8Array | undefined;
  let recipientNonce: Uint8Array | undefined;
  let statusCode: string | undefined;
  let failCode: string | undefined;
  try {
    transactionId = printable(attributes, SCEP_OID.transactionID, 'transactionID');
    typeCode = printable(attributes, SCEP_OID.messageType, 'messageType');
    senderNonce = octets(attributes, SCEP_OID.senderNonce, 'senderNonce');
    recipientNonce = octets(attributes, SCEP_OID.recipientNonce, 'recipientNonce');
    statusCode = printable(attributes, SCEP_OID.pkiStatus, 'pkiStatus');
    failCode = printable(attributes, SCEP_OID.failInfo, 'failInfo');
  } catch (e) {
    if (e instanceof KeyfleetError && e.code !== 'KF_CMS_MALFORMED') throw malformed(e.message, e);
    throw e;
  }
  if (!transactionId) throw malformed('the transactionID attribute is missing');
  if (typeCode === undefined) throw malformed('the messageType attribute is missing');
  const messageType = messageTypeByCode.get(typeCode.trim());
  if (!messageType) throw malformed(`unknown messageType "${typeCode.slice(0, 8)}"`);
  if (!senderNonce) throw malformed('the senderNonce attribute is missing');
  const pkiStatus = statusCode === undefined ? undefined : pkiStatusByCode.get(statusCode.trim());
  if (statusCode !== undefined && !pkiStatus) throw malformed(`unknown pkiStatus "${statusCode.slice(0, 8)}"`);
  const failInfo = failCode === undefined ? undefined : failInfoByCode.get(failCode.trim());
  if (failCode !== undefined && !failInfo) throw malformed(`unknown failInfo "${failCode.slice(0, 8)}"`);
  if (sd.contentType !== OID.data) throw malformed('the encapsulated content is not id-data');
  const envelope = sd.content === undefined ? undefined : sd.content.length === 1 ? sd.content[0]! : Buffer.concat(sd.content);

  // Known certificates first: a copy in the message (unsigned data) must not stand in for them.
  const pool = [...(options.extraCertificates ?? []), ...sd.certificates];
  const signerCertificate = pool.find((c) => identifies(si.sid, c));
  let digest: HashName | undefined;
  let signatureProblem: SignatureProblem | undefined;
  try {
    digest = hashFromOid(si.digestAlgorithm.algorithm);
  } catch {
    signatureProblem = 'unsupported-algorithm';
  }
  if (digest === 'md5' || (digest === 'sha1' && options.allowSha1 === false)) signatureProblem = 'weak-algorithm';
  if (!signatureProblem) {
    if (!signerCertificate) signatureProblem = 'signer-certificate-missing';
    else signatureProblem = checkSignature(si.signedAttrs.tlv, si.signedAttrs.messageDigest, si.signedAttrs.contentType, si.signatureAlgorithm, si.digestAlgorithm.algorithm, si.signature, digest!, envelope, signerCertificate);
  }
  return {
    der: bytes,
    messageType,
    transactionId,
    senderNonce,
    recipientNonce,
    pkiStatus,
    failInfo,
    envelope,
    signerCertificate,
    certificates: sd.certificates,
    signingTime: si.signedAttrs.signingTime,
    digest,
    signatureProblem,
  };
}

function checkSignature(
  signedAttrs: Tlv,
  messageDigest: Uint8Array | undefined,
  contentType: string | undefined,
  signatureAlgorithm: Parameters<typeof signatureScheme>[0],
  digestOid: string,
  signature: Uint8Array,
  digest: HashName,
  envelope: Uint8Array | undefined,
  certificate: Certificate,
): SignatureProblem | undefined {
  let scheme;
  try {
    scheme = signatureScheme(signatureAlgorithm, digestOid);
  } catch {
    return 'unsupported-algorithm';
  }
  // RFC 5652 §5.4: messageDigest binds the content (empty when the envelope is omitted).
  const expected = createHash(digest).update(envelope ?? new Uint8Array(0)).digest();
  if (!messageDigest || Buffer.compare(Buffer.from(messageDigest), expected) !== 0) return 'digest-mismatch';
  if (contentType !== OID.data) return 'bad-signature';
  let key;
  try {
    key = certificate.publicKey;
  } catch {
    return 'unsupported-algorithm';
  }
  return verifySignature(scheme, signedAttributesForSignature(signedAttrs), signature, key) ? undefined : 'bad-signature';
}

/** A fresh random nonce (RFC 8894 §3.2.1.5). */
export function newNonce(random: (n: number) => Uint8Array): Uint8Array {
  const n = random(NONCE_LENGTH);
  if (n.length !== NONCE_LENGTH) throw new KeyfleetError('KF_USAGE', 'the random source returned the wrong number of octets');
  return n;
}
