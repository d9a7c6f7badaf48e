/** DeviceStore (src/store/devices.ts) on Kysely, for one tenant. */
import { sql, type Kysely, type Selectable } from 'kysely';
import { KeyfleetError } from '../../errors.ts';
import type {
  CertificateSourceKind,
  CertificateStateFilter,
  DeviceCertificateRecord,
  DeviceFilter,
  DeviceOperatingSystem,
  DevicePatch,
  DevicePolicyStateRecord,
  DeviceRef,
  DeviceStore,
  ManagedDeviceRecord,
  ManagementState,
  PolicyStatus,
} from '../devices.ts';
import type { Page, PageOptions } from '../directory.ts';
import type { SqlFlavor } from '../migrations/flavor.ts';
import { guarded } from './errors.ts';
import type { Database, DeviceCertificatesTable, DevicePolicyStatesTable, ManagedDevicesTable } from './schema.ts';
import { inTransaction } from './transaction.ts';
import { decodeCursor, encodeCursor, fromMs, optionalBytes, optionalDate, optionalMs, orNull, orUndefined, pageOffset, pageSize, toMs } from './values.ts';

/**
 * Rows per UPDATE of setDesiredStateHashes: two parameters each, well inside SQLite's 32,766 and
 * PostgreSQL's 65,535 bound parameters per statement.
 */
const HASH_CHUNK = 1000;

const IDENTITY_TAKEN = 'another device already has this identity certificate';

export class KyselyDeviceStore implements DeviceStore {
  readonly #db: Kysely<Database>;
  readonly #tenantId: string;
  readonly #flavor: SqlFlavor;

  constructor(db: Kysely<Database>, tenantId: string, flavor: SqlFlavor) {
    this.#db = db;
    this.#tenantId = tenantId;
    this.#flavor = flavor;
  }

  putDevice(record: ManagedDeviceRecord): Promise<void> {
    const row = {
      tenant_id: this.#tenantId,
      id: record.id,
      user_id: record.userId,
      device_name: record.deviceName,
      operating_system: record.operatingSystem,
      os_version: record.osVersion,
      model: record.model,
      serial_number: orNull(record.serialNumber),
      portal_url: orNull(record.portalUrl),
      management_state: record.managementState,
      enrolled_at: toMs(record.enrolledAt, 'enrolledAt'),
      last_sync_at: optionalMs(record.lastSyncAt, 'lastSyncAt'),
      identity_thumbprint: orNull(record.identityThumbprint),
      identity_certificate: orNull(record.identityCertificate),
      desired_state_hash: orNull(record.desiredStateHash),
      recheck_at: optionalMs(record.recheckAt, 'recheckAt'),
      version: record.version,
      created_at: toMs(record.createdAt, 'createdAt'),
      updated_at: toMs(record.updatedAt, 'updatedAt'),
    };
    return guarded(
      async () => {
        await this.#db.insertInto('managed_devices').values(row).execute();
      },
      { conflict: `a device with id "${record.id}" or with the same identity certificate already exists`, missing: 'the tenant does not exist' },
    );
  }

  getDevice(id: string): Promise<ManagedDeviceRecord | undefined> {
    return guarded(async () => {
      const row = await this.#db.selectFrom('managed_devices').selectAll().where('tenant_id', '=', this.#tenantId).where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : deviceFromRow(row);
    });
  }

  getDeviceByIdentity(thumbprint: string): Promise<ManagedDeviceRecord | undefined> {
    return guarded(async () => {
      const row = await this.#db
        .selectFrom('managed_devices')
        .selectAll()
        .where('tenant_id', '=', this.#tenantId)
        .where('identity_thumbprint', '=', thumbprint)
        .executeTakeFirst();
      return row === undefined ? undefined : deviceFromRow(row);
    });
  }

  listDevices(options: PageOptions & DeviceFilter = {}): Promise<Page<ManagedDeviceRecord>> {
    return guarded(async () => {
      const limit = pageSize(options.limit);
      const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor, 1)[0];
      let query = this.#devices(options);
      if (after !== undefined) query = query.where('id', '>', after);
      const rows = await query.selectAll().orderBy('id').limit(limit + 1).offset(pageOffset(options.offset)).execute();
      return page(rows.map(deviceFromRow), limit, (d) => [d.id]);
    });
  }

  countDevices(filter: DeviceFilter = {}): Promise<number> {
    return guarded(async () => {
      const row = await this.#devices(filter).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
      return Number(row.n);
    });
  }

