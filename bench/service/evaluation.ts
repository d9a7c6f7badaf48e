/**
 * The in-process measurements of bench:service, on the seeded tenant:
 *
 * - one device's effective state as a check-in pays for it: the device row
 *   (DeviceStore.getDevice), the tenant's evaluator (EvaluatorCache, one
 *   audit head() query) and the evaluation with its desiredStateHash;
 *   p50/p99 over random devices, each part timed too;
 * - re-evaluating every device: once from nothing (every hash written), and
 *   after audited membership changes — one user added to an assigned group,
 *   and one group nested into an assigned group — each including the
 *   snapshot rebuild and the writes of the hashes that changed.
 */
import { Directory } from '../../src/directory/directory.ts';
import { LOCAL_OPERATOR } from '../../src/directory/access.ts';
import type { EvaluatorCache } from '../../src/delivery/evaluator-cache.ts';
import type { TenantEvaluator } from '../../src/delivery/evaluator.ts';
import { reevaluateAllDevices } from '../../src/delivery/reevaluate.ts';
import type { TenantStore } from '../../src/store/store.ts';
import { type Sizes, deviceId, groupId, parentOf, policyId, userId } from './seed.ts';

export interface Latency {
  readonly count: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export function latency(times: readonly number[]): Latency {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
  return { count: sorted.length, meanMs: sorted.reduce((a, b) => a + b, 0) / sorted.length, p50Ms: at(0.5), p90Ms: at(0.9), p99Ms: at(0.99), maxMs: sorted[sorted.length - 1] ?? NaN };
}

export interface SnapshotBuild {
  readonly ms: number;
  readonly stats: TenantEvaluator['stats'];
  /** This process's heap in use right after the build (the evaluator and the build's not yet collected garbage). */
  readonly heapMb: number;
}

/** The first evaluator of the tenant: what the first check-in after a start pays. */
export async function firstBuild(tenant: TenantStore, cache: EvaluatorCache): Promise<SnapshotBuild> {
  const started = performance.now();
  const evaluator = await cache.forTenant(tenant);
  const ms = performance.now() - started;
  return { ms, stats: evaluator.stats, heapMb: process.memoryUsage().heapUsed / 2 ** 20 };
}

export interface CheckinMeasurement {
  /** Device row, then evaluator, then evaluation. */
  readonly total: Latency;
  readonly getDevice: Latency;
  readonly evaluator: Latency;
  readonly evaluate: Latency;
  /** The device row and the evaluator fetched concurrently (two connections on PostgreSQL), then evaluation. */
  readonly concurrent: Latency;
  /** CPU time of this process per check-in (user + system), the part other load cannot stretch. */
  readonly cpuMsPerCheckin: number;
  /** The best p99 of five consecutive windows: other processes only ever slow a window down. */
  readonly bestWindowP99Ms: number;
  readonly concurrentBestWindowP99Ms: number;
}

/**
 * `count` check-ins of random devices after `warmup` unmeasured ones, one at a time, alternating the two
 * shapes so that both see the same load. The evaluator is asked as a check-in should ask (allowStale).
 */
export async function measureCheckins(tenant: TenantStore, cache: EvaluatorCache, sizes: Sizes, count: number, warmup: number): Promise<CheckinMeasurement> {
  const total: number[] = [];
  const getDevice: number[] = [];
  const evaluator: number[] = [];
  const evaluate: number[] = [];
  const concurrent: number[] = [];
  let seed = 12345;
  const next = () => deviceId((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % sizes.devices);
  const check = (hash: string) => {
    if (hash.length !== 64) throw new Error('no desired-state hash');
  };
  let cpu = 0;
  for (let i = 0; i < warmup + count; i++) {
    const cpuStart = process.cpuUsage();
    const id = next();
    const t0 = performance.now();
    const device = await tenant.devices.getDevice(id);
    const t1 = performance.now();
    const ev = await cache.forTenant(tenant, { allowStale: true });
    const t2 = performance.now();
    if (device === undefined) throw new Error(`device ${id} is missing`);
    check(ev.evaluateDevice(device).desiredStateHash);
    const t3 = performance.now();

    const other = next();
    const c0 = performance.now();
    const [d, e] = await Promise.all([tenant.devices.getDevice(other), cache.forTenant(tenant, { allowStale: true })]);
    if (d === undefined) throw new Error(`device ${other} is missing`);
    check(e.evaluateDevice(d).desiredStateHash);
    const c1 = performance.now();
    const used = process.cpuUsage(cpuStart);
    if (i < warmup) continue;
    cpu += (used.user + used.system) / 1000;
    total.push(t3 - t0);
    getDevice.push(t1 - t0);
    evaluator.push(t2 - t1);
    evaluate.push(t3 - t2);
    concurrent.push(c1 - c0);
  }
  return {
    total: latency(total),
    getDevice: latency(getDevice),
    evaluator: latency(evaluator),
    evaluate: latency(evaluate),
    concurrent: latency(concurrent),
    cpuMsPerCheckin: cpu / (2 * count),
    bestWindowP99Ms: bestWindowP99(total),
    concurrentBestWindowP99Ms: bestWindowP99(concurrent),
  };
}

function bestWindowP99(times: readonly number[]): number {
  const per = Math.ceil(times.length / 5);
  let best = Infinity;
  for (let i = 0; i < times.length; i += per) best = Math.min(best, latency(times.slice(i, i + per)).p99Ms);
  return best;
}

export interface ReevaluationRun {
  readonly label: string;
  readonly devices: number;
  readonly changed: number;
  /** The whole run: audited change excluded, snapshot rebuild and re-evaluation included. */
  readonly ms: number;
  readonly rebuildMs: number;
  readonly evaluateAndWriteMs: number;
}

async function run(label: string, tenant: TenantStore, cache: EvaluatorCache, batchSize: number): Promise<ReevaluationRun> {
  const started = performance.now();
  const evaluator = await cache.forTenant(tenant);
  const rebuildMs = performance.now() - started;
  const result = await reevaluateAllDevices(tenant, evaluator, { batchSize });
  return { label, devices: result.devices, changed: result.changed.length, ms: performance.now() - started, rebuildMs, evaluateAndWriteMs: result.ms };
}

/**
 * From nothing (no device has a hash yet), then after each audited change. The changes are chosen to reach
 * someone: a user with an Exchange Online mailbox not yet under policy pol-00's first group, and a leaf group
 * nested into that group from below (a group with a larger index is never its ancestor, so no cycle).
 */
export async function measureReevaluation(tenant: TenantStore, cache: EvaluatorCache, sizes: Sizes, batchSize: number): Promise<ReevaluationRun[]> {
  const runs: ReevaluationRun[] = [];
  runs.push(await run('first run (every hash written)', tenant, cache, batchSize));
  runs.push(await run('again, nothing changed', tenant, cache, batchSize));

  const directory = new Directory(tenant, LOCAL_OPERATOR);
  const target = (await tenant.resources.listAssignments('policy', policyId(0))).find((a) => a.intent === 'include')!.groupId;
  const before = await cache.forTenant(tenant);
  let user: string | undefined;
  for (let u = 1; u < sizes.users && user === undefined; u += 7) {
    const e = before.evaluateUser(userId(u));
    if (!e.state.policies.includes(policyId(0)) && e.policies.every((p) => p.status === 'applicable')) user = userId(u);
  }
  if (user === undefined) throw new Error('no user to add');
  await directory.addMember(target, { type: 'user', id: user });
  runs.push(await run(`after adding one user to group ${target}`, tenant, cache, batchSize));

  const targetIndex = Number(target.slice(1));
  let leaf = sizes.groups - 1;
  while (leaf > targetIndex && (isAncestor(target, leaf) || !(await directory.addMember(target, { type: 'group', id: groupId(leaf) })))) leaf--;
  if (leaf <= targetIndex) throw new Error(`no group to nest into ${target}`);
  runs.push(await run(`after nesting group ${groupId(leaf)} into ${target}`, tenant, cache, batchSize));
  return runs;
}

/** Whether `group` is `leaf`'s ancestor in the tree (second parents are caught by addMember answering false). */
function isAncestor(group: string, leaf: number): boolean {
  for (let g = leaf; g > 0; g = parentOf(g)) if (groupId(parentOf(g)) === group) return true;
  return false;
}
