/**
 * OCSP (RFC 6960) on the relying party's side: build a request for one
 * certificate, decode and verify a response (signature by the issuer or a
 * delegated responder, CertID, freshness, nonce), and serve verified
 * results to path validation as a RevocationSource. The x509 layer does no
 * I/O: fetching the response over HTTP is the caller's business.
 *
 * The CertID codec here is shared with the responder (src/ca/ocsp.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import { type Tlv, SequenceReader, Tag, children, integerContents, parse, raw, readBitString, readBoolean, readOctets, readOid, readSmallInt, readTime } from '../asn1/reader.ts';
import * as der from '../asn1/writer.ts';
import { OID } from '../asn1/oids.ts';
import { type AlgorithmIdentifier, decodeAlgorithmIdentifier, encodeAlgorithmIdentifier } from './algorithm.ts';
import { type Certificate, decodeCertificate } from './certificate.ts';
import { type Name, decodeName, namesEqual } from './name.ts';
import type { RevocationSource, RevocationStatus } from './revocation.ts';
import { type HashName, signatureScheme, verifySignature } from './signature.ts';

/** Object identifiers of RFC 6960 §4.4 and Appendix B (not in src/asn1/oids.ts). */
export const OcspOid = {
  /** id-pkix-ocsp-basic: the only response type (§4.2.1). */
  basic: '1.3.6.1.5.5.7.48.1.1',
  /** id-pkix-ocsp-nonce (§4.4.1, RFC 9654). */
  nonce: '1.3.6.1.5.5.7.48.1.2',
  /** id-pkix-ocsp-nocheck (§4.2.2.2.1): a responder certificate extension. */
  noCheck: '1.3.6.1.5.5.7.48.1.5',
} as const;

/** OCSPResponseStatus (§4.2.1). 4 is not used. */
export const OcspResponseStatus = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
} as const;

/** Hashes accepted in a CertID; SHA-1 is what most clients send (RFC 5019 §2.1.1). */
export type CertIdHash = Extract<HashName, 'sha1' | 'sha256' | 'sha384' | 'sha512'>;
const certIdHashByOid: Record<string, CertIdHash> = { [OID.sha1]: 'sha1', [OID.sha256]: 'sha256', [OID.sha384]: 'sha384', [OID.sha512]: 'sha512' };

/** Nonce length bounds of RFC 9654 §2.1 (which lifted RFC 8954's 32). */
export const MAX_NONCE_LENGTH = 128;

/**
 * CertID (§4.1.1):
 *
 *   CertID ::= SEQUENCE {
 *     hashAlgorithm   AlgorithmIdentifier,
 *     issuerNameHash  OCTET STRING, -- hash of the issuer's DN
 *     issuerKeyHash   OCTET STRING, -- hash of the issuer's public key
 *     serialNumber    CertificateSerialNumber }
 */
export interface CertId {
  readonly hashAlgorithm: AlgorithmIdentifier;
  /** The hash named by hashAlgorithm, when it is one we compute. */
  readonly hash: CertIdHash | undefined;
  readonly issuerNameHash: Uint8Array;
  readonly issuerKeyHash: Uint8Array;
  /** serialNumber contents octets, as encoded. */
  readonly serialNumber: Uint8Array;
  readonly serialHex: string;
  /** The CertID as received. */
  readonly der: Uint8Array;
}

export function decodeCertId(tlv: Tlv): CertId {
  const r = new SequenceReader(tlv, 'CertID');
  const hashAlgorithm = decodeAlgorithmIdentifier(r.next(Tag.sequence));
  const issuerNameHash = readOctets(r.next(Tag.octetString));
  const issuerKeyHash = readOctets(r.next(Tag.octetString));
  const serialNumber = integerContents(r.next(Tag.integer));
  r.end();
  return {
    hashAlgorithm,
    hash: certIdHashByOid[hashAlgorithm.algorithm],
    issuerNameHash,
    issuerKeyHash,
    serialNumber,
    serialHex: Buffer.from(serialNumber).toString('hex'),
    der: raw(tlv),
  };
}

/** The subjectPublicKey BIT STRING value of a certificate: what issuerKeyHash and byKey hash (§4.1.1, §4.2.1). */
export function publicKeyBits(cert: Certificate): Uint8Array {
  const r = new SequenceReader(parse(cert.spki), 'SubjectPublicKeyInfo');
  r.next(Tag.sequence);
  return readBitString(r.next(Tag.bitString)).bytes;
}

