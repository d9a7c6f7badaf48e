/**
 * The connector process's loop (`keyfleet connector run`): long-poll for
 * leased requests, re-wrap each (at most `concurrency` at once), post the
 * results. What it guarantees, with the server's lease doing the rest:
 *
 * - Server errors or the server being down: claims back off exponentially
 *   (capped, with jitter so that several connectors do not retry in step);
 *   work already leased keeps trying to post its result until its lease
 *   ends, and is then dropped: the server gives the request to the next
 *   claim, so nothing is lost and nothing is completed twice.
 * - A revoked credential or a version below the server's minimum stops the
 *   loop with that error: no later request could succeed.
 * - Stopping (the signal, from SIGINT/SIGTERM) ends claiming at once and
 *   waits for the requests in hand to be posted or dropped.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import type { ClaimedRequest, ResultRequest } from '../protocol/connector-api.ts';
import { type ClaimResult, type ConnectorClient, retryable } from './client.ts';
import type { ConnectorKey } from './keystore.ts';
import { rewrap } from './rewrap.ts';

export type ConnectorEvent =
  | { readonly type: 'claimed'; readonly count: number }
  | { readonly type: 'delivered'; readonly requestId: string }
  /** The request could not be re-wrapped; the reason was posted, and the request is failed. */
  | { readonly type: 'failed'; readonly requestId: string; readonly code: string }
  /** The result was not posted (lease over, refused); the server hands the request out again if it is still open. */
  | { readonly type: 'dropped'; readonly requestId: string; readonly reason: string }
  | { readonly type: 'backoff'; readonly ms: number; readonly reason: string }
  | { readonly type: 'stopping'; readonly inFlight: number };

/** bench:delivery on PostgreSQL: 16 in hand re-wrapped a rollout's history about a quarter faster than 4. */
export const DEFAULT_CONNECTOR_CONCURRENCY = 16;

export interface ConnectorRunOptions {
  readonly client: Pick<ConnectorClient, 'claim' | 'postResult'>;
  readonly key: ConnectorKey;
  /**
   * Requests in hand at once (1–64, default DEFAULT_CONNECTOR_CONCURRENCY): the re-wrap itself is CPU on
   * this thread, so more in hand overlaps the claims and results on the wire, whose latency (a commit on
   * the service's database each) bounds a connector that holds few.
   */
  readonly concurrency?: number;
  /** The long-poll wait per claim (0–30 s, default 25). */
  readonly waitSeconds?: number;
  /** Aborting it stops the loop after the work in hand. */
  readonly signal?: AbortSignal;
  readonly log?: (event: ConnectorEvent) => void;
  /** Delays between failed attempts: doubling from initialMs up to maxMs (defaults 500 ms, 30 s). */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** A number in [0, 1) for jitter; default Math.random. */
  readonly random?: () => number;
}

export interface ConnectorRunSummary {
  readonly delivered: number;
  readonly failed: number;
  readonly dropped: number;
}

/** Results are not posted this close to the end of a lease: the server may already be leasing the request again. */
const LEASE_MARGIN_MS = 2_000;
/** Errors after which no request of this connector can succeed. */
const FATAL = new Set(['KF_UNAUTHENTICATED', 'KF_FORBIDDEN', 'KF_CONNECTOR_OUTDATED']);

/** A delay for the `attempt`-th consecutive failure: exponential, capped, half of it random ("equal jitter"). */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(cap / 2 + random() * (cap / 2));
}

async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await sleepFor(ms, undefined, signal ? { signal } : {});
  } catch {
    // Aborted: the caller looks at the signal.
  }
}

