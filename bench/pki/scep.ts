/**
 * SCEP enrolments per second (RFC 8894 PKCSReq over POST), with everything
 * the client does built before the clock starts: keys, PKCS#10 requests
 * (each with its own subject, SAN and challenge), self-signed requester
 * certificates and the signed, enveloped pkiMessages. The timed window is
 * the server's work plus loopback HTTP.
 *
 * Keys come from a pool: RSA-2048 generation costs ~70 ms of CPU, so a key
 * per request would make setup take minutes. Neither server looks at
 * whether a public key was seen before, so a pool costs them nothing
 * (every request still differs: subject, SAN, challenge, transaction id,
 * nonces, the requester certificate).
 *
 * After the run every response is checked to be an RA-signed CertRep with
 * pkiStatus SUCCESS for its transaction, and a sample is opened in full
 * with parseCertRep (envelope decrypted, issued certificate for the
 * requested subject) — so no failure is ever timed as an enrolment.
 */
import { type KeyObject, createPublicKey, generateKeyPair } from 'node:crypto';
import { buildCertificate, makeSigner, randomSerial } from '../../src/ca/certificate-builder.ts';
import { keyUsage } from '../../src/ca/extensions.ts';
import { decodeCertsOnly } from '../../src/scep/certs-only.ts';
import { type ScepRequest, buildPkcsReq, parseCertRep } from '../../src/scep/client.ts';
import { encodeCertificationRequest } from '../../src/scep/csr.ts';
import type { ScepCipher } from '../../src/scep/envelope.ts';
import { decodePkiMessage } from '../../src/scep/message.ts';
import { type Certificate, decodeCertificate } from '../../src/x509/certificate.ts';
import { encodeName } from '../../src/x509/name.ts';
import { createSignature } from '../../src/x509/signature.ts';
import { type Latency, checkResponses, runLoad } from './load.ts';
import { processCpuSeconds } from './servers.ts';

export const BENCH_DOMAIN = 'bench.keyfleet.example';

/** RSA-2048 keys generated on the thread pool (both cores). */
export async function keyPool(count: number): Promise<KeyObject[]> {
  return Promise.all(
    Array.from(
      { length: count },
      () => new Promise<KeyObject>((resolve, reject) => generateKeyPair('rsa', { modulusLength: 2048 }, (e, _pub, priv) => (e ? reject(e) : resolve(priv)))),
    ),
  );
}

/** The self-signed certificate a requester signs its PKCSReq with (RFC 8894 §2.3), for the subject it asks for. */
async function selfSigned(key: KeyObject, subject: Uint8Array): Promise<Certificate> {
  const publicKey = createPublicKey(key);
  const now = Date.now();
  const der = await buildCertificate(
    {
      serialNumber: randomSerial(),
      issuer: subject,
      subject,
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + 86_400_000),
      spki: publicKey.export({ format: 'der', type: 'spki' }),
      extensions: [keyUsage(['digitalSignature', 'keyEncipherment'])],
    },
    makeSigner(publicKey, (scheme, data) => Promise.resolve(createSignature(scheme, data, key))),
  );
  return decodeCertificate(der);
}

/** What GetCACert returns: the RA (Keyfleet) or CA (micromdm) certificate first, then the chain. */
export async function getCaCerts(scepUrl: string): Promise<Certificate[]> {
  const r = await fetch(`${scepUrl}?operation=GetCACert`);
  if (!r.ok) throw new Error(`GetCACert at ${scepUrl}: HTTP ${r.status}`);
  const body = new Uint8Array(await r.arrayBuffer());
  const type = r.headers.get('content-type') ?? '';
  return type.includes('ca-ra-cert') ? decodeCertsOnly(body) : [decodeCertificate(body)];
}

export interface Enrolment {
  readonly request: ScepRequest;
  readonly email: string;
}

export interface EnrolmentPlan {
  /** Label in subjects, so that the two servers' certificates are told apart in logs. */
  readonly label: string;
  readonly count: number;
  readonly keys: readonly KeyObject[];
  /** The certificate to encrypt the request to (the RA for Keyfleet, the CA for micromdm). */
  readonly recipient: Certificate;
  readonly cipher: ScepCipher;
  /** The challenge password of request i. */
  readonly challenge: (i: number, email: string) => string;
}

/** The subject and SAN email of request i: `CN=<label>-<i>@bench…`, SAN the same address (what the S/MIME signing profile issues). */
export function enrolmentEmail(label: string, i: number): string {
  return `${label}-${i}@${BENCH_DOMAIN}`;
}

export async function prepareEnrolments(plan: EnrolmentPlan): Promise<Enrolment[]> {
  const out: Enrolment[] = [];
  for (let i = 0; i < plan.count; i++) {
    const key = plan.keys[i % plan.keys.length]!;
    const email = enrolmentEmail(plan.label, i);
    const subject = encodeName([['CN', email]]);
    const csr = encodeCertificationRequest({ subject, challengePassword: plan.challenge(i, email), sanEmails: [email] }, key);
    const requester = { key, certificate: await selfSigned(key, subject) };
    out.push({ request: buildPkcsReq(csr, requester, [plan.recipient], { cipher: plan.cipher }), email });
  }
  return out;
}

