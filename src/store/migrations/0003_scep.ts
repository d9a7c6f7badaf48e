/** The SCEP server's tables (src/store/scep.ts). */
import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import { columnTypes, type SqlFlavor } from './flavor.ts';

export function scep(flavor: SqlFlavor): Migration {
  const t = columnTypes(flavor);
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('scep_profiles')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('ca_id', 'text', (c) => c.notNull())
        .addColumn('template', 'text', (c) => c.notNull()) // JSON
        .addColumn('created_at', t.int64, (c) => c.notNull())
        .addPrimaryKeyConstraint('scep_profiles_pk', ['tenant_id', 'name'])
        .addForeignKeyConstraint('scep_profiles_ca', ['tenant_id', 'ca_id'], 'cas', ['tenant_id', 'id'])
        .execute();

      await db.schema
        .createTable('scep_challenges')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('profile', 'text', (c) => c.notNull())
        .addColumn('device_id', 'text')
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('san_email', 'text')
        .addColumn('san_upn', 'text')
        .addColumn('created_at', t.int64, (c) => c.notNull())
        .addColumn('expires_at', t.int64, (c) => c.notNull())
        .addColumn('used_at', t.int64)
        .addPrimaryKeyConstraint('scep_challenges_pk', ['tenant_id', 'hash'])
        .addForeignKeyConstraint('scep_challenges_profile', ['tenant_id', 'profile'], 'scep_profiles', [
          'tenant_id',
          'name',
        ])
        .execute();

      // Several records can share a transaction id (a PENDING request polled with GetCertInitial, a replay), so
      // the key is a surrogate and the id is indexed. No foreign key to the profile: requests naming an unknown
      // profile are recorded too.
      await db.schema
        .createTable('scep_transactions')
        .addColumn('seq', t.serialKey, (c) => c.primaryKey())
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('transaction_id', 'text', (c) => c.notNull())
        .addColumn('profile', 'text', (c) => c.notNull())
        .addColumn('message_type', 'text', (c) => c.notNull())
        .addColumn('requester', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('fail_info', 'text')
        .addColumn('serial_hex', 'text')
        .addColumn('created_at', t.int64, (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('scep_transactions_id')
        .on('scep_transactions')
        .columns(['tenant_id', 'transaction_id', 'seq'])
        .execute();
      await db.schema
        .createIndex('scep_transactions_recent')
        .on('scep_transactions')
        .columns(['tenant_id', 'created_at', 'seq'])
        .execute();
    },
  };
}
