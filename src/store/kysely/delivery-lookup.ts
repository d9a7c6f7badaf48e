/** DeliveryLookup (src/store/delivery.ts) on Kysely: the lookups made before a tenant is known. */
import type { Kysely } from 'kysely';
import type { ConnectorRecord, DeliveryLookup, EnrollmentTokenRecord, NotificationRecord } from '../delivery.ts';
import type { ManagedDeviceRecord } from '../devices.ts';
import { deviceFromRow } from './devices-store.ts';
import { connectorFromRow, notificationFromRow, tokenFromRow } from './delivery-rows.ts';
import { guarded } from './errors.ts';
import { optionalBytes } from './values.ts';
import type { Database, ManagedDevicesTable } from './schema.ts';

/** Every column of a device but its identity certificate, which findDevice leaves out. */
const DEVICE_COLUMNS = [
  'tenant_id', 'id', 'user_id', 'device_name', 'operating_system', 'os_version', 'model', 'serial_number', 'portal_url', 'management_state',
  'enrolled_at', 'last_sync_at', 'identity_thumbprint', 'desired_state_hash', 'recheck_at', 'version', 'created_at', 'updated_at',
] as const satisfies readonly (keyof ManagedDevicesTable)[];

export class KyselyDeliveryLookup implements DeliveryLookup {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  findEnrollmentToken(secretHash: string): Promise<{ readonly tenantId: string; readonly token: EnrollmentTokenRecord } | undefined> {
    return guarded(async () => {
      const row = await this.#db.selectFrom('enrollment_tokens').selectAll().where('secret_hash', '=', secretHash).executeTakeFirst();
      return row === undefined ? undefined : { tenantId: row.tenant_id, token: tokenFromRow(row) };
    });
  }

  findConnector(secretHash: string): Promise<{ readonly tenantId: string; readonly connector: ConnectorRecord } | undefined> {
    return guarded(async () => {
      const row = await this.#db.selectFrom('connectors').selectAll().where('secret_hash', '=', secretHash).executeTakeFirst();
      return row === undefined ? undefined : { tenantId: row.tenant_id, connector: connectorFromRow(row) };
    });
  }

  findDevice(deviceId: string): Promise<{ readonly tenantId: string; readonly device: ManagedDeviceRecord } | undefined> {
    return guarded(async () => {
      // Device ids are unique per tenant only. Ours are UUIDs, but should two tenants hold one (an import),
      // which tenant a request means cannot be told: neither.
      const rows = await this.#db.selectFrom('managed_devices').select(DEVICE_COLUMNS).where('id', '=', deviceId).limit(2).execute();
      const row = rows.length === 1 ? rows[0] : undefined;
      return row === undefined ? undefined : { tenantId: row.tenant_id, device: deviceFromRow({ ...row, identity_certificate: null }) };
    });
  }

  findIdentityCertificate(tenantId: string, deviceId: string): Promise<Uint8Array | undefined> {
    return guarded(async () => {
      const row = await this.#db.selectFrom('managed_devices').select('identity_certificate').where('tenant_id', '=', tenantId).where('id', '=', deviceId).executeTakeFirst();
      return optionalBytes(row?.identity_certificate ?? null);
    });
  }

  findNotification(notificationId: string): Promise<{ readonly tenantId: string; readonly notification: NotificationRecord } | undefined> {
    return guarded(async () => {
      const rows = await this.#db.selectFrom('device_notifications').selectAll().where('id', '=', notificationId).limit(2).execute();
      const row = rows.length === 1 ? rows[0] : undefined;
      return row === undefined ? undefined : { tenantId: row.tenant_id, notification: notificationFromRow(row) };
    });
  }
}