/** issuerNameHash and issuerKeyHash of `issuer` under `hash`. */
export function issuerHashes(issuer: Certificate, hash: CertIdHash): { readonly nameHash: Uint8Array; readonly keyHash: Uint8Array } {
  return {
    nameHash: createHash(hash).update(issuer.subject.der).digest(),
    keyHash: createHash(hash).update(publicKeyBits(issuer)).digest(),
  };
}

/** The CertID of `cert` (issued by `issuer`), hashAlgorithm with NULL parameters as OpenSSL writes it. */
export function encodeCertId(cert: Certificate, issuer: Certificate, hash: CertIdHash = 'sha1'): Uint8Array {
  const { nameHash, keyHash } = issuerHashes(issuer, hash);
  const oid = Object.entries(certIdHashByOid).find(([, h]) => h === hash)![0];
  return der.sequence(encodeAlgorithmIdentifier(oid, null), der.octetString(nameHash), der.octetString(keyHash), der.integerFromContents(cert.serialNumber));
}

/** True when `id` names `cert` issued by `issuer` (hashes recomputed with the CertID's own algorithm). */
export function certIdMatches(id: CertId, cert: Certificate, issuer: Certificate): boolean {
  if (id.hash === undefined || Buffer.compare(id.serialNumber, cert.serialNumber) !== 0) return false;
  const { nameHash, keyHash } = issuerHashes(issuer, id.hash);
  return Buffer.compare(nameHash, id.issuerNameHash) === 0 && Buffer.compare(keyHash, id.issuerKeyHash) === 0;
}

export interface OcspExtension {
  readonly extnID: string;
  readonly critical: boolean;
  readonly extnValue: Uint8Array;
}

/** Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension (RFC 5280 §4.1). */
export function decodeExtensions(tlv: Tlv): OcspExtension[] {
  return children(tlv).map((e) => {
    const r = new SequenceReader(e, 'Extension');
    const extnID = readOid(r.next(Tag.oid));
    const criticalTlv = r.optional(Tag.boolean);
    const extnValue = readOctets(r.next(Tag.octetString));
    r.end();
    return { extnID, critical: criticalTlv ? readBoolean(criticalTlv) : false, extnValue };
  });
}

/**
 * The nonce inside a nonce extension's extnValue: `Nonce ::= OCTET STRING`
 * (RFC 9654 §2.1). Early clients put the raw bytes in extnValue without the
 * inner OCTET STRING; those bytes are taken as the nonce.
 */
export function nonceValue(extnValue: Uint8Array): Uint8Array {
  try {
    const tlv = parse(extnValue);
    if (tlv.cls === 0 && tlv.tag === Tag.octetString && !tlv.constructed) return readOctets(tlv);
  } catch {
    // not DER: the legacy raw form
  }
  return extnValue;
}

function nonceExtension(nonce: Uint8Array): Uint8Array {
  return der.sequence(der.oid(OcspOid.nonce), der.octetString(der.octetString(nonce)));
}

// ------------------------------------------------------------------ request

export interface OcspRequestOptions {
  /** The nonce to send; default 32 random octets (RFC 9654 §2.1); false for none (cacheable requests, RFC 5019). */
  readonly nonce?: Uint8Array | false;
  /** CertID hash; default SHA-1, which every responder understands (RFC 5019 §2.1.1). */
  readonly hash?: CertIdHash;
}

export interface BuiltOcspRequest {
  /** OCSPRequest DER, for POST (application/ocsp-request) or base64 in a GET URL. */
  readonly der: Uint8Array;
  /** The nonce sent; pass it to verifyOcspResponse. */
  readonly nonce: Uint8Array | undefined;
}

/**
 * An unsigned OCSPRequest (§4.1.1) for one certificate:
 *
 *   OCSPRequest ::= SEQUENCE { tbsRequest TBSRequest, optionalSignature [0] EXPLICIT Signature OPTIONAL }
 *   TBSRequest  ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1, requestorName [1] EXPLICIT GeneralName OPTIONAL,
 *                              requestList SEQUENCE OF Request, requestExtensions [2] EXPLICIT Extensions OPTIONAL }
 *   Request     ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT Extensions OPTIONAL }
 */
