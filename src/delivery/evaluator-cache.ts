/**
 * One TenantEvaluator per tenant, rebuilt when the tenant changes.
 *
 * "Changes" are what the audit log records: every admin change (directory,
 * resources, assignments, PFX imports; src/directory/audit.ts `recorded`)
 * appends an entry in its own transaction, so the audit head's seq is the
 * tenant's change counter. Each forTenant call costs one head() query
 * (fewer with maxHeadAgeMs, below); the evaluator is rebuilt only when the
 * seq is newer than the one its snapshot was read after. Changes that bypass the audit log — rows written straight
 * into the store (a bulk load, a migration, a test putting resources
 * directly) — are NOT seen until the next audited change, or until
 * `invalidate`.
 *
 * At most one rebuild per tenant runs at a time. Callers that arrive while
 * it runs share it when it started after the change they saw; otherwise they
 * share the one rebuild queued behind it. A burst of changes (a bulk PFX
 * import appends an entry per record) therefore costs two snapshot reads,
 * not one per caller. A failed rebuild is not kept; the next call tries
 * again.
 *
 * Staleness. `maxHeadAgeMs` = M lets a caller skip the head() query: the
 * tenant's newest head read, by any caller, is reused while it started at
 * most M ms ago (default 0: every call reads the head). Such a caller is
 * guaranteed every change committed more than M ms before its call (the
 * reused read started after it, and a read sees every commit before its
 * start); a change committed within those M ms is seen by a later call.
 * `allowStale` widens the bound by one rebuild: a caller that notices a
 * change gets the previous evaluator at once while the snapshot is read
 * (seconds at benchmark scale). Both suit device check-ins, which
 * re-evaluation (reevaluate.ts) tells to check in again once the new state
 * is known; the admin API asks with neither.
 */
import { TenantEvaluator } from './evaluator.ts';
import { type SnapshotSource, readSnapshot } from './snapshot.ts';

export interface EvaluatorCacheOptions {
  /**
   * Builds an evaluator (default: reads the audit head, then the snapshot labelled with it; see snapshot.ts).
   * Its seq must be a head read when the build started. Tests count or slow builds with it.
   */
  readonly load?: (source: SnapshotSource) => Promise<TenantEvaluator>;
  /** A monotonic clock in ms for maxHeadAgeMs (default performance.now). */
  readonly now?: () => number;
}

export interface ForTenantOptions {
  /** Return the previous evaluator at once while a rebuild runs (the first build is always awaited). */
  readonly allowStale?: boolean;
  /** Reuse the tenant's last head() read when it started at most this many ms ago (default 0: read it). */
  readonly maxHeadAgeMs?: number;
}

interface Build {
  /** Every change up to this seq is in the result: the build reads the head after this seq was seen. */
  readonly covers: number;
  readonly promise: Promise<TenantEvaluator>;
}

interface Slot {
  current: TenantEvaluator | undefined;
  running: Build | undefined;
  /** The promise of the one build waiting for the running one to finish. */
  queued: Promise<TenantEvaluator> | undefined;
  /** The highest head seq a caller has seen. */
  seen: number;
  /** The newest head() read: when it started, and the seq it found. */
  head: { readonly at: number; readonly seq: number } | undefined;
}

export async function loadEvaluator(source: SnapshotSource): Promise<TenantEvaluator> {
  const seq = (await source.audit.head())?.seq ?? 0;
  return new TenantEvaluator(await readSnapshot(source, seq));
}

export class EvaluatorCache {
  readonly #slots = new Map<string, Slot>();
  readonly #load: (source: SnapshotSource) => Promise<TenantEvaluator>;
  readonly #now: () => number;
  #rebuilds = 0;

  constructor(options: EvaluatorCacheOptions = {}) {
    this.#load = options.load ?? loadEvaluator;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Snapshots read so far (for tests and the benchmark). */
  get rebuilds(): number {
    return this.#rebuilds;
  }

  /**
   * The tenant's evaluator as of its current audit head (or, with maxHeadAgeMs, of a head read at most that
   * long ago). With `allowStale`, a caller that finds the tenant changed gets the previous evaluator at once
   * while the rebuild runs in the background: right for a device check-in, which need not wait seconds for
   * the snapshot of a large tenant. The first build is always awaited.
   */
  async forTenant(source: SnapshotSource, options: ForTenantOptions = {}): Promise<TenantEvaluator> {
    const seq = this.#recentHead(source.tenantId, options.maxHeadAgeMs ?? 0) ?? (await this.#readHead(source));
    const slot = this.#slot(source.tenantId);
    const current = slot.current;
    // >=: a reused head read can be older than the one the current snapshot was labelled with.
    if (current !== undefined && current.seq >= seq) return current;
    slot.seen = Math.max(slot.seen, seq);
    const fresh = this.#buildCovering(slot, source, seq);
    if (options.allowStale !== true || current === undefined) return fresh;
    fresh.catch(() => undefined); // a background rebuild's failure is the next caller's to see
    return current;
  }

  #recentHead(tenantId: string, maxAgeMs: number): number | undefined {
    const head = maxAgeMs > 0 ? this.#slots.get(tenantId)?.head : undefined;
    return head !== undefined && this.#now() - head.at <= maxAgeMs ? head.seq : undefined;
  }

  async #readHead(source: SnapshotSource): Promise<number> {
    const at = this.#now();
    const seq = (await source.audit.head())?.seq ?? 0;
    // Into the slot as it is now (invalidate may have replaced it), and only if no later-started read is there.
    const slot = this.#slot(source.tenantId);
    if (slot.head === undefined || slot.head.at <= at) slot.head = { at, seq };
    return seq;
  }

  /** Forgets the tenant's evaluator: the next forTenant rebuilds (after changes made outside the audit log). */
  invalidate(tenantId: string): void {
    this.#slots.delete(tenantId);
  }

  #slot(tenantId: string): Slot {
    let slot = this.#slots.get(tenantId);
    if (slot === undefined) this.#slots.set(tenantId, (slot = { current: undefined, running: undefined, queued: undefined, seen: 0, head: undefined }));
    return slot;
  }

  /** A build that reads the head after `seq` was seen: the running one if so, else the one queued behind it. */
  #buildCovering(slot: Slot, source: SnapshotSource, seq: number): Promise<TenantEvaluator> {
    if (slot.running === undefined) return this.#start(slot, source);
    if (slot.running.covers >= seq) return slot.running.promise;
    if (slot.queued === undefined) {
      const queued: Promise<TenantEvaluator> = slot.running.promise
        .then(
          () => undefined,
          () => undefined,
        )
        .then(() => {
          if (slot.queued === queued) slot.queued = undefined;
          // invalidate() ran meanwhile: build into the tenant's new slot instead.
          const now = this.#slots.get(source.tenantId);
          return now === slot ? this.#start(slot, source) : this.#buildCovering(this.#slot(source.tenantId), source, seq);
        });
      slot.queued = queued;
    }
    return slot.queued;
  }

  #start(slot: Slot, source: SnapshotSource): Promise<TenantEvaluator> {
    this.#rebuilds++;
    const build: Build = { covers: slot.seen, promise: this.#load(source) };
    slot.running = build;
    build.promise.then(
      (evaluator) => {
        if (slot.running === build) slot.running = undefined;
        slot.current = evaluator;
      },
      () => {
        if (slot.running === build) slot.running = undefined;
      },
    );
    return build.promise;
  }
}
