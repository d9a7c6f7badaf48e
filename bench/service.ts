/**
 * `npm run bench:service` — issue 4's management-service benchmark. Seeds
 * one tenant (bench/service/seed.ts: 100,000 users, 300,000 devices, 2,000
 * nested groups, 50 policies at --scale 1) on SQLite and on PostgreSQL, and
 * measures on each:
 *
 * - one device's effective state as a check-in pays for it (device row
 *   concurrently with the cached evaluator, which reads the audit head at
 *   most once a second; evaluation and desiredStateHash), p50/p99, with the
 *   CPU it costs and the machine's load; and with the head read each time;
 * - re-evaluating every device from nothing and after audited membership
 *   changes (snapshot rebuild and hash writes included);
 * - bulk PFX import (records/s) in batches of 100 through
 *   POST /api/v1/userPfxCertificates/import, and one a request through
 *   POST /api/v1/userPfxCertificates, with 1 and 8 clients;
 * - API latency under 64 concurrent clients (autocannon) on
 *   GET /api/v1/users?limit=50 and GET /api/v1/users/{id}/effectiveState;
 * - issue 4's targets with PASS/MISS.
 *
 * Seeding is not measured. Options: --scale F (default 1; 0.1 for a quick
 * run), --db sqlite|postgres|both, --checkins N (default 10,000),
 * --api-seconds N, --pfx N (records per import run), --only LIST (of
 * checkins, reevaluate, pfx, api), --cpu-prof DIR (profiles of the
 * in-process phases and of the server, with their top self time), --json.
 * Progress goes to stderr. Temporary files, the PostgreSQL schema and the
 * server are removed however the run ends.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { EvaluatorCache } from '../src/delivery/evaluator-cache.ts';
import { LOCAL_OPERATOR, createToken } from '../src/directory/access.ts';
import type { Store } from '../src/store/store.ts';
import { cleanupNow, stopChild, trackDir } from './pki/cleanup.ts';
import { selfTimes } from './pki/cpuprofile.ts';
import { type BenchDb, type DbName, postgresDb, sqliteDb } from './service/db.ts';
import { firstBuild, measureCheckins, measureReevaluation } from './service/evaluation.ts';
import { batchBodies, measureApi, measurePfxImport, preparePfxUploads, startServer } from './service/http.ts';
import { type DbReport, type Outcome, type ServiceReport, evaluateTargets, num, renderText } from './service/report.ts';
import { BULK_TABLE_NAMES, type Sizes, TENANT, bulkTables, seedResources, sizesFor, userId } from './service/seed.ts';

const USAGE = 'Usage: node bench/service.ts [--scale F] [--db sqlite|postgres|both] [--checkins N] [--api-seconds N] [--pfx N] [--only checkins,reevaluate,pfx,api] [--cpu-prof DIR] [--json]';
const SECTIONS = ['checkins', 'reevaluate', 'pfx', 'api'] as const;
const SKIPPED = { ok: false, error: 'skipped (--only)' } as const;
const API_CLIENTS = 64;
/** Records per POST …/import, as `keyfleet pfx import --manifest` sends them (src/cli/pfx.ts). */
const PFX_BATCH = 100;
/** How long a check-in may reuse the tenant's audit head read (EvaluatorCache.forTenant maxHeadAgeMs). */
const CHECKIN_MAX_HEAD_AGE_MS = 1000;
const BUDGET_MS = 40 * 60 * 1000;

function progress(text: string): void {
  process.stderr.write(`bench:service: ${text}\n`);
}

async function attempt<T>(what: string, fn: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    const error = e instanceof Error ? `${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ''}` : String(e);
    progress(`${what} failed: ${error}`);
    return { ok: false, error };
  }
}

interface Plan {
  readonly sizes: Sizes;
  readonly checkins: number;
  readonly apiSeconds: number;
  readonly pfxRecords: number;
  readonly only: ReadonlySet<string>;
  readonly profileDir: string | undefined;
}

