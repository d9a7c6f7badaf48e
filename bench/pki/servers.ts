/**
 * The two SCEP servers under test, each a child process of its own so that
 * the load generator (this process) does not share an event loop with
 * either — though all three share the machine's cores.
 *
 * - Keyfleet: `keyfleet ca init --key-type rsa-2048` then `keyfleet serve`
 *   on 127.0.0.1, SQLite store in a temporary data directory, with its
 *   default request logging (to a file, not to a pipe this process drains).
 * - micromdm: Debian's `scepserver` (micromdm/scep) with its file depot, an
 *   RSA-2048 CA (`scepserver ca -init -keySize 2048`; its default is 4096),
 *   a static `-challenge` and `-allowrenew 0`. It has no listen-address
 *   option (it binds `:port`); the bench talks to it on 127.0.0.1 only.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trackChild } from './cleanup.ts';

export const KEYFLEET_BIN = fileURLToPath(new URL('../../bin/keyfleet', import.meta.url));
export const SCEPSERVER = '/usr/bin/scepserver';

export interface RunningServer {
  readonly name: string;
  /** http://127.0.0.1:PORT */
  readonly baseUrl: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
}

/** Runs `keyfleet <args>` to completion (setup commands); throws with its stderr on failure. */
export function keyfleetCli(args: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  try {
    return execFileSync(process.execPath, [KEYFLEET_BIN, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env, timeout: 120_000 });
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr?.trim() ?? '';
    throw new Error(`keyfleet ${args.slice(0, 2).join(' ')} failed: ${stderr}`, { cause: e });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-5).join(' | ');
  } catch {
    return '';
  }
}

function spawnLogged(file: string, args: readonly string[], logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(file, args, { stdio: ['ignore', fd, fd] });
    trackChild(child);
    return child;
  } finally {
    closeSync(fd); // the child holds its own copy
  }
}

async function waitFor<T>(what: string, child: ChildProcess, logFile: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${what} exited during start-up: ${tail(logFile)}`);
    const found = await probe().catch(() => undefined);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`${what} did not start within ${timeoutMs / 1000} s: ${tail(logFile)}`);
    await sleep(50);
  }
}

export interface KeyfleetServeOptions {
  readonly dataDir: string;
  readonly logFile: string;
  /** Run the server under `node --cpu-prof`, writing the profile here when it stops. */
  readonly cpuProfileDir?: string;
  /** `keyfleet serve --workers N` (default 1). */
  readonly workers?: number;
}

/** `keyfleet serve --port 0 --host 127.0.0.1`; resolves once it prints its address. */
export async function startKeyfleet(options: KeyfleetServeOptions): Promise<RunningServer> {
  const nodeArgs = options.cpuProfileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir];
  const child = spawnLogged(process.execPath, [...nodeArgs, KEYFLEET_BIN, 'serve', '--data', options.dataDir, '--port', '0', '--host', '127.0.0.1', '--workers', String(options.workers ?? 1)], options.logFile);
  const baseUrl = await waitFor('keyfleet serve', child, options.logFile, async () => {
    const m = /serving SCEP, CRL and OCSP at (http:\/\/127\.0\.0\.1:\d+)/.exec(readFileSync(options.logFile, 'utf8'));
    return m?.[1];
  });
  return { name: 'keyfleet', baseUrl, child, pid: child.pid!, logFile: options.logFile };
}

/** A port free on 127.0.0.1 a moment ago (scepserver cannot be told to pick one). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface MicromdmOptions {
  readonly dir: string;
  readonly challenge: string;
  readonly logFile: string;
}

/** `scepserver ca -init` (RSA-2048) then `scepserver -depot … -challenge … -allowrenew 0`; resolves once GetCACaps answers. */
export async function startMicromdm(options: MicromdmOptions): Promise<RunningServer> {
  const depot = join(options.dir, 'depot');
  execFileSync(SCEPSERVER, ['ca', '-init', '-depot', depot, '-keySize', '2048', '-organization', 'micromdm bench'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
  const port = await freePort();
  const child = spawnLogged(SCEPSERVER, ['-depot', depot, '-port', String(port), '-challenge', options.challenge, '-allowrenew', '0'], options.logFile);
  const baseUrl = `http://127.0.0.1:${port}`;
  await waitFor('scepserver', child, options.logFile, async () => ((await fetch(`${baseUrl}/scep?operation=GetCACaps`)).ok ? true : undefined));
  return { name: 'micromdm', baseUrl, child, pid: child.pid!, logFile: options.logFile };
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * User + system CPU seconds of a process (all its threads) and of its child
 * processes (`keyfleet serve --workers N` forks its workers) from /proc;
 * undefined where /proc is not there.
 */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name (which may hold spaces): utime and stime are the 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    let seconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
    for (const child of childPids(pid)) seconds += processCpuSeconds(child) ?? 0;
    return seconds;
  } catch {
    return undefined;
  }
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Why micromdm refused to sign, from its log: `msg="failed to sign CSR"
 * err="…"` lines, counted by message (its file depot's serial file is not
 * safe under concurrent requests).
 */
export function micromdmSignErrors(logFile: string): Record<string, number> {
  const counts: Record<string, number> = {};
  let text = '';
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return counts;
  }
  for (const m of text.matchAll(/msg="failed to sign CSR" err="([^"]*)"/g)) counts[m[1]!] = (counts[m[1]!] ?? 0) + 1;
  return counts;
}
