/**
 * SignedData (RFC 5652 §5) as S/MIME 4.0 uses it (RFC 8551 §2.5, §3.5):
 *
 *   SignedData ::= SEQUENCE {
 *     version CMSVersion,
 *     digestAlgorithms DigestAlgorithmIdentifiers,
 *     encapContentInfo EncapsulatedContentInfo,
 *     certificates [0] IMPLICIT CertificateSet OPTIONAL,
 *     crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
 *     signerInfos SignerInfos }
 *
 *   EncapsulatedContentInfo ::= SEQUENCE {
 *     eContentType ContentType,
 *     eContent [0] EXPLICIT OCTET STRING OPTIONAL }
 *
 * Contents of any size are handled as lists of segments: hashed segment by
 * segment and, when encapsulated, copied once into the output.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { KeyfleetError } from '../../errors.ts';
import { type Tlv, SequenceReader, Tag, children, isUniversal, octetSegments, raw, readOid, readSmallInt } from '../../asn1/reader.ts';
import { OID } from '../../asn1/oids.ts';
import * as der from '../../asn1/writer.ts';
import { type Certificate, decodeCertificate } from '../../x509/certificate.ts';
import { encodeAlgorithmIdentifier } from '../../x509/algorithm.ts';
import { type HashName, type SignatureScheme, createSignature, encodeSignatureAlgorithm, hashOid, schemeForKey } from '../../x509/signature.ts';
import { decodeContentInfo } from './content-info.ts';
import { contentTypeAttribute, encodeSignedAttributes, messageDigestAttribute, signingTimeAttribute } from './attributes.ts';
import { type SmimeCapability, capabilitiesAttribute, defaultCapabilities, encryptionKeyPreferenceAttributes } from './capabilities.ts';
import { type SignerInfo, decodeSignerInfo, encodeSignerIdentifier, encodeSignerInfo } from './signer-info.ts';


export interface SignerSpec {
  readonly certificate: Certificate;
  readonly key: KeyObject;
  /**
   * Default sha256, and the digest matching the curve for ECDSA P-384/P-521
   * (RFC 5480 §4; gpgsm refuses shorter ones). Ed25519 always uses sha512 (RFC 8419 §3).
   */
  readonly digest?: 'sha256' | 'sha384' | 'sha512';
  /** RSASSA-PSS instead of PKCS#1 v1.5 (RSA keys only). */
  readonly pss?: boolean;
  /** Certificates to include besides the signer's (intermediates). */
  readonly chain?: readonly Certificate[];
  readonly identifier?: 'issuerAndSerialNumber' | 'subjectKeyIdentifier';
  /** Default: now. */
  readonly signingTime?: Date;
  /** Default: `defaultCapabilities`. */
  readonly capabilities?: readonly SmimeCapability[];
  /** The certificate to announce for encryption to the signer (RFC 8551 §2.5.3); default the signer's. */
  readonly encryptionCertificate?: Certificate;
}

export interface SignOptions {
  /** True: eContent omitted (multipart/signed). False: encapsulated (opaque signed-data). */
  readonly detached: boolean;
  /** eContentType; default id-data. */
  readonly contentType?: string;
}

export interface DecodedSignedData {
  readonly version: number;
  /** DigestAlgorithmIdentifiers OIDs. */
  readonly digestAlgorithms: string[];
  /** eContentType. */
  readonly contentType: string;
  /** The encapsulated content as segments (views, no copy); undefined when detached. */
  readonly content: Uint8Array[] | undefined;
  readonly certificates: Certificate[];
  /** RevocationInfoChoices as received. */
  readonly crls: Uint8Array[];
  readonly signerInfos: SignerInfo[];
}

type Content = Uint8Array | readonly Uint8Array[];

export function contentSegments(content: Content): readonly Uint8Array[] {
  return content instanceof Uint8Array ? [content] : content;
}

/** Digest of segments, without joining them. */
export function digestSegments(hash: HashName, segments: readonly Uint8Array[]): Buffer {
  const h = createHash(hash);
  for (const s of segments) h.update(s);
  return h.digest();
}

interface PreparedSigner {
  readonly spec: SignerSpec;
  readonly hash: HashName;
  readonly scheme: SignatureScheme;
}

/** Pairs of (key, certificate) already checked to belong together. */
const keyMatches = new WeakMap<KeyObject, WeakSet<Certificate>>();

function prepareSigner(spec: SignerSpec): PreparedSigner {
  const type = spec.key.asymmetricKeyType;
  if (type === 'ed448') throw new KeyfleetError('KF_CMS_UNSUPPORTED', 'Ed448 signing (SHAKE256 digests, RFC 8419) is not supported');
  let checked = keyMatches.get(spec.key);
  if (!checked?.has(spec.certificate)) {
    // Signing with a key that is not the certificate's would produce mail nobody can verify.
    if (spec.key.type !== 'private' || !createPublicKey(spec.key).equals(spec.certificate.publicKey)) {
      throw new KeyfleetError('KF_KEY_INVALID', 'the signing key does not match the signer certificate');
    }
    if (!checked) keyMatches.set(spec.key, (checked = new WeakSet()));
    checked.add(spec.certificate);
  }
  const hash: HashName = type === 'ed25519' ? 'sha512' : (spec.digest ?? defaultDigest(spec.key));
  if (spec.pss && type !== 'rsa' && type !== 'rsa-pss') throw new KeyfleetError('KF_USAGE', 'RSASSA-PSS needs an RSA key');
  return { spec, hash, scheme: schemeForKey(spec.key, hash, { pss: spec.pss ?? false }) };
}

