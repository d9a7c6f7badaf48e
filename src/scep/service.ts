/**
 * The SCEP server (RFC 8894 §4), independent of HTTP: `handle(operation,
 * message, profile)` answers GetCACaps, GetCACert and PKIOperation with a
 * status, a content type and a body, so the HTTP layer is a thin adapter
 * (`/scep/<profile>?operation=…`, also `…/pkiclient.exe`).
 *
 * The CA and the store are reached through narrow interfaces defined here
 * (ScepIssuer, ScepRaIdentity, ScepTransactionLog), so this module does not
 * depend on how certificates are built or kept.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { ChallengeGrant, ChallengeValidator } from './challenge.ts';
import type { CertificationRequest } from './csr.ts';
import { type FailInfo, type PkiMessage, decodePkiMessage } from './message.ts';
import type { ScepProfile } from './policy.ts';
import { encodeCertsOnly } from './certs-only.ts';
import { type Reply, handleRequest } from './transactions.ts';

/** The RA: signs CertReps and decrypts requests (keyUsage digitalSignature + keyEncipherment, REFERENCE.md). */
export interface ScepRaIdentity {
  readonly certificate: Certificate;
  readonly key: KeyObject;
  /** The CA certificates above the RA, nearest first (the issuing CA, then the root); empty when the RA is the CA. */
  readonly chain: readonly Certificate[];
}

export interface ScepIssueRequest {
  readonly messageType: 'PKCSReq' | 'RenewalReq';
  readonly transactionId: string;
  readonly profile: ScepProfile;
  readonly csr: CertificationRequest;
  /** Who asked: the challenge's device, else the CSR subject. */
  readonly requester: string;
  /** PKCSReq: what the challenge allowed. */
  readonly grant?: ChallengeGrant;
  /** RenewalReq: the certificate being renewed. */
  readonly renewalOf?: Certificate;
}

export type ScepIssueOutcome =
  | { readonly status: 'issued'; readonly certificate: Certificate; readonly chain?: readonly Certificate[] }
  | { readonly status: 'pending' }
  | { readonly status: 'rejected'; readonly failInfo?: FailInfo; readonly reason: string };

export interface ScepIssuedCertificate {
  readonly certificate: Certificate;
  readonly revoked: boolean;
}

/** What the server needs from the CA. */
export interface ScepIssuer {
  /** Issues (or queues) a certificate for a request that passed every check. */
  issue(request: ScepIssueRequest): Promise<ScepIssueOutcome>;
  /** GetCertInitial: the state of a request that was pending; undefined when unknown. */
  poll?(transactionId: string, profile: string): Promise<ScepIssueOutcome | undefined>;
  /** A certificate this CA issued, by serial (lower-case hex of the contents octets). */
  lookup(serialHex: string): Promise<ScepIssuedCertificate | undefined>;
}

export type { ScepTransactionLog } from './store-types.ts';
import type { ScepTransactionLog } from './store-types.ts';

export interface ScepServiceOptions {
  /** The profiles served, by name (the `<profile>` of the URL). */
  readonly profiles: ReadonlyMap<string, ScepProfile> | ((name: string) => ScepProfile | undefined | Promise<ScepProfile | undefined>);
  readonly issuer: ScepIssuer;
  readonly ra: ScepRaIdentity;
  readonly challengeValidator: ChallengeValidator;
  readonly store: ScepTransactionLog;
  readonly clock?: () => Date;
  /** GetCACaps answer; default `defaultCapabilities` (without Renewal for a profile that refuses renewal). */
  readonly capabilities?: readonly string[];
  /** Largest accepted PKIOperation message, in octets; default 256 KiB. */
  readonly maxMessageBytes?: number;
  /** How far a request's signingTime may be from the server's clock (badTime); default 24 hours. */
  readonly maxClockSkewMs?: number;
  readonly random?: (n: number) => Uint8Array;
}

export interface ScepResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: Uint8Array;
}

export interface ScepService {
  /**
   * One SCEP request. `message` is the POST body (DER) or, for GET, the
   * `message` query parameter already URL-decoded (base64 text).
   */
  handle(operation: string, message: Uint8Array | string | undefined, profile: string): Promise<ScepResponse>;
}

/** RFC 8894 §3.5.2 capabilities, one per line (REFERENCE.md "SCEP in practice"). */
export const defaultCapabilities: readonly string[] = Object.freeze(['POSTPKIOperation', 'SHA-256', 'SHA-512', 'AES', 'DES3', 'SCEPStandard', 'Renewal']);

