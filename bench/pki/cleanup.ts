/**
 * What the PKI bench leaves behind, and the guarantee that it leaves
 * nothing: every server it starts and every temporary directory it makes is
 * registered here, and removed on normal exit, on SIGINT/SIGTERM, on an
 * uncaught error, and when the whole run overstays its time budget.
 *
 * Only processes this bench spawned are ever signalled, by their pid.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

const children = new Set<ChildProcess>();
const dirs = new Set<string>();

export function trackChild(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

export function trackDir(dir: string): void {
  dirs.add(dir);
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Synchronous, so that it can run in an 'exit' handler: SIGKILL to what still runs, then rm -rf the directories. */
export function cleanupNow(): void {
  for (const child of children) {
    if (alive(child) && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

/**
 * Installs the exit paths once: signals and uncaught errors clean up and
 * exit non-zero; `budgetMs` bounds the whole run (the timer does not keep
 * the process alive once the work is done).
 */
export function installCleanup(budgetMs: number): void {
  process.once('exit', cleanupNow);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`bench:pki: ${signal}, cleaning up\n`);
      cleanupNow();
      process.exit(130);
    });
  }
  const watchdog = setTimeout(() => {
    process.stderr.write(`bench:pki: the run exceeded its ${Math.round(budgetMs / 1000)} s budget; servers stopped, temporary files removed\n`);
    cleanupNow();
    process.exit(124);
  }, budgetMs);
  watchdog.unref();
}

/** Asks a child to stop (SIGTERM, so a profiled Node server writes its profile), then SIGKILLs it after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (!alive(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
