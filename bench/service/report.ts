/**
 * bench:service's figures as one JSON object (`--json`) and as text: per
 * database the snapshot build, check-in latency by part, the re-evaluation
 * runs, PFX import and API latency; then issue 4's targets with PASS/MISS.
 * A figure that could not be measured is "n/a", never a PASS.
 */
import type { SelfTimeRow } from '../pki/cpuprofile.ts';
import type { CheckinCost, CheckinMeasurement, Latency, ReevaluationRun, SnapshotBuild } from './evaluation.ts';
import type { ApiMeasurement, PfxImportMeasurement } from './http.ts';
import type { Sizes } from './seed.ts';

export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };
export type Status = 'PASS' | 'MISS' | 'n/a';

export interface Target {
  readonly description: string;
  readonly kind: 'at-most' | 'at-least';
  readonly unit: string;
  readonly measured: number | undefined;
  readonly required: number;
  readonly status: Status;
}

export interface DbReport {
  readonly db: string;
  readonly label: string;
  readonly seedSeconds: number;
  readonly snapshot: Outcome<SnapshotBuild>;
  readonly checkins: Outcome<CheckinMeasurement>;
  readonly reevaluation: Outcome<ReevaluationRun[]>;
  readonly pfxImport: Outcome<PfxImportMeasurement[]>;
  readonly api: Outcome<ApiMeasurement[]>;
  readonly profiles: readonly { readonly phase: string; readonly file: string; readonly top: readonly SelfTimeRow[] }[];
}

export interface ServiceReport {
  readonly meta: {
    readonly date: string;
    readonly scale: number;
    readonly cpus: number;
    readonly cpuModel: string;
    readonly node: string;
    readonly loadAverage: { readonly start: readonly number[]; readonly end: readonly number[] };
    readonly seconds: number;
  };
  readonly sizes: Sizes & { readonly memberships: number; readonly nestingEdges: number; readonly pfxSeeded: number };
  readonly databases: readonly DbReport[];
  readonly targets: readonly Target[];
  readonly notes: readonly string[];
}

function target(description: string, kind: Target['kind'], unit: string, measured: number | undefined, required: number): Target {
  const known = measured !== undefined && Number.isFinite(measured);
  const pass = known && (kind === 'at-most' ? measured <= required : measured >= required);
  return { description, kind, unit, measured, required, status: known ? (pass ? 'PASS' : 'MISS') : 'n/a' };
}

const value = <T>(o: Outcome<T>): T | undefined => (o.ok ? o.value : undefined);

export function evaluateTargets(databases: readonly DbReport[], sizes: Sizes): Target[] {
  const out: Target[] = [];
  for (const d of databases) {
    const c = value(d.checkins);
    out.push(target(`[${d.db}] one device's effective state p99 ≤ 2 ms, as a check-in asks: getDevice ∥ the cached evaluator (head reused ≤ ${c?.maxHeadAgeMs ?? '?'} ms), then evaluation`, 'at-most', 'ms', c?.checkin.total.p99Ms, 2));
    out.push(target(`[${d.db}] the same, best of 5 windows (what other processes' load leaves)`, 'at-most', 'ms', c?.checkin.bestWindowP99Ms, 2));
    for (const run of value(d.reevaluation) ?? []) {
      if (run.label.startsWith('again')) continue;
      out.push(target(`[${d.db}] re-evaluating all ${num(sizes.devices)} devices, ${run.label}, ≤ 60 s`, 'at-most', 's', run.ms / 1000, 60));
    }
    if (!d.reevaluation.ok) out.push(target(`[${d.db}] re-evaluating all ${num(sizes.devices)} devices ≤ 60 s`, 'at-most', 's', undefined, 60));
    const imports = value(d.pfxImport) ?? [];
    const pfx = (endpoint: PfxImportMeasurement['endpoint'], connections: number) => imports.find((m) => m.endpoint === endpoint && m.connections === connections && m.failed === 0)?.perSecond;
    out.push(target(`[${d.db}] PFX import, batches of 100 through POST …/import, one client (as \`keyfleet pfx import --manifest\` sends) ≥ 500 records/s`, 'at-least', 'records/s', pfx('batch', 1), 500));
    out.push(target(`[${d.db}] PFX import, batches of 100, 8 concurrent clients ≥ 500 records/s`, 'at-least', 'records/s', pfx('batch', 8), 500));
  }
  return out;
}

