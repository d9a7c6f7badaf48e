/**
 * One delivery round (issue 5: "the time to get a new policy onto 10,000
 * devices end to end"): a fresh `keyfleet serve`, the set's simulated
 * devices (fleet-child.ts) listening and checked in, N `keyfleet connector
 * run` processes waiting; then the clock starts and the admin assigns the
 * trusted root, the SCEP signing profile, the PKCS-imported profile, Outlook
 * and the S/MIME policy to the set's group over the admin API. It stops when
 * every device holds its root, configuration, its own signing certificate
 * and all its user's imported certificates, each acknowledged by the
 * service — or when the round's time is up.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trackChild } from '../pki/cleanup.ts';
import { groupId } from '../service/seed.ts';
import type { FleetPlan, FleetResult, FromFleet, ToFleet } from './fleet-child.ts';
import { exportKey } from './keys.ts';
import { HISTORY } from './pfx.ts';
import { type Running, cpuOf, settle, startConnector, startServe, stop } from './processes.ts';
import type { SeededSet, Seeded } from './setup.ts';

const FLEET = fileURLToPath(new URL('./fleet-child.ts', import.meta.url));

export interface RolloutOptions {
  readonly connectors: number;
  /** Groups of the sets delivered before: they stay assigned, so their devices have nothing to do. */
  readonly earlierGroups: readonly string[];
  readonly concurrency: number;
  readonly timeoutMs: number;
  readonly logDir: string;
  readonly requestLogs: boolean;
  /** --cpu-prof: the server's, the connectors' and the devices' profiles go to subdirectories of this one. */
  readonly profileDir: string | undefined;
  readonly dbCpu: (() => Promise<number>) | undefined;
  readonly progress: (text: string) => void;
}

export interface RolloutResult {
  readonly connectors: number;
  readonly devices: number;
  readonly users: number;
  readonly importedPerUser: number;
  readonly done: number;
  /** Until the last device was done; NaN when some never were within the round's time. */
  readonly seconds: number;
  readonly percentiles: { readonly first: number; readonly p50: number; readonly p90: number; readonly p99: number };
  readonly warm: { readonly seconds: number; readonly streams: number; readonly errors: number };
  readonly assignSeconds: number;
  readonly cpu: { readonly server: number; readonly connectors: readonly number[]; readonly fleet: number; readonly database: number | undefined };
  readonly fleet: FleetResult | undefined;
  readonly loadAverage: readonly number[];
}

