/**
 * The PKI bench's figures as one JSON object (`--json`) and as readable
 * text: raw RSA yardsticks, SCEP side by side with micromdm, OCSP, the
 * 100,000-entry CRL, PKCS#12 import, then issue 3's targets with PASS/MISS.
 * A figure that could not be measured is "n/a", never a PASS.
 */
import type { CrlMeasurement } from './crl.ts';
import type { OcspMeasurement } from './ocsp.ts';
import type { NodeRsaSpeed, RsaSpeed } from './openssl.ts';
import type { Pkcs12Case } from './pkcs12.ts';
import type { ScepMeasurement } from './scep.ts';
import type { SelfTimeRow } from './cpuprofile.ts';

export type Status = 'PASS' | 'MISS' | 'n/a';

export interface Target {
  readonly description: string;
  readonly kind: 'at-least' | 'below';
  readonly unit: string;
  readonly measured: number | undefined;
  readonly required: number | undefined;
  readonly status: Status;
  readonly basis: string;
}

export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

export interface PkiReport {
  readonly meta: {
    readonly date: string;
    readonly quick: boolean;
    readonly cpus: number;
    readonly cpuModel: string;
    readonly node: string;
    readonly nodeOpenssl: string;
    readonly opensslCli: string;
    readonly scepserver: string;
    readonly loadAverage: { readonly start: readonly number[]; readonly end: readonly number[] };
    readonly concurrency: number;
    readonly caKeyType: string;
    readonly seconds: number;
  };
  readonly rawRsa: { readonly opensslSpeed: Outcome<RsaSpeed[]>; readonly nodeCrypto: readonly NodeRsaSpeed[] };
  readonly scep: { readonly keyfleet: Outcome<ScepMeasurement>; readonly micromdm: Outcome<ScepMeasurement>; readonly keyPool: number };
  readonly ocsp: Outcome<OcspMeasurement>;
  readonly crl: Outcome<CrlMeasurement>;
  readonly pkcs12: Outcome<Pkcs12Case[]>;
  /** With --cpu-prof: the Keyfleet server's self time, one profile per measurement. */
  readonly profiles?: readonly { readonly phase: 'scep' | 'ocsp'; readonly file: string; readonly top: readonly SelfTimeRow[]; readonly ours: readonly SelfTimeRow[] }[];
  readonly targets: readonly Target[];
  readonly notes: readonly string[];
}

function target(description: string, kind: Target['kind'], unit: string, measured: number | undefined, required: number | undefined, basis: string): Target {
  const known = measured !== undefined && required !== undefined && Number.isFinite(measured) && Number.isFinite(required);
  const pass = known && (kind === 'at-least' ? measured >= required : measured < required);
  return { description, kind, unit, measured, required, status: known ? (pass ? 'PASS' : 'MISS') : 'n/a', basis };
}

const value = <T>(o: Outcome<T>): T | undefined => (o.ok ? o.value : undefined);

/**
 * Our rate counts only when nothing timed failed and the full-check sample
 * passed. The peer's rate already counts successes only (its failures take
 * time but add nothing); a peer that answers FAILURE under load is slower
 * for it, not disqualified — but its sample must check out.
 */
function cleanRate(m: ScepMeasurement | OcspMeasurement | undefined, allowFailures = false): number | undefined {
  if (m === undefined || (!allowFailures && m.failures > 0) || m.sampleOk !== m.sampleChecked || m.sampleChecked === 0) return undefined;
  return m.perSecond;
}

