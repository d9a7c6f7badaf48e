/**
 * The in-process measurements of bench:service, on the seeded tenant:
 *
 * - one device's effective state as a check-in pays for it: the device row
 *   (DeviceStore.getDevice) concurrently with the tenant's evaluator
 *   (EvaluatorCache with allowStale and maxHeadAgeMs: at most one audit
 *   head() query a second), then the evaluation with its desiredStateHash;
 *   p50/p99 over random devices, with the CPU each check-in costs this
 *   process and the database, and the machine's load while it ran; beside
 *   it the same with the head read every time, each part timed, and on
 *   PostgreSQL a bare `select 1` round trip in the same windows (the floor
 *   any query stands on, load included);
 * - re-evaluating every device: once from nothing (every hash written), and
 *   after audited membership changes — one user added to an assigned group,
 *   and one group nested into an assigned group — each including the
 *   snapshot rebuild and the writes of the hashes that changed.
 */
import { readFileSync } from 'node:fs';
import { Directory } from '../../src/directory/directory.ts';
import { LOCAL_OPERATOR } from '../../src/directory/access.ts';
import type { EvaluatorCache } from '../../src/delivery/evaluator-cache.ts';
import type { TenantEvaluator } from '../../src/delivery/evaluator.ts';
import { reevaluateAllDevices } from '../../src/delivery/reevaluate.ts';
import type { ManagedDeviceRecord } from '../../src/store/devices.ts';
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

/** CPU seconds per process id (the database's own processes: PostgreSQL backends), read before and after. */
export type CpuSnapshot = () => Promise<ReadonlyMap<number, number>>;

/** How the machine was while a shape ran: what other processes can take, and what was ours. */
export interface CheckinCost {
  /** CPU time of this process per check-in (user + system). */
  readonly cpuMs: number;
  /** CPU time of the database's processes per check-in (PostgreSQL's backends; undefined on SQLite, whose work is in this process). */
  readonly dbCpuMs: number | undefined;
  /** Wall time per check-in: what it would be on an idle machine is near cpuMs + dbCpuMs (plus loopback wake-ups). */
  readonly wallMs: number;
  /** Share of both cores busy (everyone's work) while the shape ran, from /proc/stat. */
  readonly machineBusy: number | undefined;
}

export interface CheckinShape {
  readonly total: Latency;
  /** The best p99 of five consecutive windows: other processes only ever slow a window down. */
  readonly bestWindowP99Ms: number;
  readonly cost: CheckinCost;
}

export interface CheckinMeasurement {
  /**
   * As the device check-in asks (src/delivery/evaluator-cache.ts): getDevice concurrently with
   * forTenant({ allowStale, maxHeadAgeMs }), which reads the audit head at most once per maxHeadAgeMs, then
   * the evaluation and its desiredStateHash.
   */
  readonly checkin: CheckinShape & { readonly getDevice: Latency; readonly evaluate: Latency };
  readonly maxHeadAgeMs: number;
  /** For comparison: the audit head read on every check-in (maxHeadAgeMs 0), and each part in turn. */
  readonly headEveryTime: CheckinShape & { readonly getDevice: Latency; readonly evaluator: Latency; readonly evaluate: Latency };
  /** A bare database round trip in the same windows (PostgreSQL only): what any query pays here, load included. */
  readonly roundTrip: { readonly total: Latency; readonly bestWindowP99Ms: number } | undefined;
}

/** Jiffies busy and in all, over all cores (/proc/stat's first line); undefined off Linux. */
function machineJiffies(): { busy: number; all: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const all = fields.reduce((a, b) => a + b, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: all - idle, all };
  } catch {
    return undefined;
  }
}

function cpuDelta(before: ReadonlyMap<number, number>, after: ReadonlyMap<number, number>): number {
  let seconds = 0;
  for (const [pid, s] of after) seconds += s - (before.get(pid) ?? 0);
  return seconds;
}

interface Block {
  wallMs: number;
  cpuMs: number;
  dbCpuMs: number | undefined;
  busy: number | undefined;
  count: number;
}

/** Runs `block` and accounts for it: wall time, this process's CPU, the database's, the machine's. */
async function accounted(dbCpu: CpuSnapshot | undefined, count: number, into: Block[], block: () => Promise<void>): Promise<void> {
  const db0 = dbCpu === undefined ? undefined : await dbCpu();
  const m0 = machineJiffies();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await block();
  const wallMs = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const m1 = machineJiffies();
  const db1 = dbCpu === undefined ? undefined : await dbCpu();
  into.push({
    wallMs,
    cpuMs: (c.user + c.system) / 1000,
    dbCpuMs: db0 === undefined || db1 === undefined ? undefined : cpuDelta(db0, db1) * 1000,
    busy: m0 === undefined || m1 === undefined || m1.all === m0.all ? undefined : (m1.busy - m0.busy) / (m1.all - m0.all),
    count,
  });
}

