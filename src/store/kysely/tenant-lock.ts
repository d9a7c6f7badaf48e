import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';

/**
 * Serialises writers of one tenant until the transaction ends: a no-op update of the tenant's row takes its
 * row lock on PostgreSQL (SQLite's BEGIN IMMEDIATE already holds the database's write lock). Used where a
 * check and the write it guards must not interleave with another transaction's: a group-cycle check, the
 * audit chain's head. Must run inside a transaction. Returns false when the tenant does not exist.
 */
export async function lockTenant(db: Kysely<Database>, tenantId: string): Promise<boolean> {
  const result = await db
    .updateTable('tenants')
    .set((eb) => ({ name: eb.ref('name') }))
    .where('id', '=', tenantId)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}
