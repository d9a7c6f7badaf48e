/**
 * Assignments: which policies, certificate profiles and apps reach a user
 * or a device, over an in-memory snapshot of the directory (issue 4
 * "Assignments": nested groups, exclusion wins).
 *
 * Built for the benchmark's scale (100,000 users, 300,000 devices, 2,000
 * nested groups, 50 policies; one device ≤ 2 ms p99). The index numbers the
 * groups and keeps, for each group, the bitset of every group it belongs to
 * transitively (itself included). A principal's groups are then the OR of
 * the rows of its direct groups (a few dozen words), and each assignment is
 * compiled to the few (word, mask) pairs of its include and exclude groups,
 * so an evaluation is a handful of ANDs per target and allocates one small
 * array. Memory is groups² / 8 bytes (2,000 groups: 0.5 MB), or groups ×
 * assigned groups / 8 with GroupIndexOptions.columns.
 *
 * Nesting cycles (A in B in A) are legal in some directories; the closure
 * treats a cycle as one strongly connected component (Tarjan), so each group
 * in it belongs to all the others and nothing loops.
 *
 * Intune's built-in "All users" and "All devices" targets are the group ids
 * ALL_USERS and ALL_DEVICES: every user, respectively every device, is in
 * them.
 */

export const ALL_USERS = 'allUsers';
export const ALL_DEVICES = 'allDevices';

export type MemberType = 'user' | 'device' | 'group';

/** One static membership: `memberId` (a user, a device or a nested group) is in `groupId`. */
export interface GroupMembership {
  readonly groupId: string;
  readonly memberId: string;
  readonly memberType: MemberType;
}

/** Whom an evaluation is for: a user, a device, or a device with its primary user. */
export interface Principal {
  readonly userId?: string;
  readonly deviceId?: string;
}

export type AssignmentTargetKind = 'policy' | 'certificateProfile' | 'app';

/** A policy, profile or app with its include and exclude groups. */
export interface AssignmentTarget {
  readonly kind: AssignmentTargetKind;
  readonly id: string;
  readonly include: readonly string[];
  readonly exclude: readonly string[];
}

export interface EffectiveAssignments {
  readonly policies: readonly string[];
  readonly certificateProfiles: readonly string[];
  readonly apps: readonly string[];
}

const EMPTY: readonly number[] = [];

export interface GroupIndexOptions {
  /**
   * The only groups evaluation needs to tell apart: those named in some
   * assignment. Given, each bitset has one bit per such group instead of one
   * per group, so memory is groups × columns / 8 bytes instead of groups² / 8
   * (50,000 groups with 300 assigned: 1.9 MB instead of 312 MB). groupsOf
   * then reports only these groups, and assignments naming another group
   * must be compiled against a rebuilt index.
   */
  readonly columns?: Iterable<string>;
}

/** The directory snapshot, indexed for evaluation. Immutable: rebuild it after a membership change. */
export class GroupIndex {
  /** Number of 32-bit words in one bitset. */
  readonly words: number;
  /** The groups with a bit (a column), by bit number. */
  readonly columnIds: readonly string[];
  readonly #rowOf: ReadonlyMap<string, number>;
  readonly #columnOf: ReadonlyMap<string, number>;
  /** Row r (words long): the columns of every group row r's group is in, transitively, itself included. */
  readonly #closure: Uint32Array;
  readonly #userGroups: ReadonlyMap<string, readonly number[]>;
  readonly #deviceGroups: ReadonlyMap<string, readonly number[]>;

  constructor(
    columnIds: readonly string[],
    rowOf: ReadonlyMap<string, number>,
    columnOf: ReadonlyMap<string, number>,
    closure: Uint32Array,
    users: ReadonlyMap<string, readonly number[]>,
    devices: ReadonlyMap<string, readonly number[]>,
  ) {
    this.columnIds = columnIds;
    this.words = wordsFor(columnIds.length);
    this.#rowOf = rowOf;
    this.#columnOf = columnOf;
    this.#closure = closure;
    this.#userGroups = users;
    this.#deviceGroups = devices;
  }

