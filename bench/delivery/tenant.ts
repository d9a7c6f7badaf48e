/**
 * The rows bench:delivery adds to bench:service's tenant (bench/service/seed.ts),
 * and the tenant itself moved to `keyfleet serve`'s tenant ("default":
 * serve gives a CA to that tenant only, src/cli/serve-delivery.ts), so the
 * real server can be measured on it.
 *
 * - Idle-check-in devices: managed devices of the seeded tenant, picked at an
 *   even stride, given identity certificates (as enrolment would have).
 * - Delivery sets A and B: each DELIVERY_DEVICES (10,000 at --scale 1)
 *   enrolled devices, three per user as in the seeded tenant, users with an
 *   Exchange Online mailbox in one group of their own that nothing is
 *   assigned to yet (so the devices start with nothing), each user with
 *   HISTORY imported encryption certificates. Set A is measured with one
 *   connector, set B with two: a fresh 10,000 each time, in one tenant.
 */
import type { Row } from '../service/db.ts';
import { type BulkTable } from '../service/db.ts';
import { type Sizes, bulkTables } from '../service/seed.ts';
import { HISTORY, type HistoryEntry } from './pfx.ts';

export const SERVE_TENANT = 'default';
export const DOMAIN = 'bench.keyfleet.example';
export const DEVICES_PER_USER = 3;

export type SetName = 'a' | 'b';

export interface Identity {
  readonly id: string;
  /** The device identity certificate (DER) and its SHA-256, as enrolment stores them. */
  readonly certificate: Uint8Array;
  readonly thumbprint: string;
}

export interface SetPlan {
  readonly name: SetName;
  readonly groupId: string;
  readonly devices: number;
  readonly users: number;
}

export function setPlan(name: SetName, devices: number): SetPlan {
  return { name, groupId: `g-dlv-${name}`, devices, users: Math.ceil(devices / DEVICES_PER_USER) };
}

const pad = (n: number) => String(n).padStart(6, '0');
export const setUserId = (set: SetName, u: number): string => `dlv-${set}-u${pad(u)}`;
export const setUpn = (set: SetName, u: number): string => `dlv-${set}-${pad(u)}@${DOMAIN}`;
export const setDeviceId = (set: SetName, d: number): string => `dlv-${set}-d${pad(d)}`;
export const setDeviceUser = (d: number): number => Math.floor(d / DEVICES_PER_USER);
export const setPfxId = (set: SetName, u: number, k: number): string => `dlv-${set}-pfx-${pad(u)}-${k}`;

/** Ids of `count` managed devices of the seeded tenant, spread evenly over it. */
export function idleDeviceIds(sizes: Sizes, count: number): string[] {
  const managed: string[] = [];
  const devices = bulkTables(sizes, 0).find((t) => t.table === 'managed_devices')!;
  for (const row of devices.rows) if (row[8] === 'managed') managed.push(String(row[1]));
  if (count > managed.length) throw new Error(`only ${managed.length} managed devices to check in idle; asked for ${count}`);
  const stride = managed.length / count;
  return Array.from({ length: count }, (_, i) => managed[Math.floor(i * stride)]!);
}

/** bench:service's rows under SERVE_TENANT, the idle devices with their identity certificates. */
export function seededTables(sizes: Sizes, now: number, identities: ReadonlyMap<string, Identity>): BulkTable[] {
  return bulkTables(sizes, now).map((t) => {
    const idColumn = t.table === 'managed_devices' ? t.columns.indexOf('id') : -1;
    const thumbColumn = t.columns.indexOf('identity_thumbprint');
    const certColumn = t.columns.indexOf('identity_certificate');
    return {
      ...t,
      rows: (function* (): Generator<Row> {
        for (const row of t.rows) {
          const out = [...row];
          out[0] = SERVE_TENANT;
          if (idColumn >= 0) {
            const identity = identities.get(String(row[idColumn]));
            if (identity !== undefined) {
              out[thumbColumn] = identity.thumbprint;
              out[certColumn] = identity.certificate;
            }
          }
          yield out;
        }
      })(),
    };
  });
}

/** One delivery set's group, users, memberships, devices and imported certificates. */
export function setTables(plan: SetPlan, now: number, identities: readonly Identity[], history: readonly HistoryEntry[]): BulkTable[] {
  const t = SERVE_TENANT;
  const s = plan.name;
  const bySlot = new Map<number, HistoryEntry[]>();
  for (const h of history) {
    const list = bySlot.get(h.slot) ?? [];
    list.push(h);
    bySlot.set(h.slot, list);
  }
  return [
    {
      table: 'groups',
      columns: ['tenant_id', 'id', 'display_name', 'description', 'external_id', 'created_at', 'updated_at'],
      rows: [[t, plan.groupId, `Delivery bench ${s.toUpperCase()}`, 'bench:delivery: the users a new policy is assigned to', null, now, now]],
    },
    {
      table: 'users',
      columns: ['tenant_id', 'id', 'user_principal_name', 'upn_key', 'mail', 'display_name', 'is_exchange_online', 'account_enabled', 'external_id', 'created_at', 'updated_at'],
      rows: (function* (): Generator<Row> {
        for (let u = 0; u < plan.users; u++) yield [t, setUserId(s, u), setUpn(s, u), setUpn(s, u), setUpn(s, u), `Delivery ${s.toUpperCase()} ${u}`, 1, 1, null, now, now];
      })(),
    },
    {
      table: 'group_user_members',
      columns: ['tenant_id', 'group_id', 'user_id'],
      rows: (function* (): Generator<Row> {
        for (let u = 0; u < plan.users; u++) yield [t, plan.groupId, setUserId(s, u)];
      })(),
    },
    {
      table: 'managed_devices',
      columns: ['tenant_id', 'id', 'user_id', 'device_name', 'operating_system', 'os_version', 'model', 'serial_number', 'management_state', 'enrolled_at',
        'last_sync_at', 'identity_thumbprint', 'identity_certificate', 'desired_state_hash', 'version', 'created_at', 'updated_at'],
      rows: (function* (): Generator<Row> {
        for (let d = 0; d < plan.devices; d++) {
          const identity = identities[d]!;
          yield [t, identity.id, setUserId(s, setDeviceUser(d)), `iPhone ${s.toUpperCase()}${d}`, 'iOS', '18.1', 'iPhone16,2', null, 'managed', now, null, identity.thumbprint, identity.certificate, null, 1, now, now];
        }
      })(),
    },
    {
      table: 'user_pfx_certificates',
      columns: ['tenant_id', 'id', 'user_principal_name', 'upn_key', 'thumbprint', 'intended_purpose', 'start_at', 'expiration_at', 'provider_name', 'key_name',
        'padding_scheme', 'encrypted_pfx_blob', 'encrypted_pfx_password', 'created_at'],
      rows: (function* (): Generator<Row> {
        for (let u = 0; u < plan.users; u++) {
          const entries = bySlot.get(u) ?? [];
          if (entries.length !== HISTORY) throw new Error(`slot ${u} has ${entries.length} imported certificates, expected ${HISTORY}`);
          for (const h of entries) {
            yield [t, setPfxId(s, u, h.index), setUpn(s, u), setUpn(s, u), h.thumbprint, 'smimeEncryption', h.notBefore, h.notAfter,
              'Keyfleet PFX Connector', 'connector', 'oaepSha512', h.pfx, h.encryptedPassword, now];
          }
        }
      })(),
    },
  ];
}