const DEFAULT_MAX_MESSAGE = 256 * 1024;
const DEFAULT_CLOCK_SKEW = 24 * 60 * 60 * 1000;

function text(status: number, body: string): ScepResponse {
  return { status, contentType: 'text/plain; charset=utf-8', body: Buffer.from(`${body}\n`, 'utf8') };
}

/** Base64 from a GET query: `+` may arrive as a space when the client did not escape it. */
function decodeBase64Message(message: string, limit: number): Uint8Array {
  const cleaned = message.replace(/ /g, '+').replace(/[\r\n]/g, '');
  if (cleaned.length > Math.ceil((limit * 4) / 3) + 4) throw new KeyfleetError('KF_INPUT_TOO_LARGE', `the SCEP message exceeds ${limit} octets`);
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(cleaned)) throw new KeyfleetError('KF_CMS_MALFORMED', 'the SCEP message parameter is not base64');
  return Buffer.from(cleaned, cleaned.includes('-') || cleaned.includes('_') ? 'base64url' : 'base64');
}

export function createScepService(options: ScepServiceOptions): ScepService {
  const clock = options.clock ?? (() => new Date());
  const random = options.random ?? randomBytes;
  const limit = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE;
  const { ra } = options;
  if (!ra.certificate.keyUsage?.has('digitalSignature') || !ra.certificate.keyUsage.has('keyEncipherment')) {
    // REFERENCE.md: clients (macOS) choose the wrong certificate otherwise.
    throw new KeyfleetError('KF_USAGE', 'the SCEP RA certificate needs keyUsage digitalSignature and keyEncipherment');
  }
  const caCerts = [ra.certificate, ...ra.chain.filter((c) => c.fingerprint256 !== ra.certificate.fingerprint256)];
  const caCertResponse: ScepResponse =
    caCerts.length === 1
      ? { status: 200, contentType: 'application/x-x509-ca-cert', body: ra.certificate.der }
      : { status: 200, contentType: 'application/x-x509-ca-ra-cert', body: encodeCertsOnly(caCerts) };

  async function profileNamed(name: string): Promise<ScepProfile | undefined> {
    return typeof options.profiles === 'function' ? options.profiles(name) : options.profiles.get(name);
  }

  async function pkiOperation(message: Uint8Array | string | undefined, profile: ScepProfile): Promise<ScepResponse> {
    if (message === undefined || message.length === 0) return text(400, 'PKIOperation needs a message');
    let msg: PkiMessage;
    try {
      const bytes = typeof message === 'string' ? decodeBase64Message(message, limit) : message;
      if (bytes.length > limit) throw new KeyfleetError('KF_INPUT_TOO_LARGE', `the SCEP message exceeds ${limit} octets`);
      msg = decodePkiMessage(bytes, { allowSha1: true });
    } catch (e) {
      // Without a readable pkiMessage there is no one to answer with a CertRep (RFC 8894 §4.3: HTTP error).
      if (isKeyfleetError(e)) return text(e.status, `${e.code}: ${e.message}`);
      throw e;
    }
    if (msg.messageType === 'CertRep') return text(400, 'a CertRep is not a request');
    const reply: Reply = await handleRequest(msg, profile, {
      issuer: options.issuer,
      ra,
      validator: options.challengeValidator,
      store: options.store,
      now: clock(),
      random,
      maxClockSkewMs: options.maxClockSkewMs ?? DEFAULT_CLOCK_SKEW,
    });
    return { status: 200, contentType: 'application/x-pki-message', body: reply.der };
  }

  return {
    async handle(operation, message, profileName) {
      const profile = await profileNamed(profileName);
      if (!profile) return text(404, `no SCEP profile "${profileName.slice(0, 64)}"`);
      switch (operation) {
        case 'GetCACaps': {
          let caps = options.capabilities ?? defaultCapabilities;
          if (profile.allowRenewal === false) caps = caps.filter((c) => c !== 'Renewal');
          return text(200, caps.join('\n'));
        }
        case 'GetCACert':
          return caCertResponse;
        case 'PKIOperation':
          return pkiOperation(message, profile);
        default:
          return text(400, `unknown SCEP operation "${operation.slice(0, 32)}"`);
      }
    },
  };
}