export function buildOcspRequest(cert: Certificate, issuer: Certificate, options: OcspRequestOptions = {}): BuiltOcspRequest {
  const nonce = options.nonce === false ? undefined : (options.nonce ?? randomBytes(32));
  if (nonce !== undefined && (nonce.length < 1 || nonce.length > MAX_NONCE_LENGTH)) {
    throw new KeyfleetError('KF_USAGE', `an OCSP nonce must be 1 to ${MAX_NONCE_LENGTH} octets`);
  }
  const request = der.sequence(encodeCertId(cert, issuer, options.hash ?? 'sha1'));
  const tbs = der.sequence(der.sequence(request), ...(nonce ? [der.explicit(2, der.sequence(nonceExtension(nonce)))] : []));
  return { der: der.sequence(tbs), nonce };
}

// ----------------------------------------------------------------- response

export type CertStatus = 'good' | 'revoked' | 'unknown';

/**
 * SingleResponse (§4.2.1):
 *
 *   SingleResponse ::= SEQUENCE {
 *     certID            CertID,
 *     certStatus        CertStatus,   -- good [0] IMPLICIT NULL | revoked [1] IMPLICIT RevokedInfo | unknown [2] IMPLICIT NULL
 *     thisUpdate        GeneralizedTime,
 *     nextUpdate    [0] EXPLICIT GeneralizedTime OPTIONAL,
 *     singleExtensions [1] EXPLICIT Extensions OPTIONAL }
 *   RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
 */
export interface SingleResponse {
  readonly certId: CertId;
  readonly status: CertStatus;
  readonly revokedAt: Date | undefined;
  /** CRLReason (RFC 5280 §5.3.1), when given. */
  readonly reason: number | undefined;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  readonly extensions: readonly OcspExtension[];
}

/** ResponderID ::= CHOICE { byName [1] Name, byKey [2] KeyHash } (SHA-1 of the responder's public key bits). */
export type ResponderId = { readonly byName: Name } | { readonly byKey: Uint8Array };

/**
 * BasicOCSPResponse (§4.2.1):
 *
 *   BasicOCSPResponse ::= SEQUENCE {
 *     tbsResponseData     ResponseData,
 *     signatureAlgorithm  AlgorithmIdentifier,
 *     signature           BIT STRING,
 *     certs           [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
 *   ResponseData ::= SEQUENCE {
 *     version         [0] EXPLICIT Version DEFAULT v1,
 *     responderID         ResponderID,
 *     producedAt          GeneralizedTime,
 *     responses           SEQUENCE OF SingleResponse,
 *     responseExtensions [1] EXPLICIT Extensions OPTIONAL }
 */
export interface BasicOcspResponse {
  /** ResponseData as received: what the signature covers. */
  readonly tbsResponseData: Uint8Array;
  readonly responderId: ResponderId;
  readonly producedAt: Date;
  readonly responses: readonly SingleResponse[];
  readonly extensions: readonly OcspExtension[];
  /** The nonce echoed in responseExtensions, when present. */
  readonly nonce: Uint8Array | undefined;
  readonly signatureAlgorithm: AlgorithmIdentifier;
  readonly signature: Uint8Array;
  readonly certs: readonly Certificate[];
}

/**
 * OCSPResponse (§4.2.1):
 *
 *   OCSPResponse ::= SEQUENCE { responseStatus OCSPResponseStatus, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
 *   ResponseBytes ::= SEQUENCE { responseType OBJECT IDENTIFIER, response OCTET STRING }
 */
export interface OcspResponse {
  readonly responseStatus: number;
  /** The decoded id-pkix-ocsp-basic response; undefined unless the status is successful. */
  readonly basic: BasicOcspResponse | undefined;
}

function decodeSingleResponse(tlv: Tlv): SingleResponse {
  const r = new SequenceReader(tlv, 'SingleResponse');
  const certId = decodeCertId(r.next(Tag.sequence));
  const st = r.next();
  let status: CertStatus;
  let revokedAt: Date | undefined;
  let reason: number | undefined;
  if (st.cls !== 2) throw new KeyfleetError('KF_ASN1_MALFORMED', 'CertStatus: expected a context tag');
  if (st.tag === 0) status = 'good';
  else if (st.tag === 2) status = 'unknown';
  else if (st.tag === 1) {
    status = 'revoked';
    const ri = new SequenceReader(st, 'RevokedInfo');
    revokedAt = readTime(ri.next(Tag.generalizedTime));
    const rr = ri.optionalContext(0);
    if (rr) reason = readSmallInt(new SequenceReader(rr, 'revocationReason').next(Tag.enumerated));
    ri.end();
  } else throw new KeyfleetError('KF_ASN1_MALFORMED', `CertStatus: unknown choice [${st.tag}]`);
  const thisUpdate = readTime(r.next(Tag.generalizedTime));
  const nu = r.optionalContext(0);
  const nextUpdate = nu ? readTime(new SequenceReader(nu, 'nextUpdate').next(Tag.generalizedTime)) : undefined;
  const ext = r.optionalContext(1);
  r.end();
  const extensions = ext ? decodeExtensions(new SequenceReader(ext, 'singleExtensions').next(Tag.sequence)) : [];
  return { certId, status, revokedAt, reason, thisUpdate, nextUpdate, extensions };
}

