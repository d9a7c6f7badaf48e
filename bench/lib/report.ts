/**
 * One run's figures as a JSON-ready object (`--json`) and as readable text:
 * a table per implementation (operation × size), the yardsticks, the
 * whole-process comparison on the 10 MB file, then each target with
 * PASS/MISS.
 */
import type { ImplName } from './impl.ts';
import { MB } from './messages.ts';
import type { RsaRate } from './openssl.ts';
import type { ProcessTiming } from './process.ts';
import type { NodeRsaRate, RawRsaSample } from './raw-rsa.ts';
import type { OpRow, Target } from './targets.ts';

export interface BenchReport {
  readonly meta: {
    readonly date: string;
    readonly quick: boolean;
    readonly cpus: number;
    readonly cpuModel: string;
    readonly node: string;
    readonly nodeOpenssl: string;
    readonly opensslCli: string;
    /** os.loadavg() when the run started and ended: other load makes every figure lower. */
    readonly loadAverage: { readonly start: readonly number[]; readonly end: readonly number[] };
    readonly pkijs: string;
    readonly bytesPerMB: number;
  };
  readonly notes: readonly string[];
  readonly rawRsa: {
    readonly samples: readonly RawRsaSample[];
    readonly best: { readonly opensslSpeed: RsaRate | undefined; readonly nodeCrypto: NodeRsaRate | undefined };
  };
  readonly results: readonly ResultJson[];
  readonly wholeProcess: {
    readonly size: string;
    readonly bytes: number;
    readonly opensslCms: readonly ProcessTiming[];
    readonly keyfleetCli: readonly ProcessTiming[];
  } | null;
  readonly targets: readonly Target[];
}

export interface ResultJson {
  readonly impl: ImplName;
  readonly op: string;
  readonly size: string;
  readonly bytes: number;
  readonly ok: boolean;
  readonly error?: string;
  readonly iterations?: number;
  readonly seconds?: number;
  readonly cpuSeconds?: number;
  readonly opsPerSec?: number;
  readonly opsPerCpuSec?: number;
  readonly bestWindowOpsPerSec?: number;
  readonly mbPerSec?: number;
  readonly meanMs?: number;
  readonly meanCpuMs?: number;
  readonly medianMs?: number;
  readonly bestMs?: number;
  readonly baselineRssBytes?: number;
  readonly peakRssBytes?: number;
  readonly peakOverBaselineBytes?: number;
  /** Peak RSS ÷ message size. */
  readonly peakRssToSize?: number;
}

export function resultJson(row: OpRow): ResultJson {
  const base = { impl: row.impl, op: row.op, size: row.size, bytes: row.bytes };
  const m = row.measurement;
  if (m === undefined) return { ...base, ok: false, error: row.error ?? 'not run' };
  return {
    ...base,
    ok: true,
    iterations: m.timing.iterations,
    seconds: m.timing.seconds,
    cpuSeconds: m.timing.cpuSeconds,
    opsPerSec: m.timing.opsPerSec,
    opsPerCpuSec: m.timing.opsPerCpuSec,
    bestWindowOpsPerSec: m.timing.bestWindowOpsPerSec,
    mbPerSec: (m.timing.opsPerSec * row.bytes) / MB,
    meanMs: m.timing.meanMs,
    meanCpuMs: m.timing.meanCpuMs,
    medianMs: m.timing.medianMs,
    bestMs: m.timing.bestMs,
    baselineRssBytes: m.baselineRssBytes,
    peakRssBytes: m.peakRssBytes,
    peakOverBaselineBytes: m.peakRssBytes - m.baselineRssBytes,
    peakRssToSize: m.peakRssBytes / row.bytes,
  };
}

const num = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const rate = (n: number): string => num(n, n < 100 ? 2 : n < 10_000 ? 1 : 0);
const mb = (bytes: number): string => `${num(bytes / MB, 1)} MB`;
const ms = (n: number): string => `${num(n, n < 10 ? 2 : n < 1000 ? 1 : 0)} ms`;

/**
 * Left-aligns the first `alignLeft` columns and right-aligns the rest. A row
 * shorter than the header (a failure message) is printed as it is and does
 * not widen the columns it spills over.
 */
