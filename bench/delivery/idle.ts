/**
 * Idle check-ins (issue 5: "idle check-ins per second with 256 concurrent
 * devices"; docs/delivery.md "Check-in": one signature verification and one
 * primary-key read): devices of the seeded tenant that already checked in
 * in full send `GET /device/v1/checkin` with If-None-Match and get 304.
 *
 * Load comes from autocannon, which can sign each request: its
 * setupRequest hook (called for every request) signs with the next device
 * of the pool (src/protocol/request-signing.ts, a fresh nonce and
 * timestamp each time), so 256 connections always carry 256 different
 * devices. The client's own CPU is measured beside the server's: on two
 * cores they compete, and the rate is only honest next to both.
 */
import autocannon from 'autocannon';
import type { KeyObject } from 'node:crypto';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { DeviceApiClient } from '../../src/device/api-client.ts';
import { DEVICE_API } from '../../src/protocol/device-api.ts';
import { DEVICE_AUTH_HEADER, signRequest } from '../../src/protocol/request-signing.ts';
import { cpuOf, settle, startServe, stop } from './processes.ts';
import type { Seeded, SimDevice } from './setup.ts';

export const IDLE_CONNECTIONS = 256;
const WARMUP_CONCURRENCY = 64;
/** Unmeasured load before each measurement: connections open, JIT warm. */
const RAMP_SECONDS = 3;
/**
 * src/delivery/device-auth.ts's NONCE_LIMIT (not exported): each worker remembers at most this many nonces
 * of the 5-minute window. The second measurement starts once every worker has seen that many requests, so
 * it shows the steady state of a server that has been busy for minutes, not only its first seconds.
 */
const NONCE_LIMIT = 200_000;

export interface IdleRun {
  readonly workers: number;
  /** 'fresh': the first seconds after start; 'sustained': after every worker's nonce memory filled. */
  readonly window: 'fresh' | 'sustained';
  /** Signed requests the server had answered when the window began. */
  readonly servedBefore: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly statuses: Readonly<Record<string, number>>;
  readonly errors: number;
  /** CPU in cores (CPU seconds per second of the run). */
  readonly serverCores: number;
  readonly clientCores: number;
  readonly databaseCores: number | undefined;
  readonly loadAverage: readonly number[];
}

export interface IdleResult {
  readonly devices: number;
  readonly connections: number;
  /** The first, full check-in of each device (not the measurement): its rate on this tenant. */
  readonly warmup: { readonly seconds: number; readonly perSecond: number; readonly failures: number; readonly sample: string | undefined };
  readonly runs: readonly IdleRun[];
}

export interface IdleOptions {
  readonly workers: readonly number[];
  readonly seconds: number;
  /** Measure again once the nonce memory is full (minutes of load at full scale). */
  readonly sustained: boolean;
  readonly logDir: string;
  readonly requestLogs: boolean;
  readonly profileDir: string | undefined;
  readonly dbCpu: (() => Promise<number>) | undefined;
  readonly progress: (text: string) => void;
}

const processCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Each device's first check-in, in full: it then holds its ETag. */
async function fullCheckins(baseUrl: string, devices: readonly SimDevice[]): Promise<{ etags: Map<string, string>; seconds: number; failures: number; sample: string | undefined }> {
  const etags = new Map<string, string>();
  let next = 0;
  let failures = 0;
  let sample: string | undefined;
  const started = performance.now();
  const worker = async () => {
    while (next < devices.length) {
      const d = devices[next++]!;
      try {
        const answer = await new DeviceApiClient({ serverUrl: baseUrl, deviceId: d.id, key: d.key, timeoutMs: 120_000 }).checkin();
        etags.set(d.id, answer.etag);
      } catch (e) {
        failures++;
        sample ??= `${d.id}: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
  };
  await Promise.all(Array.from({ length: WARMUP_CONCURRENCY }, worker));
  return { etags, seconds: (performance.now() - started) / 1000, failures, sample };
}

function load(baseUrl: string, pool: readonly { id: string; key: KeyObject; etag: string }[], seconds: number) {
  let next = 0;
  const path = `${DEVICE_API}/checkin`;
  return autocannon({
    url: baseUrl,
    connections: IDLE_CONNECTIONS,
    duration: seconds,
    timeout: 30,
    requests: [
      {
        method: 'GET',
        path,
        setupRequest: (request) => {
          const d = pool[next++ % pool.length]!;
          return { ...request, headers: { 'if-none-match': d.etag, [DEVICE_AUTH_HEADER]: signRequest(d.id, d.key, 'GET', path) } };
        },
      },
    ],
  });
}

export async function measureIdle(seeded: Seeded, o: IdleOptions): Promise<IdleResult> {
  // The first check-ins run on a server of their own, so that the measured servers' CPU and profiles hold idle check-ins only.
  const profile = (role: string) => (o.profileDir === undefined ? undefined : join(o.profileDir, role));
  const first = await startServe(seeded, { workers: 1, logDir: o.logDir, label: 'idle-first', requestLogs: o.requestLogs, profileDir: profile('server-first-checkins') });
  let warmup: IdleResult['warmup'];
  let pool: { id: string; key: KeyObject; etag: string }[];
  try {
    o.progress(`server up; waiting for its start-up re-evaluation (${(await settle(first)).toFixed(0)} s)`);
    o.progress(`${seeded.idle.length.toLocaleString('en-US')} devices: a first, full check-in each`);
    const w = await fullCheckins(seeded.baseUrl, seeded.idle);
    warmup = { seconds: w.seconds, perSecond: w.etags.size / w.seconds, failures: w.failures, sample: w.sample };
    pool = seeded.idle.filter((d) => w.etags.has(d.id)).map((d) => ({ id: d.id, key: d.key, etag: w.etags.get(d.id)! }));
    if (pool.length < IDLE_CONNECTIONS) throw new Error(`only ${pool.length} devices checked in (${w.sample ?? 'no error'})`);
  } finally {
    await stop(first);
  }
  const runs: IdleRun[] = [];
  for (const workers of o.workers) {
    const server = await startServe(seeded, { workers, logDir: o.logDir, label: `idle-${workers}w`, requestLogs: o.requestLogs, profileDir: profile(`server-${workers}w`) });
    try {
      o.progress(`server up (${workers} worker${workers > 1 ? 's' : ''}); waiting for its start-up re-evaluation (${(await settle(server)).toFixed(0)} s)`);
      o.progress(`idle check-ins, ${IDLE_CONNECTIONS} connections, ${workers} worker(s): ${RAMP_SECONDS} s ramp, ${o.seconds} s measured${o.sustained ? `, load until each worker has seen ${NONCE_LIMIT.toLocaleString('en-US')} requests, ${o.seconds} s measured again` : ''}`);
      let served = (await load(seeded.baseUrl, pool, RAMP_SECONDS)).requests.total;
      const measure = async (window: IdleRun['window']) => {
        const before = { server: cpuOf(server), client: processCpu(), db: await o.dbCpu?.() };
        const r = await load(seeded.baseUrl, pool, o.seconds);
        const after = { server: cpuOf(server), client: processCpu(), db: await o.dbCpu?.() };
        const statuses: Record<string, number> = {};
        for (const [code, { count }] of Object.entries(r.statusCodeStats)) statuses[code] = count;
        runs.push({
          workers,
          window,
          servedBefore: served,
          seconds: r.duration,
          perSecond: (statuses['304'] ?? 0) / r.duration,
          latencyMs: { p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max },
          statuses,
          errors: r.errors + r.timeouts,
          serverCores: (after.server - before.server) / r.duration,
          clientCores: (after.client - before.client) / r.duration,
          databaseCores: before.db === undefined || after.db === undefined ? undefined : (after.db - before.db) / r.duration,
          loadAverage: loadavg(),
        });
        served += r.requests.total;
        o.progress(`${window}: ${Math.round(runs.at(-1)!.perSecond).toLocaleString('en-US')}/s`);
      };
      await measure('fresh');
      if (!o.sustained) continue;
      // Requests spread evenly over the workers (the kernel balances node:cluster's connections), with a margin.
      // A nonce is forgotten 5 minutes after its timestamp, so below 200,000 per 5 minutes per worker the
      // memory never fills: the filling stops after 6 minutes whatever it reached.
      const target = Math.ceil(NONCE_LIMIT * workers * 1.1);
      const fillUntil = performance.now() + 360_000;
      while (served < target && performance.now() < fillUntil) {
        const rate = Math.max(100, runs.at(-1)!.perSecond);
        const seconds = Math.min(60, Math.ceil((target - served) / rate) + 2);
        o.progress(`filling the nonce memory: ${served.toLocaleString('en-US')} of ${target.toLocaleString('en-US')} requests; ${seconds} s more`);
        served += (await load(seeded.baseUrl, pool, seconds)).requests.total;
      }
      await measure('sustained');
    } finally {
      await stop(server);
    }
  }
  return { devices: pool.length, connections: IDLE_CONNECTIONS, warmup, runs };
}
