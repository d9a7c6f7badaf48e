/**
 * The load generator: pre-built request bodies POSTed over keep-alive
 * HTTP/1.1 connections (node:http, one socket per request in flight), a
 * fixed number in flight, until the bodies run out or the time is up.
 * Every response body is kept, index-aligned with the requests, so the
 * caller can check afterwards — outside the timed window — that what was
 * timed were successes.
 *
 * Each body is sent at most once: SCEP requests carry one-time challenges
 * and transaction ids, OCSP requests distinct nonces.
 */
import { Agent, request } from 'node:http';

export interface LoadOptions {
  /** Full URL, query included. */
  readonly url: string;
  readonly contentType: string;
  readonly bodies: readonly Uint8Array[];
  /** Requests in flight. */
  readonly concurrency: number;
  /** No new request starts after this many seconds (those in flight finish). */
  readonly maxSeconds: number;
  /** A request taking longer than this fails (the server is stuck, not slow). */
  readonly requestTimeoutMs?: number;
}

export interface Latency {
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface LoadResult {
  /** Requests answered (any HTTP status). */
  readonly completed: number;
  /** Transport failures (refused, reset, timed out). */
  readonly transportErrors: number;
  readonly firstTransportError: string | undefined;
  /** HTTP status → count. */
  readonly statuses: Readonly<Record<string, number>>;
  /** From the first request's start to the last response's end. */
  readonly seconds: number;
  /** completed / seconds. */
  readonly perSecond: number;
  readonly latency: Latency;
  /** Response status and body per request index; undefined where nothing came back (not sent, or a transport error). */
  readonly responses: readonly ({ readonly status: number; readonly body: Buffer } | undefined)[];
  /** This process's CPU time (user + system) during the run: the client's share of the cores. */
  readonly clientCpuSeconds: number;
}

function post(agent: Agent, url: URL, contentType: string, body: Uint8Array, timeoutMs: number): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method: 'POST',
        headers: { 'content-type': contentType, 'content-length': body.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no response within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const url = new URL(options.url);
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency, maxFreeSockets: options.concurrency });
  const timeoutMs = options.requestTimeoutMs ?? 30_000;
  const responses: ({ status: number; body: Buffer } | undefined)[] = new Array(options.bodies.length).fill(undefined);
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let transportErrors = 0;
  let firstTransportError: string | undefined;
  let next = 0;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const deadline = start + options.maxSeconds * 1000;
  let end = start;

  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= options.bodies.length || performance.now() > deadline) return;
      const t0 = performance.now();
      try {
        const r = await post(agent, url, options.contentType, options.bodies[i]!, timeoutMs);
        const t1 = performance.now();
        responses[i] = r;
        latencies.push(t1 - t0);
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (t1 > end) end = t1;
      } catch (e) {
        transportErrors++;
        firstTransportError ??= e instanceof Error ? e.message : String(e);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const cpu = process.cpuUsage(cpuStart);
  agent.destroy();
  const seconds = (end - start) / 1000;
  const sorted = latencies.sort((a, b) => a - b);
  return {
    completed: latencies.length,
    transportErrors,
    firstTransportError,
    statuses,
    seconds,
    perSecond: seconds > 0 ? latencies.length / seconds : NaN,
    latency: { p50Ms: percentile(sorted, 50), p90Ms: percentile(sorted, 90), p99Ms: percentile(sorted, 99), maxMs: sorted.at(-1) ?? NaN },
    responses,
    clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

export type LoadResponse = NonNullable<LoadResult['responses'][number]>;

export interface CheckedRun {
  readonly successes: number;
  readonly sampleChecked: number;
  readonly sampleOk: number;
}

/**
 * Counts the answers `quick` accepts as successes, then confirms an evenly
 * spread sample of them with the slower `full` check. Problems found (at most
 * a few of each kind) are appended to `failureExamples`.
 */
export function checkResponses(
  run: LoadResult,
  quick: (response: LoadResponse, index: number) => string | undefined,
  full: (response: LoadResponse, index: number) => string | undefined,
  sample: number,
  failureExamples: string[],
): CheckedRun {
  let successes = 0;
  const succeeded: number[] = [];
  run.responses.forEach((r, i) => {
    if (r === undefined) return;
    const problem = quick(r, i);
    if (problem === undefined) {
      successes++;
      succeeded.push(i);
    } else if (failureExamples.length < 3) failureExamples.push(problem);
  });
  if (run.firstTransportError !== undefined) failureExamples.push(`transport: ${run.firstTransportError}`);
  const step = Math.max(1, Math.floor(succeeded.length / Math.max(1, sample)));
  let sampleChecked = 0;
  let sampleOk = 0;
  for (let k = 0; k < succeeded.length && sampleChecked < sample; k += step) {
    const i = succeeded[k]!;
    sampleChecked++;
    const problem = full(run.responses[i]!, i);
    if (problem === undefined) sampleOk++;
    else if (failureExamples.length < 5) failureExamples.push(`full check: ${problem}`);
  }
  return { successes, sampleChecked, sampleOk };
}