function table(header: readonly string[], rows: readonly (readonly string[])[], alignLeft = 2): string {
  const full = rows.filter((r) => r.length === header.length);
  const widths = header.map((h, i) => Math.max(h.length, ...(i < alignLeft ? rows : full).map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (cells.length < header.length && i === cells.length - 1 ? c : i < alignLeft ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].map((l) => `  ${l}`).join('\n');
}

/** Errors can be long (stack-less but verbose); the JSON keeps them whole. */
const short = (text: string): string => (text.length > 110 ? `${text.slice(0, 107)}...` : text);

function resultsTable(results: readonly ResultJson[]): string {
  const rows = results.map((r) =>
    r.ok
      ? [r.op, r.size, rate(r.opsPerSec!), rate(r.bestWindowOpsPerSec!), rate(r.opsPerCpuSec!), num(r.mbPerSec!, 1), ms(r.meanMs!), num(r.iterations!), mb(r.peakRssBytes!), mb(r.peakOverBaselineBytes!),
         r.bytes >= 10 * MB ? `${num(r.peakRssToSize!, 2)}×` : '']
      : [r.op, r.size, `failed: ${short(r.error ?? 'unknown')}`],
  );
  return table(['op', 'size', 'ops/s', 'best ops/s', 'ops/CPU-s', 'MB/s', 'mean/op', 'iters', 'peak RSS', 'over baseline', 'RSS/size'], rows);
}

function processTable(report: NonNullable<BenchReport['wholeProcess']>, inProcess: readonly ResultJson[]): string {
  const cells = (t: ProcessTiming | undefined): string[] =>
    t === undefined || t.error !== undefined
      ? ['failed', '', '']
      : [ms(t.bestWallMs), t.bestCpuMs === undefined ? '?' : ms(t.bestCpuMs), t.peakRssBytes === undefined ? '?' : mb(t.peakRssBytes)];
  const rows = report.opensslCms.map((o) => {
    const ours = inProcess.find((r) => r.op === o.op);
    const inProcessCells = ours?.ok ? [ms(ours.meanMs!), ms(1000 / ours.bestWindowOpsPerSec!), ms(ours.meanCpuMs!), mb(ours.peakRssBytes!)] : ['n/a', '', '', ''];
    return [o.op, ...cells(o), ...cells(report.keyfleetCli.find((k) => k.op === o.op)), ...inProcessCells];
  });
  const failures = [...report.opensslCms, ...report.keyfleetCli]
    .filter((t) => t.error !== undefined)
    .map((t) => `  failed: ${t.command.split(' ').slice(0, 3).join(' ')} ${t.op}: ${short(t.error!)}`);
  const header = ['', 'openssl cms: wall', 'CPU', 'peak RSS', 'keyfleet CLI: wall', 'CPU', 'peak RSS', 'in-process: mean wall', 'best', 'mean CPU', 'peak RSS'];
  return [table(header, rows, 1), ...failures].join('\n');
}

export function renderText(report: BenchReport): string {
  const { meta } = report;
  const out: string[] = [];
  out.push(`Keyfleet S/MIME benchmark — ${meta.date}${meta.quick ? ' (--quick: shorter runs, no 100 MB)' : ''}`);
  out.push(`${meta.cpus} CPUs (${meta.cpuModel}), load average ${meta.loadAverage.start.map((l) => l.toFixed(2)).join(' ')} at start; Node ${meta.node} with OpenSSL ${meta.nodeOpenssl}; CLI ${meta.opensslCli}; PKI.js ${meta.pkijs}`);
  out.push(`1 KB = 1,024 bytes, 1 MB = ${num(meta.bytesPerMB)} bytes. Each (implementation, operation, size) runs in its own process;`);
  out.push('peak RSS is that process\'s maxRSS, "over baseline" subtracts its RSS after loading code, keys and certificates.');
  out.push('ops/s and MB/s are wall-clock means; "best ops/s" is the run\'s best fifth; ops/CPU-s divides by the process\'s CPU time');
  out.push('(user + system, all threads; openssl speed divides by user CPU time).');
  out.push('');
  const byImpl = (impl: ImplName) => report.results.filter((r) => r.impl === impl);
  out.push('Keyfleet (whole RFC 5322 messages; multipart/signed, SHA-256, RSA-2048; EnvelopedData, PKCS#1 v1.5 key transport, AES-256-CBC)');
  out.push(resultsTable(byImpl('keyfleet')));
  out.push('');
  out.push(`PKI.js ${meta.pkijs}, same process model (detached SignedData, SHA-256; EnvelopedData, RSA-OAEP-SHA-256, AES-256-CBC)`);
  out.push(resultsTable(byImpl('pkijs')));
  out.push('');
  out.push(`Raw RSA-2048, one core (${report.rawRsa.samples.length} samples; the best is the yardstick)`);
  const samples = report.rawRsa.samples;
  const list = (values: readonly (number | undefined)[], unit: string): string => values.map((v) => (v === undefined ? '?' : `${rate(v)}${unit}`)).join(', ');
  const speedError = samples.find((s) => s.opensslSpeedError !== undefined)?.opensslSpeedError;
  out.push(`  openssl speed rsa2048 (${meta.opensslCli}, per user-CPU second): sign ${list(samples.map((s) => s.opensslSpeed?.signPerSec), '/s')}; verify ${list(samples.map((s) => s.opensslSpeed?.verifyPerSec), '/s')}`);
  if (speedError !== undefined) out.push(`  openssl speed failed: ${short(speedError)}`);
  out.push(`  node:crypto (OpenSSL ${meta.nodeOpenssl}): sign ${list(samples.map((s) => s.nodeCrypto.signPerCpuSec), '/CPU-s')} (${list(samples.map((s) => s.nodeCrypto.signPerSec), '/s')} wall); ` +
    `PKCS#1 v1.5 decrypt ${list(samples.map((s) => s.nodeCrypto.decryptPerCpuSec), '/CPU-s')} (${list(samples.map((s) => s.nodeCrypto.decryptPerSec), '/s')} wall)`);
  if (report.wholeProcess !== null) {
    const wp = report.wholeProcess;
    out.push('');
    out.push(`Whole processes on the same ${wp.size} message (best of ${wp.opensslCms[0]?.runs.length ?? '?'}, start-up included), beside our per-operation figures in-process`);
    out.push(processTable(wp, report.results.filter((r) => r.impl === 'keyfleet' && r.size === wp.size)));
  }
  out.push('');
  out.push('Targets (issue 2)');
  for (const t of report.targets) {
    const fmt = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '?' : t.unit === 'bytes' ? mb(n) : `${rate(n)} ${t.unit}`);
    const relation = t.kind === 'at-least' ? '≥' : '<';
    const ratio = t.measured !== undefined && t.required !== undefined && t.required !== 0 ? ` (${num(t.measured / t.required, 2)}× the bar)` : '';
    out.push(`  ${t.status.padEnd(4)}  ${t.description}: ${fmt(t.measured)}, needs ${relation} ${fmt(t.required)}${ratio} — ${t.basis}`);
  }
  if (report.notes.length > 0) {
    out.push('');
    out.push('Notes');
    for (const n of report.notes) out.push(`  - ${n}`);
  }
  return `${out.join('\n')}\n`;
}
