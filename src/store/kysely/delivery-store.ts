/** DeliveryStore (src/store/delivery.ts) on Kysely; the cross-tenant lookups are in delivery-lookup.ts. */
import { sql, type Kysely, type Selectable } from 'kysely';
import { KeyfleetError } from '../../errors.ts';
import type {
  ConnectorRecord,
  DeliveryRequestRecord,
  DeliveryRequestStatus,
  DeliveryStore,
  EnrollmentTokenRecord,
  EnrollmentTokenUse,
  NotificationRecord,
} from '../delivery.ts';
import { MAX_DELIVERY_ATTEMPTS } from '../delivery.ts';
import type { Page, PageOptions } from '../directory.ts';
import type { SqlFlavor } from '../migrations/flavor.ts';
import { guarded } from './errors.ts';
import type { Database } from './schema.ts';
import type { DeliveryRequestsTable } from './schema-delivery.ts';
import { MAX_PAGE, decodeCursor, encodeCursor, optionalMs, orNull, pageOffset, pageSize, toMs } from './values.ts';
import { connectorFromRow, notificationFromRow, requestFromRow, tokenFromRow } from './delivery-rows.ts';

/** touchConnector writes at most this often per connector (unless the version changes): connectors call it on every long poll. */
const TOUCH_INTERVAL_MS = 60_000;

/** A request is open, and may be cancelled, until it is ready or cancelled; a failed one waits for a retry. */
const OPEN_STATUSES = ['pending', 'claimed', 'failed'] as const;

export class KyselyDeliveryStore implements DeliveryStore {
  readonly #db: Kysely<Database>;
  readonly #tenantId: string;
  readonly #flavor: SqlFlavor;

  constructor(db: Kysely<Database>, tenantId: string, flavor: SqlFlavor) {
    this.#db = db;
    this.#tenantId = tenantId;
    this.#flavor = flavor;
  }

  putEnrollmentToken(record: EnrollmentTokenRecord): Promise<void> {
    const row = {
      tenant_id: this.#tenantId,
      id: record.id,
      user_id: record.userId,
      secret_hash: record.secretHash,
      created_at: toMs(record.createdAt, 'createdAt'),
      expires_at: toMs(record.expiresAt, 'expiresAt'),
      used_at: optionalMs(record.usedAt, 'usedAt'),
      device_id: orNull(record.deviceId),
    };
    return guarded(
      async () => {
        await this.#db.insertInto('enrollment_tokens').values(row).execute();
      },
      { conflict: 'an enrollment token with this id or secret already exists', missing: `no user with id "${record.userId}"` },
    );
  }