  #devices(filter: DeviceFilter) {
    let query = this.#db.selectFrom('managed_devices').where('tenant_id', '=', this.#tenantId);
    if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
    if (filter.managementState !== undefined) query = query.where('management_state', '=', filter.managementState);
    return query;
  }

  listDeviceRefs(after: string | undefined, limit: number): Promise<DeviceRef[]> {
    return guarded(async () => {
      if (!Number.isInteger(limit) || limit < 1) throw new KeyfleetError('KF_USAGE', 'limit must be a positive integer');
      let query = this.#db
        .selectFrom('managed_devices')
        .select(['id', 'user_id', 'management_state', 'desired_state_hash'])
        .where('tenant_id', '=', this.#tenantId);
      if (after !== undefined) query = query.where('id', '>', after);
      const rows = await query.orderBy('id').limit(limit).execute();
      return rows.map((r) => ({
        id: r.id,
        userId: r.user_id,
        managementState: r.management_state as ManagementState,
        desiredStateHash: orUndefined(r.desired_state_hash),
      }));
    });
  }

  updateDevice(id: string, patch: DevicePatch, at: Date, expectedVersion?: number): Promise<ManagedDeviceRecord | undefined> {
    const changes = { ...patchColumns(patch), updated_at: toMs(at, 'at') };
    return guarded(
      async () => {
        // One conditional UPDATE: of concurrent writers expecting the same version exactly one matches.
        let query = this.#db
          .updateTable('managed_devices')
          .set((eb) => ({ ...changes, version: eb('version', '+', 1) }))
          .where('tenant_id', '=', this.#tenantId)
          .where('id', '=', id);
        if (expectedVersion !== undefined) query = query.where('version', '=', expectedVersion);
        const row = await query.returningAll().executeTakeFirst();
        if (row !== undefined) return deviceFromRow(row);
        if (expectedVersion === undefined) return undefined;
        const current = await this.#db.selectFrom('managed_devices').select('version').where('tenant_id', '=', this.#tenantId).where('id', '=', id).executeTakeFirst();
        if (current === undefined) return undefined;
        throw new KeyfleetError('KF_CONFLICT', `device "${id}" is at version ${Number(current.version)}, not ${expectedVersion}: it was changed concurrently`);
      },
      { conflict: IDENTITY_TAKEN },
    );
  }

  touchDevice(id: string, at: Date): Promise<boolean> {
    return guarded(async () => {
      const result = await this.#db
        .updateTable('managed_devices')
        .set({ last_sync_at: toMs(at, 'at') })
        .where('tenant_id', '=', this.#tenantId)
        .where('id', '=', id)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    });
  }

  setDesiredStateHashes(updates: readonly { readonly id: string; readonly hash: string }[], at: Date): Promise<string[]> {
    const atMs = toMs(at, 'at');
    // An id given twice gets its last hash, as applying the updates in order would leave it.
    const entries = [...new Map(updates.map((u) => [u.id, u.hash])).entries()];
    if (entries.length === 0) return Promise.resolve([]);
    return guarded(() =>
      inTransaction(this.#db, async (tx) => {
        const changed = new Set<string>();
        for (let i = 0; i < entries.length; i += HASH_CHUNK) {
          const chunk = entries.slice(i, i + HASH_CHUNK);
          const rows = sql.join(chunk.map(([id, hash]) => sql`(${id}, ${hash})`));
          // One UPDATE ... FROM (VALUES ...) per chunk (each database names a VALUES list's columns column1,
          // column2): one round trip for a thousand devices on PostgreSQL, one statement rather than a
          // thousand on SQLite. Devices whose hash is unchanged keep their version.
          const result = await sql<{ id: string }>`
            update managed_devices
            set desired_state_hash = v.column2, version = managed_devices.version + 1, updated_at = ${atMs}
            from (values ${rows}) as v
            where managed_devices.tenant_id = ${this.#tenantId}
              and managed_devices.id = v.column1
              and (managed_devices.desired_state_hash is null or managed_devices.desired_state_hash <> v.column2)
              ${this.#idRange(chunk)}
            returning managed_devices.id`.execute(tx);
          for (const r of result.rows) changed.add(r.id);
        }
        return entries.filter(([id]) => changed.has(id)).map(([id]) => id);
      }),
    );
  }

  /**
   * PostgreSQL only: the chunk's id range, redundant with the join but a guard on its plan. Without
   * statistics on managed_devices (before autovacuum's first ANALYZE after a bulk enrolment, or with
   * autovacuum off) the planner hash-joins the tenant's every device, about a second per chunk of 1000 at
   * 300,000 devices; bounded by the range (contiguous for batches from listDeviceRefs) it reads the
   * chunk's rows only. On SQLite the bound would do harm: its planner would walk the range and scan the
   * whole VALUES list for each row in it.
   */
  #idRange(chunk: readonly (readonly [string, string])[]) {
    if (this.#flavor !== 'postgres') return sql``;
    let low = chunk[0]![0];
    let high = low;
    for (const [id] of chunk) {
      // Byte order, as the column's "C" collation compares (UTF-16 order differs past U+FFFF).
      if (Buffer.compare(Buffer.from(id), Buffer.from(low)) < 0) low = id;
      if (Buffer.compare(Buffer.from(id), Buffer.from(high)) > 0) high = id;
    }
    return sql`and managed_devices.id between ${low} and ${high}`;
  }

  deleteDevice(id: string): Promise<boolean> {
    return guarded(async () => {
      // Its policy and certificate states go with it (ON DELETE CASCADE).
      const result = await this.#db.deleteFrom('managed_devices').where('tenant_id', '=', this.#tenantId).where('id', '=', id).executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  putPolicyState(record: DevicePolicyStateRecord): Promise<void> {
    const state = { status: record.status, detail: orNull(record.detail), reported_at: toMs(record.reportedAt, 'reportedAt') };
    return guarded(
      async () => {
        await this.#db
          .insertInto('device_policy_states')
          .values({ tenant_id: this.#tenantId, device_id: record.deviceId, policy_id: record.policyId, ...state })
          .onConflict((oc) => oc.columns(['tenant_id', 'device_id', 'policy_id']).doUpdateSet(state))
          .execute();
      },
      { missing: `no device with id "${record.deviceId}"` },
    );
  }

  listPolicyStates(
    filter: { readonly deviceId?: string; readonly policyId?: string; readonly userId?: string },
    options: PageOptions = {},
  ): Promise<Page<DevicePolicyStateRecord>> {
    return guarded(async () => {
      const limit = pageSize(options.limit);
      const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor, 2);
      let query = this.#db.selectFrom('device_policy_states').selectAll().where('tenant_id', '=', this.#tenantId);
      if (filter.deviceId !== undefined) query = query.where('device_id', '=', filter.deviceId);
      if (filter.policyId !== undefined) query = query.where('policy_id', '=', filter.policyId);
      if (filter.userId !== undefined) query = query.where('device_id', 'in', this.#devicesOf(filter.userId));
      if (after !== undefined) query = query.where(({ eb, refTuple, tuple }) => eb(refTuple('device_id', 'policy_id'), '>', tuple(after[0]!, after[1]!)));
      const rows = await query.orderBy('device_id').orderBy('policy_id').limit(limit + 1).offset(pageOffset(options.offset)).execute();
      return page(rows.map(policyStateFromRow), limit, (s) => [s.deviceId, s.policyId]);
    });
  }

  deletePolicyState(deviceId: string, policyId: string): Promise<boolean> {
    return guarded(async () => {
      const result = await this.#db
        .deleteFrom('device_policy_states')
        .where('tenant_id', '=', this.#tenantId)
        .where('device_id', '=', deviceId)
        .where('policy_id', '=', policyId)
        .executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  putCertificateState(record: DeviceCertificateRecord): Promise<void> {
    const state = {
      device_id: record.deviceId,
      profile_id: record.profileId,
      source: record.source,
      pfx_id: orNull(record.pfxId),
      state: record.state,
      thumbprint: orNull(record.thumbprint),
      serial_number: orNull(record.serialNumber),
      issuer: orNull(record.issuer),
      subject: orNull(record.subject),
      expires_at: optionalMs(record.expiresAt, 'expiresAt'),
      error_code: orNull(record.errorCode),
      state_changed_at: toMs(record.stateChangedAt, 'stateChangedAt'),
      created_at: toMs(record.createdAt, 'createdAt'),
    };
    return guarded(
      async () => {
        await this.#db
          .insertInto('device_certificates')
          .values({ tenant_id: this.#tenantId, id: record.id, ...state })
          .onConflict((oc) => oc.columns(['tenant_id', 'id']).doUpdateSet(state))
          .execute();
      },
      { missing: `no device with id "${record.deviceId}"` },
    );
  }

  getCertificateState(id: string): Promise<DeviceCertificateRecord | undefined> {
    return guarded(async () => {
      const row = await this.#db.selectFrom('device_certificates').selectAll().where('tenant_id', '=', this.#tenantId).where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : certificateFromRow(row);
    });
  }

  listCertificateStates(filter: CertificateStateFilter, options: PageOptions = {}): Promise<Page<DeviceCertificateRecord>> {
    return guarded(async () => {
      const limit = pageSize(options.limit);
      const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor, 2);
      let query = this.#db.selectFrom('device_certificates').selectAll().where('tenant_id', '=', this.#tenantId);
      if (filter.deviceId !== undefined) query = query.where('device_id', '=', filter.deviceId);
      if (filter.profileId !== undefined) query = query.where('profile_id', '=', filter.profileId);
      if (filter.pfxId !== undefined) query = query.where('pfx_id', '=', filter.pfxId);
      if (filter.userId !== undefined) query = query.where('device_id', 'in', this.#devicesOf(filter.userId));
      if (after !== undefined) query = query.where(({ eb, refTuple, tuple }) => eb(refTuple('device_id', 'id'), '>', tuple(after[0]!, after[1]!)));
      const rows = await query.orderBy('device_id').orderBy('id').limit(limit + 1).offset(pageOffset(options.offset)).execute();
      return page(rows.map(certificateFromRow), limit, (c) => [c.deviceId, c.id]);
    });
  }

  deleteCertificateState(id: string): Promise<boolean> {
    return guarded(async () => {
      const result = await this.#db.deleteFrom('device_certificates').where('tenant_id', '=', this.#tenantId).where('id', '=', id).executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  /**
   * The user's devices, for the states' user filter: a semi-join on managed_devices (both planners run
   * `in (select …)` as one), which unlike an inner join leaves the query's row type as it is.
   */
  #devicesOf(userId: string) {
    return this.#db.selectFrom('managed_devices').select('id').where('tenant_id', '=', this.#tenantId).where('user_id', '=', userId);
  }
}

function patchColumns(patch: DevicePatch): Partial<Omit<ManagedDevicesTable, 'tenant_id' | 'id'>> {
  const columns: Partial<Omit<ManagedDevicesTable, 'tenant_id' | 'id'>> = {};
  if (patch.deviceName !== undefined) columns.device_name = patch.deviceName;
  if (patch.osVersion !== undefined) columns.os_version = patch.osVersion;
  if (patch.managementState !== undefined) columns.management_state = patch.managementState;
  if (patch.lastSyncAt !== undefined) columns.last_sync_at = toMs(patch.lastSyncAt, 'lastSyncAt');
  if (patch.identityThumbprint !== undefined) columns.identity_thumbprint = patch.identityThumbprint;
  if (patch.identityCertificate !== undefined) columns.identity_certificate = patch.identityCertificate;
  if (patch.desiredStateHash !== undefined) columns.desired_state_hash = patch.desiredStateHash;
  if (patch.recheckAt !== undefined) columns.recheck_at = patch.recheckAt === null ? null : toMs(patch.recheckAt, 'recheckAt');
  return columns;
}

function page<T>(rows: T[], limit: number, key: (item: T) => string[]): Page<T> {
  if (rows.length <= limit) return { items: rows, nextCursor: undefined };
  const items = rows.slice(0, limit);
  return { items, nextCursor: encodeCursor(key(items[items.length - 1]!)) };
}

export function deviceFromRow(row: Selectable<ManagedDevicesTable>): ManagedDeviceRecord {
  return {
    id: row.id,
    userId: row.user_id,
    deviceName: row.device_name,
    operatingSystem: row.operating_system as DeviceOperatingSystem,
    osVersion: row.os_version,
    model: row.model,
    serialNumber: orUndefined(row.serial_number),
    portalUrl: orUndefined(row.portal_url),
    managementState: row.management_state as ManagementState,
    enrolledAt: fromMs(row.enrolled_at),
    lastSyncAt: optionalDate(row.last_sync_at),
    identityThumbprint: orUndefined(row.identity_thumbprint),
    identityCertificate: optionalBytes(row.identity_certificate),
    desiredStateHash: orUndefined(row.desired_state_hash),
    recheckAt: optionalDate(row.recheck_at),
    version: Number(row.version),
    createdAt: fromMs(row.created_at),
    updatedAt: fromMs(row.updated_at),
  };
}

function policyStateFromRow(row: Selectable<DevicePolicyStatesTable>): DevicePolicyStateRecord {
  return {
    deviceId: row.device_id,
    policyId: row.policy_id,
    status: row.status as PolicyStatus,
    detail: orUndefined(row.detail),
    reportedAt: fromMs(row.reported_at),
  };
}

function certificateFromRow(row: Selectable<DeviceCertificatesTable>): DeviceCertificateRecord {
  return {
    id: row.id,
    deviceId: row.device_id,
    profileId: row.profile_id,
    source: row.source as CertificateSourceKind,
    pfxId: orUndefined(row.pfx_id),
    state: row.state,
    thumbprint: orUndefined(row.thumbprint),
    serialNumber: orUndefined(row.serial_number),
    issuer: orUndefined(row.issuer),
    subject: orUndefined(row.subject),
    expiresAt: optionalDate(row.expires_at),
    errorCode: orUndefined(row.error_code),
    stateChangedAt: fromMs(row.state_changed_at),
    createdAt: fromMs(row.created_at),
  };
}