// ------------------------------------------------------------------ text

export const num = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ms = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '?' : n < 1 ? `${num(n * 1000, 0)} µs` : `${num(n, n < 10 ? 2 : n < 100 ? 1 : 0)} ms`);

function table(header: readonly string[], rows: readonly (readonly string[])[], alignLeft = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i < alignLeft ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].map((l) => `    ${l}`).join('\n');
}

const latencyRow = (name: string, l: Latency): string[] => [name, ms(l.p50Ms), ms(l.p90Ms), ms(l.p99Ms), ms(l.maxMs), ms(l.meanMs)];

function section<T>(out: string[], title: string, o: Outcome<T>, render: (v: T) => string): void {
  out.push(`  ${title}`);
  out.push(o.ok ? render(o.value) : `    failed: ${o.error}`);
}

function renderDb(d: DbReport): string[] {
  const out: string[] = [`${d.label} — seeded in ${num(d.seedSeconds, 1)} s (not measured)`];
  section(out, 'Snapshot build (first EvaluatorCache.forTenant: every group, membership, user, assignment, policy, profile, PFX id)', d.snapshot, (s) =>
    `    ${ms(s.ms)}; ${num(s.stats.users)} users, ${num(s.stats.groups)} groups, ${num(s.stats.memberships)} memberships, ${num(s.stats.assignmentTargets)} assigned resources, ` +
    `${num(s.stats.policies)} policies, ${num(s.stats.certificateProfiles)} profiles, ${num(s.stats.pfxCertificates)} PFX; heap in use after it ${num(s.heapMb, 0)} MB`);
  section(out, 'One device\'s effective state as a check-in pays for it (random devices, one at a time)', d.checkins, (c) => {
    const cost = (x: CheckinCost) =>
      `CPU per check-in: this process ${ms(x.cpuMs)}${x.dbCpuMs === undefined ? '' : `, PostgreSQL backends ${ms(x.dbCpuMs)}`}; wall ${ms(x.wallMs)}; ` +
      `both cores ${x.machineBusy === undefined ? '?' : `${num(x.machineBusy * 100)}%`} busy meanwhile (all processes)`;
    return table(['part', 'p50', 'p90', 'p99', 'max', 'mean'], [
      latencyRow(`check-in (${num(c.checkin.total.count)}): getDevice ∥ forTenant(allowStale, maxHeadAgeMs ${c.maxHeadAgeMs}), evaluate`, c.checkin.total),
      latencyRow('  getDevice (device row)', c.checkin.getDevice),
      latencyRow('  evaluateDevice + desiredStateHash', c.checkin.evaluate),
      latencyRow(`head read every time (${num(c.headEveryTime.total.count)}): getDevice, forTenant(allowStale), evaluate`, c.headEveryTime.total),
      latencyRow('  getDevice (device row)', c.headEveryTime.getDevice),
      latencyRow('  EvaluatorCache.forTenant (audit head)', c.headEveryTime.evaluator),
      latencyRow('  evaluateDevice + desiredStateHash', c.headEveryTime.evaluate),
      ...(c.roundTrip === undefined ? [] : [latencyRow(`bare round trip (${num(c.roundTrip.total.count)}): select 1 on its own connection`, c.roundTrip.total)]),
    ]) +
      `\n    check-in: best-window p99 ${ms(c.checkin.bestWindowP99Ms)}; ${cost(c.checkin.cost)}` +
      `\n    head read every time: best-window p99 ${ms(c.headEveryTime.bestWindowP99Ms)}; ${cost(c.headEveryTime.cost)}` +
      (c.roundTrip === undefined ? '' : `\n    bare round trip: best-window p99 ${ms(c.roundTrip.bestWindowP99Ms)} (no query of ours can beat this floor)`);
  });
  section(out, 'Re-evaluating every device (reevaluateAllDevices, batches of 1,000; snapshot rebuild included)', d.reevaluation, (runs) =>
    table(['run', 'devices', 'changed', 'rebuild', 'evaluate + write', 'total', 'devices/s'], runs.map((r) => [
      r.label, num(r.devices), num(r.changed), ms(r.rebuildMs), ms(r.evaluateAndWriteMs), ms(r.ms), num(r.devices / (r.ms / 1000)),
    ])));
  section(out, 'Bulk PFX import on loopback, uploads prepared beforehand (p50/p99 per request)', d.pfxImport, (runs) =>
    table(['endpoint', 'clients', 'records', 'created', 'seconds', 'records/s', 'p50', 'p99', 'server CPU/record', 'db CPU/record', 'body'], runs.map((m) => [
      m.endpoint === 'batch' ? `POST …/userPfxCertificates/import, ${m.recordsPerRequest} a request` : 'POST …/userPfxCertificates, 1 a request',
      String(m.connections), num(m.records), num(m.created), num(m.seconds, 2), num(m.perSecond, 0), ms(m.p50Ms), ms(m.p99Ms), ms(m.serverCpuMsPerRecord), ms(m.dbCpuMsPerRecord),
      `${num(m.bodyBytes / 1024, 1)} KiB`,
    ])));
  section(out, 'API latency under concurrent clients (autocannon, keep-alive)', d.api, (runs) =>
    table(['endpoint', 'clients', 'requests', 'req/s', 'p50', 'p90', 'p99', 'max', 'server CPU/req', 'non-2xx', 'errors'], runs.map((a) => [
      a.label, String(a.connections), num(a.requests), num(a.perSecond, 0),
      ...(a.requests === 0 ? ['none answered', '', '', ''] : [ms(a.p50Ms), ms(a.p90Ms), ms(a.p99Ms), ms(a.maxMs)]),
      ms(a.serverCpuMsPerRequest), num(a.non2xx), `${num(a.errors)}${a.timeouts > 0 ? ` (${num(a.timeouts)} timeouts)` : ''}`,
    ])));
  for (const p of d.profiles) {
    out.push(`  CPU profile (${p.phase}): ${p.file}`);
    out.push(table(['function', 'location', 'self', '%'], p.top.map((r) => [r.functionName.slice(0, 40), r.location.slice(0, 70), `${num(r.selfMs, 0)} ms`, num(r.percent, 1)]), 2));
  }
  return out;
}