function decodeBasic(bytes: Uint8Array): BasicOcspResponse {
  const r = new SequenceReader(parse(bytes), 'BasicOCSPResponse');
  const tbsTlv = r.next(Tag.sequence);
  const signatureAlgorithm = decodeAlgorithmIdentifier(r.next(Tag.sequence));
  const sig = readBitString(r.next(Tag.bitString));
  const certsTlv = r.optionalContext(0);
  r.end();
  const certs = certsTlv ? children(new SequenceReader(certsTlv, 'certs').next(Tag.sequence)).map((c) => decodeCertificate(raw(c))) : [];

  const t = new SequenceReader(tbsTlv, 'ResponseData');
  const version = t.optionalContext(0);
  if (version && readSmallInt(new SequenceReader(version, 'version').next(Tag.integer)) !== 0) {
    throw new KeyfleetError('KF_ASN1_MALFORMED', 'ResponseData: unsupported version');
  }
  const rid = t.next();
  let responderId: ResponderId;
  if (rid.cls === 2 && rid.tag === 1) responderId = { byName: decodeName(new SequenceReader(rid, 'byName').next(Tag.sequence)) };
  else if (rid.cls === 2 && rid.tag === 2) responderId = { byKey: readOctets(new SequenceReader(rid, 'byKey').next(Tag.octetString)) };
  else throw new KeyfleetError('KF_ASN1_MALFORMED', 'ResponderID: unexpected tag');
  const producedAt = readTime(t.next(Tag.generalizedTime));
  const responses = children(t.next(Tag.sequence)).map(decodeSingleResponse);
  const ext = t.optionalContext(1);
  t.end();
  const extensions = ext ? decodeExtensions(new SequenceReader(ext, 'responseExtensions').next(Tag.sequence)) : [];
  const nonceExt = extensions.find((e) => e.extnID === OcspOid.nonce);
  return {
    tbsResponseData: raw(tbsTlv),
    responderId,
    producedAt,
    responses,
    extensions,
    nonce: nonceExt ? nonceValue(nonceExt.extnValue) : undefined,
    signatureAlgorithm,
    signature: sig.bytes,
    certs,
  };
}

/** Decodes an OCSPResponse. Throws KF_ASN1_MALFORMED (or KF_CERT_INVALID for a bad embedded certificate). */
export function decodeOcspResponse(bytes: Uint8Array): OcspResponse {
  const r = new SequenceReader(parse(bytes), 'OCSPResponse');
  const statusTlv = r.next(Tag.enumerated);
  const responseStatus = readSmallInt(statusTlv);
  const rb = r.optionalContext(0);
  r.end();
  if (responseStatus !== OcspResponseStatus.successful || !rb) return { responseStatus, basic: undefined };
  const b = new SequenceReader(new SequenceReader(rb, 'responseBytes').next(Tag.sequence), 'ResponseBytes');
  const type = readOid(b.next(Tag.oid));
  const response = readOctets(b.next(Tag.octetString));
  b.end();
  if (type !== OcspOid.basic) throw new KeyfleetError('KF_ASN1_MALFORMED', `unsupported OCSP response type ${type}`, { detail: type });
  return { responseStatus, basic: decodeBasic(response) };
}

// ------------------------------------------------------------- verification

/** Why a response was not accepted (KeyfleetError.detail). */
export type OcspProblem =
  | 'malformed'
  | 'not-successful'
  | 'bad-signature'
  | 'unauthorized-responder'
  | 'no-matching-response'
  | 'not-yet-valid'
  | 'stale'
  | 'nonce-missing'
  | 'nonce-mismatch';

