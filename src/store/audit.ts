/**
 * The audit log: every admin change, append-only and hash-chained per
 * tenant. Each entry's hash is SHA-256 over the previous entry's hash and
 * the canonical JSON of the entry, so editing, inserting or deleting an
 * entry breaks every later link. (Deleting the newest entries leaves a
 * shorter valid chain: anchoring the head hash outside the database — a
 * printed `audit verify`, a log shipper — is what catches that.)
 */
import { createHash } from 'node:crypto';
import type { Page, PageOptions } from './directory.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface AuditEntry {
  /** The API token (or local operator) that made the change. */
  readonly actorId: string;
  readonly actorName: string;
  /** e.g. "user.create", "group.member.add". */
  readonly action: string;
  readonly resourceType: string;
  readonly resourceId: string;
  /** The resource before and after the change, secrets left out; null for a creation or deletion. */
  readonly before: JsonValue;
  readonly after: JsonValue;
  readonly at: Date;
}

export interface AuditRecord extends AuditEntry {
  /** 1, 2, 3… per tenant: the entry's id. */
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
}

export type AuditChainResult =
  | { readonly ok: true; readonly entries: number; readonly headHash: string }
  | {
      readonly ok: false;
      /** Entries verified before the break. */
      readonly entries: number;
      /** The seq of the first entry that does not check out. */
      readonly brokenAt: number;
      readonly reason: 'hash-mismatch' | 'prev-hash-mismatch' | 'missing-entry';
    };

export interface AuditListOptions extends PageOptions {
  readonly resourceType?: string;
  readonly resourceId?: string;
}

export interface AuditStore {
  /** Appends to the tenant's chain; inside TenantStore.transaction it commits or vanishes with the change. */
  append(entry: AuditEntry): Promise<AuditRecord>;
  /**
   * Appends the entries in order, as `append` would one by one, but with one head read and one insert per
   * few hundred rows: the chain is computed in memory. For a batch of changes made in one transaction.
   */
  appendMany(entries: readonly AuditEntry[]): Promise<AuditRecord[]>;
  /** Oldest first. */
  list(options?: AuditListOptions): Promise<Page<AuditRecord>>;
  /** Walks the whole chain and reports the first broken link. */
  verifyChain(): Promise<AuditChainResult>;
  /**
   * The newest entry's seq and hash; undefined while the chain is empty. One indexed read: since every admin
   * change appends an entry, an unchanged seq means nothing was changed, so a cached evaluation of the
   * tenant's state is still valid.
   */
  head(): Promise<{ readonly seq: number; readonly hash: string } | undefined>;
}

/** The hash before the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * JSON with object keys sorted (recursively) and no whitespace: one text per value, so the hash does not
 * depend on key order. Numbers and strings are as JSON.stringify writes them (RFC 8785's forms for the
 * values the audit log holds: integers, booleans, strings).
 */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k] as JsonValue)}`).join(',')}}`;
}

/** What the hash covers: every field of the entry but the hash itself. */
export function auditHash(tenantId: string, seq: number, prevHash: string, entry: AuditEntry): string {
  const body: JsonValue = {
    tenant: tenantId,
    seq,
    actorId: entry.actorId,
    actorName: entry.actorName,
    action: entry.action,
    resourceType: entry.resourceType,
    resourceId: entry.resourceId,
    before: entry.before,
    after: entry.after,
    at: entry.at.getTime(),
  };
  return createHash('sha256').update(prevHash).update(canonicalJson(body)).digest('hex');
}
