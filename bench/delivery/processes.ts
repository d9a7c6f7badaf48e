/**
 * The real processes bench:delivery measures: `keyfleet serve` on the
 * seeded data (1 or N workers) and `keyfleet connector run`, each under
 * `node --cpu-prof` when asked, with their output in log files. Only
 * processes started here are ever signalled, by their own handle.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { trackChild } from '../pki/cleanup.ts';
import { KEYFLEET_BIN, processCpuSeconds } from '../pki/servers.ts';
import type { Seeded } from './setup.ts';

export interface Running {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-8).join(' | ');
  } catch {
    return '';
  }
}

function spawnKeyfleet(args: readonly string[], env: NodeJS.ProcessEnv, logFile: string, profileDir: string | undefined): Running {
  const fd = openSync(logFile, 'a');
  try {
    const nodeArgs = profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir];
    const child = spawn(process.execPath, [...nodeArgs, KEYFLEET_BIN, ...args], { stdio: ['ignore', fd, fd], env });
    trackChild(child);
    return { child, pid: child.pid!, logFile };
  } finally {
    closeSync(fd);
  }
}

export interface ServeOptions {
  readonly workers: number;
  readonly logDir: string;
  /** Names the log file. */
  readonly label: string;
  /** Without --quiet: a log line per request, and the cause of every 500 (slower; for finding errors). */
  readonly requestLogs: boolean;
  readonly profileDir: string | undefined;
}

/** `keyfleet serve` on the seeded data and port; resolves once it prints its address. */
export async function startServe(seeded: Seeded, o: ServeOptions): Promise<Running> {
  const args = ['serve', '--data', seeded.dataDir, '--port', String(seeded.port), '--host', '127.0.0.1', '--workers', String(o.workers), ...(o.requestLogs ? [] : ['--quiet'])];
  const running = spawnKeyfleet(args, seeded.env, join(o.logDir, `${seeded.db}-serve-${o.label}.log`), o.profileDir);
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (running.child.exitCode !== null || running.child.signalCode !== null) throw new Error(`keyfleet serve exited during start-up: ${tail(running.logFile)}`);
    if (/serving SCEP, CRL and OCSP at http/.test(readFileSync(running.logFile, 'utf8'))) return running;
    if (Date.now() > deadline) throw new Error(`keyfleet serve did not start within 120 s: ${tail(running.logFile)}`);
    await sleep(100);
  }
}

/** `keyfleet connector run` with credential `n` (0 or 1) of the seeded two. */
export function startConnector(seeded: Seeded, n: number, logDir: string, label: string, profileDir?: string): Running {
  return spawnKeyfleet(
    ['connector', 'run', '--url', seeded.baseUrl, '--credential-file', seeded.connectorCredentialFiles[n]!, '--key', seeded.connectorKeyPath],
    seeded.env,
    join(logDir, `${seeded.db}-connector-${label}-${n + 1}.log`),
    profileDir,
  );
}

export function cpuOf(r: Running): number {
  return processCpuSeconds(r.pid) ?? NaN;
}

/**
 * Waits until the server has been nearly idle (under 10% of a core) for two
 * half-second samples in a row: after a start, its watcher re-evaluates
 * every device of the tenant once, which must not run into a measurement.
 */
export async function settle(r: Running, maxMs = 300_000): Promise<number> {
  const started = performance.now();
  let quiet = 0;
  let last = cpuOf(r);
  while (performance.now() - started < maxMs) {
    await sleep(500);
    const now = cpuOf(r);
    quiet = now - last < 0.05 ? quiet + 1 : 0;
    last = now;
    if (quiet >= 2) break;
  }
  return (performance.now() - started) / 1000;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
export async function stop(r: Running, graceMs = 30_000): Promise<void> {
  if (r.child.exitCode !== null || r.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => r.child.once('exit', () => resolve()));
  r.child.kill('SIGTERM');
  const timer = setTimeout(() => r.child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