export interface ScepRunOptions {
  /** …/scep/default (Keyfleet) or …/scep (micromdm), without the query. */
  readonly scepUrl: string;
  /** CertRep signers the client accepts (from GetCACert). */
  readonly trusted: readonly Certificate[];
  readonly serverPid: number;
  readonly concurrency: number;
  /** Enrolments sent before the timed window (JIT, connection set-up, caches). */
  readonly warmup: number;
  readonly maxSeconds: number;
  /** How many responses to open in full with parseCertRep. */
  readonly sample: number;
}

export interface ScepMeasurement {
  readonly completed: number;
  readonly seconds: number;
  /** Successful enrolments per second of the timed window (failures do not count). */
  readonly perSecond: number;
  /** Responses of any kind per second. */
  readonly requestsPerSecond: number;
  readonly latency: Latency;
  readonly concurrency: number;
  readonly warmup: number;
  /** Responses that were HTTP 200 CertReps with SUCCESS for their transaction. */
  readonly successes: number;
  readonly failures: number;
  /** The first few reasons a response was not a success. */
  readonly failureExamples: readonly string[];
  readonly sampleChecked: number;
  readonly sampleOk: number;
  readonly serverCpuSeconds: number | undefined;
  readonly clientCpuSeconds: number;
  /** Server CPU milliseconds per enrolment. */
  readonly serverCpuMsPerOp: number | undefined;
}

/** Checks one response: HTTP 200, a CertRep signed by a trusted certificate, SUCCESS, for this transaction. */
function quickCheck(response: { status: number; body: Buffer } | undefined, enrolment: Enrolment, trusted: readonly Certificate[]): string | undefined {
  if (response === undefined) return 'no response';
  if (response.status !== 200) return `HTTP ${response.status}: ${response.body.toString('utf8', 0, Math.min(200, response.body.length)).trim()}`;
  try {
    const msg = decodePkiMessage(response.body, { extraCertificates: trusted, allowSha1: true });
    if (msg.signatureProblem) return `CertRep signature: ${msg.signatureProblem}`;
    if (msg.transactionId !== enrolment.request.transactionId) return 'CertRep for another transaction';
    if (msg.pkiStatus !== 'SUCCESS') return `pkiStatus ${msg.pkiStatus ?? '?'}${msg.failInfo ? ` (${msg.failInfo})` : ''}`;
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** Opens a CertRep in full: the issued certificate must carry the requested subject, SAN and key. */
function fullCheck(body: Buffer, enrolment: Enrolment, trusted: readonly Certificate[]): string | undefined {
  try {
    const rep = parseCertRep(body, enrolment.request, trusted);
    const cert = rep.certificates[0];
    if (rep.status !== 'SUCCESS' || cert === undefined) return `status ${rep.status}`;
    if (!cert.emailAddresses.map((e) => e.toLowerCase()).includes(enrolment.email)) return `issued certificate lacks ${enrolment.email}`;
    const requested = createPublicKey(enrolment.request.requester.key).export({ format: 'der', type: 'spki' });
    if (Buffer.compare(requested, Buffer.from(cert.spki)) !== 0) return 'issued certificate is for another key';
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

export async function measureScep(enrolments: readonly Enrolment[], options: ScepRunOptions): Promise<ScepMeasurement> {
  const url = `${options.scepUrl}?operation=PKIOperation`;
  const bodies = enrolments.map((e) => e.request.der);
  const warm = await runLoad({ url, contentType: 'application/x-pki-message', bodies: bodies.slice(0, options.warmup), concurrency: options.concurrency, maxSeconds: 60 });
  const timedEnrolments = enrolments.slice(options.warmup);
  const cpu0 = processCpuSeconds(options.serverPid);
  const run = await runLoad({ url, contentType: 'application/x-pki-message', bodies: timedEnrolments.map((e) => e.request.der), concurrency: options.concurrency, maxSeconds: options.maxSeconds });
  const cpu1 = processCpuSeconds(options.serverPid);

  // Outside the timed window: what was timed must have been successes.
  const failureExamples: string[] = [];
  const warmFailure = warm.responses.map((r, i) => quickCheck(r, enrolments[i]!, options.trusted)).find((f) => f !== undefined);
  if (warmFailure !== undefined) failureExamples.push(`warm-up: ${warmFailure}`);
  const { successes, sampleChecked, sampleOk } = checkResponses(
    run,
    (r, i) => quickCheck(r, timedEnrolments[i]!, options.trusted),
    (r, i) => fullCheck(r.body, timedEnrolments[i]!, options.trusted),
    options.sample,
    failureExamples,
  );
  const serverCpuSeconds = cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined;
  return {
    completed: run.completed,
    seconds: run.seconds,
    perSecond: run.seconds > 0 ? successes / run.seconds : NaN,
    requestsPerSecond: run.perSecond,
    latency: run.latency,
    concurrency: options.concurrency,
    warmup: warm.completed,
    successes,
    failures: run.completed - successes + run.transportErrors,
    failureExamples,
    sampleChecked,
    sampleOk,
    serverCpuSeconds,
    clientCpuSeconds: run.clientCpuSeconds,
    serverCpuMsPerOp: serverCpuSeconds !== undefined && run.completed > 0 ? (serverCpuSeconds * 1000) / run.completed : undefined,
  };
}
