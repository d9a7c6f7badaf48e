/** Delivery rows as records (src/store/delivery.ts), shared by the store and the cross-tenant lookup. */
import type { Selectable } from 'kysely';
import type { ConnectorRecord, DeliveryRequestRecord, DeliveryRequestStatus, EnrollmentTokenRecord, NotificationRecord } from '../delivery.ts';
import type { ConnectorsTable, DeliveryRequestsTable, DeviceNotificationsTable, EnrollmentTokensTable } from './schema-delivery.ts';
import { fromMs, optionalBytes, optionalDate, orUndefined } from './values.ts';

export function tokenFromRow(row: Selectable<EnrollmentTokensTable>): EnrollmentTokenRecord {
  return {
    id: row.id,
    userId: row.user_id,
    secretHash: row.secret_hash,
    createdAt: fromMs(row.created_at),
    expiresAt: fromMs(row.expires_at),
    usedAt: optionalDate(row.used_at),
    deviceId: orUndefined(row.device_id),
  };
}

export function connectorFromRow(row: Selectable<ConnectorsTable>): ConnectorRecord {
  return {
    id: row.id,
    name: row.name,
    secretHash: row.secret_hash,
    version: orUndefined(row.version),
    lastSeenAt: optionalDate(row.last_seen_at),
    createdAt: fromMs(row.created_at),
    revokedAt: optionalDate(row.revoked_at),
  };
}

export function requestFromRow(row: Selectable<DeliveryRequestsTable>): DeliveryRequestRecord {
  return {
    id: row.id,
    deviceId: row.device_id,
    pfxId: row.pfx_id,
    status: row.status as DeliveryRequestStatus,
    claimHash: orUndefined(row.claim_hash),
    connectorId: orUndefined(row.connector_id),
    leaseUntil: optionalDate(row.lease_until),
    attempts: Number(row.attempts),
    payload: optionalBytes(row.payload),
    errorCode: orUndefined(row.error_code),
    errorDetail: orUndefined(row.error_detail),
    createdAt: fromMs(row.created_at),
    updatedAt: fromMs(row.updated_at),
  };
}

export function notificationFromRow(row: Selectable<DeviceNotificationsTable>): NotificationRecord {
  return {
    id: row.id,
    deviceId: row.device_id,
    channel: row.channel as NotificationRecord['channel'],
    title: row.title,
    body: row.body,
    createdAt: fromMs(row.created_at),
    readAt: optionalDate(row.read_at),
    sentAt: optionalDate(row.sent_at),
    sendError: orUndefined(row.send_error),
  };
}

