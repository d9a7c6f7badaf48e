/**
 * `npm run bench:smime` — issue 2's S/MIME benchmark, all in one run:
 *
 * - Keyfleet sign, verify, encrypt and decrypt of whole RFC 5322 messages at
 *   1 KB, 100 KB, 10 MB and 100 MB: ops/s, MB/s and peak RSS;
 * - the same CMS work in PKI.js (1 KB, 100 KB, and 10 MB where it copes);
 * - OpenSSL's raw RSA-2048 rate (`openssl speed`) and node:crypto's;
 * - `openssl cms` and `keyfleet smime` as whole processes on the 10 MB file;
 * - each target of the issue with PASS/MISS.
 *
 * Options: --json (one JSON object on stdout), --quick (short runs, no
 * 100 MB: a smoke test). Progress goes to stderr. The bench is not part of
 * `npm test`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { childMain, runChild, type ChildOutcome, type OpMeasurement } from './lib/child.ts';
import { OPERATIONS, preparedFiles, type ImplName } from './lib/impl.ts';
import { KB, MB, SIZES, buildMessage, type MessageSize } from './lib/messages.ts';
import { opensslCliVersion, opensslCms, shortVersion } from './lib/openssl.ts';
import { keyfleetCli } from './lib/process.ts';
import { bestRawRsa, sampleRawRsa, type RawRsaSample } from './lib/raw-rsa.ts';
import { createBenchPki, type BenchPki } from './lib/pki.ts';
import { renderText, resultJson, type BenchReport } from './lib/report.ts';
import { evaluateTargets, type OpRow } from './lib/targets.ts';

/** PKI.js runs up to 10 MB: REFERENCE.md records it failing on its own 13.5 MB EnvelopedData. */
const PKIJS_MAX_BYTES = 10 * MB;

function progress(text: string): void {
  process.stderr.write(`bench: ${text}\n`);
}

function pkijsVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../node_modules/pkijs/package.json', import.meta.url), 'utf8')) as { version?: string };
  return pkg.version ?? 'unknown';
}

/** Generous limits: a child that runs past them has hung or is swapping. */
function timeoutFor(bytes: number): number {
  return bytes >= 50 * MB ? 900_000 : bytes >= 5 * MB ? 300_000 : 120_000;
}

/** One implementation at one size: a prepare child, then a child per operation. */
async function measureImpl(impl: ImplName, size: MessageSize, dir: string, pki: BenchPki, quick: boolean): Promise<OpRow[]> {
  const timeout = timeoutFor(size.bytes);
  progress(`${size.label}: ${impl} prepare`);
  const prepared = await runChild<null>({ kind: 'prepare', impl, size: size.label, dir, pki }, timeout);
  const rows: OpRow[] = [];
  for (const op of OPERATIONS) {
    let outcome: ChildOutcome<OpMeasurement>;
    // sign and encrypt read only the message; verify and decrypt read what prepare wrote.
    if (!prepared.ok && (op === 'verify' || op === 'decrypt')) {
      outcome = { ok: false, error: `preparing the input failed: ${prepared.error}` };
    } else {
      progress(`${size.label}: ${impl} ${op}`);
      outcome = await runChild<OpMeasurement>({ kind: 'op', impl, op, size: size.label, dir, pki, quick }, timeout);
    }
    if (!outcome.ok) progress(`${size.label}: ${impl} ${op} failed: ${outcome.error}`);
    rows.push({ impl, op, size: size.label, bytes: size.bytes, measurement: outcome.ok ? outcome.value : undefined, error: outcome.ok ? undefined : outcome.error });
  }
  return rows;
}

