/**
 * The tables as Kysely sees them (src/store/migrations creates them).
 * Instants are integers of ms since the epoch on both databases; integers
 * read back as number, or bigint past 2^53 (both drivers are set up so).
 */
import type { DeliveryTables } from './schema-delivery.ts';
import type { Generated } from 'kysely';

type Int64 = number | bigint;

export interface TenantsTable {
  id: string;
  name: string;
  created_at: Int64;
}

export interface CasTable {
  tenant_id: string;
  id: string;
  role: string;
  certificate_der: Uint8Array;
  chain_der: Uint8Array;
  key_ref: string;
  sealed_key: Uint8Array | null;
  created_at: Int64;
  last_crl_number: Generated<Int64>;
}

export interface IssuedCertificatesTable {
  tenant_id: string;
  ca_id: string;
  serial_hex: string;
  subject: string;
  email_addresses: string;
  profile: string | null;
  requester: string | null;
  not_before: Int64;
  not_after: Int64;
  issued_at: Int64;
  certificate_der: Uint8Array;
  revoked_at: Int64 | null;
  revocation_reason: number | null;
}

export interface CrlsTable {
  tenant_id: string;
  ca_id: string;
  crl_number: Int64;
  this_update: Int64;
  next_update: Int64;
  der: Uint8Array;
}

export interface ScepProfilesTable {
  tenant_id: string;
  name: string;
  ca_id: string;
  template: string;
  created_at: Int64;
}

export interface ScepChallengesTable {
  tenant_id: string;
  hash: string;
  profile: string;
  device_id: string | null;
  subject: string;
  san_email: string | null;
  san_upn: string | null;
  created_at: Int64;
  expires_at: Int64;
  used_at: Int64 | null;
}

export interface ScepTransactionsTable {
  seq: Generated<Int64>;
  tenant_id: string;
  transaction_id: string;
  profile: string;
  message_type: string;
  requester: string;
  outcome: string;
  fail_info: string | null;
  serial_hex: string | null;
  created_at: Int64;
}

export interface UsersTable {
  tenant_id: string;
  id: string;
  user_principal_name: string;
  upn_key: string;
  mail: string | null;
  display_name: string;
  is_exchange_online: number;
  account_enabled: number;
  external_id: string | null;
  created_at: Int64;
  updated_at: Int64;
}

export interface GroupsTable {
  tenant_id: string;
  id: string;
  display_name: string;
  description: string | null;
  external_id: string | null;
  created_at: Int64;
  updated_at: Int64;
}

export interface GroupUserMembersTable {
  tenant_id: string;
  group_id: string;
  user_id: string;
}

export interface GroupGroupMembersTable {
  tenant_id: string;
  group_id: string;
  member_group_id: string;
}

export interface ApiTokensTable {
  tenant_id: string;
  id: string;
  name: string;
  role: string;
  secret_hash: string;
  created_at: Int64;
  last_used_at: Int64 | null;
  revoked_at: Int64 | null;
}

export interface AuditEventsTable {
  tenant_id: string;
  seq: Int64;
  actor_id: string;
  actor_name: string;
  action: string;
  resource_type: string;
  resource_id: string;
  before_json: string | null;
  after_json: string | null;
  at: Int64;
  prev_hash: string;
  hash: string;
}

export interface ManagedDevicesTable {
  tenant_id: string;
  id: string;
  user_id: string;
  device_name: string;
  operating_system: string;
  os_version: string;
  model: string;
  serial_number: string | null;
  portal_url: string | null;
  management_state: string;
  enrolled_at: Int64;
  last_sync_at: Int64 | null;
  identity_thumbprint: string | null;
  identity_certificate: Uint8Array | null;
  desired_state_hash: string | null;
  recheck_at: Int64 | null;
  version: Int64;
  created_at: Int64;
  updated_at: Int64;
}

export interface DevicePolicyStatesTable {
  tenant_id: string;
  device_id: string;
  policy_id: string;
  status: string;
  detail: string | null;
  reported_at: Int64;
}

export interface DeviceCertificatesTable {
  tenant_id: string;
  id: string;
  device_id: string;
  profile_id: string;
  source: string;
  pfx_id: string | null;
  state: string;
  thumbprint: string | null;
  serial_number: string | null;
  issuer: string | null;
  subject: string | null;
  expires_at: Int64 | null;
  error_code: string | null;
  state_changed_at: Int64;
  created_at: Int64;
}

export interface Database extends DeliveryTables {
  tenants: TenantsTable;
  cas: CasTable;
  issued_certificates: IssuedCertificatesTable;
  crls: CrlsTable;
  scep_profiles: ScepProfilesTable;
  scep_challenges: ScepChallengesTable;
  scep_transactions: ScepTransactionsTable;
  users: UsersTable;
  groups: GroupsTable;
  group_user_members: GroupUserMembersTable;
  group_group_members: GroupGroupMembersTable;
  api_tokens: ApiTokensTable;
  audit_events: AuditEventsTable;
  managed_devices: ManagedDevicesTable;
  device_policy_states: DevicePolicyStatesTable;
  device_certificates: DeviceCertificatesTable;
}