export function evaluateTargets(r: Omit<PkiReport, 'targets' | 'notes' | 'meta'> & { readonly crlEntriesRequired: number }): Target[] {
  const kf = value(r.scep.keyfleet);
  const mdm = value(r.scep.micromdm);
  const kfRate = cleanRate(kf);
  const mdmRate = cleanRate(mdm, true);
  const crl = value(r.crl);
  const ocsp = value(r.ocsp);
  const fullCrl = crl !== undefined && crl.entries >= r.crlEntriesRequired && crl.decodedEntries === crl.entries && crl.signatureValid;
  return [
    target('SCEP enrolments/s ≥ 300', 'at-least', 'enrol/s', kfRate, 300, 'fixed (issue 3)'),
    target('SCEP enrolments/s ≥ 2× micromdm scepserver', 'at-least', 'enrol/s', kfRate, mdmRate === undefined ? undefined : 2 * mdmRate, `2 × micromdm ${fmt(mdmRate)} enrol/s, same run`),
    target('OCSP signed responses/s (nonce) ≥ 2,000', 'at-least', 'resp/s', cleanRate(ocsp), 2000, 'fixed (issue 3)'),
    target(
      `CRL with ${num(r.crlEntriesRequired)} revoked serials generated in < 2 s`,
      'below',
      'ms',
      fullCrl ? crl.generateMedianMs : undefined,
      2000,
      crl === undefined ? 'not measured' : fullCrl ? `median of ${crl.generateMs.length} generateCrl() runs` : `not a full run (${num(crl.entries)} entries)`,
    ),
  ];
}

// ------------------------------------------------------------------ text

const num = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const fmt = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '?' : num(n, n < 100 ? 1 : 0));
const ms = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '?' : `${num(n, n < 10 ? 2 : n < 100 ? 1 : 0)} ms`);

function table(header: readonly string[], rows: readonly (readonly string[])[], alignLeft = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i < alignLeft ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].map((l) => `  ${l}`).join('\n');
}

function failed(what: string, o: Outcome<unknown>): string | undefined {
  return o.ok ? undefined : `  ${what}: failed — ${o.error}`;
}

function scepRow(name: string, o: Outcome<ScepMeasurement>): string[] {
  if (!o.ok) return [name, 'failed', '', '', '', '', '', '', ''];
  const m = o.value;
  const perServerCpu = m.serverCpuSeconds ? m.completed / m.serverCpuSeconds : undefined;
  return [
    name,
    fmt(m.perSecond),
    `${num(m.successes)}/${num(m.completed)}`,
    num(m.seconds, 2),
    ms(m.latency.p50Ms),
    ms(m.latency.p99Ms),
    m.serverCpuMsPerOp === undefined ? '?' : `${num(m.serverCpuMsPerOp, 2)} ms`,
    fmt(perServerCpu),
    `${num(m.clientCpuSeconds, 1)} s`,
    `${m.sampleOk}/${m.sampleChecked}`,
  ];
}

