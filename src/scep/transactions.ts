/**
 * Answering one PKIOperation request (RFC 8894 §3.3): checks in the order
 * that decides the failInfo, the replay rules for transaction ids, the call
 * to the issuer and the CertRep. Every outcome is a CertRep signed by the
 * RA; a refusal never reaches the issuer.
 *
 * failInfo (RFC 8894 §3.2.1.4) as used here:
 *   badAlg          digest, signature or envelope algorithm not supported (MD5, RC2, …)
 *   badMessageCheck signature or messageDigest wrong, envelope not for the RA or
 *                   damaged, CSR self-signature wrong
 *   badRequest      CSR unreadable, key not allowed by the profile, challenge
 *                   missing/wrong/used/expired/for another profile, subject or SAN
 *                   not what the challenge allows, a different CSR under a completed
 *                   transactionID, GetCRL, renewal refused by the profile
 *   badTime         signingTime further from the server clock than allowed
 *   badCertId       RenewalReq signer not a current certificate of this CA;
 *                   GetCert/GetCertInitial for an unknown certificate or transaction
 */
import { isKeyfleetError } from '../errors.ts';
import { SequenceReader, Tag, integerContents, parse } from '../asn1/reader.ts';
import type { Certificate } from '../x509/certificate.ts';
import { decodeName, nameToString, namesEqual } from '../x509/name.ts';
import type { ScepTransactionLog, ScepTransactionRecord } from './store-types.ts';
import type { ChallengeGrant, ChallengeValidator } from './challenge.ts';
import { type CertificationRequest, decodeCsr, verifyCsrSignature } from '../ca/csr.ts';
import { encodeCertsOnly } from './certs-only.ts';
import { openEnvelope, sealEnvelope } from './envelope.ts';
import { type FailInfo, type PkiMessage, type PkiStatus, encodePkiMessage, newNonce } from './message.ts';
import { type ScepProfile, identityRefusal, keyRefusal } from './policy.ts';
import type { ScepIssueOutcome, ScepIssuer, ScepRaIdentity } from './service.ts';

export interface RequestContext {
  readonly issuer: ScepIssuer;
  readonly ra: ScepRaIdentity;
  readonly validator: ChallengeValidator;
  readonly store: ScepTransactionLog;
  readonly now: Date;
  readonly random: (n: number) => Uint8Array;
  readonly maxClockSkewMs: number;
}

export interface Reply {
  readonly der: Uint8Array;
  readonly status: PkiStatus;
  readonly failInfo: FailInfo | undefined;
}

type Outcome =
  | { readonly status: 'SUCCESS'; readonly certificates: readonly Certificate[] }
  | { readonly status: 'PENDING' }
  | { readonly status: 'FAILURE'; readonly failInfo: FailInfo; readonly reason: string };

const fail = (failInfo: FailInfo, reason: string): Outcome => ({ status: 'FAILURE', failInfo, reason });

/** Signs the CertRep for `outcome`; a SUCCESS is encrypted (AES-256-CBC) to the request's signer certificate. */
function certRep(msg: PkiMessage, outcome: Outcome, ctx: RequestContext): Reply {
  let envelope: Uint8Array | undefined;
  if (outcome.status === 'SUCCESS') {
    envelope = sealTo(encodeCertsOnly(outcome.certificates), msg.signerCertificate!, ctx.random);
  }
  const der = encodePkiMessage({
    messageType: 'CertRep',
    transactionId: msg.transactionId,
    senderNonce: newNonce(ctx.random),
    recipientNonce: msg.senderNonce,
    pkiStatus: outcome.status,
    ...(outcome.status === 'FAILURE' ? { failInfo: outcome.failInfo } : {}),
    ...(envelope ? { envelope } : {}),
    signer: { certificate: ctx.ra.certificate, key: ctx.ra.key, chain: ctx.ra.chain },
    signingTime: ctx.now,
    // A client that signed with SHA-1 may not verify SHA-256 (RFC 8894 §3.5.2: SHA-256 needs the capability).
    digest: msg.digest === 'sha512' ? 'sha512' : 'sha256',
  });
  return { der, status: outcome.status, failInfo: outcome.status === 'FAILURE' ? outcome.failInfo : undefined };
}

