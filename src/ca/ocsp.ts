/**
 * An OCSP responder (RFC 6960), transport-independent: DER request in, DER
 * OCSPResponse out. It answers for a set of CAs, asks `lookup` for each
 * certificate's status, and signs with the CA's own key or a delegated
 * responder certificate (§4.2.2.2: issued by the CA, EKU id-kp-OCSPSigning;
 * whether it carries id-pkix-ocsp-nocheck is the issuing template's
 * business). HTTP mapping (GET and POST, Appendix A) is in ocsp-http.ts.
 *
 * Bad input never throws: it is answered with an OCSPResponse carrying
 * malformedRequest, and failures behind `lookup` with internalError or
 * tryLater (§4.2.1). The work per response is the signature plus a few
 * small allocations: issuer hashes, the ResponderID, the signature
 * AlgorithmIdentifier and the certs field are computed once.
 */
import { type KeyObject, createHash } from 'node:crypto';
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import * as der from '../asn1/writer.ts';
import { Tag } from '../asn1/reader.ts';
import type { Certificate } from '../x509/certificate.ts';
import { type CertIdHash, OcspOid, OcspResponseStatus, issuerHashes, publicKeyBits } from '../x509/ocsp-client.ts';
import { type SignatureScheme, createSignature, encodeSignatureAlgorithm, schemeForKey, verifySignature } from '../x509/signature.ts';
import { type OcspRequest, decodeOcspRequest } from './ocsp-request.ts';

/** What `lookup` says about one certificate. `reason` is a CRLReason (RFC 5280 §5.3.1). */
export type OcspCertStatus =
  | { readonly status: 'good' }
  | { readonly status: 'revoked'; readonly revokedAt: Date; readonly reason?: number }
  | { readonly status: 'unknown' };

/**
 * The status of the certificate with serial `serialHex` (contents octets,
 * lower-case hex, as the store keeps it) issued by `issuer`. Throw
 * KF_STORE_UNAVAILABLE to have the client told tryLater.
 */
export type OcspLookup = (issuer: Certificate, serialHex: string) => Promise<OcspCertStatus>;

export interface OcspSigner {
  /** The CA itself, or a delegated responder certificate issued by it. */
  readonly certificate: Certificate;
  /** The private key, or `sign` for a key held elsewhere (KeyStore, HSM). */
  readonly key?: KeyObject;
  /** Signs `data` with the certificate's key using the scheme for `hash` (PKCS#1 v1.5 for RSA, DER ECDSA for EC). */
  readonly sign?: (data: Uint8Array) => Uint8Array | Promise<Uint8Array>;
  /** Certificates above a delegated responder to include (usually none: the client has the CA). */
  readonly chain?: readonly Certificate[];
  /** Signature digest; default SHA-256. */
  readonly hash?: 'sha256' | 'sha384' | 'sha512';
}

export interface OcspResponderOptions {
  readonly signer: OcspSigner;
  /** The CAs this responder answers for. */
  readonly caCertificates: readonly Certificate[];
  readonly lookup: OcspLookup;
  readonly clock?: () => Date;
  /** nextUpdate = thisUpdate + this; default 3,600 s. 0 leaves nextUpdate out ("newer information is always available", §4.2.2.1). */
  readonly nextUpdateSeconds?: number;
  /** Reuse a signed response for requests without a nonce for this long; default 0 (off). */
  readonly cacheSeconds?: number;
  /** Default 10,000 cached responses. */
  readonly cacheEntries?: number;
  /** Default 65,536 bytes. */
  readonly maxRequestBytes?: number;
  /** Default 64. */
  readonly maxCertIds?: number;
  /**
   * A request none of whose CertIDs names one of `caCertificates`: signed
   * 'unknown' statuses (§2.2, the default) or `unauthorized` (RFC 5019 §2.2.3).
   */
  readonly unknownIssuer?: 'unknown' | 'unauthorized';
}

/** One answer with what a transport needs to decide on HTTP caching. */
export interface OcspAnswer {
  readonly der: Uint8Array;
  readonly responseStatus: number;
  /** The request carried a nonce (the response is then for this request only). */
  readonly nonce: boolean;
  readonly producedAt: Date | undefined;
  readonly nextUpdate: Date | undefined;
}

export interface OcspResponder {
  /** An OCSPResponse DER for an OCSPRequest DER. Never rejects. */
  respond(requestDer: Uint8Array): Promise<Uint8Array>;
  answer(requestDer: Uint8Array): Promise<OcspAnswer>;
  /** Drops cached responses (call after a revocation when cacheSeconds > 0). */
  clearCache(): void;
}

interface Issuer {
  readonly cert: Certificate;
}

