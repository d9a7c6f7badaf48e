/**
 * Delivery (src/store/delivery.ts, docs/delivery.md): enrollment tokens, PFX connectors, the queue of
 * re-wrap requests the connectors work through, and device notifications; and the index that finds a
 * device by its id alone, before its tenant is known.
 */
import { sql, type Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import { columnTypes, type SqlFlavor } from './flavor.ts';

export function delivery(flavor: SqlFlavor): Migration {
  const t = columnTypes(flavor);
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      // Signed device requests name only the device (docs/delivery.md "Device identity"): one index lookup,
      // whose result the lookup refuses to use when two tenants happen to hold the id.
      await db.schema.createIndex('managed_devices_id').on('managed_devices').column('id').execute();

      // A token belongs to a user: deleting the user deletes the tokens that could still enrol a device for it.
      // device_id is no foreign key: the token is used before the device row exists, and the record of
      // which device it enrolled outlives that device.
      await db.schema
        .createTable('enrollment_tokens')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('id', t.orderedText, (c) => c.notNull())
        .addColumn('user_id', t.orderedText, (c) => c.notNull())
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', t.int64, (c) => c.notNull())
        .addColumn('expires_at', t.int64, (c) => c.notNull())
        .addColumn('used_at', t.int64)
        .addColumn('device_id', t.orderedText)
        .addPrimaryKeyConstraint('enrollment_tokens_pk', ['tenant_id', 'id'])
        // Unique across tenants: the secret alone names the tenant (DeliveryLookup.findEnrollmentToken).
        .addUniqueConstraint('enrollment_tokens_secret', ['secret_hash'])
        .addForeignKeyConstraint('enrollment_tokens_user', ['tenant_id', 'user_id'], 'users', ['tenant_id', 'id'], (fk) => fk.onDelete('cascade'))
        .addCheckConstraint('enrollment_tokens_use', sql`(used_at is null) = (device_id is null)`)
        .execute();
      await db.schema.createIndex('enrollment_tokens_user').on('enrollment_tokens').columns(['tenant_id', 'user_id', 'created_at']).execute();

      await db.schema
        .createTable('connectors')
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('id', t.orderedText, (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('version', 'text')
        .addColumn('last_seen_at', t.int64)
        .addColumn('created_at', t.int64, (c) => c.notNull())
        .addColumn('revoked_at', t.int64)
        .addPrimaryKeyConstraint('connectors_pk', ['tenant_id', 'id'])
        .addUniqueConstraint('connectors_secret', ['secret_hash'])
        .execute();

      // pfx_id is no foreign key: deleting a PFX cancels its requests (cancelDeliveryRequests) rather than
      // deleting them, and a ready payload is the device's until the device goes.
      await db.schema
        .createTable('delivery_requests')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('id', t.orderedText, (c) => c.notNull())
        .addColumn('device_id', t.orderedText, (c) => c.notNull())
        .addColumn('pfx_id', t.orderedText, (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('claim_hash', 'text')
        .addColumn('connector_id', 'text')
        .addColumn('lease_until', t.int64)
        .addColumn('attempts', t.int64, (c) => c.notNull())
        .addColumn('payload', t.bytes)
        .addColumn('error_code', 'text')
        .addColumn('error_detail', 'text')
        .addColumn('created_at', t.int64, (c) => c.notNull())
        .addColumn('updated_at', t.int64, (c) => c.notNull())
        .addPrimaryKeyConstraint('delivery_requests_pk', ['tenant_id', 'id'])
        .addUniqueConstraint('delivery_requests_device_pfx', ['tenant_id', 'device_id', 'pfx_id'])
        .addForeignKeyConstraint('delivery_requests_device', ['tenant_id', 'device_id'], 'managed_devices', ['tenant_id', 'id'], (fk) => fk.onDelete('cascade'))
        .addCheckConstraint('delivery_requests_status', sql`status in ('pending', 'claimed', 'ready', 'failed', 'cancelled')`)
        .addCheckConstraint(
          'delivery_requests_claim',
          sql`status <> 'claimed' or (claim_hash is not null and connector_id is not null and lease_until is not null)`,
        )
        .addCheckConstraint('delivery_requests_ready', sql`status <> 'ready' or payload is not null`)
        .addCheckConstraint('delivery_requests_failed', sql`status <> 'failed' or error_code is not null`)
        .addCheckConstraint('delivery_requests_attempts', sql`attempts >= 0`)
        .execute();
      // The claim's queue: only open requests (done ones would otherwise pile up in front of the scan), oldest
      // first. The claim repeats this predicate word for word so that SQLite's planner, which matches partial
      // indexes by the terms of the query, uses it too.
      await db.schema
        .createIndex('delivery_requests_queue')
        .on('delivery_requests')
        .columns(['tenant_id', 'created_at', 'id'])
        .where(sql<boolean>`status in ('pending', 'claimed')`)
        .execute();
      // Lists and counts by status (the failed ones an admin looks at).
      await db.schema.createIndex('delivery_requests_status').on('delivery_requests').columns(['tenant_id', 'status', 'id']).execute();

      await db.schema
        .createTable('device_notifications')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('id', t.orderedText, (c) => c.notNull())
        .addColumn('device_id', t.orderedText, (c) => c.notNull())
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('created_at', t.int64, (c) => c.notNull())
        .addColumn('read_at', t.int64)
        .addColumn('sent_at', t.int64)
        .addColumn('send_error', 'text')
        .addPrimaryKeyConstraint('device_notifications_pk', ['tenant_id', 'id'])
        .addForeignKeyConstraint('device_notifications_device', ['tenant_id', 'device_id'], 'managed_devices', ['tenant_id', 'id'], (fk) => fk.onDelete('cascade'))
        .addCheckConstraint('device_notifications_channel', sql`channel in ('companyPortal', 'email')`)
        .execute();
      // A device's notifications newest first; also what the cascade from managed_devices reads.
      await db.schema.createIndex('device_notifications_device').on('device_notifications').columns(['tenant_id', 'device_id', 'created_at', 'id']).execute();
      // The mail link names a notification by id alone (DeliveryLookup.findNotification).
      await db.schema.createIndex('device_notifications_id').on('device_notifications').column('id').execute();
    },
  };
}