function sealTo(content: Uint8Array, recipient: Certificate, random: (n: number) => Uint8Array): Uint8Array {
  return sealEnvelope(content, [recipient], 'aes-256-cbc', random);
}

/** Handles a decoded request (any messageType but CertRep). */
export async function handleRequest(msg: PkiMessage, profile: ScepProfile, ctx: RequestContext): Promise<Reply> {
  const outcome = await decide(msg, profile, ctx);
  return certRep(msg, outcome, ctx);
}

async function decide(msg: PkiMessage, profile: ScepProfile, ctx: RequestContext): Promise<Outcome> {
  const requesterName = msg.signerCertificate ? safeName(msg.signerCertificate) : 'unknown';
  // Checks common to every request; the transaction is recorded as failed for the log.
  const early = checkMessage(msg, ctx);
  if (early) {
    await record(ctx, msg, profile, requesterName, early, undefined);
    return early;
  }
  let content: Uint8Array;
  try {
    content = openEnvelope(msg.envelope!, { certificate: ctx.ra.certificate, key: ctx.ra.key }).content;
  } catch (e) {
    if (!isKeyfleetError(e)) throw e;
    const outcome = fail(e.code === 'KF_CMS_UNSUPPORTED' ? 'badAlg' : 'badMessageCheck', e.message);
    await record(ctx, msg, profile, requesterName, outcome, undefined);
    return outcome;
  }
  switch (msg.messageType) {
    case 'PKCSReq':
    case 'RenewalReq':
      return enrol(msg, content, profile, ctx);
    case 'GetCertInitial':
      return certPoll(msg, content, profile, ctx);
    case 'GetCert':
      return getCert(msg, content, profile, ctx, requesterName);
    default: {
      const outcome = fail('badRequest', `${msg.messageType} is not supported (CRLs are served over HTTP)`);
      await record(ctx, msg, profile, requesterName, outcome, undefined);
      return outcome;
    }
  }
}

function checkMessage(msg: PkiMessage, ctx: RequestContext): Outcome | undefined {
  switch (msg.signatureProblem) {
    case undefined:
      break;
    case 'unsupported-algorithm':
    case 'weak-algorithm':
      return fail('badAlg', `the request's signature algorithm is not accepted (${msg.signatureProblem})`);
    default:
      return fail('badMessageCheck', `the request's signature does not verify (${msg.signatureProblem})`);
  }
  if (msg.signingTime && Math.abs(msg.signingTime.getTime() - ctx.now.getTime()) > ctx.maxClockSkewMs) return fail('badTime', 'the request signingTime is too far from the server clock');
  if (!msg.envelope) return fail('badRequest', 'the request carries no pkcsPKIEnvelope');
  return undefined;
}

function safeName(cert: Certificate): string {
  try {
    return nameToString(cert.subject);
  } catch {
    return 'unknown';
  }
}

function sameKey(a: Certificate, csr: CertificationRequest): boolean {
  return Buffer.compare(Buffer.from(a.spki), Buffer.from(csr.spki)) === 0;
}