const curveDigests: Record<string, HashName> = { secp384r1: 'sha384', secp521r1: 'sha512' };
const defaultDigests = new WeakMap<KeyObject, HashName>();

function defaultDigest(key: KeyObject): HashName {
  let hash = defaultDigests.get(key);
  if (!hash) {
    const curve = key.asymmetricKeyType === 'ec' ? key.asymmetricKeyDetails?.namedCurve : undefined;
    hash = (curve && curveDigests[curve]) || 'sha256';
    defaultDigests.set(key, hash);
  }
  return hash;
}

const algorithmCache = new Map<string, Uint8Array>();

function cached(key: string, make: () => Uint8Array): Uint8Array {
  let enc = algorithmCache.get(key);
  if (!enc) {
    enc = make();
    if (algorithmCache.size < 256) algorithmCache.set(key, enc);
  }
  return enc;
}

/** DigestAlgorithmIdentifier: SHA-2 parameters absent (RFC 5754 §2). */
function digestAlgorithm(hash: HashName): Uint8Array {
  return cached(`d:${hash}`, () => encodeAlgorithmIdentifier(hashOid(hash)));
}

function signatureAlgorithm(p: PreparedSigner): Uint8Array {
  const s = p.scheme;
  return cached(`s:${s.kind}:${s.hash}:${s.saltLength}:${p.spec.key.asymmetricKeyType}`, () => encodeSignatureAlgorithm(s, p.spec.key));
}

const certificateSetCache = new Map<string, Uint8Array>();

/**
 * certificates [0] IMPLICIT CertificateSet: every signer's certificate and
 * chain, and the encryption certificate it announces (RFC 8551 §2.5.3 asks
 * for it to be included), once each, DER-sorted as a SET OF. Mail is signed
 * with the same few certificates over and over, so the encoding is cached.
 */
function certificateSet(signers: readonly SignerSpec[]): Uint8Array {
  const unique = new Map<string, Certificate>();
  for (const s of signers) {
    unique.set(s.certificate.fingerprint256, s.certificate);
    for (const c of s.chain ?? []) unique.set(c.fingerprint256, c);
    if (s.encryptionCertificate) unique.set(s.encryptionCertificate.fingerprint256, s.encryptionCertificate);
  }
  const key = [...unique.keys()].join(',');
  let enc = certificateSetCache.get(key);
  if (!enc) {
    enc = der.retag(der.setOf(...[...unique.values()].map((c) => c.der)), 0);
    if (certificateSetCache.size >= 64) certificateSetCache.delete(certificateSetCache.keys().next().value!);
    certificateSetCache.set(key, enc);
  }
  return enc;
}

function signerInfo(p: PreparedSigner, contentType: string, digest: Uint8Array): { der: Uint8Array; version: 1 | 3 } {
  const { spec } = p;
  const identifier = spec.identifier ?? 'issuerAndSerialNumber';
  const attrs = encodeSignedAttributes([
    contentTypeAttribute(contentType),
    signingTimeAttribute(spec.signingTime ?? new Date()),
    messageDigestAttribute(digest),
    capabilitiesAttribute(spec.capabilities ?? defaultCapabilities),
    ...encryptionKeyPreferenceAttributes(spec.encryptionCertificate ?? spec.certificate),
  ]);
  const version = identifier === 'subjectKeyIdentifier' ? 3 : 1;
  const encoded = encodeSignerInfo({
    version,
    sid: encodeSignerIdentifier(spec.certificate, identifier),
    digestAlgorithm: digestAlgorithm(p.hash),
    signedAttrs: attrs,
    signatureAlgorithm: signatureAlgorithm(p),
    signature: createSignature(p.scheme, attrs, spec.key),
  });
  return { der: encoded, version };
}

/**
 * Signs `content` and returns the DER ContentInfo(SignedData). With
 * `detached` the content is left out (multipart/signed, RFC 8551 §3.5.3);
 * otherwise it is encapsulated (application/pkcs7-mime signed-data).
 * The content is hashed once per digest algorithm, whatever the number of signers.
 */
