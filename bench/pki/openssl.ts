/**
 * OpenSSL as the yardstick: `openssl speed` for the raw RSA private-key
 * rate of each CA key size (the floor under an OCSP response or a
 * certificate signature), node:crypto's own rate for the same keys (Node 24
 * bundles OpenSSL 3.5; the CLI here is 3.0), and whole-process timings of
 * `openssl crl` and `openssl pkcs12`.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';

export function opensslCliVersion(): string {
  return execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim();
}

export interface RsaSpeed {
  readonly bits: number;
  /** Per user-CPU second, as `openssl speed` reports (one core). */
  readonly signPerSec: number;
  readonly verifyPerSec: number;
}

/**
 * `openssl speed -seconds N rsa2048 rsa3072 …`: the "rsa N bits … sign/s
 * verify/s" rows (3.2+ adds encrypt/decrypt columns before sign; the header
 * row says where sign/s is).
 */
export function opensslSpeed(bits: readonly number[], seconds: number): RsaSpeed[] {
  const out = execFileSync('openssl', ['speed', '-seconds', String(seconds), ...bits.map((b) => `rsa${b}`)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: (seconds * 2 * bits.length + 30) * 1000,
  });
  const lines = out.split('\n');
  const header = lines.find((l) => /sign\/s/.test(l));
  if (header === undefined) throw new Error(`cannot parse openssl speed output:\n${out}`);
  const cols = header.trim().split(/\s+/);
  return bits.map((b) => {
    const row = lines.find((l) => new RegExp(`^rsa\\s+${b} bits`).test(l));
    if (row === undefined) throw new Error(`openssl speed printed no rsa ${b} row`);
    const values = row.replace(/^rsa\s+\d+ bits\s+/, '').trim().split(/\s+/);
    const at = (name: string): number => Number(values[cols.indexOf(name)]);
    return { bits: b, signPerSec: at('sign/s'), verifyPerSec: at('verify/s') };
  });
}

export interface NodeRsaSpeed {
  readonly bits: number;
  readonly signPerSec: number;
  readonly signPerCpuSec: number;
}

/** RSASSA-PKCS1-v1_5/SHA-256 signatures through node:crypto on this thread, for `seconds`. */
export function nodeRsaSignRate(bits: number, seconds: number): NodeRsaSpeed {
  const key = generateKeyPairSync('rsa', { modulusLength: bits }).privateKey;
  const data = randomBytes(32);
  for (let i = 0; i < 20; i++) sign('sha256', data, key);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < seconds * 1000) {
    sign('sha256', data, key);
    n++;
  }
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { bits, signPerSec: n / wall, signPerCpuSec: n / ((cpu.user + cpu.system) / 1e6) };
}

export interface ProcessTiming {
  readonly command: string;
  readonly runs: number;
  readonly bestMs: number;
  readonly medianMs: number;
  readonly error?: string;
}

/** Runs a command `runs` times as a whole process (start-up included); stdout is discarded. */
export function timeCommand(file: string, args: readonly string[], runs: number, check?: (stdout: string, stderr: string) => string | undefined): ProcessTiming {
  const command = [file, ...args].join(' ');
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = spawnSync(file, args, { stdio: ['ignore', check ? 'pipe' : 'ignore', 'pipe'], maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
    const ms = performance.now() - t0;
    const stderr = r.stderr?.toString() ?? '';
    if (r.status !== 0) return { command, runs: i, bestMs: NaN, medianMs: NaN, error: r.error?.message ?? `exit ${r.status ?? r.signal}: ${stderr.trim().split('\n').slice(-2).join(' | ')}` };
    const problem = check?.(r.stdout?.toString() ?? '', stderr);
    if (problem !== undefined) return { command, runs: i, bestMs: NaN, medianMs: NaN, error: problem };
    times.push(ms);
  }
  const sorted = [...times].sort((a, b) => a - b);
  return { command, runs, bestMs: sorted[0] ?? NaN, medianMs: sorted[Math.floor(sorted.length / 2)] ?? NaN };
}