/** Profiles `fn` in this process when --cpu-prof is on: the .cpuprofile goes to DIR, its top self time to the report. */
async function profiled<T>(plan: Plan, phase: string, profiles: DbReport['profiles'][number][], fn: () => Promise<T>): Promise<T> {
  if (plan.profileDir === undefined) return fn();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    const file = join(plan.profileDir, `${phase}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    profiles.push({ phase, file, top: selfTimes(file).slice(0, 15) });
  }
}

async function seed(db: BenchDb, sizes: Sizes): Promise<{ store: Store; seconds: number }> {
  const started = performance.now();
  await db.create();
  const first = await db.open();
  await first.ensureTenant(TENANT, 'Bench tenant');
  await first.close();
  await db.bulkLoad(bulkTables(sizes, Date.now()), (text) => progress(`${db.name}: ${text}`));
  const store = await db.open();
  await seedResources(store.forTenant(TENANT), sizes);
  await db.analyze([...BULK_TABLE_NAMES, 'resources', 'resource_assignments', 'audit_events', 'api_tokens']);
  return { store, seconds: (performance.now() - started) / 1000 };
}

async function benchDb(name: DbName, plan: Plan, scratch: string, dropLater: (db: BenchDb) => void): Promise<DbReport> {
  const db = name === 'sqlite' ? sqliteDb() : await postgresDb();
  dropLater(db);
  progress(`${db.label}: seeding`);
  const { store, seconds } = await seed(db, plan.sizes);
  const profiles: DbReport['profiles'][number][] = [];
  try {
    const tenant = store.forTenant(TENANT);
    const cache = new EvaluatorCache();
    progress(`${db.name}: first snapshot build`);
    const snapshot = await attempt('snapshot', () => firstBuild(tenant, cache));

    const checkins = plan.only.has('checkins')
      ? await attempt('check-ins', () => {
          progress(`${db.name}: ${num(plan.checkins)} check-ins`);
          return profiled(plan, `${db.name}-checkins`, profiles, () =>
            measureCheckins(tenant, cache, plan.sizes, plan.checkins, Math.min(500, plan.checkins), {
              maxHeadAgeMs: CHECKIN_MAX_HEAD_AGE_MS,
              ...(db.backendCpu ? { dbCpu: db.backendCpu } : {}),
              ...(db.ping ? { ping: db.ping } : {}),
            }),
          );
        })
      : SKIPPED;
    const reevaluation = plan.only.has('reevaluate')
      ? await attempt('re-evaluation', () => {
          progress(`${db.name}: re-evaluating ${num(plan.sizes.devices)} devices`);
          return profiled(plan, `${db.name}-reevaluate`, profiles, () => measureReevaluation(tenant, cache, plan.sizes, 1000));
        })
      : SKIPPED;

    let pfxImport: DbReport['pfxImport'] = SKIPPED;
    let api: DbReport['api'] = SKIPPED;
    if (plan.only.has('pfx') || plan.only.has('api')) {
      const token = (await createToken(tenant, LOCAL_OPERATOR, 'bench:service', 'administrator')).secret;
      const serverProfiles = plan.profileDir === undefined ? undefined : join(plan.profileDir, `${db.name}-server`);
      if (serverProfiles) mkdirSync(serverProfiles, { recursive: true });
      const server = await startServer(db.location, serverProfiles);
      try {
        if (plan.only.has('pfx')) {
          pfxImport = await attempt('PFX import', async () => {
            const runs = [];
            for (const [endpoint, connections] of [['batch', 1], ['batch', 8], ['single', 1], ['single', 8]] as const) {
              const bodies = preparePfxUploads(scratch, plan.pfxRecords, plan.sizes.users, `${db.name}/${endpoint}/${connections}`);
              const perRequest = endpoint === 'batch' ? PFX_BATCH : 1;
              progress(`${db.name}: importing ${num(bodies.length)} PFX records, ${perRequest} a request, ${connections} client(s)`);
              runs.push(await measurePfxImport(server, token, endpoint, endpoint === 'batch' ? batchBodies(bodies, PFX_BATCH) : bodies, perRequest, connections, db.backendCpu));
            }
            return runs;
          });
        }
        if (plan.only.has('api')) {
          api = await attempt('API latency', async () => {
            let n = 0;
            const users = plan.sizes.users;
            progress(`${db.name}: GET /api/v1/users?limit=50, ${API_CLIENTS} clients, ${plan.apiSeconds} s`);
            const list = await measureApi('GET /api/v1/users?limit=50', server, token, () => '/api/v1/users?limit=50', API_CLIENTS, plan.apiSeconds, 2);
            progress(`${db.name}: GET /api/v1/users/{id}/effectiveState, ${API_CLIENTS} clients, ${plan.apiSeconds} s`);
            // No warm-up here: while the endpoint rebuilds the group index per request, one would outlast the run.
            const effective = await measureApi('GET /api/v1/users/{id}/effectiveState', server, token, () => `/api/v1/users/${userId((n++ * 7919) % users)}/effectiveState`, API_CLIENTS, plan.apiSeconds, 0);
            return [list, effective];
          });
        }
      } finally {
        await stopChild(server.child, 15_000);
      }
      if (serverProfiles) {
        for (const f of readdirSync(serverProfiles).filter((x) => x.endsWith('.cpuprofile'))) {
          const file = join(serverProfiles, f);
          profiles.push({ phase: `${db.name}-server (PFX import and API)`, file, top: selfTimes(file).slice(0, 15) });
        }
      }
    }
    return { db: db.name, label: db.label, seedSeconds: seconds, snapshot, checkins, reevaluation, pfxImport, api, profiles };
  } finally {
    await store.close();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      scale: { type: 'string' },
      db: { type: 'string' },
      checkins: { type: 'string' },
      'api-seconds': { type: 'string' },
      pfx: { type: 'string' },
      only: { type: 'string' },
      'cpu-prof': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const scale = Number(values.scale ?? 1);
  if (!(scale > 0 && scale <= 2)) throw new Error(`--scale must be in (0, 2]\n${USAGE}`);
  const which = values.db ?? 'both';
  if (!['sqlite', 'postgres', 'both'].includes(which)) throw new Error(`--db must be sqlite, postgres or both\n${USAGE}`);
  const count = (v: string | undefined, fallback: number, what: string) => {
    const n = Number(v ?? fallback);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive integer\n${USAGE}`);
    return n;
  };
  const sizes = sizesFor(scale);
  const only = new Set(values.only === undefined ? SECTIONS : values.only.split(','));
  const unknown = [...only].filter((x) => !(SECTIONS as readonly string[]).includes(x));
  if (unknown.length > 0) throw new Error(`--only takes ${SECTIONS.join(', ')}; not ${unknown.join(', ')}\n${USAGE}`);
  const profileDir = values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']);
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const plan: Plan = {
    sizes,
    checkins: count(values.checkins, Math.min(10_000, sizes.devices), '--checkins'),
    apiSeconds: count(values['api-seconds'], scale >= 1 ? 10 : 5, '--api-seconds'),
    pfxRecords: count(values.pfx, scale >= 1 ? 3000 : 1000, '--pfx'),
    only,
    profileDir,
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
  const scratch = mkdtempSync(join(tmpdir(), 'keyfleet-bench-service-scratch-'));
  trackDir(scratch);
  const databases: DbReport[] = [];
  try {
    for (const name of which === 'both' ? (['sqlite', 'postgres'] as const) : [which as DbName]) {
      const outcome = await attempt(name, () => benchDb(name, plan, scratch, (db) => dbs.push(db)));
      if (outcome.ok) databases.push(outcome.value);
      else databases.push({ db: name, label: name, seedSeconds: NaN, snapshot: outcome, checkins: outcome, reevaluation: outcome, pfxImport: outcome, api: outcome, profiles: [] });
      await dropAll();
    }
  } finally {
    await dropAll();
    rmSync(scratch, { recursive: true, force: true });
  }

  const seeded = bulkTables(sizes, 0);
  const rowsOf = (table: string) => {
    let n = 0;
    for (const _ of seeded.find((t) => t.table === table)!.rows) n++;
    return n;
  };
  const report: ServiceReport = {
    meta: {
      date: new Date().toISOString(),
      scale,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      loadAverage: { start: loadStart, end: loadavg() },
      seconds: (performance.now() - started) / 1000,
    },
    sizes: { ...sizes, memberships: rowsOf('group_user_members'), nestingEdges: rowsOf('group_group_members'), pfxSeeded: rowsOf('user_pfx_certificates') },
    databases,
    targets: evaluateTargets(databases, sizes),
    notes: [
      ...(scale < 1 ? [`--scale ${scale}: the targets are the issue's for 300,000 devices; a scaled run only smoke-tests them`] : []),
      'Check-ins run one at a time in this process; on SQLite every query runs on this thread, on PostgreSQL each is a loopback round trip.',
      'The server is bench/service/server-child.ts: buildServer over the same database, as `keyfleet serve` mounts the admin API, without request logs; autocannon runs in this process on the same 2 cores.',
    ],
  };
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderText(report));
}

main().catch((e: unknown) => {
  process.stderr.write(`bench:service: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