function waitFor<T extends FromFleet['type']>(child: ChildProcess, type: T, timeoutMs: number, onOther?: (m: FromFleet) => void): Promise<Extract<FromFleet, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`the device fleet sent no ${type} within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    const onMessage = (m: FromFleet) => {
      if (m.type === type) {
        cleanup();
        resolve(m as Extract<FromFleet, { type: T }>);
      } else onOther?.(m);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`the device fleet exited (${code ?? 'signal'}) before ${type}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function assign(seeded: Seeded, collection: string, id: string, include: readonly string[]): Promise<void> {
  const response = await fetch(`${seeded.baseUrl}/api/v1/${collection}/${encodeURIComponent(id)}/assignments`, {
    method: 'POST',
    headers: { authorization: `Bearer ${seeded.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ include, exclude: [] }),
  });
  if (!response.ok) throw new Error(`assigning ${collection}/${id} answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! / 1000;
}

export async function rollout(seeded: Seeded, set: SeededSet, o: RolloutOptions): Promise<RolloutResult> {
  const label = `${set.plan.name}-${o.connectors}c`;
  const sub = (role: string) => (o.profileDir === undefined ? undefined : join(o.profileDir, role));
  const server = await startServe(seeded, { workers: 1, logDir: o.logDir, label, requestLogs: o.requestLogs, profileDir: sub('server') });
  const connectors: Running[] = [];
  let fleet: ChildProcess | undefined;
  try {
    o.progress(`server up; waiting for its start-up re-evaluation of the tenant (${(await settle(server)).toFixed(0)} s)`);
    const planFile = join(o.logDir, `${seeded.db}-fleet-${label}.json`);
    const plan: FleetPlan = {
      serverUrl: seeded.baseUrl,
      devices: set.devices.map((d) => ({ id: d.id, key: exportKey(d.key), certificate: Buffer.from(d.certificate).toString('base64') })),
      scepKeys: seeded.scepKeys,
      expectedImported: HISTORY,
      concurrency: o.concurrency,
      timeoutMs: 120_000,
      quietMs: 15 * 60_000,
      retryMs: 30_000,
    };
    writeFileSync(planFile, JSON.stringify(plan));
    const log = openSync(join(o.logDir, `${seeded.db}-fleet-${label}.log`), 'a');
    // Ten thousand devices' state and streams outgrow V8's default heap limit on a small machine.
    const nodeArgs = ['--max-old-space-size=6144', ...(o.profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', sub('devices')!])];
    fleet = spawn(process.execPath, [...nodeArgs, FLEET, planFile], { stdio: ['ignore', log, log, 'ipc'] });
    closeSync(log);
    trackChild(fleet);
    const child = fleet;
    const tell = (m: ToFleet) => child.send(m);

    o.progress(`${set.devices.length.toLocaleString('en-US')} devices: push streams and a first check-in each`);
    tell({ type: 'warm' });
    const warmed = await waitFor(child, 'warmed', 30 * 60_000);
    if (warmed.errors > 0) o.progress(`warm-up errors: ${warmed.errors} (${warmed.samples.slice(0, 3).join('; ')})`);
    await settle(server);
    for (let n = 0; n < o.connectors; n++) connectors.push(startConnector(seeded, n, o.logDir, label, sub('connectors')));
    await new Promise((resolve) => setTimeout(resolve, 2000));

    const cpu0 = { server: cpuOf(server), connectors: connectors.map(cpuOf), db: await o.dbCpu?.() };
    const t0 = Date.now();
    tell({ type: 'go', t0 });
    const groups = [...o.earlierGroups, set.plan.groupId];
    const r = seeded.resources;
    o.progress(`t0: the admin assigns root, SCEP and PKCS profiles, Outlook and the policy to ${groups.join(', ')}`);
    for (const id of [r.rootProfileId, r.scepProfileId, r.pkcsProfileId]) await assign(seeded, 'profiles', id, groups);
    // Outlook stays assigned to everyone of the seeded tenant (bench/service/seed.ts assigns it to group 0).
    await assign(seeded, 'apps', r.appId, [groupId(0), ...groups]);
    await assign(seeded, 'policies', r.policyId, groups);
    const assignSeconds = (Date.now() - t0) / 1000;

    let result: FleetResult;
    try {
      result = (await waitFor(child, 'done', o.timeoutMs, (m) => {
        if (m.type === 'progress') o.progress(`+${Math.round((Date.now() - t0) / 1000)} s: ${m.done.toLocaleString('en-US')}/${m.devices.toLocaleString('en-US')} devices done, ${m.checkins.toLocaleString('en-US')} check-ins, ${m.errors} errors`);
      })).result;
    } catch (e) {
      o.progress(`${e instanceof Error ? e.message : String(e)}; taking the result as it stands`);
      tell({ type: 'finish' });
      result = (await waitFor(child, 'done', 60_000)).result;
    }
    const cpu = {
      server: cpuOf(server) - cpu0.server,
      connectors: connectors.map((c, i) => cpuOf(c) - cpu0.connectors[i]!),
      fleet: result.cpuSeconds,
      database: cpu0.db === undefined ? undefined : (await o.dbCpu!()) - cpu0.db,
    };
    const complete = result.done === result.devices;
    return {
      connectors: o.connectors,
      devices: set.devices.length,
      users: set.plan.users,
      importedPerUser: HISTORY,
      done: result.done,
      seconds: complete ? result.doneMs.at(-1)! / 1000 : NaN,
      percentiles: { first: percentile(result.doneMs, 0), p50: percentile(result.doneMs, 50), p90: percentile(result.doneMs, 90), p99: percentile(result.doneMs, 99) },
      warm: { seconds: warmed.seconds, streams: warmed.streams, errors: warmed.errors },
      assignSeconds,
      cpu,
      fleet: result,
      loadAverage: loadavg(),
    };
  } finally {
    for (const c of connectors) await stop(c);
    if (fleet !== undefined && fleet.exitCode === null) {
      const exited = new Promise<void>((resolve) => fleet!.once('exit', () => resolve()));
      try {
        fleet.send({ type: 'stop' } satisfies ToFleet);
      } catch {
        fleet.kill('SIGTERM');
      }
      const timer = setTimeout(() => fleet!.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    await stop(server);
  }
}
