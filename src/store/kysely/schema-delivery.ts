/** The tables of migration 0008 (src/store/migrations/0008_delivery.ts) as Kysely sees them; schema.ts merges them into Database. */
import type { Int64 } from './values.ts';

export interface EnrollmentTokensTable {
  tenant_id: string;
  id: string;
  user_id: string;
  secret_hash: string;
  created_at: Int64;
  expires_at: Int64;
  used_at: Int64 | null;
  device_id: string | null;
}

export interface ConnectorsTable {
  tenant_id: string;
  id: string;
  name: string;
  secret_hash: string;
  version: string | null;
  last_seen_at: Int64 | null;
  created_at: Int64;
  revoked_at: Int64 | null;
}

export interface DeliveryRequestsTable {
  tenant_id: string;
  id: string;
  device_id: string;
  pfx_id: string;
  status: string;
  claim_hash: string | null;
  connector_id: string | null;
  lease_until: Int64 | null;
  attempts: Int64;
  payload: Uint8Array | null;
  error_code: string | null;
  error_detail: string | null;
  created_at: Int64;
  updated_at: Int64;
}

export interface DeviceNotificationsTable {
  tenant_id: string;
  id: string;
  device_id: string;
  channel: string;
  title: string;
  body: string;
  created_at: Int64;
  read_at: Int64 | null;
  sent_at: Int64 | null;
  send_error: string | null;
}

export interface DeliveryTables {
  enrollment_tokens: EnrollmentTokensTable;
  connectors: ConnectorsTable;
  delivery_requests: DeliveryRequestsTable;
  device_notifications: DeviceNotificationsTable;
}
