/**
 * The simulated devices of one delivery round, in a process of their own
 * (its CPU is reported beside the server's):
 *
 *   node bench/delivery/fleet-child.ts PLAN.json
 *
 * Driven over IPC by rollout.ts: `warm` opens every device's push stream
 * and has each check in once (each then holds its ETag, as an enrolled,
 * idle device does); `go` starts the clock — from then on devices act on
 * pushes and on their timer until each holds everything the policy sends;
 * `stop` closes the streams and exits. Progress and the result go back as
 * messages.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { decodeCertificate } from '../../src/x509/certificate.ts';
import { Gate, LeanDevice, newCounters, noteError } from './lean-device.ts';
import { type EventStream, openEventStream } from './sse.ts';

export interface FleetPlan {
  readonly serverUrl: string;
  readonly devices: readonly { readonly id: string; readonly key: string; readonly certificate: string }[];
  readonly scepKeys: readonly string[];
  readonly expectedImported: number;
  /** Devices checking in at once. */
  readonly concurrency: number;
  readonly timeoutMs: number;
  /** A device still waiting checks in when it has been quiet this long: the agent's timer (15 minutes). */
  readonly quietMs: number;
  /**
   * A device whose last check-in failed tries again after this long. The agent would wait for the next
   * push or its timer; the bench retries sooner so that one refused request does not stall a round for
   * 15 minutes — every failure is counted and its message reported.
   */
  readonly retryMs: number;
}

/** `finish` asks for the result as it stands (the round ran out of time). */
export type ToFleet = { readonly type: 'warm' } | { readonly type: 'go'; readonly t0: number } | { readonly type: 'finish' } | { readonly type: 'stop' };

export interface FleetResult {
  readonly devices: number;
  readonly done: number;
  /** ms after t0 at which each finished device was done, ascending. */
  readonly doneMs: readonly number[];
  readonly counters: ReturnType<typeof newCounters>;
  readonly streams: { readonly open: number; readonly reconnects: number };
  readonly cpuSeconds: number;
  readonly maxRssMb: number;
}

export type FromFleet =
  | { readonly type: 'warmed'; readonly seconds: number; readonly streams: number; readonly errors: number; readonly samples: readonly string[] }
  | { readonly type: 'progress'; readonly done: number; readonly devices: number; readonly checkins: number; readonly errors: number }
  | { readonly type: 'done'; readonly result: FleetResult };

const send = (m: FromFleet) => process.send!(m);
const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

const plan = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as FleetPlan;
const base = new URL(plan.serverUrl);
const key = (b64: string): KeyObject => createPrivateKey({ key: Buffer.from(b64, 'base64'), format: 'der', type: 'pkcs8' });
const scepKeys = plan.scepKeys.map(key);
const devices = plan.devices.map(
  (d, i) =>
    new LeanDevice({
      serverUrl: plan.serverUrl, id: d.id, key: key(d.key), certificate: decodeCertificate(Buffer.from(d.certificate, 'base64')),
      scepKey: scepKeys[i % scepKeys.length]!, expectedImported: plan.expectedImported, timeoutMs: plan.timeoutMs,
    }),
);
const gate = new Gate(plan.concurrency);
const counters = newCounters();
const streams = new Map<string, EventStream>();
let open = 0;
let reconnects = 0;
let stopping = false;
let t0 = 0;
let cpuAtGo = 0;
let timer: NodeJS.Timeout | undefined;

function connect(device: LeanDevice, onFirstOpen?: () => void): void {
  let opened = false;
  streams.set(device.id, openEventStream(base, device.id, device.key, {
    onOpen: () => {
      opened = true;
      open++;
      onFirstOpen?.();
    },
    onEvent: (event) => {
      if (event.type === 'changed' && event.version !== device.etag && t0 > 0) void device.trigger(gate, counters, event.version);
    },
    onEnd: (why) => {
      if (opened) open--;
      if (stopping) return;
      reconnects++;
      if (!opened) noteError(counters, `${device.id}: event stream: ${why}`);
      // As the agent does: reconnect after a pause, then check in (a change may have come meanwhile).
      setTimeout(() => {
        if (stopping) return;
        connect(device, () => {
          if (t0 > 0) void device.trigger(gate, counters);
        });
      }, 1000 + Math.random() * 2000);
    },
  }));
}

async function warm(): Promise<void> {
  const started = performance.now();
  // Streams first (a device listens before it asks), in batches so the server's accept queue keeps up.
  for (let i = 0; i < devices.length; i += 200) {
    const batch = devices.slice(i, i + 200);
    await Promise.all(batch.map((d) => new Promise<void>((resolve) => {
      connect(d, resolve);
      setTimeout(resolve, 30_000);
    })));
  }
  await Promise.all(devices.map((d) => d.trigger(gate, counters)));
  send({ type: 'warmed', seconds: (performance.now() - started) / 1000, streams: open, errors: counters.errors, samples: counters.samples.slice() });
}

function go(at: number): void {
  t0 = at;
  cpuAtGo = cpu();
  counters.checkins200 = counters.checkins304 = counters.errors = 0;
  counters.samples.length = 0;
  let lastProgress = 0;
  timer = setInterval(() => {
    const now = Date.now();
    let done = 0;
    for (const d of devices) {
      if (d.doneAt !== undefined) done++;
      else if (!d.busy && now - Math.max(d.lastActivity, t0) >= (d.failed ? plan.retryMs : plan.quietMs)) void d.trigger(gate, counters);
    }
    if (now - lastProgress >= 5000) {
      lastProgress = now;
      send({ type: 'progress', done, devices: devices.length, checkins: counters.checkins200 + counters.checkins304, errors: counters.errors });
    }
    if (done === devices.length) finish();
  }, 250);
}

let finished = false;
function finish(): void {
  clearInterval(timer);
  if (finished) return;
  finished = true;
  const doneMs = devices.filter((d) => d.doneAt !== undefined).map((d) => d.doneAt! - t0).sort((a, b) => a - b);
  send({
    type: 'done',
    result: {
      devices: devices.length, done: doneMs.length, doneMs, counters, streams: { open, reconnects },
      cpuSeconds: cpu() - cpuAtGo, maxRssMb: process.resourceUsage().maxRSS / 1024,
    },
  });
}

process.on('message', (m: ToFleet) => {
  if (m.type === 'warm') warm().catch((e: unknown) => { noteError(counters, `warm-up: ${String(e)}`); send({ type: 'warmed', seconds: NaN, streams: open, errors: counters.errors, samples: counters.samples }); });
  else if (m.type === 'go') go(m.t0);
  else if (m.type === 'finish') finish();
  else if (m.type === 'stop') {
    stopping = true;
    clearInterval(timer);
    for (const s of streams.values()) s.close();
    process.disconnect();
    setTimeout(() => process.exit(0), 200).unref();
  }
});