async function enrol(msg: PkiMessage, content: Uint8Array, profile: ScepProfile, ctx: RequestContext): Promise<Outcome> {
  const type = msg.messageType as 'PKCSReq' | 'RenewalReq';
  let csr: CertificationRequest;
  try {
    csr = decodeCsr(content);
  } catch (e) {
    if (!isKeyfleetError(e)) throw e;
    const outcome = fail('badRequest', e.message);
    await record(ctx, msg, profile, safeName(msg.signerCertificate!), outcome, undefined);
    return outcome;
  }
  const subjectName = safeSubject(csr);
  const refuse = async (failInfo: FailInfo, reason: string, requester = subjectName): Promise<Outcome> => {
    const outcome = fail(failInfo, reason);
    await record(ctx, msg, profile, requester, outcome, undefined);
    return outcome;
  };
  if (!verifyCsrSignature(csr)) return refuse('badMessageCheck', 'the CSR signature does not verify');

  // Transaction ids (RFC 8894 §3.2.1.1): a retry of a completed request gets the same answer;
  // anything else under a completed id is refused and the original record is left as it is.
  const prior = await ctx.store.getTransaction(msg.transactionId);
  if (prior && prior.messageType === type && prior.outcome !== 'failure') {
    if (prior.outcome === 'pending') return poll(msg, prior, profile, ctx);
    const found = prior.serialHex ? await ctx.issuer.lookup(prior.serialHex) : undefined;
    // Clients that derive the transactionID from the key (micromdm) renew again under
    // the same id, signed with the certificate the last renewal gave: a new request.
    const newRenewal = type === 'RenewalReq' && found !== undefined && found.certificate.fingerprint256 === msg.signerCertificate!.fingerprint256;
    if (!newRenewal) {
      if (found && !found.revoked && sameKey(found.certificate, csr) && namesEqual(found.certificate.subject, csr.subject)) {
        return { status: 'SUCCESS', certificates: [found.certificate, ...ctx.ra.chain] };
      }
      return fail('badRequest', 'a different request under a transactionID that is already completed');
    }
  }

  const keyProblem = keyRefusal(csr, profile.keyPolicy);
  if (keyProblem) return refuse('badRequest', keyProblem);

  let grant: ChallengeGrant | undefined;
  let renewalOf: Certificate | undefined;
  if (type === 'PKCSReq') {
    if (csr.challengePassword === undefined || csr.challengePassword === '') return refuse('badRequest', 'the CSR has no challengePassword');
    // The CSR's names are checked against the grant before a one-time challenge is spent.
    const checked = await ctx.validator.validate(csr.challengePassword, profile.name, ctx.now, (g) => {
      const identity = identityRefusal(csr, g);
      return identity === undefined ? undefined : { reason: 'not-admitted', detail: identity };
    });
    if (!checked.ok) {
      if (checked.reason === 'not-admitted') return refuse('badRequest', checked.detail, checked.grant.deviceId ?? subjectName);
      return refuse('badRequest', `the challenge is ${checked.reason === 'wrong-profile' ? 'for another profile' : checked.reason}`);
    }
    grant = checked.grant;
  } else {
    if (profile.allowRenewal === false) return refuse('badRequest', `profile ${profile.name} does not allow renewal`);
    const current = msg.signerCertificate!;
    const found = await ctx.issuer.lookup(current.serialHex);
    if (!found || found.certificate.fingerprint256 !== current.fingerprint256) return refuse('badCertId', 'the renewal is not signed with a certificate of this CA');
    if (found.revoked) return refuse('badCertId', 'the certificate being renewed is revoked');
    if (current.notAfter.getTime() < ctx.now.getTime()) return refuse('badCertId', 'the certificate being renewed has expired');
    if (!namesEqual(current.subject, csr.subject)) return refuse('badRequest', 'the renewal CSR subject differs from the current certificate');
    const san = csr.subjectAltName;
    const allowed = new Set(current.emailAddresses);
    const upns = new Set((current.subjectAltName?.upns ?? []).map((u) => u.toLowerCase()));
    const extra = san && (san.rfc822Names.some((e) => !allowed.has(e.toLowerCase())) || san.upns.some((u) => !upns.has(u.toLowerCase())) || san.dnsNames.length + san.uris.length + san.directoryNames.length > 0);
    if (extra) return refuse('badRequest', 'the renewal CSR asks for SAN names the current certificate does not have');
    renewalOf = current;
  }

  const requester = grant?.deviceId ?? subjectName;
  const issued = await ctx.issuer.issue({ messageType: type, transactionId: msg.transactionId, profile, csr, requester, ...(grant ? { grant } : {}), ...(renewalOf ? { renewalOf } : {}) });
  return settle(msg, profile, ctx, requester, issued);
}

function safeSubject(csr: CertificationRequest): string {
  try {
    return nameToString(csr.subject);
  } catch {
    return 'unknown';
  }
}

async function settle(msg: PkiMessage, profile: ScepProfile, ctx: RequestContext, requester: string, issued: ScepIssueOutcome, messageType?: ScepTransactionRecord['messageType']): Promise<Outcome> {
  let outcome: Outcome;
  if (issued.status === 'issued') outcome = { status: 'SUCCESS', certificates: [issued.certificate, ...(issued.chain ?? ctx.ra.chain)] };
  else if (issued.status === 'pending') outcome = { status: 'PENDING' };
  else outcome = fail(issued.failInfo ?? 'badRequest', issued.reason);
  await record(ctx, msg, profile, requester, outcome, issued.status === 'issued' ? issued.certificate.serialHex : undefined, messageType, true);
  return outcome;
}

