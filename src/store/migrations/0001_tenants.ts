/** Tenants: every other table's rows belong to one (ARCHITECTURE.md: multi-tenant from the first table). */
import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import { columnTypes, type SqlFlavor } from './flavor.ts';

export function tenants(flavor: SqlFlavor): Migration {
  const t = columnTypes(flavor);
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('tenants')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('created_at', t.int64, (c) => c.notNull())
        .execute();
    },
  };
}