function reject(problem: OcspProblem, message: string, cause?: unknown): never {
  throw new KeyfleetError('KF_OCSP_INVALID', `OCSP response rejected: ${message}`, cause === undefined ? { detail: problem } : { detail: problem, cause });
}

export interface OcspVerifyOptions {
  readonly cert: Certificate;
  readonly issuer: Certificate;
  /** The nonce sent in the request: the response must echo it. */
  readonly nonce?: Uint8Array;
  /** Validation time; default now. */
  readonly at?: Date;
  /** Responder certificates trusted as they are (§4.2.2.2 "local configuration"), e.g. a -VAfile. */
  readonly trustedResponders?: readonly Certificate[];
  /** Clock tolerance for thisUpdate/nextUpdate; default 300 s. */
  readonly clockSkewSeconds?: number;
  /** Oldest acceptable thisUpdate when the response has no nextUpdate; default 86,400 s. */
  readonly maxAgeSeconds?: number;
}

/** A verified statement about one certificate; feed it to ocspRevocationSource. */
export interface OcspCheckResult {
  readonly status: CertStatus;
  readonly revokedAt?: Date;
  readonly reason?: number;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
  readonly producedAt: Date;
  /** The certificate the statement is about (serial) and its issuer (key), for matching. */
  readonly serialHex: string;
  readonly issuerKeySha256: string;
  /** The certificate whose key signed the response (the issuer or a delegated responder). */
  readonly responder: Certificate;
}

function issuedBy(cert: Certificate, issuer: Certificate): boolean {
  if (!namesEqual(cert.issuer, issuer.subject)) return false;
  try {
    return verifySignature(signatureScheme(cert.signatureAlgorithm), cert.tbs, cert.signatureValue, issuer.publicKey);
  } catch {
    return false;
  }
}

function matchesResponderId(cert: Certificate, id: ResponderId): boolean {
  if ('byKey' in id) return Buffer.compare(createHash('sha1').update(publicKeyBits(cert)).digest(), id.byKey) === 0;
  return namesEqual(cert.subject, id.byName);
}

function inValidity(cert: Certificate, at: Date): boolean {
  return cert.notBefore.getTime() <= at.getTime() && at.getTime() <= cert.notAfter.getTime();
}

/**
 * §4.2.2.2: the response is signed by the issuing CA itself, by a
 * responder the relying party configured (`trustedResponders`), or by a
 * delegated responder certificate issued directly by the CA, carrying
 * id-kp-OCSPSigning. Revocation of a delegated responder is not checked
 * (id-pkix-ocsp-nocheck is the issuer's promise that it need not be).
 */
function authorise(basic: BasicOcspResponse, options: OcspVerifyOptions, at: Date): Certificate {
  const { issuer } = options;
  const candidates: { cert: Certificate; kind: 'issuer' | 'trusted' | 'delegated' }[] = [
    { cert: issuer, kind: 'issuer' },
    ...(options.trustedResponders ?? []).map((cert) => ({ cert, kind: 'trusted' as const })),
    ...basic.certs.map((cert) => ({ cert, kind: 'delegated' as const })),
  ];
  let signerFound = false;
  for (const { cert, kind } of candidates) {
    if (!matchesResponderId(cert, basic.responderId)) continue;
    let ok = false;
    try {
      ok = verifySignature(signatureScheme(basic.signatureAlgorithm), basic.tbsResponseData, basic.signature, cert.publicKey);
    } catch {
      ok = false;
    }
    if (!ok) continue;
    signerFound = true;
    if (kind === 'issuer' || kind === 'trusted') return cert;
    if (!issuedBy(cert, issuer)) continue;
    if (!cert.extKeyUsage?.includes(OID.ocspSigning)) continue;
    if (cert.keyUsage && !cert.keyUsage.has('digitalSignature') && !cert.keyUsage.has('nonRepudiation')) continue;
    if (!inValidity(cert, at)) continue;
    return cert;
  }
  if (signerFound) reject('unauthorized-responder', 'the signer is neither the issuer nor a responder it authorised (id-kp-OCSPSigning)');
  return reject('bad-signature', 'no known responder key verifies the signature');
}

/**
 * Verifies an OCSPResponse about `cert` and returns its status. Throws
 * KF_CERT_INVALID with `detail` an OcspProblem when the response cannot be
 * relied on; an 'unknown' status is a result, not an error.
 */
