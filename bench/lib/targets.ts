/**
 * The targets of issue 2's "Benchmark" section, checked against one run's
 * figures. Every target reads as "measured must be at least / below
 * required"; a figure that could not be measured is "n/a", never a PASS.
 *
 * Rates are read as best-of, on both sides of every comparison: our and
 * PKI.js's best window (measure.ts), `openssl speed`'s best sample (it
 * reports per user-CPU second, which other load does not dilute), and
 * `openssl cms`'s best whole-process run. On a shared machine other load
 * only ever slows a run down, so the best reading is the one closest to the
 * idle 2-core machine the issue's targets are set for; the tables keep the
 * means.
 */
import type { OpMeasurement } from './child.ts';
import type { ImplName, Operation } from './impl.ts';
import { MB } from './messages.ts';
import type { RsaRate } from './openssl.ts';
import type { ProcessTiming } from './process.ts';

export interface OpRow {
  readonly impl: ImplName;
  readonly op: Operation;
  readonly size: string;
  readonly bytes: number;
  readonly measurement: OpMeasurement | undefined;
  readonly error: string | undefined;
}

export type Status = 'PASS' | 'MISS' | 'n/a';

export interface Target {
  readonly description: string;
  /** 'at-least': measured ≥ required; 'below': measured < required. */
  readonly kind: 'at-least' | 'below';
  readonly unit: 'ops/s' | 'bytes';
  readonly measured: number | undefined;
  readonly required: number | undefined;
  readonly status: Status;
  /** What the bar was derived from, for the reader. */
  readonly basis: string;
}

export interface TargetInputs {
  readonly rows: readonly OpRow[];
  readonly opensslSpeed: RsaRate | undefined;
  /** `openssl cms` on the 10 MB message. */
  readonly opensslCms: readonly ProcessTiming[];
}

function target(description: string, kind: Target['kind'], unit: Target['unit'], measured: number | undefined, required: number | undefined, basis: string): Target {
  const known = measured !== undefined && required !== undefined && Number.isFinite(measured) && Number.isFinite(required);
  const pass = known && (kind === 'at-least' ? measured >= required : measured < required);
  return { description, kind, unit, measured, required, status: known ? (pass ? 'PASS' : 'MISS') : 'n/a', basis };
}

const fmt = (n: number | undefined, digits = 1): string => (n === undefined ? '?' : n.toFixed(digits));

export function evaluateTargets({ rows, opensslSpeed, opensslCms }: TargetInputs): Target[] {
  const measurement = (impl: ImplName, op: Operation, size: string) => rows.find((r) => r.impl === impl && r.op === op && r.size === size)?.measurement;
  const rate = (impl: ImplName, op: Operation, size: string) => measurement(impl, op, size)?.timing.bestWindowOpsPerSec;
  const rsaSign = opensslSpeed?.signPerSec;
  const targets: Target[] = [];

  // The RSA private-key operation is the floor of a 1 KB sign or decrypt
  // (openssl speed's "sign" is that operation).
  for (const op of ['sign', 'decrypt'] as const) {
    const ours = rate('keyfleet', op, '1 KB');
    const pkijs = rate('pkijs', op, '1 KB');
    targets.push(
      target(`1 KB ${op} ≥ 70% of OpenSSL's raw RSA-2048 private-key rate`, 'at-least', 'ops/s', ours, rsaSign === undefined ? undefined : 0.7 * rsaSign,
        `0.7 × openssl speed rsa2048 sign ${fmt(rsaSign)}/s`),
      target(`1 KB ${op} ≥ 4× PKI.js`, 'at-least', 'ops/s', ours, pkijs === undefined ? undefined : 4 * pkijs, `4 × PKI.js 1 KB ${op} ${fmt(pkijs)}/s`),
    );
  }
  for (const op of ['verify', 'encrypt'] as const) {
    targets.push(target(`1 KB ${op} ≥ 8,000 ops/s`, 'at-least', 'ops/s', rate('keyfleet', op, '1 KB'), 8000, 'fixed'));
  }
  for (const op of ['sign', 'verify', 'encrypt', 'decrypt'] as const) {
    const cms = opensslCms.find((t) => t.op === op && t.error === undefined);
    const ours = rate('keyfleet', op, '10 MB');
    targets.push(
      target(`10 MB ${op} at least as fast as \`openssl cms\` as a whole process`, 'at-least', 'ops/s', ours, cms === undefined ? undefined : 1000 / cms.bestWallMs,
        `openssl cms -${op} ${fmt(cms?.bestWallMs, 1)} ms wall (best of ${cms?.runs.length ?? '?'}, start-up included); ours ${fmt(ours === undefined ? undefined : 1000 / ours, 1)} ms per operation in-process`),
    );
  }
  for (const op of ['sign', 'verify', 'encrypt', 'decrypt'] as const) {
    const m = measurement('keyfleet', op, '100 MB');
    const over = m === undefined ? '' : `; ${fmt((m.peakRssBytes - m.baselineRssBytes) / MB, 1)} MB over the process's ${fmt(m.baselineRssBytes / MB, 1)} MB baseline`;
    targets.push(target(`100 MB ${op} peak RSS < 4× the message size`, 'below', 'bytes', m?.peakRssBytes, 4 * 100 * MB, `4 × 100 MB, whole-process peak${over}`));
  }
  return targets;
}