export function signContent(content: Content, signers: readonly SignerSpec[], options: SignOptions): Uint8Array {
  if (signers.length === 0) throw new KeyfleetError('KF_USAGE', 'at least one signer is needed');
  const contentType = options.contentType ?? OID.data;
  const segments = contentSegments(content);
  const prepared = signers.map(prepareSigner);
  const digests = new Map<HashName, Uint8Array>();
  for (const p of prepared) if (!digests.has(p.hash)) digests.set(p.hash, digestSegments(p.hash, segments));

  const infos = prepared.map((p) => signerInfo(p, contentType, digests.get(p.hash)!));
  // RFC 5652 §5.1: version 3 when any SignerInfo is version 3 or the content is not id-data, else 1.
  const version = infos.some((i) => i.version === 3) || contentType !== OID.data ? 3 : 1;
  const digestAlgorithms = der.setOf(...[...digests.keys()].map(digestAlgorithm));
  const signerInfos = der.setOf(...infos.map((i) => i.der));

  // EncapsulatedContentInfo, written as headers plus the content's own segments,
  // so a large content is copied exactly once, into the output.
  const eContentType = der.oid(contentType);
  const eci: Uint8Array[] = [];
  if (options.detached) {
    eci.push(der.header(0x30, eContentType.length), eContentType);
  } else {
    let length = 0;
    for (const s of segments) length += s.length;
    const octetHeader = der.header(Tag.octetString, length);
    const explicitHeader = der.header(0xa0, octetHeader.length + length);
    eci.push(der.header(0x30, eContentType.length + explicitHeader.length + octetHeader.length + length), eContentType, explicitHeader, octetHeader);
    for (const s of segments) eci.push(s); // no spread: a streamed content can have very many segments
  }
  const certificates = certificateSet(signers);
  const sdVersion = der.integer(version);
  // ContentInfo (RFC 5652 §3), as content-info.ts encodes it, without copying the body twice.
  const sdLength = sdVersion.length + digestAlgorithms.length + sum(eci) + certificates.length + signerInfos.length;
  const sdHeader = der.header(0x30, sdLength);
  const signedDataOid = der.oid(OID.signedData);
  const explicitHeader = der.header(0xa0, sdHeader.length + sdLength);
  const ciHeader = der.header(0x30, signedDataOid.length + explicitHeader.length + sdHeader.length + sdLength);
  const pieces = [ciHeader, signedDataOid, explicitHeader, sdHeader, sdVersion, digestAlgorithms];
  for (const e of eci) pieces.push(e);
  pieces.push(certificates, signerInfos);
  return Buffer.concat(pieces, ciHeader.length + signedDataOid.length + explicitHeader.length + sdHeader.length + sdLength);
}

function sum(pieces: readonly Uint8Array[]): number {
  let n = 0;
  for (const p of pieces) n += p.length;
  return n;
}

/**
 * Decodes a ContentInfo(SignedData), BER included (indefinite lengths,
 * constructed OCTET STRINGs). Nothing is verified here; see verifySignedData.
 * Throws KF_CMS_MALFORMED for anything that is not a well-formed SignedData,
 * KF_CERT_INVALID when an included certificate cannot be parsed.
 */
export function decodeSignedData(contentInfoDer: Uint8Array): DecodedSignedData {
  const ci = decodeContentInfo(contentInfoDer);
  if (ci.contentType !== OID.signedData) throw new KeyfleetError('KF_CMS_MALFORMED', `expected CMS SignedData, found content type ${ci.contentType}`);
  try {
    return decodeBody(ci.content);
  } catch (e) {
    if (e instanceof KeyfleetError && e.code !== 'KF_ASN1_MALFORMED') throw e;
    throw new KeyfleetError('KF_CMS_MALFORMED', `malformed SignedData: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

function decodeBody(tlv: Tlv): DecodedSignedData {
  const r = new SequenceReader(expect(tlv, Tag.sequence, 'SignedData'), 'SignedData');
  const version = readSmallInt(r.next(Tag.integer));
  const digestAlgorithms = children(r.next(Tag.set)).map((a) => readOid(new SequenceReader(a, 'DigestAlgorithmIdentifier').next(Tag.oid)));
  const eci = new SequenceReader(r.next(Tag.sequence), 'EncapsulatedContentInfo');
  const contentType = readOid(eci.next(Tag.oid));
  const eContent = eci.optionalContext(0);
  eci.end();
  let content: Uint8Array[] | undefined;
  if (eContent) {
    const inner = children(eContent);
    if (inner.length !== 1 || !isUniversal(inner[0]!, Tag.octetString)) throw new KeyfleetError('KF_CMS_MALFORMED', 'eContent is not one OCTET STRING');
    content = octetSegments(inner[0]!);
  }
  const certificates: Certificate[] = [];
  const certsTlv = r.optionalContext(0);
  if (certsTlv) {
    // CertificateChoices: only plain certificates matter; attribute and other certificates are skipped.
    for (const c of children(certsTlv)) if (isUniversal(c, Tag.sequence)) certificates.push(decodeCertificate(raw(c)));
  }
  const crlsTlv = r.optionalContext(1);
  const crls = crlsTlv ? children(crlsTlv).map(raw) : [];
  const signerInfos = children(r.next(Tag.set)).map(decodeSignerInfo);
  r.end();
  return { version, digestAlgorithms, contentType, content, certificates, crls, signerInfos };
}

function expect(tlv: Tlv, tag: number, what: string): Tlv {
  if (!isUniversal(tlv, tag)) throw new KeyfleetError('KF_CMS_MALFORMED', `${what}: unexpected tag`);
  return tlv;
}
