/**
 * Whole-process runs (start-up included) with their wall time and, from
 * /usr/bin/time when it is installed, CPU time and peak RSS: how `openssl
 * cms` and our own CLI compare on the same file.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Operation } from './impl.ts';
import type { BenchPki } from './pki.ts';

export interface ProcessRun {
  readonly wallMs: number;
  /** User + system CPU time, from /usr/bin/time when it is installed. */
  readonly cpuMs: number | undefined;
  readonly peakRssBytes: number | undefined;
}

export interface ProcessTiming {
  readonly op: Operation;
  readonly command: string;
  readonly runs: readonly ProcessRun[];
  readonly bestWallMs: number;
  /** Lowest CPU time of the runs; undefined without /usr/bin/time. */
  readonly bestCpuMs: number | undefined;
  /** Highest peak RSS of the runs. */
  readonly peakRssBytes: number | undefined;
  readonly error?: string;
}

const TIME = '/usr/bin/time';

/** Runs a command `repeats` times as a whole process (start-up included), timing each run. */
export function timeProcess(op: Operation, file: string, args: readonly string[], repeats: number, scratch: string): ProcessTiming {
  const command = [file, ...args].join(' ');
  const runs: ProcessRun[] = [];
  const useTime = existsSync(TIME);
  const timeOut = join(scratch, 'time.out');
  for (let i = 0; i < repeats; i++) {
    const [exe, argv] = useTime ? [TIME, ['-f', '%U %S %M', '-o', timeOut, file, ...args]] : [file, [...args]];
    const start = performance.now();
    const r = spawnSync(exe, argv, { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1024 * 1024 });
    const wallMs = performance.now() - start;
    if (r.status !== 0) {
      const why = r.error?.message ?? `exit ${r.status ?? r.signal}: ${r.stderr.toString().trim().split('\n').slice(-2).join(' | ')}`;
      return { op, command, runs, bestWallMs: NaN, bestCpuMs: undefined, peakRssBytes: undefined, error: why };
    }
    if (useTime) {
      // The last line: earlier ones may be "Command exited with non-zero status".
      const [user, system, maxRssKb] = (readFileSync(timeOut, 'utf8').trim().split('\n').pop() ?? '').split(' ').map(Number);
      runs.push({ wallMs, cpuMs: ((user ?? NaN) + (system ?? NaN)) * 1000, peakRssBytes: (maxRssKb ?? NaN) * 1024 });
    } else {
      runs.push({ wallMs, cpuMs: undefined, peakRssBytes: undefined });
    }
  }
  const cpu = runs.flatMap((r) => (r.cpuMs === undefined ? [] : [r.cpuMs]));
  const rss = runs.flatMap((r) => (r.peakRssBytes === undefined ? [] : [r.peakRssBytes]));
  return {
    op,
    command,
    runs,
    bestWallMs: Math.min(...runs.map((r) => r.wallMs)),
    bestCpuMs: cpu.length > 0 ? Math.min(...cpu) : undefined,
    peakRssBytes: rss.length > 0 ? Math.max(...rss) : undefined,
  };
}

export interface WholeProcessFiles {
  readonly message: string;
  readonly scratch: string;
}

const KEYFLEET = fileURLToPath(new URL('../../bin/keyfleet', import.meta.url));

/** `keyfleet smime …` on the same file as whole processes, for a like-for-like comparison with `openssl cms`. */
export function keyfleetCli(pki: BenchPki, files: WholeProcessFiles, repeats: number): ProcessTiming[] {
  const f = (name: string): string => join(files.scratch, name);
  const cli = (op: Operation, args: readonly string[]): ProcessTiming => timeProcess(op, process.execPath, [KEYFLEET, 'smime', op, ...args], repeats, files.scratch);
  return [
    cli('sign', ['--cert', pki.leafCert, '--key', pki.leafKey, '--in', files.message, '--out', f('cli-signed.eml')]),
    cli('verify', ['--trust', pki.rootCert, '--in', f('cli-signed.eml'), '--out', f('cli-verified.eml')]),
    cli('encrypt', ['--to', pki.leafCert, '--cipher', 'aes-256-cbc', '--in', files.message, '--out', f('cli-encrypted.eml')]),
    cli('decrypt', ['--key', pki.leafKey, '--cert', pki.leafCert, '--in', f('cli-encrypted.eml'), '--out', f('cli-decrypted.eml')]),
  ];
}
