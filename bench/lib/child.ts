/**
 * Each (implementation, operation, size) runs in a child process of its own
 * (`node bench/smime.ts --child <task>`), so its peak RSS is its own: a
 * 100 MB run does not inflate the 1 KB figures, PKI.js's heap does not
 * count against ours, and a crash or out-of-memory in one run is reported
 * instead of ending the bench.
 *
 * A child prints one JSON line (ChildOutcome) on stdout.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CmsImpl, ImplName, Iteration, Operation } from './impl.ts';
import { preparedFiles } from './impl.ts';
import { currentRss, peakRss, planFor, timeLoop, type Timing } from './measure.ts';
import { sizeByLabel } from './messages.ts';
import type { BenchPki } from './pki.ts';

export type ChildTask =
  | { readonly kind: 'prepare'; readonly impl: ImplName; readonly size: string; readonly dir: string; readonly pki: BenchPki }
  | { readonly kind: 'op'; readonly impl: ImplName; readonly op: Operation; readonly size: string; readonly dir: string; readonly pki: BenchPki; readonly quick: boolean };

export interface OpMeasurement {
  readonly timing: Timing;
  /** RSS after loading the implementation, keys and certificates, before reading the input message. */
  readonly baselineRssBytes: number;
  /** process.resourceUsage().maxRSS at the end of the run. */
  readonly peakRssBytes: number;
  readonly outputBytes: number;
}

export type ChildOutcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

const ENTRY = fileURLToPath(new URL('../smime.ts', import.meta.url));

/** Runs `task` in a child process; never throws for the child's failures. */
export function runChild<T>(task: ChildTask, timeoutMs: number): Promise<ChildOutcome<T>> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [ENTRY, '--child', JSON.stringify(task)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, error: e.message });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const lastLine = Buffer.concat(out).toString('utf8').trim().split('\n').pop() ?? '';
      try {
        if (lastLine !== '') return resolve(JSON.parse(lastLine) as ChildOutcome<T>);
      } catch {
        // fall through: report how the child ended
      }
      const how = timedOut ? `timed out after ${timeoutMs / 1000} s` : signal !== null ? `killed by ${signal}` : `exited with ${code}`;
      const stderr = Buffer.concat(err).toString('utf8').trim().split('\n').slice(-3).join(' | ');
      resolve({ ok: false, error: `${how}${stderr ? `: ${stderr}` : ''}` });
    });
  });
}

async function loadImpl(name: ImplName, pki: BenchPki): Promise<CmsImpl> {
  // Imported on demand so a child loads only the implementation it measures.
  if (name === 'keyfleet') return (await import('./keyfleet.ts')).keyfleetImpl(pki);
  return (await import('./pkijs.ts')).pkijsImpl(pki);
}

/** The child's side: runs one task and prints its outcome. */
export async function childMain(taskJson: string): Promise<void> {
  let outcome: ChildOutcome<unknown>;
  try {
    outcome = { ok: true, value: await runTask(JSON.parse(taskJson) as ChildTask) };
  } catch (e) {
    outcome = { ok: false, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
  process.stdout.write(`${JSON.stringify(outcome)}\n`);
}

async function runTask(task: ChildTask): Promise<unknown> {
  const size = sizeByLabel(task.size);
  const impl = await loadImpl(task.impl, task.pki);
  const files = preparedFiles(task.dir, task.impl, size.bytes);
  if (task.kind === 'prepare') {
    await impl.prepare(files);
    return null;
  }
  const baselineRssBytes = currentRss();
  const iteration = impl.setup(task.op, files);
  const outputBytes = await firstRunLength(iteration);
  // verify returns the signed content and decrypt the message: both must be most of the message.
  if ((task.op === 'verify' || task.op === 'decrypt') && outputBytes < size.bytes / 2) {
    throw new Error(`${task.op} returned ${outputBytes} bytes for a ${size.bytes}-byte message`);
  }
  const timing = await timeLoop(iteration, planFor(size.bytes, task.quick));
  const result: OpMeasurement = { timing, baselineRssBytes, peakRssBytes: peakRss(), outputBytes };
  return result;
}

/** Runs the first iteration (a sanity check and a warm-up) keeping only its length, not its output. */
async function firstRunLength(iteration: Iteration): Promise<number> {
  return (await iteration()).length;
}
