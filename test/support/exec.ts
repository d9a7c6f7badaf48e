/**
 * Running an external program from a test: arguments as an array (never a
 * shell), optional stdin, a timeout, and everything it said captured so a
 * failing assertion can show it.
 */
import { spawn } from 'node:child_process';

export interface RunOptions {
  readonly input?: string | Uint8Array;
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** Killed with SIGKILL after this long; default 30 s. */
  readonly timeoutMs?: number;
}

export interface RunResult {
  /** The command line, for messages. */
  readonly command: string;
  /** Exit code; null when killed by a signal. */
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly stdout: Buffer;
  readonly stderr: string;
}

export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const command = [file, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env === undefined ? process.env : { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 30_000);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    // A program that exits before reading all of stdin is not our failure to report.
    child.stdin.on('error', () => {});
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(e.code === 'ENOENT' ? new Error(`${file} is not installed (needed by: ${command})`) : e);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ command, status, signal, timedOut, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A readable account of a run, for assertion messages. */
export function describeRun(r: RunResult): string {
  const how = r.timedOut ? 'timed out' : r.signal !== null ? `killed by ${r.signal}` : `exit ${r.status}`;
  const stdout = r.stdout.length > 2000 ? `${r.stdout.subarray(0, 2000).toString('latin1')}…` : r.stdout.toString('latin1');
  return `$ ${r.command}\n(${how})\n--- stderr ---\n${r.stderr}--- stdout ---\n${stdout}`;
}

/** Run and require exit 0; the error carries the full run description. */
export async function runOk(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const r = await run(file, args, options);
  if (r.status !== 0) throw new Error(`command failed:\n${describeRun(r)}`);
  return r;
}

/** Run many tasks with at most `limit` in flight (keeps two cores busy, not swamped). */
export async function inPool<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i] as T);
    }
  });
  await Promise.all(workers);
  return results;
}
