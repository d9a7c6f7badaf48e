/** bench:delivery's report: its shape (for --json), issue 5's targets, and the text form. */
import type { SelfTimeRow } from '../pki/cpuprofile.ts';
import type { IdleResult } from './idle.ts';
import type { RolloutResult } from './rollout.ts';

export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };
export type Status = 'PASS' | 'FAIL' | 'n/a';

export interface Target {
  readonly db: string;
  readonly what: string;
  readonly target: string;
  readonly measured: string;
  readonly status: Status;
}

export interface ProfileSummary {
  readonly phase: string;
  readonly file: string;
  readonly top: readonly SelfTimeRow[];
}

export interface DbReport {
  readonly db: string;
  readonly label: string;
  readonly setup: Readonly<Record<string, number>>;
  readonly rollouts: readonly Outcome<RolloutResult>[];
  readonly idle: Outcome<IdleResult> | undefined;
  readonly profiles: readonly ProfileSummary[];
}

export interface DeliveryReport {
  readonly meta: {
    readonly date: string;
    readonly scale: number;
    readonly cpus: number;
    readonly cpuModel: string;
    readonly node: string;
    readonly loadAverage: { readonly start: readonly number[]; readonly end: readonly number[] };
    readonly seconds: number;
  };
  readonly sizes: {
    readonly users: number;
    readonly devices: number;
    readonly groups: number;
    readonly policies: number;
    readonly deliveryDevices: number;
    readonly deliveryUsers: number;
    readonly importedPerUser: number;
    readonly idleDevices: number;
  };
  readonly databases: readonly DbReport[];
  readonly targets: readonly Target[];
  readonly notes: readonly string[];
}

export const IDLE_TARGET = 3000;
export const ONE_CONNECTOR_TARGET_S = 300;

export const num = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—');

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return 'not finished';
  const m = Math.floor(seconds / 60);
  const s = seconds - m * 60;
  return m > 0 ? `${m} min ${s.toFixed(0).padStart(2, '0')} s` : `${s.toFixed(1)} s`;
}

export function evaluateTargets(databases: readonly DbReport[]): Target[] {
  const out: Target[] = [];
  for (const d of databases) {
    if (d.idle !== undefined) {
      const runs = d.idle.ok ? d.idle.value.runs : [];
      if (runs.length === 0) out.push({ db: d.db, what: 'idle check-ins/s, 256 concurrent devices', target: `≥ ${num(IDLE_TARGET)}/s`, measured: d.idle.ok ? 'no run' : `failed: ${d.idle.error}`, status: 'FAIL' });
      for (const r of runs) {
        out.push({
          db: d.db,
          what: `idle check-ins/s, 256 concurrent devices, ${r.workers} worker${r.workers > 1 ? 's' : ''}, ${r.window}`,
          target: `≥ ${num(IDLE_TARGET)}/s`,
          measured: `${num(r.perSecond)}/s`,
          status: r.perSecond >= IDLE_TARGET ? 'PASS' : 'FAIL',
        });
      }
    }
    const byConnectors = new Map<number, RolloutResult>();
    for (const r of d.rollouts) if (r.ok) byConnectors.set(r.value.connectors, r.value);
    for (const r of d.rollouts) {
      if (!r.ok) out.push({ db: d.db, what: 'policy onto the delivery devices', target: '—', measured: `failed: ${r.error}`, status: 'FAIL' });
    }
    const one = byConnectors.get(1);
    const two = byConnectors.get(2);
    if (one !== undefined) {
      out.push({
        db: d.db,
        what: `new policy onto ${num(one.devices)} devices, 1 connector`,
        target: `≤ ${duration(ONE_CONNECTOR_TARGET_S)}`,
        measured: Number.isFinite(one.seconds) ? duration(one.seconds) : `${num(one.done)}/${num(one.devices)} done`,
        status: one.seconds <= ONE_CONNECTOR_TARGET_S ? 'PASS' : 'FAIL',
      });
    }
    if (two !== undefined) {
      out.push({
        db: d.db,
        what: `new policy onto ${num(two.devices)} devices, 2 connectors`,
        target: one === undefined ? 'faster than 1 connector' : `< ${duration(one.seconds)} (1 connector)`,
        measured: Number.isFinite(two.seconds) ? duration(two.seconds) : `${num(two.done)}/${num(two.devices)} done`,
        status: one === undefined ? 'n/a' : two.seconds < one.seconds ? 'PASS' : 'FAIL',
      });
    }
  }
  return out;
}

const cores = (cpuSeconds: number, seconds: number) => (Number.isFinite(cpuSeconds) && seconds > 0 ? `${(cpuSeconds / seconds).toFixed(2)} cores` : '—');
const load = (l: readonly number[]) => l.map((x) => x.toFixed(2)).join(' / ');