  /** The group's bit, or undefined for a group the snapshot does not know (it has no members). Throws for a known group indexed without a column. */
  columnOf(groupId: string): number | undefined {
    const c = this.#columnOf.get(groupId);
    if (c === undefined && this.#rowOf.has(groupId)) throw new Error(`group ${groupId} was not among the index's columns; rebuild the index with it`);
    return c;
  }

  /** The bitset of every group the principal is in, directly or through nesting (with ALL_USERS / ALL_DEVICES). */
  bitsetOf(principal: Principal): Uint32Array {
    const bits = new Uint32Array(this.words);
    const c = this.#closure;
    const w = this.words;
    const add = (direct: readonly number[]) => {
      for (const g of direct) {
        const row = g * w;
        for (let i = 0; i < w; i++) bits[i]! |= c[row + i]!;
      }
    };
    if (principal.userId !== undefined) {
      add(ALL_USERS_ROW);
      add(this.#userGroups.get(principal.userId) ?? EMPTY);
    }
    if (principal.deviceId !== undefined) {
      add(ALL_DEVICES_ROW);
      add(this.#deviceGroups.get(principal.deviceId) ?? EMPTY);
    }
    return bits;
  }

  /** The ids of the groups (columns) the principal is in (for display and tests; evaluation uses bitsetOf). */
  groupsOf(principal: Principal | string): Set<string> {
    const bits = this.bitsetOf(typeof principal === 'string' ? { userId: principal } : principal);
    const out = new Set<string>();
    for (let g = 0; g < this.columnIds.length; g++) if (bits[g >>> 5]! & (1 << (g & 31))) out.add(this.columnIds[g]!);
    return out;
  }
}

function wordsFor(columns: number): number {
  return Math.max(1, Math.ceil(columns / 32));
}

// ALL_USERS and ALL_DEVICES are row and column 0 and 1. Evaluation ORs in their rows rather than their
// bare bits, so a group with "all users" nested in it holds every user.
const ALL_USERS_ROW: readonly number[] = [0];
const ALL_DEVICES_ROW: readonly number[] = [1];

/**
 * Indexes groups and static memberships. Groups named only in memberships
 * are indexed too; duplicate memberships are harmless.
 */
export function buildGroupIndex(groups: Iterable<{ readonly id: string }>, memberships: Iterable<GroupMembership>, options: GroupIndexOptions = {}): GroupIndex {
  const rowIds: string[] = [ALL_USERS, ALL_DEVICES];
  const rowOf = new Map<string, number>([[ALL_USERS, 0], [ALL_DEVICES, 1]]);
  const row = (id: string): number => {
    let n = rowOf.get(id);
    if (n === undefined) {
      n = rowIds.length;
      rowIds.push(id);
      rowOf.set(id, n);
    }
    return n;
  };
  for (const g of groups) row(g.id);

  const parents: number[][] = [];
  const users = new Map<string, number[]>();
  const devices = new Map<string, number[]>();
  const addDirect = (map: Map<string, number[]>, id: string, g: number) => {
    const list = map.get(id);
    if (list === undefined) map.set(id, [g]);
    else if (!list.includes(g)) list.push(g);
  };
  for (const m of memberships) {
    const g = row(m.groupId);
    if (m.memberType === 'group') {
      (parents[row(m.memberId)] ??= []).push(g);
    } else if (m.memberType === 'user') {
      addDirect(users, m.memberId, g);
    } else {
      addDirect(devices, m.memberId, g);
    }
  }

  let columnIds: string[];
  if (options.columns === undefined) {
    columnIds = rowIds;
  } else {
    columnIds = [ALL_USERS, ALL_DEVICES];
    for (const id of new Set(options.columns)) if (id !== ALL_USERS && id !== ALL_DEVICES && rowOf.has(id)) columnIds.push(id);
  }
  const columnOf = new Map(columnIds.map((id, i) => [id, i]));
  const columnOfRow = new Int32Array(rowIds.length).fill(-1);
  for (const [id, c] of columnOf) columnOfRow[rowOf.get(id)!] = c;

  const words = wordsFor(columnIds.length);
  const closure = new Uint32Array(rowIds.length * words);
  closeOverNesting(rowIds.length, parents, columnOfRow, closure, words);
  return new GroupIndex(columnIds, rowOf, columnOf, closure, users, devices);
}

/**
 * Fills each group's row with the columns of its transitive parents, by
 * Tarjan's strongly connected components over the child → parent edges,
 * iteratively (deep nesting must not overflow the stack). Tarjan completes a
 * component only after every component reachable from it, i.e. after all of
 * its ancestors, so one pass in completion order suffices.
 */
function closeOverNesting(n: number, parents: readonly (readonly number[] | undefined)[], columnOfRow: Int32Array, closure: Uint32Array, words: number): void {
  const indexOf = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const onStack = new Uint8Array(n);
  const stack: number[] = [];
  let counter = 0;
  const frames: { v: number; next: number }[] = [];

  for (let root = 0; root < n; root++) {
    if (indexOf[root] !== -1) continue;
    frames.push({ v: root, next: 0 });
    indexOf[root] = low[root] = counter++;
    stack.push(root);
    onStack[root] = 1;
    while (frames.length > 0) {
      const frame = frames[frames.length - 1]!;
      const v = frame.v;
      const ps = parents[v] ?? EMPTY;
      if (frame.next < ps.length) {
        const p = ps[frame.next++]!;
        if (indexOf[p] === -1) {
          indexOf[p] = low[p] = counter++;
          stack.push(p);
          onStack[p] = 1;
          frames.push({ v: p, next: 0 });
        } else if (onStack[p]) {
          low[v] = Math.min(low[v]!, indexOf[p]!);
        }
        continue;
      }
      frames.pop();
      const caller = frames[frames.length - 1];
      if (caller) low[caller.v] = Math.min(low[caller.v]!, low[v]!);
      if (low[v] !== indexOf[v]) continue;
      // v roots a component: pop it, give every member the union of the members and of their parents' rows.
      const members: number[] = [];
      let m: number;
      do {
        m = stack.pop()!;
        onStack[m] = 0;
        members.push(m);
      } while (m !== v);
      const bits = new Uint32Array(words);
      for (const x of members) {
        const c = columnOfRow[x]!;
        if (c >= 0) bits[c >>> 5]! |= 1 << (c & 31);
        for (const p of parents[x] ?? EMPTY) {
          // Parents outside the component are complete already; inside, their bits are set by this loop.
          const base = p * words;
          for (let i = 0; i < words; i++) bits[i]! |= closure[base + i]!;
        }
      }
      for (const x of members) closure.set(bits, x * words);
    }
  }
}

/** Assignments compiled against one index: each target's groups as (word, mask) pairs. */
export interface CompiledAssignments {
  readonly index: GroupIndex;
  readonly targets: readonly CompiledTarget[];
}

interface CompiledTarget {
  readonly kind: AssignmentTargetKind;
  readonly id: string;
  /** Alternating word index, mask. */
  readonly include: Int32Array;
  readonly exclude: Int32Array;
}

function masks(index: GroupIndex, groupIds: readonly string[]): Int32Array {
  const byWord = new Map<number, number>();
  for (const id of groupIds) {
    // A group the snapshot does not know has no members: it includes and excludes nobody.
    const g = index.columnOf(id);
    if (g === undefined) continue;
    byWord.set(g >>> 5, (byWord.get(g >>> 5) ?? 0) | (1 << (g & 31)));
  }
  const out = new Int32Array(byWord.size * 2);
  let i = 0;
  for (const [w, m] of byWord) {
    out[i++] = w;
    out[i++] = m;
  }
  return out;
}

const compiledCache = new WeakMap<readonly AssignmentTarget[], WeakMap<GroupIndex, CompiledAssignments>>();

export function compileAssignments(index: GroupIndex, targets: readonly AssignmentTarget[]): CompiledAssignments {
  let perIndex = compiledCache.get(targets);
  const hit = perIndex?.get(index);
  if (hit) return hit;
  const compiled: CompiledAssignments = {
    index,
    targets: targets.map((t) => ({ kind: t.kind, id: t.id, include: masks(index, t.include), exclude: masks(index, t.exclude) })),
  };
  if (!perIndex) compiledCache.set(targets, (perIndex = new WeakMap()));
  perIndex.set(index, compiled);
  return compiled;
}

function intersects(bits: Uint32Array, masks: Int32Array): boolean {
  for (let i = 0; i < masks.length; i += 2) if (bits[masks[i]!]! & masks[i + 1]!) return true;
  return false;
}

/**
 * The policies, certificate profiles and apps assigned to a principal: a
 * target applies when one of its include groups contains the principal and
 * none of its exclude groups does (exclusion wins, as in Intune). For a
 * device, its own groups and its primary user's groups both count, for
 * inclusion and for exclusion alike.
 *
 * `assignments` may be raw targets (compiled once per array and index, then
 * cached) or the result of compileAssignments.
 */
export function effectiveAssignments(principal: Principal | string, index: GroupIndex, assignments: readonly AssignmentTarget[] | CompiledAssignments): EffectiveAssignments {
  const compiled = 'targets' in assignments ? assignments : compileAssignments(index, assignments);
  if (compiled.index !== index) throw new Error('effectiveAssignments: assignments were compiled against another group index');
  const bits = index.bitsetOf(typeof principal === 'string' ? { userId: principal } : principal);
  const policies: string[] = [];
  const certificateProfiles: string[] = [];
  const apps: string[] = [];
  for (const t of compiled.targets) {
    if (!intersects(bits, t.include) || intersects(bits, t.exclude)) continue;
    (t.kind === 'policy' ? policies : t.kind === 'app' ? apps : certificateProfiles).push(t.id);
  }
  return { policies, certificateProfiles, apps };
}