export function renderText(r: PkiReport): string {
  const out: string[] = [];
  const { meta } = r;
  out.push(`Keyfleet PKI benchmark — ${meta.date}${meta.quick ? ' (--quick: smoke run, short windows, smaller CRL)' : ''}, ${num(meta.seconds, 0)} s`);
  out.push(`${meta.cpus} CPUs (${meta.cpuModel}); load average ${meta.loadAverage.start.map((l) => l.toFixed(2)).join(' ')} at start, ${meta.loadAverage.end.map((l) => l.toFixed(2)).join(' ')} at end`);
  out.push(`Node ${meta.node} (OpenSSL ${meta.nodeOpenssl}); CLI ${meta.opensslCli}; micromdm scepserver ${meta.scepserver}`);
  out.push(`Servers are child processes on 127.0.0.1; the load generator (this process, HTTP/1.1 keep-alive, ${meta.concurrency} requests in flight) shares the cores with them.`);
  out.push(`CA keys: Keyfleet ${meta.caKeyType} (ca init --key-type ${meta.caKeyType}), micromdm RSA-2048 (scepserver ca -keySize 2048; its default is 4096); Keyfleet's SCEP RA key is RSA-2048.`);
  out.push('');

  out.push('Raw RSA private-key rate, one core (openssl speed: per user-CPU second)');
  const speeds = value(r.rawRsa.opensslSpeed) ?? [];
  out.push(
    table(
      ['key', 'openssl speed sign/s', 'verify/s', 'node:crypto sign/s', 'per CPU-s'],
      [2048, 3072].map((bits) => {
        const s = speeds.find((x) => x.bits === bits);
        const n = r.rawRsa.nodeCrypto.find((x) => x.bits === bits);
        return [`RSA-${bits}${`rsa-${bits}` === meta.caKeyType ? ' (CA key)' : ''}`, fmt(s?.signPerSec), fmt(s?.verifyPerSec), fmt(n?.signPerSec), fmt(n?.signPerCpuSec)];
      }),
    ),
  );
  const speedFail = failed('openssl speed', r.rawRsa.opensslSpeed);
  if (speedFail) out.push(speedFail);
  out.push('');

  out.push(`SCEP PKCSReq enrolments (pre-built RSA-2048 CSRs from a pool of ${r.scep.keyPool} keys, AES-256-CBC envelopes, SHA-256, POST)`);
  out.push(
    table(
      ['server', 'enrol/s', 'SUCCESS/answered', 'seconds', 'p50', 'p99', 'server CPU/enrol', 'enrol/server-CPU-s', 'client CPU', 'full checks'],
      [scepRow('Keyfleet (keyfleet serve)', r.scep.keyfleet), scepRow('micromdm scepserver', r.scep.micromdm)],
    ),
  );
  for (const [name, o] of [['Keyfleet', r.scep.keyfleet], ['micromdm', r.scep.micromdm]] as const) {
    const f = failed(name, o);
    if (f) out.push(f);
    else if (o.ok && o.value.failureExamples.length > 0) out.push(`  ${name} problems: ${o.value.failureExamples.join('; ')}`);
  }
  const kf = value(r.scep.keyfleet);
  const mdm = value(r.scep.micromdm);
  if (kf && mdm) out.push(`  Keyfleet / micromdm: ${num(kf.perSecond / mdm.perSecond, 2)}× wall-clock rate; ${mdm.serverCpuMsPerOp && kf.serverCpuMsPerOp ? `${num(mdm.serverCpuMsPerOp / kf.serverCpuMsPerOp, 2)}× less server CPU per enrolment` : 'server CPU unknown'}`);
  out.push('');

  out.push(`OCSP (POST /ocsp; a distinct nonce in every request, so every response is freshly signed by the ${meta.caKeyType} issuing CA)`);
  const o = value(r.ocsp);
  if (o) {
    out.push(
      table(
        ['responder', 'resp/s', 'ok/answered', 'seconds', 'p50', 'p99', 'server CPU/resp', 'resp/server-CPU-s', 'client CPU', 'full checks'],
        [
          [
            'Keyfleet (keyfleet serve)',
            fmt(o.perSecond),
            `${num(o.successes)}/${num(o.completed)}`,
            num(o.seconds, 2),
            ms(o.latency.p50Ms),
            ms(o.latency.p99Ms),
            o.serverCpuMsPerOp === undefined ? '?' : `${num(o.serverCpuMsPerOp, 3)} ms`,
            fmt(o.serverCpuSeconds ? o.completed / o.serverCpuSeconds : undefined),
            `${num(o.clientCpuSeconds, 1)} s`,
            `${o.sampleOk}/${o.sampleChecked}`,
          ],
        ],
      ),
    );
    const rsa = meta.caKeyType === 'rsa-2048' ? speeds.find((s) => s.bits === 2048) : meta.caKeyType === 'rsa-3072' ? speeds.find((s) => s.bits === 3072) : undefined;
    if (rsa) out.push(`  beside openssl speed's ${meta.caKeyType} sign rate on one core: ${fmt(rsa.signPerSec)}/s (${num(o.perSecond / rsa.signPerSec, 2)}× of it)`);
    if (o.failureExamples.length > 0) out.push(`  problems: ${o.failureExamples.join('; ')}`);
  } else out.push(failed('OCSP', r.ocsp)!);
  out.push('');

  const c = value(r.crl);
  out.push(`CRL with ${c ? num(c.entries) : '?'} revoked serials`);
  if (c) {
    out.push(`  store filled through CaStore.recordIssued in one transaction: ${num(c.insertSeconds, 2)} s (${fmt(c.insertPerSecond)} records/s; not timed as CRL generation)`);
    out.push(`  authority.generateCrl(): ${c.generateMs.map((t) => ms(t)).join(', ')} (median ${ms(c.generateMedianMs)}); ${num(c.crlBytes / 1024 / 1024, 2)} MB DER; ${num(c.decodedEntries)} entries read back; signature ${c.signatureValid ? 'verifies' : 'DOES NOT VERIFY'}`);
    out.push(
      table(
        ['reading it', 'best', 'median'],
        [
          ['openssl crl -noout (whole process, parse)', c.opensslParse.error ? 'failed' : ms(c.opensslParse.bestMs), c.opensslParse.error ? c.opensslParse.error : ms(c.opensslParse.medianMs)],
          ['openssl crl -noout -CAfile (whole process, parse + verify)', c.opensslVerify.error ? 'failed' : ms(c.opensslVerify.bestMs), c.opensslVerify.error ? c.opensslVerify.error : ms(c.opensslVerify.medianMs)],
          ['our decodeCrl + verifyCrlSignature (in-process)', ms(c.ourParseMs), ''],
        ],
      ),
    );
  } else out.push(failed('CRL', r.crl)!);
  out.push('');

  out.push('PKCS#12 import of a 3-certificate history (3 keys + 3 certificates + CA certificate)');
  const p = value(r.pkcs12);
  if (p) {
    out.push(
      table(
        ['history as written by', 'files', 'bytes', 'readPkcs12', 'histories/s', 'openssl pkcs12 -nodes (processes, best)', 'median'],
        p.map((x) => [x.label, String(x.files), num(x.bytes), x.error ? `failed: ${x.error}` : ms(x.readMs), x.error ? '' : fmt(x.readsPerSec), x.openssl.error ? `failed: ${x.openssl.error}` : ms(x.openssl.bestMs), x.openssl.error ? '' : ms(x.openssl.medianMs)]),
      ),
    );
  } else out.push(failed('PKCS#12', r.pkcs12)!);
  out.push('');

  for (const p of r.profiles ?? []) {
    out.push(`CPU profile of the Keyfleet server during ${p.phase.toUpperCase()} (${p.file}): top self time, start-up included`);
    const rows = (list: readonly SelfTimeRow[]) => list.map((x) => [x.functionName, x.location, `${num(x.selfMs, 0)} ms`, `${num(x.percent, 1)}%`]);
    out.push(table(['function', 'where', 'self', 'share'], rows(p.top)));
    out.push('  in src/:');
    out.push(table(['function', 'where', 'self', 'share'], rows(p.ours)));
    out.push('');
  }

  out.push('Targets (issue 3)');
  for (const t of r.targets) {
    const relation = t.kind === 'at-least' ? '≥' : '<';
    const ratio = t.measured !== undefined && t.required !== undefined && t.required !== 0 && Number.isFinite(t.measured) ? ` (${num(t.kind === 'at-least' ? t.measured / t.required : t.required / t.measured, 2)}× the bar)` : '';
    out.push(`  ${t.status.padEnd(4)}  ${t.description}: ${fmt(t.measured)} ${t.unit}, needs ${relation} ${fmt(t.required)} ${t.unit}${ratio} — ${t.basis}`);
  }
  if (r.notes.length > 0) {
    out.push('');
    out.push('Notes');
    for (const n of r.notes) out.push(`  - ${n}`);
  }
  return `${out.join('\n')}\n`;
}
