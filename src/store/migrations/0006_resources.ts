/**
 * Apps, certificate profiles, policies and derived-credential settings, their assignments, and
 * imported PFX certificates (src/store/resources.ts).
 */
import { sql, type Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import { columnTypes, type SqlFlavor } from './flavor.ts';

export function resources(flavor: SqlFlavor): Migration {
  const t = columnTypes(flavor);
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      // One table for the four collections: each resource is a document validated by src/policy (its
      // fields differ by kind), and what the store needs to see of it — kind and name — has columns.
      await db.schema
        .createTable('resources')
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('collection', 'text', (c) => c.notNull())
        .addColumn('id', t.orderedText, (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('body_json', 'text', (c) => c.notNull())
        .addColumn('created_at', t.int64, (c) => c.notNull())
        .addColumn('updated_at', t.int64, (c) => c.notNull())
        .addPrimaryKeyConstraint('resources_pk', ['tenant_id', 'collection', 'id'])
        .addCheckConstraint('resources_collection', sql`collection in ('app', 'certificateProfile', 'policy', 'derivedCredential')`)
        .execute();

      // Groups are not a foreign key: the built-in targets allUsers and allDevices are no rows, and a
      // deleted group simply includes and excludes nobody (src/policy/assignments.ts).
      await db.schema
        .createTable('resource_assignments')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('collection', 'text', (c) => c.notNull())
        .addColumn('resource_id', t.orderedText, (c) => c.notNull())
        .addColumn('group_id', t.orderedText, (c) => c.notNull())
        .addColumn('intent', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('resource_assignments_pk', ['tenant_id', 'collection', 'resource_id', 'group_id'])
        .addForeignKeyConstraint('resource_assignments_resource', ['tenant_id', 'collection', 'resource_id'], 'resources', ['tenant_id', 'collection', 'id'], (fk) => fk.onDelete('cascade'))
        .addCheckConstraint('resource_assignments_intent', sql`intent in ('include', 'exclude')`)
        // Derived-credential settings apply tenant-wide: nothing assigns them.
        .addCheckConstraint('resource_assignments_collection', sql`collection in ('app', 'certificateProfile', 'policy')`)
        .execute();

      await db.schema
        .createTable('user_pfx_certificates')
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('id', t.orderedText, (c) => c.notNull())
        .addColumn('user_principal_name', 'text', (c) => c.notNull())
        .addColumn('upn_key', 'text', (c) => c.notNull())
        .addColumn('thumbprint', 'text', (c) => c.notNull())
        .addColumn('intended_purpose', 'text', (c) => c.notNull())
        .addColumn('start_at', t.int64, (c) => c.notNull())
        .addColumn('expiration_at', t.int64, (c) => c.notNull())
        .addColumn('provider_name', 'text', (c) => c.notNull())
        .addColumn('key_name', 'text', (c) => c.notNull())
        .addColumn('padding_scheme', 'text', (c) => c.notNull())
        // Both stay encrypted: the PFX under its password, the password under the connector's RSA key.
        .addColumn('encrypted_pfx_blob', t.bytes, (c) => c.notNull())
        .addColumn('encrypted_pfx_password', t.bytes, (c) => c.notNull())
        .addColumn('created_at', t.int64, (c) => c.notNull())
        .addPrimaryKeyConstraint('user_pfx_certificates_pk', ['tenant_id', 'id'])
        .addUniqueConstraint('user_pfx_certificates_thumbprint', ['tenant_id', 'upn_key', 'thumbprint'])
        .execute();
    },
  };
}
