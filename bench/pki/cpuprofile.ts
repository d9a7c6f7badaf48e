/**
 * Self time per function from a V8 `.cpuprofile` (what `node --cpu-prof`
 * writes): each sample is charged to the node it landed in, nodes of the
 * same function (name + script + line) are added up. Used with
 * `bench:pki --cpu-prof DIR` to see where the Keyfleet server spends its
 * time. Also runnable on its own: `node bench/pki/cpuprofile.ts FILE [N]`.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface SelfTimeRow {
  readonly functionName: string;
  /** Path relative to the repository (or the URL / "(native)"), with the 1-based line. */
  readonly location: string;
  readonly selfMs: number;
  /** Of all sampled time, idle included. */
  readonly percent: number;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function where(url: string, line: number): string {
  if (url === '') return '(native)';
  const path = url.startsWith('file://') ? relative(ROOT, fileURLToPath(url)) : url;
  return `${path}:${line + 1}`;
}

/** Every function's self time, largest first. */
export function selfTimes(file: string): SelfTimeRow[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n);
  // A native function ("run", "all", "writev") says little by itself: name the JavaScript that called it.
  const locate = (node: ProfileNode): string => {
    const { functionName, url, lineNumber } = node.callFrame;
    if (url !== '' || functionName.startsWith('(')) return where(url, lineNumber);
    const parent = parentOf.get(node.id);
    return parent === undefined ? '(native)' : `(native) ← ${parent.callFrame.functionName || '(anonymous)'} ${where(parent.callFrame.url, parent.callFrame.lineNumber)}`;
  };
  const totals = new Map<string, { functionName: string; location: string; us: number }>();
  let all = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    all += us;
    const node = byId.get(id);
    if (!node) return;
    const { functionName } = node.callFrame;
    const location = locate(node);
    const key = `${functionName}@${location}`;
    const t = totals.get(key) ?? { functionName: functionName || '(anonymous)', location, us: 0 };
    t.us += us;
    totals.set(key, t);
  });
  return [...totals.values()].sort((a, b) => b.us - a.us).map((t) => ({ functionName: t.functionName, location: t.location, selfMs: t.us / 1000, percent: (100 * t.us) / all }));
}

/** Functions of our own code (src/). */
export function isOurs(row: SelfTimeRow): boolean {
  return row.location.startsWith('src/');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, n] = process.argv.slice(2);
  if (file === undefined) {
    process.stderr.write('usage: node bench/pki/cpuprofile.ts FILE.cpuprofile [N]\n');
    process.exit(2);
  }
  const rows = selfTimes(file);
  const limit = Number(n ?? 30);
  for (const [title, list] of [['all', rows], ['src/', rows.filter(isOurs)]] as const) {
    process.stdout.write(`top self time (${title})\n`);
    for (const r of list.slice(0, limit)) process.stdout.write(`${r.selfMs.toFixed(0).padStart(8)} ms ${r.percent.toFixed(1).padStart(5)}%  ${r.functionName}  ${r.location}\n`);
  }
}