function errorResponse(status: number): OcspAnswer {
  return { der: der.sequence(der.tlv(Tag.enumerated, Uint8Array.of(status))), responseStatus: status, nonce: false, producedAt: undefined, nextUpdate: undefined };
}

const MALFORMED = errorResponse(OcspResponseStatus.malformedRequest);
const INTERNAL = errorResponse(OcspResponseStatus.internalError);
const TRY_LATER = errorResponse(OcspResponseStatus.tryLater);
const UNAUTHORIZED = errorResponse(OcspResponseStatus.unauthorized);

const GOOD = Uint8Array.of(0x80, 0x00); // good [0] IMPLICIT NULL
const UNKNOWN = Uint8Array.of(0x82, 0x00); // unknown [2] IMPLICIT NULL
const BASIC_TYPE = der.oid(OcspOid.basic);
const NONCE_OID = der.oid(OcspOid.nonce);
const SUCCESSFUL = der.tlv(Tag.enumerated, Uint8Array.of(0));
const HASHES: readonly CertIdHash[] = ['sha1', 'sha256', 'sha384', 'sha512'];

/** CRLReason values that may appear (7 is unassigned; removeFromCRL 8 is for delta CRLs only). */
function validReason(reason: number | undefined): reason is number {
  return reason !== undefined && Number.isInteger(reason) && reason >= 0 && reason <= 10 && reason !== 7 && reason !== 8;
}

/** Encodes one GeneralizedTime per second at most: producedAt/thisUpdate/nextUpdate repeat within a second. */
function timeEncoder(): (d: Date) => Uint8Array {
  let lastSecond = NaN;
  let last: Uint8Array = new Uint8Array(0);
  return (d) => {
    const s = Math.floor(d.getTime() / 1000);
    if (s !== lastSecond) {
      last = der.generalizedTime(new Date(s * 1000));
      lastSecond = s;
    }
    return last;
  };
}

function signerScheme(signer: OcspSigner): SignatureScheme {
  const hash = signer.hash ?? 'sha256';
  return schemeForKey(signer.key ?? signer.certificate.publicKey, hash);
}

