/** AuditStore (src/store/audit.ts) on Kysely, for one tenant. */
import type { Insertable, Kysely, Selectable } from 'kysely';
import { KeyfleetError } from '../../errors.ts';
import {
  GENESIS_HASH,
  auditHash,
  canonicalJson,
  type AuditChainResult,
  type AuditEntry,
  type AuditListOptions,
  type AuditRecord,
  type AuditStore,
  type JsonValue,
} from '../audit.ts';
import type { Page } from '../directory.ts';
import { guarded } from './errors.ts';
import type { AuditEventsTable, Database } from './schema.ts';
import { lockTenant } from './tenant-lock.ts';
import { inTransaction } from './transaction.ts';
import { decodeCursor, encodeCursor, fromMs, pageOffset, pageSize, toMs } from './values.ts';

const VERIFY_BATCH = 1000;
/** 12 parameters a row: far below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters per statement. */
const ROWS_PER_INSERT = 500;

export class KyselyAuditStore implements AuditStore {
  readonly #db: Kysely<Database>;
  readonly #tenantId: string;

  constructor(db: Kysely<Database>, tenantId: string) {
    this.#db = db;
    this.#tenantId = tenantId;
  }

  async append(entry: AuditEntry): Promise<AuditRecord> {
    return (await this.appendMany([entry]))[0]!;
  }

  appendMany(entries: readonly AuditEntry[]): Promise<AuditRecord[]> {
    const t = this.#tenantId;
    if (entries.length === 0) return Promise.resolve([]);
    return guarded(
      () =>
        inTransaction(this.#db, async (db) => {
          const ats = entries.map((e) => toMs(e.at, 'at'));
          // The head is read and extended under the tenant's lock: concurrent appends queue rather than fork.
          if (!(await lockTenant(db, t))) throw new KeyfleetError('KF_NOT_FOUND', 'the tenant does not exist');
          const head = await db.selectFrom('audit_events').select(['seq', 'hash']).where('tenant_id', '=', t).orderBy('seq', 'desc').limit(1).executeTakeFirst();
          let seq = head === undefined ? 0 : Number(head.seq);
          let prevHash = head?.hash ?? GENESIS_HASH;
          const records: AuditRecord[] = [];
          const rows: Insertable<AuditEventsTable>[] = [];
          for (const [i, entry] of entries.entries()) {
            seq++;
            const hash = auditHash(t, seq, prevHash, entry);
            const at = ats[i]!;
            rows.push({
              tenant_id: t,
              seq,
              actor_id: entry.actorId,
              actor_name: entry.actorName,
              action: entry.action,
              resource_type: entry.resourceType,
              resource_id: entry.resourceId,
              before_json: entry.before === null ? null : canonicalJson(entry.before),
              after_json: entry.after === null ? null : canonicalJson(entry.after),
              at,
              prev_hash: prevHash,
              hash,
            });
            records.push({ ...entry, at: fromMs(at), seq, prevHash, hash });
            prevHash = hash;
          }
          for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) await db.insertInto('audit_events').values(rows.slice(i, i + ROWS_PER_INSERT)).execute();
          return records;
        }),
      { conflict: 'the audit log was appended to concurrently' },
    );
  }

  list(options: AuditListOptions = {}): Promise<Page<AuditRecord>> {
    return guarded(async () => {
      const limit = pageSize(options.limit);
      const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor, 1)[0];
      if (after !== undefined && !/^[0-9]{1,15}$/.test(after)) throw new KeyfleetError('KF_USAGE', 'the cursor is not valid: pass back a nextCursor unchanged');
      let query = this.#db.selectFrom('audit_events').selectAll().where('tenant_id', '=', this.#tenantId);
      if (options.resourceType !== undefined) query = query.where('resource_type', '=', options.resourceType);
      if (options.resourceId !== undefined) query = query.where('resource_id', '=', options.resourceId);
      if (after !== undefined) query = query.where('seq', '>', Number(after));
      const rows = await query.orderBy('seq').limit(limit + 1).offset(pageOffset(options.offset)).execute();
      const items = rows.slice(0, limit).map(recordFromRow);
      const last = items[items.length - 1];
      return { items, nextCursor: rows.length > limit && last !== undefined ? encodeCursor([String(last.seq)]) : undefined };
    });
  }

  head(): Promise<{ readonly seq: number; readonly hash: string } | undefined> {
    return guarded(async () => {
      // The primary key (tenant_id, seq) read backwards: one index probe however long the chain.
      const row = await this.#db
        .selectFrom('audit_events')
        .select(['seq', 'hash'])
        .where('tenant_id', '=', this.#tenantId)
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row === undefined ? undefined : { seq: Number(row.seq), hash: row.hash };
    });
  }

  verifyChain(): Promise<AuditChainResult> {
    const t = this.#tenantId;
    return guarded(async () => {
      let prevHash = GENESIS_HASH;
      let expected = 1;
      for (;;) {
        const rows = await this.#db
          .selectFrom('audit_events')
          .selectAll()
          .where('tenant_id', '=', t)
          .where('seq', '>=', expected)
          .orderBy('seq')
          .limit(VERIFY_BATCH)
          .execute();
        for (const row of rows) {
          const seq = Number(row.seq);
          const broken = (reason: 'hash-mismatch' | 'prev-hash-mismatch' | 'missing-entry'): AuditChainResult => ({ ok: false, entries: expected - 1, brokenAt: seq, reason });
          if (seq !== expected) return broken('missing-entry');
          if (row.prev_hash !== prevHash) return broken('prev-hash-mismatch');
          let record: AuditRecord;
          try {
            record = recordFromRow(row);
          } catch {
            return broken('hash-mismatch');
          }
          if (auditHash(t, seq, row.prev_hash, record) !== row.hash) return broken('hash-mismatch');
          prevHash = row.hash;
          expected++;
        }
        if (rows.length < VERIFY_BATCH) return { ok: true, entries: expected - 1, headHash: prevHash };
      }
    });
  }
}

function parseJson(text: string | null): JsonValue {
  return text === null ? null : (JSON.parse(text) as JsonValue);
}

function recordFromRow(row: Selectable<AuditEventsTable>): AuditRecord {
  return {
    seq: Number(row.seq),
    actorId: row.actor_id,
    actorName: row.actor_name,
    action: row.action,
    resourceType: row.resource_type,
    resourceId: row.resource_id,
    before: parseJson(row.before_json),
    after: parseJson(row.after_json),
    at: fromMs(row.at),
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