export function verifyOcspResponse(responseDer: Uint8Array, options: OcspVerifyOptions): OcspCheckResult {
  let response: OcspResponse;
  try {
    response = decodeOcspResponse(responseDer);
  } catch (e) {
    return reject('malformed', e instanceof Error ? e.message : 'undecodable', e);
  }
  const basic = response.basic;
  if (!basic) return reject('not-successful', `the responder answered with status ${response.responseStatus}`);
  const at = options.at ?? new Date();
  const skew = (options.clockSkewSeconds ?? 300) * 1000;
  const responder = authorise(basic, options, at);

  const single = basic.responses.find((s) => certIdMatches(s.certId, options.cert, options.issuer));
  if (!single) return reject('no-matching-response', 'no SingleResponse for this certificate and issuer');

  if (options.nonce !== undefined) {
    if (basic.nonce === undefined) reject('nonce-missing', 'the response does not echo the request nonce');
    if (Buffer.compare(basic.nonce, options.nonce) !== 0) reject('nonce-mismatch', 'the response nonce differs from the request nonce');
  }
  // §3.2 (5)/(6): thisUpdate sufficiently recent, nextUpdate not passed.
  if (single.thisUpdate.getTime() > at.getTime() + skew) reject('not-yet-valid', 'thisUpdate is in the future');
  if (single.nextUpdate !== undefined) {
    if (single.nextUpdate.getTime() + skew < at.getTime()) reject('stale', 'nextUpdate has passed');
  } else if (at.getTime() - single.thisUpdate.getTime() > (options.maxAgeSeconds ?? 86_400) * 1000) {
    reject('stale', 'thisUpdate is too old and the response has no nextUpdate');
  }
  return {
    status: single.status,
    ...(single.revokedAt !== undefined ? { revokedAt: single.revokedAt } : {}),
    ...(single.reason !== undefined ? { reason: single.reason } : {}),
    thisUpdate: single.thisUpdate,
    ...(single.nextUpdate !== undefined ? { nextUpdate: single.nextUpdate } : {}),
    producedAt: basic.producedAt,
    serialHex: options.cert.serialHex,
    issuerKeySha256: keySha256(options.issuer),
    responder,
  };
}

const keyHashes = new WeakMap<Certificate, string>();

function keySha256(cert: Certificate): string {
  let h = keyHashes.get(cert);
  if (h === undefined) keyHashes.set(cert, (h = createHash('sha256').update(publicKeyBits(cert)).digest('hex')));
  return h;
}

const UNKNOWN: RevocationStatus = { status: 'unknown' };
const GOOD: RevocationStatus = { status: 'good' };

/**
 * A RevocationSource over verified OCSP results (the x509 layer does no
 * I/O: fetch and verify first). Like the CRL source, a revocation counts
 * from its revocationTime on (mail signed before it stays valid), and
 * 'good' holds up to nextUpdate (or `maxAgeSeconds` after thisUpdate when
 * there is none). When several results cover a certificate, a revocation
 * wins, else the latest statement.
 */
export function ocspRevocationSource(results: Iterable<OcspCheckResult>, options: { readonly maxAgeSeconds?: number } = {}): RevocationSource {
  const byCert = new Map<string, OcspCheckResult[]>();
  for (const r of results) {
    const key = `${r.issuerKeySha256}:${r.serialHex}`;
    const list = byCert.get(key);
    if (list) list.push(r);
    else byCert.set(key, [r]);
  }
  const maxAge = (options.maxAgeSeconds ?? 86_400) * 1000;
  return {
    status(cert, issuer, at) {
      let list: OcspCheckResult[] | undefined;
      try {
        list = byCert.get(`${keySha256(issuer)}:${cert.serialHex}`);
      } catch {
        return UNKNOWN;
      }
      if (!list) return UNKNOWN;
      let current = false;
      for (const r of list) {
        if (r.status === 'revoked' && r.revokedAt !== undefined && r.revokedAt.getTime() <= at.getTime()) {
          return r.reason === undefined ? { status: 'revoked', revocationTime: r.revokedAt } : { status: 'revoked', reason: r.reason, revocationTime: r.revokedAt };
        }
        if (r.status === 'unknown') continue;
        // good, or revoked only after `at`: the certificate was not revoked at `at` while the statement holds.
        const until = r.nextUpdate?.getTime() ?? r.thisUpdate.getTime() + maxAge;
        if (at.getTime() <= until) current = true;
      }
      return current ? GOOD : UNKNOWN;
    },
  };
}