/** Runs until `signal` is aborted (resolves) or an error makes every further request futile (rejects with it). */
export async function runConnector(options: ConnectorRunOptions): Promise<ConnectorRunSummary> {
  const concurrency = options.concurrency ?? DEFAULT_CONNECTOR_CONCURRENCY;
  const waitSeconds = options.waitSeconds ?? 25;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new KeyfleetError('KF_USAGE', 'concurrency must be 1–64');
  if (!Number.isInteger(waitSeconds) || waitSeconds < 0 || waitSeconds > 30) throw new KeyfleetError('KF_USAGE', 'waitSeconds must be 0–30');
  const { initialMs, maxMs } = options.backoff ?? { initialMs: 500, maxMs: 30_000 };
  const random = options.random ?? Math.random;
  const log = options.log ?? (() => {});
  const client = options.client;

  // Claiming stops on the caller's signal or on a fatal error; work in hand is never aborted by either.
  const claiming = new AbortController();
  const onStop = () => claiming.abort();
  options.signal?.addEventListener('abort', onStop, { once: true });
  if (options.signal?.aborted) claiming.abort();

  let fatal: KeyfleetError | undefined;
  const summary = { delivered: 0, failed: 0, dropped: 0 };
  const inFlight = new Set<Promise<void>>();

  /** True when the service took the result; false (counted and logged as dropped) when the lease ran out first. */
  const post = async (request: ClaimedRequest, result: ResultRequest, deadline: number): Promise<boolean> => {
    for (let attempt = 0; ; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) {
        summary.dropped++;
        log({ type: 'dropped', requestId: request.requestId, reason: 'lease ended before the result could be posted' });
        return false;
      }
      try {
        await client.postResult(request.requestId, result, AbortSignal.timeout(left));
        return true;
      } catch (e) {
        if (retryable(e)) {
          await sleep(Math.min(backoffDelay(attempt, initialMs, maxMs, random), Math.max(0, deadline - Date.now())));
          continue;
        }
        summary.dropped++;
        const code = isKeyfleetError(e) ? e.code : 'internal error';
        log({ type: 'dropped', requestId: request.requestId, reason: code });
        if (isKeyfleetError(e) && FATAL.has(e.code)) {
          fatal ??= e;
          claiming.abort();
        }
        throw e;
      }
    }
  };

  const handle = async (request: ClaimedRequest, claim: ClaimResult): Promise<void> => {
    // The lease measured on the server's clock, counted from when the answer arrived here.
    const leaseMs = Date.parse(request.leaseExpiresAt) - (claim.serverDate ?? claim.receivedAt);
    const deadline = claim.receivedAt + leaseMs - LEASE_MARGIN_MS;
    const outcome = await rewrap(options.key, request);
    const result: ResultRequest = outcome.ok
      ? { claimToken: request.claimToken, payload: Buffer.from(outcome.payload.buffer, outcome.payload.byteOffset, outcome.payload.byteLength).toString('base64') }
      : { claimToken: request.claimToken, error: outcome.error };
    try {
      if (!(await post(request, result, deadline))) return;
    } catch {
      return;
    }
    if (outcome.ok) {
      summary.delivered++;
      log({ type: 'delivered', requestId: request.requestId });
    } else {
      summary.failed++;
      log({ type: 'failed', requestId: request.requestId, code: outcome.error.code });
    }
  };

  let failures = 0;
  try {
    while (!claiming.signal.aborted) {
      if (inFlight.size >= concurrency) {
        await Promise.race(inFlight);
        continue;
      }
      let claim: ClaimResult;
      try {
        claim = await client.claim(concurrency - inFlight.size, waitSeconds, claiming.signal);
        failures = 0;
      } catch (e) {
        if (claiming.signal.aborted) break;
        if (!retryable(e)) {
          fatal ??= isKeyfleetError(e) ? e : new KeyfleetError('KF_SERVICE_UNREACHABLE', 'the claim failed', { cause: e });
          break;
        }
        const ms = backoffDelay(failures++, initialMs, maxMs, random);
        log({ type: 'backoff', ms, reason: isKeyfleetError(e) ? e.message : 'claim failed' });
        await sleep(ms, claiming.signal);
        continue;
      }
      if (claim.requests.length > 0) log({ type: 'claimed', count: claim.requests.length });
      for (const request of claim.requests) {
        const task: Promise<void> = handle(request, claim)
          .catch(() => {})
          .finally(() => inFlight.delete(task));
        inFlight.add(task);
      }
    }
  } finally {
    options.signal?.removeEventListener('abort', onStop);
    if (inFlight.size > 0) log({ type: 'stopping', inFlight: inFlight.size });
    await Promise.allSettled([...inFlight]);
  }
  if (fatal !== undefined) throw fatal;
  return summary;
}
