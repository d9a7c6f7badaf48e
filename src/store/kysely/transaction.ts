import type { Kysely, Transaction } from 'kysely';

/**
 * Runs `fn` in a transaction: the caller's, when `db` already is one (a
 * TenantStore.transaction spanning several writes), or a new one.
 */
export function inTransaction<DB, T>(db: Kysely<DB>, fn: (tx: Kysely<DB>) => Promise<T>): Promise<T> {
  return db.isTransaction ? fn(db) : db.transaction().execute((tx: Transaction<DB>) => fn(tx));
}