/** A pending transaction asked again (GetCertInitial, or the original request resent). */
async function poll(msg: PkiMessage, prior: ScepTransactionRecord, profile: ScepProfile, ctx: RequestContext): Promise<Outcome> {
  const state = ctx.issuer.poll ? await ctx.issuer.poll(msg.transactionId, profile.name) : { status: 'pending' as const };
  if (!state) return fail('badCertId', 'the pending transaction is no longer known to the CA');
  if (state.status === 'pending') return { status: 'PENDING' };
  return settle(msg, profile, ctx, prior.requester, state, prior.messageType);
}

/** CertPoll/GetCertInitial (RFC 8894 §3.3.3): IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name }. */
async function certPoll(msg: PkiMessage, content: Uint8Array, profile: ScepProfile, ctx: RequestContext): Promise<Outcome> {
  try {
    const r = new SequenceReader(parse(content), 'IssuerAndSubject');
    decodeName(r.next(Tag.sequence));
    decodeName(r.next(Tag.sequence));
    r.end();
  } catch (e) {
    if (!isKeyfleetError(e)) throw e;
    return fail('badRequest', `GetCertInitial content is not an IssuerAndSubject: ${e.message}`);
  }
  const prior = await ctx.store.getTransaction(msg.transactionId);
  if (!prior || prior.profile !== profile.name || (prior.messageType !== 'PKCSReq' && prior.messageType !== 'RenewalReq')) return fail('badCertId', 'no enrolment under this transactionID');
  if (prior.outcome === 'failure') return fail((prior.failInfo as FailInfo | undefined) ?? 'badRequest', 'the request under this transactionID was refused');
  if (prior.outcome === 'success') {
    const found = prior.serialHex ? await ctx.issuer.lookup(prior.serialHex) : undefined;
    if (!found) return fail('badCertId', 'the issued certificate is no longer known');
    return { status: 'SUCCESS', certificates: [found.certificate, ...ctx.ra.chain] };
  }
  return poll(msg, prior, profile, ctx);
}

/** GetCert (RFC 8894 §3.3.4): IssuerAndSerialNumber of a certificate this CA issued. */
async function getCert(msg: PkiMessage, content: Uint8Array, profile: ScepProfile, ctx: RequestContext, requesterName: string): Promise<Outcome> {
  let serialHex: string;
  let issuer;
  try {
    const r = new SequenceReader(parse(content), 'IssuerAndSerialNumber');
    issuer = decodeName(r.next(Tag.sequence));
    serialHex = Buffer.from(integerContents(r.next(Tag.integer))).toString('hex');
    r.end();
  } catch (e) {
    if (!isKeyfleetError(e)) throw e;
    return fail('badRequest', `GetCert content is not an IssuerAndSerialNumber: ${e.message}`);
  }
  const found = await ctx.issuer.lookup(serialHex);
  const outcome: Outcome = found && namesEqual(found.certificate.issuer, issuer) ? { status: 'SUCCESS', certificates: [found.certificate] } : fail('badCertId', 'no such certificate');
  if (!(await ctx.store.getTransaction(msg.transactionId))) await record(ctx, msg, profile, requesterName, outcome, found?.certificate.serialHex);
  return outcome;
}

async function record(ctx: RequestContext, msg: PkiMessage, profile: ScepProfile, requester: string, outcome: Outcome, serialHex: string | undefined, messageType?: ScepTransactionRecord['messageType'], settled = false): Promise<void> {
  const type = messageType ?? (msg.messageType === 'CertRep' ? 'PKCSReq' : msg.messageType);
  if (outcome.status === 'FAILURE' && !settled) {
    // A refused message never overwrites the record of a request that succeeded or waits under the same id.
    const prior = await ctx.store.getTransaction(msg.transactionId);
    if (prior && prior.outcome !== 'failure') return;
  }
  await ctx.store.recordTransaction({
    transactionId: msg.transactionId,
    profile: profile.name,
    messageType: type,
    requester,
    outcome: outcome.status === 'SUCCESS' ? 'success' : outcome.status === 'PENDING' ? 'pending' : 'failure',
    failInfo: outcome.status === 'FAILURE' ? outcome.failInfo : undefined,
    serialHex,
    createdAt: ctx.now,
  });
}