async function main(json: boolean, quick: boolean): Promise<void> {
  const loadStart = loadavg();
  const dir = mkdtempSync(join(tmpdir(), 'keyfleet-bench-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));

  progress('generating the test PKI with openssl');
  const pki = createBenchPki(dir);

  // Sampled before the runs and again right after the 1 KB group (the one
  // the targets compare with them); the best sample is the yardstick.
  const rawRsa: RawRsaSample[] = [];
  const sampleRaw = async (): Promise<void> => {
    progress(`raw RSA-2048 rates: node:crypto, then openssl speed -seconds ${quick ? 1 : 3} rsa2048`);
    rawRsa.push(await sampleRawRsa(pki, quick));
  };
  await sampleRaw();

  const rows: OpRow[] = [];
  let wholeProcess: BenchReport['wholeProcess'] = null;
  const sizes = quick ? SIZES.filter((s) => s.bytes < 50 * MB) : SIZES;
  for (const size of sizes) {
    const files = preparedFiles(dir, 'keyfleet', size.bytes);
    writeFileSync(files.message, buildMessage(size));
    rows.push(...(await measureImpl('keyfleet', size, dir, pki, quick)));
    if (size.bytes <= PKIJS_MAX_BYTES) rows.push(...(await measureImpl('pkijs', size, dir, pki, quick)));
    if (size.bytes === KB) await sampleRaw();

    if (size.bytes === 10 * MB) {
      const repeats = quick ? 1 : 3;
      const onFile = { message: files.message, scratch: dir };
      progress(`${size.label}: openssl cms, ${repeats} run(s) per operation`);
      const cms = opensslCms(pki, onFile, repeats);
      progress(`${size.label}: keyfleet CLI, ${repeats} run(s) per operation`);
      const cli = keyfleetCli(pki, onFile, repeats);
      wholeProcess = { size: size.label, bytes: size.bytes, opensslCms: cms, keyfleetCli: cli };
    }
    // Free the disk before the next size: the 100 MB group writes ~350 MB.
    for (const impl of ['keyfleet', 'pkijs'] as const) {
      const f = preparedFiles(dir, impl, size.bytes);
      for (const path of [f.message, f.signed, f.encrypted]) rmSync(path, { force: true });
    }
  }

  const loadEnd = loadavg();
  const cliVersion = shortVersion(opensslCliVersion());
  const notes = [
    "PKI.js does CMS only (no MIME, no base64), so it does less per operation than our engine; it uses RSA-OAEP key transport because Node's WebCrypto has no PKCS#1 v1.5 encryption (the RSA private-key cost is the same).",
    "Targets read every side as best-of: our and PKI.js's best fifth of each run (the table's \"best ops/s\"), openssl speed's best sample (per user-CPU second), openssl cms's best of its runs. Other load only slows a reading down, so the best is the closest to an idle machine; the tables also give means.",
    "The 10 MB targets compare our in-process time per operation with openssl cms's whole-process wall time, which includes its start-up (a few ms); the keyfleet CLI columns are the like-for-like whole-process figures (Node start-up and loading the TypeScript sources included). CPU columns come from /usr/bin/time (10 ms resolution).",
    'openssl cms verifies and decrypts its own output, in its default text mode (canonical CRLF); the keyfleet CLI likewise works on its own output.',
    `The openssl CLI here is ${cliVersion}; Node bundles OpenSSL ${process.versions.openssl}. Both raw RSA rates are shown; the targets use the CLI's (the issue's yardstick), best of ${rawRsa.length} samples.`,
  ];
  const busiest = Math.max(loadStart[0] ?? 0, loadEnd[0] ?? 0);
  if (busiest > 0.5 * cpus().length) {
    notes.push(
      `The machine was busy (1-minute load average ${(loadStart[0] ?? 0).toFixed(1)} at start, ${(loadEnd[0] ?? 0).toFixed(1)} at end, ${cpus().length} CPUs): other processes competed for the cores, so rates are lower and noisier than on an idle machine, and ratios between figures measured minutes apart are the least reliable.`,
    );
  }
  if (quick) notes.push('--quick: shortened loops, best of 1, no 100 MB (its RSS targets are n/a). Use the full run for the figures.');

  const best = bestRawRsa(rawRsa);
  const report: BenchReport = {
    meta: {
      date: new Date().toISOString(),
      quick,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      nodeOpenssl: process.versions.openssl,
      opensslCli: cliVersion,
      loadAverage: { start: loadStart, end: loadEnd },
      pkijs: pkijsVersion(),
      bytesPerMB: MB,
    },
    notes,
    rawRsa: { samples: rawRsa, best },
    results: rows.map(resultJson),
    wholeProcess,
    targets: evaluateTargets({ rows, opensslSpeed: best.opensslSpeed, opensslCms: wholeProcess?.opensslCms ?? [] }),
  };
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : renderText(report));
}

// Last, so every constant above is initialised before anything runs.
const { values } = parseArgs({
  options: { json: { type: 'boolean' }, quick: { type: 'boolean' }, child: { type: 'string' } },
  strict: true,
});
if (values.child !== undefined) {
  await childMain(values.child);
} else {
  await main(values.json === true, values.quick === true);
}