export function renderText(r: ServiceReport): string {
  const { meta, sizes } = r;
  const out: string[] = [];
  out.push(`Keyfleet service benchmark — ${meta.date}, --scale ${meta.scale}, ${num(meta.seconds, 0)} s`);
  out.push(`${meta.cpus} CPUs (${meta.cpuModel}); load average ${meta.loadAverage.start.map((l) => l.toFixed(2)).join(' ')} at start, ${meta.loadAverage.end.map((l) => l.toFixed(2)).join(' ')} at end; Node ${meta.node}`);
  out.push(`One tenant: ${num(sizes.users)} users, ${num(sizes.devices)} devices, ${num(sizes.groups)} groups (${num(sizes.nestingEdges)} nesting edges), ` +
    `${num(sizes.memberships)} user memberships, ${num(sizes.policies)} policies, 3 apps, 8 certificate profiles, ${num(sizes.pfxSeeded)} imported PFX records`);
  out.push('');
  for (const d of r.databases) {
    out.push(...renderDb(d));
    out.push('');
  }
  out.push('Targets (issue 4)');
  for (const t of r.targets) {
    const fmt = (n: number | undefined) => (n === undefined ? '?' : `${num(n, n < 10 ? 2 : n < 100 ? 1 : 0)} ${t.unit}`);
    out.push(`  ${t.status.padEnd(4)}  ${t.description}: ${fmt(t.measured)}`);
  }
  if (r.notes.length > 0) {
    out.push('');
    out.push('Notes');
    for (const n of r.notes) out.push(`  - ${n}`);
  }
  return `${out.join('\n')}\n`;
}
