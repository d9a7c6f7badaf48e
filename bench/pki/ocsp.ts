/**
 * OCSP responses per second from Keyfleet's responder (RFC 6960 over HTTP
 * POST, Appendix A.1): every request carries its own 16-octet nonce
 * (RFC 9654), so no response can come from a cache — each one is a store
 * lookup and a fresh signature by the issuing CA.
 *
 * The requests name a mix of good and revoked certificates issued before
 * the run. Afterwards every response is checked to be `successful` with the
 * request's nonce echoed, and a sample is verified in full
 * (verifyOcspResponse: signature, responder, nonce, status as expected).
 */
import { randomBytes } from 'node:crypto';
import type { Certificate } from '../../src/x509/certificate.ts';
import { OcspResponseStatus, buildOcspRequest, decodeOcspResponse, verifyOcspResponse } from '../../src/x509/ocsp-client.ts';
import { type Latency, checkResponses, runLoad } from './load.ts';
import { processCpuSeconds } from './servers.ts';

export interface OcspSubject {
  readonly cert: Certificate;
  readonly expected: 'good' | 'revoked';
}

interface PreparedOcsp {
  readonly der: Uint8Array;
  readonly nonce: Uint8Array;
  readonly subject: OcspSubject;
}

export function prepareOcspRequests(count: number, subjects: readonly OcspSubject[], issuer: Certificate): PreparedOcsp[] {
  const out: PreparedOcsp[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const subject = subjects[i % subjects.length]!;
    const built = buildOcspRequest(subject.cert, issuer, { nonce: randomBytes(16) });
    out[i] = { der: built.der, nonce: built.nonce!, subject };
  }
  return out;
}

export interface OcspRunOptions {
  readonly url: string;
  readonly issuer: Certificate;
  readonly serverPid: number;
  readonly concurrency: number;
  readonly warmup: number;
  readonly maxSeconds: number;
  readonly sample: number;
}

export interface OcspMeasurement {
  readonly completed: number;
  readonly seconds: number;
  /** Successful, nonce-echoing responses per second of the timed window. */
  readonly perSecond: number;
  readonly latency: Latency;
  readonly concurrency: number;
  readonly successes: number;
  readonly failures: number;
  readonly failureExamples: readonly string[];
  readonly sampleChecked: number;
  readonly sampleOk: number;
  readonly serverCpuSeconds: number | undefined;
  readonly clientCpuSeconds: number;
  readonly serverCpuMsPerOp: number | undefined;
  readonly responseBytes: number;
}

function quickCheck(response: { status: number; body: Buffer } | undefined, request: PreparedOcsp): string | undefined {
  if (response === undefined) return 'no response';
  if (response.status !== 200) return `HTTP ${response.status}`;
  try {
    const r = decodeOcspResponse(response.body);
    if (r.responseStatus !== OcspResponseStatus.successful || r.basic === undefined) return `responseStatus ${r.responseStatus}`;
    if (r.basic.nonce === undefined || Buffer.compare(Buffer.from(r.basic.nonce), Buffer.from(request.nonce)) !== 0) return 'nonce not echoed';
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

export async function measureOcsp(requests: readonly PreparedOcsp[], options: OcspRunOptions): Promise<OcspMeasurement> {
  const bodies = requests.map((r) => r.der);
  const common = { url: options.url, contentType: 'application/ocsp-request', concurrency: options.concurrency };
  await runLoad({ ...common, bodies: bodies.slice(0, options.warmup), maxSeconds: 60 });
  const timed = requests.slice(options.warmup);
  const cpu0 = processCpuSeconds(options.serverPid);
  const run = await runLoad({ ...common, bodies: bodies.slice(options.warmup), maxSeconds: options.maxSeconds });
  const cpu1 = processCpuSeconds(options.serverPid);

  let responseBytes = 0;
  const failureExamples: string[] = [];
  const { successes, sampleChecked, sampleOk } = checkResponses(
    run,
    (r, i) => {
      responseBytes = r.body.length;
      return quickCheck(r, timed[i]!);
    },
    (r, i) => {
      const request = timed[i]!;
      try {
        const result = verifyOcspResponse(r.body, { cert: request.subject.cert, issuer: options.issuer, nonce: request.nonce });
        return result.status === request.subject.expected ? undefined : `${request.subject.cert.serialHex} is ${result.status}, expected ${request.subject.expected}`;
      } catch (e) {
        return e instanceof Error ? e.message : String(e);
      }
    },
    options.sample,
    failureExamples,
  );
  const serverCpuSeconds = cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined;
  return {
    completed: run.completed,
    seconds: run.seconds,
    perSecond: run.seconds > 0 ? successes / run.seconds : NaN,
    latency: run.latency,
    concurrency: options.concurrency,
    successes,
    failures: run.completed - successes + run.transportErrors,
    failureExamples,
    sampleChecked,
    sampleOk,
    serverCpuSeconds,
    clientCpuSeconds: run.clientCpuSeconds,
    serverCpuMsPerOp: serverCpuSeconds !== undefined && run.completed > 0 ? (serverCpuSeconds * 1000) / run.completed : undefined,
    responseBytes,
  };
}