function costOf(blocks: readonly Block[]): CheckinCost {
  const n = blocks.reduce((a, b) => a + b.count, 0);
  const sum = (f: (b: Block) => number | undefined) => (blocks.some((b) => f(b) === undefined) ? undefined : blocks.reduce((a, b) => a + f(b)!, 0));
  const wall = sum((b) => b.wallMs)!;
  const busy = sum((b) => (b.busy === undefined ? undefined : b.busy * b.wallMs));
  const db = sum((b) => b.dbCpuMs);
  return { cpuMs: sum((b) => b.cpuMs)! / n, dbCpuMs: db === undefined ? undefined : db / n, wallMs: wall / n, machineBusy: busy === undefined ? undefined : busy / wall };
}

const BLOCK = 250;

/**
 * `count` check-ins of each shape on random devices, one at a time, after `warmup` unmeasured ones of each.
 * The shapes alternate in blocks of BLOCK, so both see the same load, and each block is accounted for on its
 * own (CPU of this process and of the database's backends, the machine's busy share) without a system call
 * per check-in.
 */
export async function measureCheckins(
  tenant: TenantStore,
  cache: EvaluatorCache,
  sizes: Sizes,
  count: number,
  warmup: number,
  options: { readonly maxHeadAgeMs: number; readonly dbCpu?: CpuSnapshot; readonly ping?: () => Promise<void> },
): Promise<CheckinMeasurement> {
  const seq = { total: [] as number[], getDevice: [] as number[], evaluator: [] as number[], evaluate: [] as number[], blocks: [] as Block[] };
  const con = { total: [] as number[], getDevice: [] as number[], evaluate: [] as number[], blocks: [] as Block[] };
  let seed = 12345;
  const next = () => deviceId((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % sizes.devices);
  const check = (device: ManagedDeviceRecord | undefined, ev: TenantEvaluator) => {
    if (device === undefined) throw new Error('a seeded device is missing');
    if (ev.evaluateDevice(device).desiredStateHash.length !== 64) throw new Error('no desired-state hash');
  };
  const headEveryTime = async (record: boolean) => {
    const t0 = performance.now();
    const device = await tenant.devices.getDevice(next());
    const t1 = performance.now();
    const ev = await cache.forTenant(tenant, { allowStale: true });
    const t2 = performance.now();
    check(device, ev);
    const t3 = performance.now();
    if (!record) return;
    seq.total.push(t3 - t0);
    seq.getDevice.push(t1 - t0);
    seq.evaluator.push(t2 - t1);
    seq.evaluate.push(t3 - t2);
  };
  const checkin = async (record: boolean) => {
    const t0 = performance.now();
    let t1 = t0;
    const [device, ev] = await Promise.all([
      tenant.devices.getDevice(next()).then((d) => ((t1 = performance.now()), d)),
      cache.forTenant(tenant, { allowStale: true, maxHeadAgeMs: options.maxHeadAgeMs }),
    ]);
    const t2 = performance.now();
    check(device, ev);
    const t3 = performance.now();
    if (!record) return;
    con.total.push(t3 - t0);
    con.getDevice.push(t1 - t0);
    con.evaluate.push(t3 - t2);
  };
  const ping = options.ping;
  const pings: number[] = [];
  for (let i = 0; i < warmup; i++) {
    await headEveryTime(false);
    await checkin(false);
    await ping?.();
  }
  for (let done = 0; done < count; done += BLOCK) {
    const n = Math.min(BLOCK, count - done);
    await accounted(options.dbCpu, n, con.blocks, async () => {
      for (let i = 0; i < n; i++) await checkin(true);
    });
    await accounted(options.dbCpu, n, seq.blocks, async () => {
      for (let i = 0; i < n; i++) await headEveryTime(true);
    });
    if (ping !== undefined) {
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await ping();
        pings.push(performance.now() - t0);
      }
    }
  }
  return {
    maxHeadAgeMs: options.maxHeadAgeMs,
    checkin: { total: latency(con.total), bestWindowP99Ms: bestWindowP99(con.total), cost: costOf(con.blocks), getDevice: latency(con.getDevice), evaluate: latency(con.evaluate) },
    headEveryTime: {
      total: latency(seq.total), bestWindowP99Ms: bestWindowP99(seq.total), cost: costOf(seq.blocks),
      getDevice: latency(seq.getDevice), evaluator: latency(seq.evaluator), evaluate: latency(seq.evaluate),
    },
    roundTrip: ping === undefined ? undefined : { total: latency(pings), bestWindowP99Ms: bestWindowP99(pings) },
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
