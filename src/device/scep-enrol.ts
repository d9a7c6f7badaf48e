/**
 * SCEP enrolment of one signing certificate, as an iOS device does for a
 * SCEP payload (docs/delivery.md "Check-in"): an RSA key made here, a
 * PKCS#10 request with the subject, SAN and one-time challenge the service
 * gave, sent over HTTP (RFC 8894 §4) with our client (src/scep/client.ts).
 *
 * The CA is pinned by the fingerprint in the payload (Apple's
 * CAFingerprint): GetCACert must hold a certificate with that SHA-256, and
 * the RA certificate the request is encrypted to — which will read the
 * challenge — must be signed by it. The reply must be signed by that RA or
 * CA (parseCertRep) and carry a certificate for our key.
 *
 * Failures are results, named by the certificateIssuanceState the device
 * reports: requestCreationFailed (nothing was sent), requestSubmitFailed
 * (the exchange failed), challengeValidationFailed (the service refused the
 * request, which with a one-time challenge means the challenge).
 */
import { createPublicKey, generateKeyPair as generateKeyPairCb, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { OID } from '../asn1/oids.ts';
import * as der from '../asn1/writer.ts';
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import { decodeCertsOnly } from '../scep/certs-only.ts';
import { buildPkcsReq, parseCertRep, type ScepRequest } from '../scep/client.ts';
import { encodeCertificationRequest } from '../scep/csr.ts';
import { parseDistinguishedName } from '../scep/policy.ts';
import { type Certificate, decodeCertificate } from '../x509/certificate.ts';
import { createSignature, encodeSignatureAlgorithm, schemeForKey, signatureScheme, verifySignature } from '../x509/signature.ts';
import { keyMatches } from './keystore-data.ts';

const generateKeyPair = promisify(generateKeyPairCb);

/** GetCACert holds a handful of certificates; a CertRep one issued certificate and its chain. */
const MAX_SCEP_RESPONSE = 256 * 1024;
const DEFAULT_TIMEOUT_MS = 60_000;

export interface ScepEnrolmentRequest {
  /** The profile's SCEP URL (…/scep/<profile>). */
  readonly url: string;
  readonly challenge: string;
  /** RFC 4514-style subject the CSR must carry. */
  readonly subject: string;
  readonly sanEmail?: string;
  readonly sanUpn?: string;
  readonly keySize: number;
  /** SHA-256 of the CA certificate, hex. */
  readonly caFingerprint: string;
}

export interface ScepEnrolmentOptions {
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
  /** Makes the key (tests inject a pre-made one; the default generates RSA of keySize). */
  readonly generateKey?: (bits: number) => Promise<KeyObject>;
}

export type ScepFailureState = 'requestCreationFailed' | 'requestSubmitFailed' | 'challengeValidationFailed';

export type ScepEnrolmentResult =
  | { readonly ok: true; readonly certificate: Certificate; readonly key: KeyObject; readonly chain: readonly Certificate[] }
  | { readonly ok: false; readonly state: ScepFailureState; readonly errorCode: string; readonly detail: string };

class Failure extends Error {
  readonly state: ScepFailureState;
  readonly errorCode: string;
  constructor(state: ScepFailureState, errorCode: string, detail: string) {
    super(detail);
    this.state = state;
    this.errorCode = errorCode;
  }
}

export async function enrolOverScep(request: ScepEnrolmentRequest, options: ScepEnrolmentOptions = {}): Promise<ScepEnrolmentResult> {
  try {
    return await enrol(request, options);
  } catch (e) {
    if (e instanceof Failure) return { ok: false, state: e.state, errorCode: e.errorCode, detail: e.message };
    // Our own bug or an edge of the crypto: say so without guessing which step.
    return { ok: false, state: 'requestSubmitFailed', errorCode: isKeyfleetError(e) ? e.code : 'internal-error', detail: e instanceof Error ? e.message.split('\n')[0]! : String(e) };
  }
}

async function enrol(r: ScepEnrolmentRequest, options: ScepEnrolmentOptions): Promise<ScepEnrolmentResult> {
  let url: URL;
  try {
    url = new URL(r.url);
  } catch {
    throw new Failure('requestCreationFailed', 'bad-url', `"${r.url.slice(0, 100)}" is not a URL`);
  }
  let key: KeyObject;
  let csr: Uint8Array;
  let requester: Certificate;
  let subject: Uint8Array;
  try {
    key = await (options.generateKey ?? rsaKey)(r.keySize);
    subject = encodeSubject(r.subject);
    csr = encodeCertificationRequest({ subject, challengePassword: r.challenge, ...(r.sanEmail ? { sanEmails: [r.sanEmail] } : {}), ...(r.sanUpn ? { sanUpns: [r.sanUpn] } : {}) }, key);
    requester = selfSigned(key, subject);
  } catch (e) {
    throw new Failure('requestCreationFailed', isKeyfleetError(e) ? e.code : 'csr-failed', `the certificate request could not be made: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  }

  const http = new ScepHttp(url, options);
  const caCerts = await http.getCaCerts();
  const ca = caCerts.find((c) => c.fingerprint256.toUpperCase() === r.caFingerprint.toUpperCase());
  if (ca === undefined) throw new Failure('requestSubmitFailed', 'ca-fingerprint-mismatch', 'the SCEP server does not offer the CA this profile names (CA fingerprint mismatch)');
  // The RA reads the challenge: it must be the pinned CA's, not merely sent beside it.
  const ra = caCerts.find((c) => c !== ca && c.basicConstraints?.cA !== true && issuedBy(c, ca)) ?? ca;
  const caps = await http.getCaCaps();
  const request = buildPkcsReq(csr, { certificate: requester, key }, [ra], { cipher: caps.has('AES') ? 'aes-256-cbc' : 'des-ede3-cbc', digest: caps.has('SHA-256') || caps.has('SCEPStandard') ? 'sha256' : 'sha1' });
  const rep = await http.exchange(request, [ra, ca], caps.has('POSTPKIOperation') || caps.has('SCEPStandard'));
  if (rep.status === 'FAILURE') {
    throw new Failure(rep.failInfo === 'badRequest' ? 'challengeValidationFailed' : 'requestSubmitFailed', `scep-${rep.failInfo ?? 'failure'}`, `the SCEP server refused the request (${rep.failInfo ?? 'no failInfo'})`);
  }
  if (rep.status === 'PENDING') throw new Failure('requestSubmitFailed', 'scep-pending', 'the SCEP server left the request pending; the service will issue a new challenge');
  const certificate = rep.certificates.find((c) => keyMatches(c, key));
  if (certificate === undefined) throw new Failure('requestSubmitFailed', 'certificate-key-mismatch', 'the SCEP reply holds no certificate for the key made here');
  const chain = caCerts.filter((c) => c.basicConstraints?.cA === true && !isSelfSigned(c));
  return { ok: true, certificate, key, chain };
}

function rsaKey(bits: number): Promise<KeyObject> {
  return generateKeyPair('rsa', { modulusLength: bits }).then((pair) => pair.privateKey);
}

function issuedBy(cert: Certificate, issuer: Certificate): boolean {
  try {
    return verifySignature(signatureScheme(cert.signatureAlgorithm), cert.tbs, cert.signatureValue, issuer.publicKey);
  } catch {
    return false;
  }
}

function isSelfSigned(cert: Certificate): boolean {
  return Buffer.from(cert.subject.der).equals(Buffer.from(cert.issuer.der)) && issuedBy(cert, cert);
}

/**
 * The subject as the service wrote it (most significant RDN first, as
 * nameToString prints it), encoded in that order; multi-valued RDNs kept.
 * Country and serialNumber are PrintableString, emailAddress and DC
 * IA5String, the rest UTF8String (RFC 5280 §4.1.2.4, Appendix A).
 */
export function encodeSubject(text: string): Uint8Array {
  const rdns = parseDistinguishedName(text);
  if (rdns.length === 0) throw new KeyfleetError('KF_USAGE', 'the SCEP subject is empty');
  return der.sequence(
    ...rdns.map((rdn) =>
      der.setOf(
        ...rdn.map(({ type, value }) => {
          const v =
            type === OID.countryName || type === OID.serialNumber
              ? der.printableString(value)
              : type === OID.emailAddress || type === OID.domainComponent
                ? der.ia5String(value)
                : der.utf8String(value);
          return der.sequence(der.oid(type), v);
        }),
      ),
    ),
  );
}

/** RFC 8894 §2.3: a PKCSReq is signed with a self-signed certificate for the key being certified. */
function selfSigned(key: KeyObject, subject: Uint8Array): Certificate {
  const scheme = schemeForKey(key, 'sha256');
  const publicSpki = createPublicKey(key).export({ format: 'der', type: 'spki' });
  const algorithm = encodeSignatureAlgorithm(scheme, key);
  const now = Date.now();
  // digitalSignature (0) and keyEncipherment (2): it signs the request and the reply is encrypted to it.
  const keyUsage = der.sequence(der.oid(OID.keyUsage), der.boolean(true), der.octetString(der.namedBits([0, 2])));
  const tbs = der.sequence(
    der.explicit(0, der.integer(2)),
    der.unsignedInteger(randomBytes(16)),
    algorithm,
    subject,
    der.sequence(der.time(new Date(now - 60_000)), der.time(new Date(now + 86_400_000))),
    subject,
    publicSpki,
    der.explicit(3, der.sequence(keyUsage)),
  );
  return decodeCertificate(der.sequence(tbs, algorithm, der.bitString(createSignature(scheme, tbs, key))));
}

/** The transport: GetCACaps, GetCACert and PKIOperation over fetch, bounded and timed. */
class ScepHttp {
  readonly #url: URL;
  readonly #options: ScepEnrolmentOptions;

  constructor(url: URL, options: ScepEnrolmentOptions) {
    this.#url = url;
    this.#options = options;
  }

  #with(operation: string, message?: string): URL {
    const u = new URL(this.#url);
    u.searchParams.set('operation', operation);
    if (message !== undefined) u.searchParams.set('message', message);
    return u;
  }

  async #get(url: URL, init: RequestInit = {}): Promise<{ status: number; contentType: string; body: Buffer }> {
    const timeoutMs = this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const response = await (this.#options.fetch ?? fetch)(url, { ...init, signal, redirect: 'error' });
      const declared = Number(response.headers.get('content-length') ?? '0');
      if (declared > MAX_SCEP_RESPONSE) throw new Failure('requestSubmitFailed', 'scep-response-too-large', `the SCEP answer is larger than ${MAX_SCEP_RESPONSE} bytes`);
      const body = Buffer.from(await response.arrayBuffer());
      if (body.length > MAX_SCEP_RESPONSE) throw new Failure('requestSubmitFailed', 'scep-response-too-large', `the SCEP answer is larger than ${MAX_SCEP_RESPONSE} bytes`);
      return { status: response.status, contentType: response.headers.get('content-type') ?? '', body };
    } catch (e) {
      if (e instanceof Failure) throw e;
      throw new Failure('requestSubmitFailed', 'scep-unreachable', `cannot reach the SCEP server at ${this.#url.origin} (${signal.aborted ? `no answer within ${timeoutMs / 1000} s` : 'no connection'})`);
    }
  }

  async getCaCaps(): Promise<Set<string>> {
    const r = await this.#get(this.#with('GetCACaps'));
    // A server without GetCACaps is treated as offering nothing beyond the RFC's baseline.
    return r.status === 200 ? new Set(r.body.toString('latin1').split(/\r?\n/).map((s) => s.trim()).filter((s) => s !== '')) : new Set();
  }

  async getCaCerts(): Promise<Certificate[]> {
    const r = await this.#get(this.#with('GetCACert'));
    if (r.status !== 200) throw new Failure('requestSubmitFailed', `scep-http-${r.status}`, `GetCACert answered ${r.status}`);
    try {
      return r.contentType.startsWith('application/x-x509-ca-ra-cert') ? decodeCertsOnly(r.body) : [decodeCertificate(r.body)];
    } catch {
      throw new Failure('requestSubmitFailed', 'scep-bad-ca-certificates', 'GetCACert answered with something other than certificates');
    }
  }

  async exchange(request: ScepRequest, trusted: readonly Certificate[], post: boolean) {
    const r = post
      ? await this.#get(this.#with('PKIOperation'), { method: 'POST', headers: { 'content-type': 'application/x-pki-message' }, body: Buffer.from(request.der) })
      : await this.#get(this.#with('PKIOperation', Buffer.from(request.der).toString('base64')));
    if (r.status !== 200) throw new Failure('requestSubmitFailed', `scep-http-${r.status}`, `PKIOperation answered ${r.status}`);
    try {
      return parseCertRep(r.body, request, trusted);
    } catch (e) {
      throw new Failure('requestSubmitFailed', 'scep-bad-reply', e instanceof Error ? e.message.split('\n')[0]! : 'the SCEP reply was refused');
    }
  }
}
