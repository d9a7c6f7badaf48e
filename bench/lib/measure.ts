/**
 * Timing loops and memory readings. A loop warms up first (JIT, OpenSSL's
 * lazily built tables, the certificate cache), then runs until it has both
 * a minimum count and a minimum time, or reaches its maximum count — big
 * messages get few, long iterations.
 *
 * Besides the mean rate, a loop reports the rate of its best fifth
 * ("best window"): on a shared machine other processes only ever slow a
 * window down, so the best one is the closest to what an idle machine
 * gives, the same way `openssl speed` and best-of-N process timings are
 * read. It also records the process's CPU time (user + system, all
 * threads) for the CPU-time rate.
 */

/** How many consecutive windows a run is cut into for `bestWindowOpsPerSec`. */
const WINDOWS = 5;

export interface RunPlan {
  readonly warmup: number;
  readonly minIterations: number;
  readonly minSeconds: number;
  readonly maxIterations: number;
}

export interface Timing {
  readonly iterations: number;
  /** Wall time of the measured iterations. */
  readonly seconds: number;
  /** CPU time (user + system, all threads) of the measured iterations. */
  readonly cpuSeconds: number;
  /** iterations / seconds: the mean rate. */
  readonly opsPerSec: number;
  /** iterations / cpuSeconds. */
  readonly opsPerCpuSec: number;
  /** The best rate over the run's fifths (its best iteration when it has fewer than five). */
  readonly bestWindowOpsPerSec: number;
  readonly meanMs: number;
  readonly meanCpuMs: number;
  readonly medianMs: number;
  readonly bestMs: number;
}

/** How long to run one (operation, size): fewer iterations as messages grow. */
export function planFor(bytes: number, quick: boolean): RunPlan {
  const seconds = quick ? 0.3 : 1.5;
  if (bytes <= 16 * 1024) return { warmup: quick ? 20 : 200, minIterations: quick ? 50 : 500, minSeconds: seconds, maxIterations: 1_000_000 };
  if (bytes <= 1024 * 1024) return { warmup: quick ? 5 : 20, minIterations: quick ? 10 : 50, minSeconds: seconds, maxIterations: 100_000 };
  if (bytes <= 32 * 1024 * 1024) return { warmup: 1, minIterations: quick ? 1 : 3, minSeconds: seconds, maxIterations: quick ? 5 : 50 };
  // 100 MB: the first iteration is as warm as any (JIT time is noise beside it).
  return { warmup: 0, minIterations: quick ? 1 : 2, minSeconds: seconds, maxIterations: 3 };
}

/**
 * One call of `op` whose result is dropped before it returns, so no output
 * outlives its iteration: a loop variable holding the previous output
 * would add a whole message to the peak RSS of a 100 MB run. Synchronous
 * operations give undefined (no promise overhead for our engine); PKI.js's
 * promises are awaited.
 */
function runOnce(op: () => unknown): Promise<void> | undefined {
  const result = op();
  return result instanceof Promise ? result.then(() => undefined) : undefined;
}

/** Runs `op` per `plan`. */
export async function timeLoop(op: () => unknown, plan: RunPlan): Promise<Timing> {
  for (let i = 0; i < plan.warmup; i++) await runOnce(op);
  const times: number[] = [];
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  let now = start;
  while (times.length < plan.maxIterations && (times.length < plan.minIterations || now - start < plan.minSeconds * 1000)) {
    const t = now;
    const pending = runOnce(op);
    if (pending !== undefined) await pending;
    now = performance.now();
    times.push(now - t);
  }
  const cpu = process.cpuUsage(cpuStart);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  const seconds = (now - start) / 1000;
  const sorted = [...times].sort((a, b) => a - b);
  return {
    iterations: times.length,
    seconds,
    cpuSeconds,
    opsPerSec: times.length / seconds,
    opsPerCpuSec: times.length / cpuSeconds,
    bestWindowOpsPerSec: bestWindowRate(times),
    meanMs: (seconds * 1000) / times.length,
    meanCpuMs: (cpuSeconds * 1000) / times.length,
    medianMs: sorted[Math.floor(sorted.length / 2)] ?? NaN,
    bestMs: sorted[0] ?? NaN,
  };
}

/** The highest rate of the run's WINDOWS consecutive, equal-count slices of iterations. */
function bestWindowRate(timesMs: readonly number[]): number {
  const perWindow = Math.ceil(timesMs.length / WINDOWS);
  let best = 0;
  for (let i = 0; i < timesMs.length; i += perWindow) {
    const window = timesMs.slice(i, i + perWindow);
    best = Math.max(best, (window.length * 1000) / window.reduce((a, b) => a + b, 0));
  }
  return best;
}

/** Peak resident set size of this process so far, in bytes. */
export function peakRss(): number {
  return process.resourceUsage().maxRSS * 1024; // maxRSS is in KiB
}

export function currentRss(): number {
  return process.memoryUsage.rss();
}
