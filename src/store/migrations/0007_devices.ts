/** Managed devices, their policy states and their certificate states (src/store/devices.ts). */
import { sql, type Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import { columnTypes, type SqlFlavor } from './flavor.ts';

export function devices(flavor: SqlFlavor): Migration {
  const t = columnTypes(flavor);
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      // user_id is no foreign key: a deleted user's devices stay until an admin retires them.
      await db.schema
        .createTable('managed_devices')
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('id', t.orderedText, (c) => c.notNull())
        .addColumn('user_id', t.orderedText, (c) => c.notNull())
        .addColumn('device_name', 'text', (c) => c.notNull())
        .addColumn('operating_system', 'text', (c) => c.notNull())
        .addColumn('os_version', 'text', (c) => c.notNull())
        .addColumn('model', 'text', (c) => c.notNull())
        .addColumn('serial_number', 'text')
        .addColumn('portal_url', 'text')
        .addColumn('management_state', 'text', (c) => c.notNull())
        .addColumn('enrolled_at', t.int64, (c) => c.notNull())
        .addColumn('last_sync_at', t.int64)
        .addColumn('identity_thumbprint', 'text')
        .addColumn('identity_certificate', t.bytes)
        .addColumn('desired_state_hash', 'text')
        .addColumn('recheck_at', t.int64)
        .addColumn('version', t.int64, (c) => c.notNull())
        .addColumn('created_at', t.int64, (c) => c.notNull())
        .addColumn('updated_at', t.int64, (c) => c.notNull())
        .addPrimaryKeyConstraint('managed_devices_pk', ['tenant_id', 'id'])
        // Both databases let several rows hold NULL in a unique column: devices not yet given an identity.
        .addUniqueConstraint('managed_devices_identity', ['tenant_id', 'identity_thumbprint'])
        .addCheckConstraint('managed_devices_os', sql`operating_system in ('iOS', 'iPadOS')`)
        .addCheckConstraint(
          'managed_devices_state',
          sql`management_state in ('managed', 'retirePending', 'retired', 'wipePending', 'wiped')`,
        )
        .execute();
      // A user's devices in id order (the list filter, the join behind the user filters of the states).
      // Nothing re-evaluation writes (hash, version, updated_at) is indexed, so PostgreSQL's updates stay HOT.
      await db.schema.createIndex('managed_devices_user').on('managed_devices').columns(['tenant_id', 'user_id', 'id']).execute();
      await db.schema.createIndex('managed_devices_state').on('managed_devices').columns(['tenant_id', 'management_state', 'id']).execute();

      await db.schema
        .createTable('device_policy_states')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('device_id', t.orderedText, (c) => c.notNull())
        .addColumn('policy_id', t.orderedText, (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('detail', 'text')
        .addColumn('reported_at', t.int64, (c) => c.notNull())
        .addPrimaryKeyConstraint('device_policy_states_pk', ['tenant_id', 'device_id', 'policy_id'])
        .addForeignKeyConstraint('device_policy_states_device', ['tenant_id', 'device_id'], 'managed_devices', ['tenant_id', 'id'], (fk) => fk.onDelete('cascade'))
        .addCheckConstraint(
          'device_policy_states_status',
          sql`status in ('unknown', 'notApplicable', 'compliant', 'remediated', 'nonCompliant', 'error', 'conflict', 'notAssigned')`,
        )
        .execute();
      await db.schema.createIndex('device_policy_states_policy').on('device_policy_states').columns(['tenant_id', 'policy_id', 'device_id']).execute();

      // state is not checked here: the certificateIssuanceState values belong to src/policy, which validates them.
      await db.schema
        .createTable('device_certificates')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('id', t.orderedText, (c) => c.notNull())
        .addColumn('device_id', t.orderedText, (c) => c.notNull())
        .addColumn('profile_id', t.orderedText, (c) => c.notNull())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('pfx_id', t.orderedText)
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('thumbprint', 'text')
        .addColumn('serial_number', 'text')
        .addColumn('issuer', 'text')
        .addColumn('subject', 'text')
        .addColumn('expires_at', t.int64)
        .addColumn('error_code', 'text')
        .addColumn('state_changed_at', t.int64, (c) => c.notNull())
        .addColumn('created_at', t.int64, (c) => c.notNull())
        .addPrimaryKeyConstraint('device_certificates_pk', ['tenant_id', 'id'])
        .addForeignKeyConstraint('device_certificates_device', ['tenant_id', 'device_id'], 'managed_devices', ['tenant_id', 'id'], (fk) => fk.onDelete('cascade'))
        .addCheckConstraint('device_certificates_source', sql`source in ('scep', 'pkcsImported')`)
        .execute();
      await db.schema.createIndex('device_certificates_device').on('device_certificates').columns(['tenant_id', 'device_id', 'id']).execute();
      await db.schema.createIndex('device_certificates_profile').on('device_certificates').columns(['tenant_id', 'profile_id']).execute();
      // Which devices hold an imported PFX: what deleting or replacing that PFX has to reach.
      await db.schema.createIndex('device_certificates_pfx').on('device_certificates').columns(['tenant_id', 'pfx_id']).execute();
    },
  };
}
