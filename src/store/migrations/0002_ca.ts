/** The certificate authority's tables (src/store/ca.ts). */
import { sql, type Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import { columnTypes, type SqlFlavor } from './flavor.ts';

export function ca(flavor: SqlFlavor): Migration {
  const t = columnTypes(flavor);
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('cas')
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('certificate_der', t.bytes, (c) => c.notNull())
        // The chain as length-prefixed DER (see kysely/values.ts): always read whole, never queried.
        .addColumn('chain_der', t.bytes, (c) => c.notNull())
        .addColumn('key_ref', 'text', (c) => c.notNull())
        .addColumn('sealed_key', t.bytes)
        .addColumn('created_at', t.int64, (c) => c.notNull())
        // The last CRL number allocated; putCrl increments it under the row's write lock.
        .addColumn('last_crl_number', t.int64, (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('cas_pk', ['tenant_id', 'id'])
        .addCheckConstraint('cas_role', sql`role in ('root', 'issuing', 'ra', 'ocsp')`)
        .execute();

      await db.schema
        .createTable('issued_certificates')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('ca_id', 'text', (c) => c.notNull())
        .addColumn('serial_hex', t.orderedText, (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('email_addresses', 'text', (c) => c.notNull()) // JSON array of strings
        .addColumn('profile', 'text')
        .addColumn('requester', 'text')
        .addColumn('not_before', t.int64, (c) => c.notNull())
        .addColumn('not_after', t.int64, (c) => c.notNull())
        .addColumn('issued_at', t.int64, (c) => c.notNull())
        .addColumn('certificate_der', t.bytes, (c) => c.notNull())
        // Revoked exactly when revoked_at is set: one source of truth for the status.
        .addColumn('revoked_at', t.int64)
        .addColumn('revocation_reason', 'integer')
        .addPrimaryKeyConstraint('issued_certificates_pk', ['tenant_id', 'ca_id', 'serial_hex'])
        .addForeignKeyConstraint('issued_certificates_ca', ['tenant_id', 'ca_id'], 'cas', ['tenant_id', 'id'])
        .execute();

      // CRL generation reads every revoked entry of one CA: a partial index holding all the columns it needs
      // answers that from the index alone, however many good certificates there are.
      await db.schema
        .createIndex('issued_certificates_revoked')
        .on('issued_certificates')
        .columns(['tenant_id', 'ca_id', 'serial_hex', 'revoked_at', 'revocation_reason'])
        .where(sql<boolean>`revoked_at is not null`)
        .execute();

      // Only the latest CRL per CA is kept: a 100,000-entry CRL is megabytes, and it is regenerated on every
      // revocation. Numbers stay monotonic through cas.last_crl_number.
      await db.schema
        .createTable('crls')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('ca_id', 'text', (c) => c.notNull())
        .addColumn('crl_number', t.int64, (c) => c.notNull())
        .addColumn('this_update', t.int64, (c) => c.notNull())
        .addColumn('next_update', t.int64, (c) => c.notNull())
        .addColumn('der', t.bytes, (c) => c.notNull())
        .addPrimaryKeyConstraint('crls_pk', ['tenant_id', 'ca_id'])
        .addForeignKeyConstraint('crls_ca', ['tenant_id', 'ca_id'], 'cas', ['tenant_id', 'id'])
        .execute();
    },
  };
}
