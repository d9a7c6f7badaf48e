/**
 * `npm run bench:delivery` — issue 5's delivery benchmark, on SQLite and on
 * PostgreSQL (a fresh schema of `test` on 127.0.0.1:5432, dropped after),
 * with bench:service's tenant (100,000 users, 300,000 devices, 2,000 nested
 * groups, 50 policies at --scale 1) under `keyfleet serve`'s tenant:
 *
 * 1. Idle check-ins per second with 256 concurrent devices: a real
 *    `keyfleet serve` (1 worker, then --workers 2), seeded devices that
 *    checked in once in full sending signed If-None-Match check-ins that
 *    get 304 (bench/delivery/idle.ts), beside the server's and the load
 *    generator's CPU.
 * 2. The time to get a new policy onto 10,000 devices end to end, with one
 *    and with two `keyfleet connector run` processes (bench/delivery/rollout.ts):
 *    the admin assigns SCEP signing + imported encryption history + Outlook
 *    configuration; the clock runs until every device has SCEP-enrolled its
 *    signing certificate, installed all its user's imported certificates
 *    and had each install acknowledged. Devices are lean clients of the
 *    protocol (bench/delivery/lean-device.ts) in a process of their own.
 *
 * Keys, identity certificates, PKCS#12 files and the tenant are made first
 * and not measured (bench/delivery/setup.ts). Options: --scale F (0.1 for a
 * quick run), --db sqlite|postgres|both, --only delivery,idle, --connectors
 * 1,2, --workers 1,2 (idle runs), --idle-seconds N, --idle-devices N,
 * --[no-]sustained (measure idle check-ins again once the server's nonce
 * memory is full; on by default at --scale 1), --devices N (per delivery
 * round), --concurrency N (devices checking in at once, default 256),
 * --round-minutes N (default 60), --cpu-prof DIR, --logs DIR (kept; with
 * --server-logs the server logs every request and every 500's cause), --json.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { cleanupNow, trackDir } from './pki/cleanup.ts';
import { selfTimes } from './pki/cpuprofile.ts';
import { type BenchDb, type DbName, postgresDb, sqliteDb } from './service/db.ts';
import { sizesFor } from './service/seed.ts';
import { measureIdle } from './delivery/idle.ts';
import { HISTORY } from './delivery/pfx.ts';
import { type DbReport, type DeliveryReport, type Outcome, type ProfileSummary, evaluateTargets, renderText } from './delivery/report.ts';
import { type RolloutResult, rollout } from './delivery/rollout.ts';
import { seedDelivery } from './delivery/setup.ts';
import { type SetName, setPlan } from './delivery/tenant.ts';

const USAGE = 'Usage: node bench/delivery.ts [--scale F] [--db sqlite|postgres|both] [--only delivery,idle] [--connectors 1,2] [--workers 1,2] [--idle-seconds N] [--[no-]sustained] [--idle-devices N] [--devices N] [--concurrency N] [--round-minutes N] [--cpu-prof DIR] [--logs DIR] [--server-logs] [--json]';
const SECTIONS = ['delivery', 'idle'] as const;
const BUDGET_MS = 4 * 60 * 60 * 1000;

function progress(text: string): void {
  process.stderr.write(`bench:delivery: ${new Date().toISOString().slice(11, 19)} ${text}\n`);
}

async function attempt<T>(what: string, fn: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    const error = e instanceof Error ? `${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ''}` : String(e);
    progress(`${what} failed: ${error}`);
    if (e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    return { ok: false, error };
  }
}

interface Plan {
  readonly scale: number;
  readonly only: ReadonlySet<string>;
  readonly connectors: readonly number[];
  readonly workers: readonly number[];
  readonly idleSeconds: number;
  readonly sustained: boolean;
  readonly idleDevices: number;
  readonly deliveryDevices: number;
  readonly concurrency: number;
  readonly roundMs: number;
  readonly profileDir: string | undefined;
  readonly logDir: string;
  readonly requestLogs: boolean;
}

function profilesIn(dir: string, phase: string): ProfileSummary[] {
  const out: ProfileSummary[] = [];
  let roles: string[];
  try {
    roles = readdirSync(dir);
  } catch {
    return out;
  }
  for (const role of roles) {
    for (const f of readdirSync(join(dir, role)).filter((x) => x.endsWith('.cpuprofile'))) {
      const file = join(dir, role, f);
      out.push({ phase: `${phase}, ${role}`, file, top: selfTimes(file).slice(0, 15) });
    }
  }
  return out;
}

async function benchDb(name: DbName, plan: Plan, scratch: string, dropLater: (db: BenchDb) => void): Promise<DbReport> {
  const db = name === 'sqlite' ? sqliteDb() : await postgresDb();
  dropLater(db);
  const sets: SetName[] = plan.only.has('delivery') ? (['a', 'b'] as const).slice(0, plan.connectors.length) : [];
  const seeded = await seedDelivery(db, { sizes: sizesFor(plan.scale), deliveryDevices: plan.deliveryDevices, sets, idleDevices: plan.idleDevices, scratch, progress });
  const dbCpu = db.backendCpu
    ? async () => {
        let sum = 0;
        for (const v of (await db.backendCpu!()).values()) sum += v;
        return sum;
      }
    : undefined;
  const profileRoot = (phase: string) => (plan.profileDir === undefined ? undefined : join(plan.profileDir, `${name}-${phase}`));
  const profiles: ProfileSummary[] = [];
  const rollouts: Outcome<RolloutResult>[] = [];
  const earlier: string[] = [];
  for (const [i, connectors] of plan.connectors.entries()) {
    if (!plan.only.has('delivery')) break;
    const set = seeded.sets.get(sets[i]!)!;
    const phase = `delivery-${connectors}c`;
    progress(`${name}: a new policy onto ${set.devices.length.toLocaleString('en-US')} devices with ${connectors} connector(s)`);
    rollouts.push(
      await attempt(`${name} ${phase}`, () =>
        rollout(seeded, set, { connectors, earlierGroups: earlier, concurrency: plan.concurrency, timeoutMs: plan.roundMs, logDir: plan.logDir, requestLogs: plan.requestLogs, profileDir: profileRoot(phase), dbCpu, progress: (t) => progress(`${name} ${phase}: ${t}`) }),
      ),
    );
    earlier.push(set.plan.groupId);
    const dir = profileRoot(phase);
    if (dir) profiles.push(...profilesIn(dir, `${name} ${phase}`));
  }
  const idle = plan.only.has('idle')
    ? await attempt(`${name} idle`, () =>
        measureIdle(seeded, { workers: plan.workers, seconds: plan.idleSeconds, sustained: plan.sustained, logDir: plan.logDir, requestLogs: plan.requestLogs, profileDir: profileRoot('idle'), dbCpu, progress: (t) => progress(`${name} idle: ${t}`) }),
      )
    : undefined;
  const idleDir = profileRoot('idle');
  if (idleDir) profiles.push(...profilesIn(idleDir, `${name} idle`));
  return { db: name, label: db.label, setup: seeded.steps, rollouts, idle, profiles };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scale: { type: 'string' }, db: { type: 'string' }, only: { type: 'string' }, connectors: { type: 'string' }, workers: { type: 'string' },
      'idle-seconds': { type: 'string' }, 'idle-devices': { type: 'string' }, devices: { type: 'string' }, concurrency: { type: 'string' },
      'round-minutes': { type: 'string' }, sustained: { type: 'boolean' }, 'server-logs': { type: 'boolean' }, 'cpu-prof': { type: 'string' }, logs: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' },
    },
    strict: true,
    allowNegative: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const scale = Number(values.scale ?? 1);
  if (!(scale > 0 && scale <= 2)) throw new Error(`--scale must be in (0, 2]\n${USAGE}`);
  const which = values.db ?? 'both';
  if (!['sqlite', 'postgres', 'both'].includes(which)) throw new Error(`--db must be sqlite, postgres or both\n${USAGE}`);
  const count = (v: string | undefined, fallback: number, what: string, min = 1) => {
    const n = Number(v ?? fallback);
    if (!Number.isInteger(n) || n < min) throw new Error(`${what} must be an integer of at least ${min}\n${USAGE}`);
    return n;
  };
  const list = (v: string | undefined, fallback: string, what: string, allowed: readonly number[]) => {
    const xs = (v ?? fallback).split(',').map(Number);
    if (xs.some((x) => !allowed.includes(x))) throw new Error(`${what} takes ${allowed.join(', ')}\n${USAGE}`);
    return xs;
  };
  const only = new Set(values.only === undefined ? SECTIONS : values.only.split(','));
  const unknown = [...only].filter((x) => !(SECTIONS as readonly string[]).includes(x));
  if (unknown.length > 0) throw new Error(`--only takes ${SECTIONS.join(', ')}; not ${unknown.join(', ')}\n${USAGE}`);
  const profileDir = values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']);
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), 'keyfleet-bench-delivery-'));
  trackDir(scratch);
  const logDir = values.logs === undefined ? join(scratch, 'logs') : resolve(values.logs);
  mkdirSync(logDir, { recursive: true });
  const plan: Plan = {
    scale,
    only,
    connectors: list(values.connectors, '1,2', '--connectors', [1, 2]),
    workers: list(values.workers, '1,2', '--workers', [1, 2, 3, 4]),
    idleSeconds: count(values['idle-seconds'], scale >= 1 ? 30 : 10, '--idle-seconds'),
    sustained: values.sustained ?? scale >= 1,
    idleDevices: count(values['idle-devices'], Math.max(1024, Math.round(10_000 * scale)), '--idle-devices', 256),
    deliveryDevices: count(values.devices, Math.max(30, Math.round(10_000 * scale)), '--devices'),
    concurrency: count(values.concurrency, 256, '--concurrency'),
    roundMs: count(values['round-minutes'], 60, '--round-minutes') * 60_000,
    profileDir,
    logDir,
    requestLogs: values['server-logs'] === true,
  };

  const dbs: BenchDb[] = [];
  const dropAll = async () => {
    for (const db of dbs.splice(0)) await db.drop().catch((e: unknown) => progress(`could not drop ${db.label}: ${String(e)}`));
  };
  process.once('exit', cleanupNow);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      progress(`${signal}, cleaning up`);
      cleanupNow();
      void dropAll().finally(() => process.exit(130));
    });
  }
  const watchdog = setTimeout(() => {
    progress(`the run exceeded its ${BUDGET_MS / 60_000} min budget; cleaning up`);
    cleanupNow();
    void dropAll().finally(() => process.exit(124));
  }, BUDGET_MS);
  watchdog.unref();

  const started = performance.now();
  const loadStart = loadavg();
  const databases: DbReport[] = [];
  try {
    for (const name of which === 'both' ? (['sqlite', 'postgres'] as const) : [which as DbName]) {
      const outcome = await attempt(name, () => benchDb(name, plan, scratch, (db) => dbs.push(db)));
      databases.push(outcome.ok ? outcome.value : { db: name, label: name, setup: {}, rollouts: [{ ok: false, error: outcome.error }], idle: outcome, profiles: [] });
      await dropAll();
    }
  } finally {
    await dropAll();
    if (values.logs === undefined) rmSync(scratch, { recursive: true, force: true });
  }

  const sizes = sizesFor(scale);
  const report: DeliveryReport = {
    meta: {
      date: new Date().toISOString(), scale, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', node: process.version,
      loadAverage: { start: loadStart, end: loadavg() }, seconds: (performance.now() - started) / 1000,
    },
    sizes: {
      ...sizes, deliveryDevices: plan.deliveryDevices, deliveryUsers: setPlan('a', plan.deliveryDevices).users, importedPerUser: HISTORY, idleDevices: plan.idleDevices,
    },
    databases,
    targets: evaluateTargets(databases),
    notes: [
      ...(scale < 1 ? [`--scale ${scale}: the targets are the issue's for 300,000 devices and 10,000 per round; a scaled run only smoke-tests them`] : []),
      'The server is `keyfleet serve` (SCEP, OCSP, admin, device and connector APIs; --quiet) on the seeded data; the connectors are `keyfleet connector run` (RSA-4096 key, default concurrency 16). Everything shares the same 2 cores with the load generator and the simulated devices, whose CPU is shown beside the server\'s.',
      'Delivery rounds use a fresh set of devices each (set A: 1 connector, set B: 2), one server worker: push (server-sent events) reaches only streams of the process that publishes, as docs/delivery.md says. Devices check in on push and on the agent\'s 15-minute timer; one whose check-in failed tries again after 30 s (every failure is counted and reported).',
      'Simulated devices are lean clients of the protocol (the agent\'s DeviceApiClient, SCEP client and delivery checks, state in memory, no keystore files), at most --concurrency of them checking in at once; SCEP keys come from a pool of 32 pre-made RSA-2048 keys, each device signs its CSR with the challenge it was given at run time.',
      'With --workers 2 each worker keeps its own nonce memory (a replay could reach the other worker within the 5-minute window) and its own push hub.',
    ],
  };
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderText(report));
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:delivery: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