function renderRollout(r: RolloutResult): string[] {
  const wall = Number.isFinite(r.seconds) ? r.seconds : NaN;
  const f = r.fleet;
  const lines = [
    `  ${r.connectors} connector${r.connectors > 1 ? 's' : ''}: ${duration(r.seconds)} until the last of ${num(r.devices)} devices was done (${num(r.done)} done)`,
    `      devices done: first ${r.percentiles.first.toFixed(1)} s, p50 ${r.percentiles.p50.toFixed(1)} s, p90 ${r.percentiles.p90.toFixed(1)} s, p99 ${r.percentiles.p99.toFixed(1)} s after the assignment (the admin's five requests took ${r.assignSeconds.toFixed(2)} s)`,
    `      CPU over the round: server ${num(r.cpu.server, 1)} s (${cores(r.cpu.server, wall)}), connectors ${r.cpu.connectors.map((c) => `${num(c, 1)} s`).join(' + ')}, simulated devices ${num(r.cpu.fleet, 1)} s${r.cpu.database === undefined ? '' : `, PostgreSQL backends ${num(r.cpu.database, 1)} s`}`,
  ];
  if (f !== undefined) {
    const c = f.counters;
    lines.push(`      device traffic: ${num(c.checkins200)} full check-ins, ${num(c.checkins304)} × 304, ${num(c.scepEnrolments)} SCEP enrolments, ${num(c.deliveries)} deliveries opened (${num(c.deliveriesFetched)} fetched by id, the rest inline), ${num(c.reportItems)} report items (${num(c.reportRefusals)} refused), ${num(c.errors)} errors; ${num(f.streams.open)} push streams open, ${num(f.streams.reconnects)} reconnects; simulator peak RSS ${num(f.maxRssMb)} MB`);
    for (const s of c.samples.slice(0, 4)) lines.push(`      error: ${s}`);
  }
  lines.push(`      before the clock: ${num(r.warm.streams)} push streams and a check-in each in ${r.warm.seconds.toFixed(1)} s (${r.warm.errors} errors); load average after ${load(r.loadAverage)}`);
  return lines;
}

export function renderText(r: DeliveryReport): string {
  const s = r.sizes;
  const out: string[] = [
    `bench:delivery — ${r.meta.date}, --scale ${r.meta.scale}, ${r.meta.cpus} × ${r.meta.cpuModel}, Node ${r.meta.node}`,
    `load average (1/5/15 min): ${load(r.meta.loadAverage.start)} at start, ${load(r.meta.loadAverage.end)} at end; ${duration(r.meta.seconds)} in all`,
    `tenant: ${num(s.users)} users, ${num(s.devices)} devices, ${num(s.groups)} groups, ${num(s.policies)} policies (bench:service's), plus per delivery round ${num(s.deliveryDevices)} enrolled devices of ${num(s.deliveryUsers)} users with ${s.importedPerUser} imported encryption certificates each; ${num(s.idleDevices)} seeded devices check in idle`,
    '',
  ];
  for (const d of r.databases) {
    out.push(d.label);
    out.push(`  set-up (not measured): ${Object.entries(d.setup).map(([k, v]) => `${k} ${v.toFixed(0)} s`).join('; ')}`);
    if (d.idle !== undefined) {
      if (!d.idle.ok) out.push(`  idle check-ins: failed: ${d.idle.error}`);
      else {
        const i = d.idle.value;
        out.push(`  idle check-ins (If-None-Match → 304), ${i.connections} concurrent devices from a pool of ${num(i.devices)}:`);
        for (const run of i.runs) {
          const other = Object.entries(run.statuses).filter(([code]) => code !== '304');
          out.push(
            `    ${run.workers} worker${run.workers > 1 ? 's' : ' '}, ${run.window.padEnd(9)} (after ${num(run.servedBefore)} requests): ${num(run.perSecond).padStart(6)}/s  p50 ${run.latencyMs.p50} ms, p99 ${run.latencyMs.p99} ms; server ${run.serverCores.toFixed(2)} cores, load generator ${run.clientCores.toFixed(2)} cores` +
              `${run.databaseCores === undefined ? '' : `, PostgreSQL ${run.databaseCores.toFixed(2)} cores`}; ${other.length === 0 && run.errors === 0 ? 'every answer 304' : `not 304: ${other.map(([c, n]) => `${n} × ${c}`).join(', ')}${run.errors ? `, ${run.errors} errors/timeouts` : ''}`}; load ${load(run.loadAverage)}`,
          );
        }
        out.push(`    (before: each device's first, full check-in: ${num(i.warmup.perSecond)}/s over ${i.warmup.seconds.toFixed(0)} s${i.warmup.failures ? `, ${i.warmup.failures} failed: ${i.warmup.sample ?? ''}` : ''})`);
      }
    }
    if (d.rollouts.length > 0) out.push('  a new policy (SCEP signing + imported encryption history + Outlook configuration) onto every device of a group:');
    for (const ro of d.rollouts) out.push(...(ro.ok ? renderRollout(ro.value) : [`  failed: ${ro.error}`]));
    for (const p of d.profiles) {
      out.push(`  CPU profile ${p.phase}: ${p.file}`);
      for (const row of p.top.slice(0, 12)) out.push(`      ${row.selfMs.toFixed(0).padStart(7)} ms ${row.percent.toFixed(1).padStart(5)}%  ${row.functionName} ${row.location}`);
    }
    out.push('');
  }
  out.push('targets (issue 5, on these 2-core machines):');
  for (const t of r.targets) out.push(`  ${t.status.padEnd(4)}  ${t.db.padEnd(8)} ${t.what}: ${t.measured} (target ${t.target})`);
  if (r.notes.length > 0) {
    out.push('', 'notes:');
    for (const n of r.notes) out.push(`  - ${n}`);
  }
  return `${out.join('\n')}\n`;
}