  useEnrollmentToken(secretHash: string, deviceId: string, at: Date): Promise<EnrollmentTokenUse> {
    const ms = toMs(at, 'at');
    return guarded(async () => {
      // One conditional UPDATE ... RETURNING: of concurrent enrolments with the same token exactly one sees it change.
      const taken = await this.#db
        .updateTable('enrollment_tokens')
        .set({ used_at: ms, device_id: deviceId })
        .where('tenant_id', '=', this.#tenantId)
        .where('secret_hash', '=', secretHash)
        .where('used_at', 'is', null)
        .where('expires_at', '>', ms)
        .returningAll()
        .executeTakeFirst();
      if (taken !== undefined) return { outcome: 'ok', token: tokenFromRow(taken) };
      const found = await this.#db
        .selectFrom('enrollment_tokens')
        .select('used_at')
        .where('tenant_id', '=', this.#tenantId)
        .where('secret_hash', '=', secretHash)
        .executeTakeFirst();
      // A used token stays "used" once it has expired too: the replay is what the log should say.
      if (found === undefined) return { outcome: 'unknown' };
      return { outcome: found.used_at === null ? 'expired' : 'used' };
    });
  }

  listEnrollmentTokens(userId: string): Promise<EnrollmentTokenRecord[]> {
    return guarded(async () => {
      const rows = await this.#db
        .selectFrom('enrollment_tokens')
        .selectAll()
        .where('tenant_id', '=', this.#tenantId)
        .where('user_id', '=', userId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(tokenFromRow);
    });
  }

  putConnector(record: ConnectorRecord): Promise<void> {
    const row = {
      tenant_id: this.#tenantId,
      id: record.id,
      name: record.name,
      secret_hash: record.secretHash,
      version: orNull(record.version),
      last_seen_at: optionalMs(record.lastSeenAt, 'lastSeenAt'),
      created_at: toMs(record.createdAt, 'createdAt'),
      revoked_at: optionalMs(record.revokedAt, 'revokedAt'),
    };
    return guarded(
      async () => {
        await this.#db.insertInto('connectors').values(row).execute();
      },
      { conflict: 'a connector with this id or secret already exists', missing: 'the tenant does not exist' },
    );
  }

  getConnector(id: string): Promise<ConnectorRecord | undefined> {
    return guarded(async () => {
      const row = await this.#db.selectFrom('connectors').selectAll().where('tenant_id', '=', this.#tenantId).where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : connectorFromRow(row);
    });
  }

  listConnectors(): Promise<ConnectorRecord[]> {
    return guarded(async () => {
      const rows = await this.#db.selectFrom('connectors').selectAll().where('tenant_id', '=', this.#tenantId).orderBy('created_at').orderBy('id').execute();
      return rows.map(connectorFromRow);
    });
  }

  touchConnector(id: string, version: string, at: Date): Promise<void> {
    const ms = toMs(at, 'at');
    return guarded(async () => {
      await this.#db
        .updateTable('connectors')
        .set({ version, last_seen_at: ms })
        .where('tenant_id', '=', this.#tenantId)
        .where('id', '=', id)
        .where((eb) =>
          eb.or([eb('version', 'is', null), eb('version', '<>', version), eb('last_seen_at', 'is', null), eb('last_seen_at', '<=', ms - TOUCH_INTERVAL_MS)]),
        )
        .execute();
    });
  }

  revokeConnector(id: string, at: Date): Promise<boolean> {
    const ms = toMs(at, 'at');
    return guarded(async () => {
      const result = await this.#db
        .updateTable('connectors')
        .set({ revoked_at: ms })
        .where('tenant_id', '=', this.#tenantId)
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  ensureDeliveryRequest(record: DeliveryRequestRecord): Promise<DeliveryRequestRecord> {
    const state = {
      status: record.status,
      claim_hash: orNull(record.claimHash),
      connector_id: orNull(record.connectorId),
      lease_until: optionalMs(record.leaseUntil, 'leaseUntil'),
      payload: orNull(record.payload),
      error_code: orNull(record.errorCode),
      error_detail: orNull(record.errorDetail),
      updated_at: toMs(record.updatedAt, 'updatedAt'),
    };
    const row = {
      tenant_id: this.#tenantId,
      id: record.id,
      device_id: record.deviceId,
      pfx_id: record.pfxId,
      attempts: record.attempts,
      created_at: toMs(record.createdAt, 'createdAt'),
      ...state,
    };
    const existing = () =>
      this.#db
        .selectFrom('delivery_requests')
        .selectAll()
        .where('tenant_id', '=', this.#tenantId)
        .where('device_id', '=', record.deviceId)
        .where('pfx_id', '=', record.pfxId)
        .executeTakeFirst();
    return guarded(
      async () => {
        // Every full check-in ensures its device's requests: most already exist, and one read settles it.
        const found = await existing();
        if (found !== undefined && found.status !== 'cancelled') return requestFromRow(found);
        // A cancelled request (the PFX was unassigned) is taken up again when the device needs the PFX once
        // more: (device, PFX) is unique, so a new one could not be queued beside it. It keeps its id, its
        // createdAt (its place in the queue) and its attempts.
        const written = await this.#db
          .insertInto('delivery_requests')
          .values(row)
          .onConflict((oc) => oc.columns(['tenant_id', 'device_id', 'pfx_id']).doUpdateSet(state).where('delivery_requests.status', '=', 'cancelled'))
          .returningAll()
          .executeTakeFirst();
        if (written !== undefined) return requestFromRow(written);
        // Queued by another check-in between the two statements, or gone with its device (ON DELETE CASCADE).
        const after = await existing();
        if (after === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no device with id "${record.deviceId}"`);
        return requestFromRow(after);
      },
      { conflict: `a delivery request with id "${record.id}" already exists`, missing: `no device with id "${record.deviceId}"` },
    );
  }

  getDeliveryRequest(id: string): Promise<DeliveryRequestRecord | undefined> {
    return guarded(async () => {
      const row = await this.#db.selectFrom('delivery_requests').selectAll().where('tenant_id', '=', this.#tenantId).where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : requestFromRow(row);
    });
  }

  listDeliveryRequests(
    filter: { readonly deviceId?: string; readonly status?: DeliveryRequestStatus },
    options: PageOptions = {},
  ): Promise<Page<DeliveryRequestRecord>> {
    return guarded(async () => {
      const limit = pageSize(options.limit);
      const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor, 1)[0];
      let query = this.#db.selectFrom('delivery_requests').selectAll().where('tenant_id', '=', this.#tenantId);
      if (filter.deviceId !== undefined) query = query.where('device_id', '=', filter.deviceId);
      if (filter.status !== undefined) query = query.where('status', '=', filter.status);
      if (after !== undefined) query = query.where('id', '>', after);
      const rows = await query.orderBy('id').limit(limit + 1).offset(pageOffset(options.offset)).execute();
      return page(rows.map(requestFromRow), limit, (r) => [r.id]);
    });
  }

  async claimDeliveryRequests(connectorId: string, max: number, claimHashes: readonly string[], leaseUntil: Date, at: Date): Promise<DeliveryRequestRecord[]> {
    if (!Number.isInteger(max) || max < 1 || max > MAX_PAGE) throw new KeyfleetError('KF_USAGE', `max must be an integer from 1 to ${MAX_PAGE}`);
    if (claimHashes.length < max || new Set(claimHashes).size !== claimHashes.length) {
      throw new KeyfleetError('KF_USAGE', 'claimHashes must hold at least max distinct hashes');
    }
    const atMs = toMs(at, 'at');
    const leaseMs = toMs(leaseUntil, 'leaseUntil');
    // Literal positions: a parameter would be text to PostgreSQL, compared with row_number()'s bigint.
    const hashes = sql.join(claimHashes.slice(0, max).map((h, i) => sql`(${sql.lit(i + 1)}, ${h})`));
    // One statement, so its own transaction. PostgreSQL: concurrent claimers lock disjoint rows, each skipping
    // the rows another holds and rechecking the ones another has just claimed. SQLite has no row locks, but a
    // writing statement takes the write lock before it reads anything, as BEGIN IMMEDIATE would: claimers
    // take turns, in this process and in others on the file (delivery-sqlite.test.ts).
    const lock = this.#flavor === 'postgres' ? sql`for update skip locked` : sql``;
    return guarded(async () => {
      // The open-queue predicate is the partial index's (0008_delivery.ts); the lease ends at leaseUntil. A
      // request picked whose every lease ran out is not handed out again: it is failed for the admin to see.
      const exhausted = sql`(delivery_requests.status = 'claimed' and delivery_requests.attempts >= ${sql.lit(MAX_DELIVERY_ATTEMPTS)})`;
      const result = await sql<Selectable<DeliveryRequestsTable>>`
        with picked as materialized (
          select id, created_at from delivery_requests
          where tenant_id = ${this.#tenantId}
            and status in ('pending', 'claimed')
            and (status = 'pending' or lease_until <= ${atMs})
          order by created_at, id
          limit ${max}
          ${lock}
        ), numbered as (
          select id, row_number() over (order by created_at, id) as n from picked
        )
        update delivery_requests
        set status = case when ${exhausted} then 'failed' else 'claimed' end,
            claim_hash = case when ${exhausted} then null else (select h.column2 from numbered join (values ${hashes}) as h on h.column1 = numbered.n where numbered.id = delivery_requests.id) end,
            connector_id = case when ${exhausted} then connector_id else ${connectorId} end,
            lease_until = case when ${exhausted} then null else cast(${leaseMs} as bigint) end,
            attempts = case when ${exhausted} then attempts else attempts + 1 end,
            error_code = case when ${exhausted} then 'attempts-exhausted' else null end,
            error_detail = case when ${exhausted} then ${`no connector completed it in ${MAX_DELIVERY_ATTEMPTS} leases`} else null end,
            updated_at = ${atMs}
        where tenant_id = ${this.#tenantId} and id in (select id from numbered)
        returning *`.execute(this.#db);
      return result.rows.filter((r) => r.status === 'claimed').map(requestFromRow).sort(oldestFirst);
    });
  }

  completeDeliveryRequest(
    id: string,
    claimHash: string,
    outcome: { readonly payload: Uint8Array } | { readonly errorCode: string; readonly errorDetail: string },
    at: Date,
  ): Promise<boolean> {
    const done =
      'payload' in outcome
        ? { status: 'ready', payload: outcome.payload, error_code: null, error_detail: null }
        : { status: 'failed', payload: null, error_code: outcome.errorCode, error_detail: outcome.errorDetail };
    const ms = toMs(at, 'at');
    return guarded(async () => {
      // Whether the lease ran out does not matter, only whether another claim has taken it over since.
      const result = await this.#db
        .updateTable('delivery_requests')
        .set({ ...done, lease_until: null, updated_at: ms })
        .where('tenant_id', '=', this.#tenantId)
        .where('id', '=', id)
        .where('status', '=', 'claimed')
        .where('claim_hash', '=', claimHash)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  cancelDeliveryRequests(deviceId: string, pfxIds: readonly string[] | undefined, at: Date): Promise<number> {
    if (pfxIds !== undefined && pfxIds.length === 0) return Promise.resolve(0);
    const ms = toMs(at, 'at');
    return guarded(async () => {
      let query = this.#db
        .updateTable('delivery_requests')
        .set({ status: 'cancelled', lease_until: null, updated_at: ms })
        .where('tenant_id', '=', this.#tenantId)
        .where('device_id', '=', deviceId)
        .where('status', 'in', [...OPEN_STATUSES]);
      if (pfxIds !== undefined) query = query.where('pfx_id', 'in', [...new Set(pfxIds)]);
      const result = await query.executeTakeFirst();
      return Number(result.numUpdatedRows);
    });
  }

  retryDeliveryRequest(id: string, at: Date): Promise<boolean> {
    const ms = toMs(at, 'at');
    return guarded(async () => {
      const result = await this.#db
        .updateTable('delivery_requests')
        .set({ status: 'pending', claim_hash: null, connector_id: null, lease_until: null, error_code: null, error_detail: null, updated_at: ms })
        .where('tenant_id', '=', this.#tenantId)
        .where('id', '=', id)
        .where('status', '=', 'failed')
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  countDeliveryRequests(status: DeliveryRequestStatus): Promise<number> {
    return guarded(async () => {
      const row = await this.#db
        .selectFrom('delivery_requests')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('tenant_id', '=', this.#tenantId)
        .where('status', '=', status)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    });
  }

  hasOpenDeliveryRequests(deviceId: string, exceptId?: string): Promise<boolean> {
    return guarded(async () => {
      // The (tenant, device, PFX) unique index finds the device's few rows; no payload is read.
      let query = this.#db
        .selectFrom('delivery_requests')
        .select('id')
        .where('tenant_id', '=', this.#tenantId)
        .where('device_id', '=', deviceId)
        .where('status', 'in', ['pending', 'claimed']);
      if (exceptId !== undefined) query = query.where('id', '<>', exceptId);
      return (await query.limit(1).executeTakeFirst()) !== undefined;
    });
  }

  putNotification(record: NotificationRecord): Promise<void> {
    const row = {
      tenant_id: this.#tenantId,
      id: record.id,
      device_id: record.deviceId,
      channel: record.channel,
      title: record.title,
      body: record.body,
      created_at: toMs(record.createdAt, 'createdAt'),
      read_at: optionalMs(record.readAt, 'readAt'),
      sent_at: optionalMs(record.sentAt, 'sentAt'),
      send_error: orNull(record.sendError),
    };
    return guarded(
      async () => {
        await this.#db.insertInto('device_notifications').values(row).execute();
      },
      { conflict: `a notification with id "${record.id}" already exists`, missing: `no device with id "${record.deviceId}"` },
    );
  }

  getNotification(id: string): Promise<NotificationRecord | undefined> {
    return guarded(async () => {
      const row = await this.#db.selectFrom('device_notifications').selectAll().where('tenant_id', '=', this.#tenantId).where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : notificationFromRow(row);
    });
  }

  listNotifications(deviceId: string, options: PageOptions = {}): Promise<Page<NotificationRecord>> {
    return guarded(async () => {
      const limit = pageSize(options.limit);
      const after = options.cursor === undefined ? undefined : notificationCursor(options.cursor);
      let query = this.#db.selectFrom('device_notifications').selectAll().where('tenant_id', '=', this.#tenantId).where('device_id', '=', deviceId);
      if (after !== undefined) query = query.where(({ eb, refTuple, tuple }) => eb(refTuple('created_at', 'id'), '<', tuple(after.createdAt, after.id)));
      const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1).offset(pageOffset(options.offset)).execute();
      return page(rows.map(notificationFromRow), limit, (n) => [String(n.createdAt.getTime()), n.id]);
    });
  }

  markNotificationRead(id: string, at: Date): Promise<boolean> {
    const ms = toMs(at, 'at');
    return guarded(async () => {
      // True for any notification of the tenant: reading twice is no error, and the first read is the one kept.
      const result = await this.#db
        .updateTable('device_notifications')
        .set((eb) => ({ read_at: eb.fn.coalesce('read_at', eb.val(ms)) }))
        .where('tenant_id', '=', this.#tenantId)
        .where('id', '=', id)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  recordNotificationSend(id: string, outcome: { readonly sentAt: Date } | { readonly error: string }): Promise<void> {
    const columns = 'sentAt' in outcome ? { sent_at: toMs(outcome.sentAt, 'sentAt'), send_error: null } : { sent_at: null, send_error: outcome.error };
    return guarded(async () => {
      // Nothing to record when the notification went with its device meanwhile.
      await this.#db.updateTable('device_notifications').set(columns).where('tenant_id', '=', this.#tenantId).where('id', '=', id).execute();
    });
  }
}

function notificationCursor(cursor: string): { createdAt: number; id: string } {
  const [createdAt, id] = decodeCursor(cursor, 2) as [string, string];
  const ms = Number(createdAt);
  if (!/^-?\d+$/.test(createdAt) || !Number.isSafeInteger(ms)) {
    throw new KeyfleetError('KF_USAGE', 'the cursor is not valid: pass back a nextCursor unchanged');
  }
  return { createdAt: ms, id };
}

function page<T>(rows: T[], limit: number, key: (item: T) => string[]): Page<T> {
  if (rows.length <= limit) return { items: rows, nextCursor: undefined };
  const items = rows.slice(0, limit);
  return { items, nextCursor: encodeCursor(key(items[items.length - 1]!)) };
}

/** The claim's order, as the database sorts it: createdAt, then id compared byte by byte. */
function oldestFirst(a: DeliveryRequestRecord, b: DeliveryRequestRecord): number {
  return a.createdAt.getTime() - b.createdAt.getTime() || Buffer.compare(Buffer.from(a.id), Buffer.from(b.id));
}
