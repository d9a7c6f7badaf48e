/**
 * Recording admin changes. Every write of the directory and of tokens goes
 * through `recorded`: the change and its audit entry are one transaction,
 * so a failed request leaves neither behind, and a change never lands
 * without its entry.
 */
import type { AuditChainResult, JsonValue } from '../store/audit.ts';
import type { TenantStore } from '../store/store.ts';

/** Who makes a change: an API token, or the local operator at the command line. */
export interface Actor {
  readonly id: string;
  readonly name: string;
}

export interface Change<T> {
  readonly result: T;
  readonly action: string;
  readonly resourceType: string;
  readonly resourceId: string;
  readonly before: JsonValue;
  readonly after: JsonValue;
}

/** Runs `change` in a transaction and appends its audit entry in the same transaction. */
export function recorded<T>(tenant: TenantStore, actor: Actor, at: Date, change: (tx: TenantStore) => Promise<Change<T>>): Promise<T> {
  return tenant.transaction(async (tx) => {
    const c = await change(tx);
    await tx.audit.append({
      actorId: actor.id,
      actorName: actor.name,
      action: c.action,
      resourceType: c.resourceType,
      resourceId: c.resourceId,
      before: c.before,
      after: c.after,
      at,
    });
    return c.result;
  });
}

/** One change of a batch: what its audit entry says. */
export type AuditedChange = Omit<Change<unknown>, 'result'>;

/**
 * `recorded` for a batch: runs `change` in a transaction and appends one audit entry per change it reports,
 * in order, with one AuditStore.appendMany. All of the batch lands with its entries, or none of it.
 */
export function recordedMany<T>(
  tenant: TenantStore,
  actor: Actor,
  at: Date,
  change: (tx: TenantStore) => Promise<{ readonly result: T; readonly changes: readonly AuditedChange[] }>,
): Promise<T> {
  return tenant.transaction(async (tx) => {
    const c = await change(tx);
    await tx.audit.appendMany(
      c.changes.map((x) => ({ actorId: actor.id, actorName: actor.name, action: x.action, resourceType: x.resourceType, resourceId: x.resourceId, before: x.before, after: x.after, at })),
    );
    return c.result;
  });
}

/** Re-computes the tenant's whole chain; the first entry that does not check out is reported. */
export function verifyAuditChain(tenant: TenantStore): Promise<AuditChainResult> {
  return tenant.audit.verifyChain();
}
