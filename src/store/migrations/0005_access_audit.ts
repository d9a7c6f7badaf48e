/** Admin API tokens (src/store/access.ts) and the hash-chained audit log (src/store/audit.ts). */
import { sql, type Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import { columnTypes, type SqlFlavor } from './flavor.ts';

export function accessAudit(flavor: SqlFlavor): Migration {
  const t = columnTypes(flavor);
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('api_tokens')
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('id', t.orderedText, (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        // SHA-256 of the secret, hex; the secret itself is shown once and never stored.
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', t.int64, (c) => c.notNull())
        .addColumn('last_used_at', t.int64)
        .addColumn('revoked_at', t.int64)
        .addPrimaryKeyConstraint('api_tokens_pk', ['tenant_id', 'id'])
        .addCheckConstraint('api_tokens_role', sql`role in ('administrator', 'policyManager', 'helpDesk')`)
        .execute();
      // A token is presented before its tenant is known: the hash alone finds it, across tenants.
      await db.schema.createIndex('api_tokens_secret_hash').on('api_tokens').column('secret_hash').unique().execute();

      // seq numbers each tenant's chain 1, 2, 3…: the primary key makes a forked chain (two entries claiming
      // the same predecessor) impossible, and a gap shows a deleted entry.
      await db.schema
        .createTable('audit_events')
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('seq', t.int64, (c) => c.notNull())
        .addColumn('actor_id', 'text', (c) => c.notNull())
        .addColumn('actor_name', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('resource_type', 'text', (c) => c.notNull())
        .addColumn('resource_id', 'text', (c) => c.notNull())
        .addColumn('before_json', 'text') // canonical JSON, null when there was nothing before
        .addColumn('after_json', 'text')
        .addColumn('at', t.int64, (c) => c.notNull())
        .addColumn('prev_hash', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('audit_events_pk', ['tenant_id', 'seq'])
        .execute();
      await db.schema.createIndex('audit_events_resource').on('audit_events').columns(['tenant_id', 'resource_type', 'resource_id', 'seq']).execute();
    },
  };
}