export function createOcspResponder(options: OcspResponderOptions): OcspResponder {
  const { signer, lookup } = options;
  if (!signer.key && !signer.sign) throw new KeyfleetError('KF_KEY_INVALID', 'the OCSP signer needs a private key or a sign function');
  const clock = options.clock ?? (() => new Date());
  const nextUpdateMs = (options.nextUpdateSeconds ?? 3600) * 1000;
  const cacheMs = (options.cacheSeconds ?? 0) * 1000;
  const cacheEntries = options.cacheEntries ?? 10_000;
  const limits = { maxBytes: options.maxRequestBytes ?? 65_536, maxCertIds: options.maxCertIds ?? 64 };
  const unauthorizedWhenForeign = options.unknownIssuer === 'unauthorized';

  const scheme = signerScheme(signer);
  const signatureAlgorithm = encodeSignatureAlgorithm(scheme, signer.key ?? signer.certificate.publicKey);
  const key = signer.key;
  const sign = key ? (data: Uint8Array) => createSignature(scheme, data, key) : signer.sign!;
  if (key) {
    // A key that does not belong to the certificate would make every response unverifiable: refuse it now.
    const probe = Buffer.from('keyfleet ocsp signer check');
    if (!verifySignature(scheme, probe, createSignature(scheme, probe, key), signer.certificate.publicKey)) {
      throw new KeyfleetError('KF_KEY_INVALID', 'the OCSP signer key does not match its certificate');
    }
  }

  // ResponderID byKey [2] EXPLICIT KeyHash (§4.2.1): SHA-1 of the signer's public key bits.
  const responderId = der.explicit(2, der.octetString(createHash('sha1').update(publicKeyBits(signer.certificate)).digest()));
  const signerIsCa = options.caCertificates.some((c) => c.fingerprint256 === signer.certificate.fingerprint256);
  // A delegated responder's certificate travels with the response so clients can check the delegation (§4.2.2.2).
  const certsField = signerIsCa ? new Uint8Array(0) : der.explicit(0, der.sequence(signer.certificate.der, ...(signer.chain ?? []).map((c) => c.der)));

  // issuer hashes for every CertID algorithm we accept → the CA
  const issuers = new Map<string, Issuer>();
  for (const cert of options.caCertificates) {
    for (const hash of HASHES) {
      const { nameHash, keyHash } = issuerHashes(cert, hash);
      issuers.set(`${hash}:${Buffer.from(nameHash).toString('latin1')}${Buffer.from(keyHash).toString('latin1')}`, { cert });
    }
  }
  const issuerFor = (id: OcspRequest['requests'][number]['certId']): Issuer | undefined =>
    id.hash === undefined ? undefined : issuers.get(`${id.hash}:${Buffer.from(id.issuerNameHash).toString('latin1')}${Buffer.from(id.issuerKeyHash).toString('latin1')}`);

  const encodeTime = timeEncoder();
  const encodeNextUpdate = timeEncoder();
  const cache = new Map<string, { readonly answer: OcspAnswer; readonly expires: number }>();

  function singleResponse(certIdDer: Uint8Array, status: OcspCertStatus, thisUpdate: Uint8Array, nextUpdate: Uint8Array | undefined): Uint8Array {
    let certStatus: Uint8Array;
    if (status.status === 'good') certStatus = GOOD;
    else if (status.status === 'revoked') {
      // revoked [1] IMPLICIT RevokedInfo { revocationTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
      if (!Number.isFinite(status.revokedAt.getTime())) throw new Error('lookup returned an invalid revocation time'); // → internalError
      const reason = validReason(status.reason) ? [der.explicit(0, der.tlv(Tag.enumerated, Uint8Array.of(status.reason)))] : [];
      certStatus = der.tlv(0xa1, der.generalizedTime(status.revokedAt), ...reason);
    } else certStatus = UNKNOWN;
    // The CertID is echoed as the client sent it: clients compare it field by field, parameters included.
    return nextUpdate ? der.sequence(certIdDer, certStatus, thisUpdate, der.explicit(0, nextUpdate)) : der.sequence(certIdDer, certStatus, thisUpdate);
  }

  async function build(request: OcspRequest): Promise<OcspAnswer> {
    const matched = request.requests.map((r) => issuerFor(r.certId));
    if (unauthorizedWhenForeign && matched.every((m) => m === undefined)) return UNAUTHORIZED;
    let statuses: OcspCertStatus[];
    try {
      statuses = await Promise.all(
        request.requests.map((r, i) => {
          const issuer = matched[i];
          return issuer ? lookup(issuer.cert, r.certId.serialHex) : Promise.resolve<OcspCertStatus>({ status: 'unknown' });
        }),
      );
    } catch (e) {
      return isKeyfleetError(e, 'KF_STORE_UNAVAILABLE') ? TRY_LATER : INTERNAL;
    }
    const now = clock();
    const producedAt = encodeTime(now);
    const next = nextUpdateMs > 0 ? new Date(Math.floor(now.getTime() / 1000) * 1000 + nextUpdateMs) : undefined;
    const nextUpdate = next ? encodeNextUpdate(next) : undefined;
    const singles = request.requests.map((r, i) => singleResponse(r.certId.der, statuses[i]!, producedAt, nextUpdate));
    const extensions = request.nonceExtnValue ? [der.explicit(1, der.sequence(der.sequence(NONCE_OID, der.octetString(request.nonceExtnValue))))] : [];
    const tbs = der.sequence(responderId, producedAt, der.sequence(...singles), ...extensions);
    let signature: Uint8Array;
    try {
      signature = await sign(tbs);
    } catch {
      return INTERNAL;
    }
    const basic = der.sequence(tbs, signatureAlgorithm, der.bitString(signature), certsField);
    const response = der.sequence(SUCCESSFUL, der.explicit(0, der.sequence(BASIC_TYPE, der.octetString(basic))));
    return { der: response, responseStatus: 0, nonce: request.nonceExtnValue !== undefined, producedAt: new Date(Math.floor(now.getTime() / 1000) * 1000), nextUpdate: next };
  }

  async function answer(requestDer: Uint8Array): Promise<OcspAnswer> {
    let request: OcspRequest;
    try {
      request = decodeOcspRequest(requestDer, limits);
    } catch {
      return MALFORMED;
    }
    try {
      const key = cacheMs > 0 && request.nonceExtnValue === undefined ? request.requests.map((r) => Buffer.from(r.certId.der).toString('latin1')).join('|') : undefined;
      if (key !== undefined) {
        const hit = cache.get(key);
        if (hit && hit.expires > clock().getTime()) return hit.answer;
      }
      const built = await build(request);
      if (key !== undefined && built.responseStatus === 0) {
        cache.delete(key);
        if (cache.size >= cacheEntries) cache.delete(cache.keys().next().value!);
        cache.set(key, { answer: built, expires: clock().getTime() + cacheMs });
      }
      return built;
    } catch {
      return INTERNAL;
    }
  }

  return {
    answer,
    async respond(requestDer) {
      return (await answer(requestDer)).der;
    },
    clearCache() {
      cache.clear();
    },
  };
}
