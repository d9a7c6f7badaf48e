/**
 * The tenant bench:service measures, per issue 4 "Benchmark": 100,000
 * users, 300,000 devices (three per user), 2,000 nested groups and 50
 * policies at --scale 1, from a fixed pseudo-random seed, so every run and
 * both databases hold the same tenant.
 *
 * - Groups form a tree of fan-out 4 (group i's parent is (i − 1) / 4, about
 *   six levels), and one group in ten is also nested in a second, older
 *   group: a DAG, no cycles (a parent always has a smaller index).
 * - Each user is a direct member of 3 random groups; 90% have an Exchange
 *   Online mailbox; one in ten has an imported history of 3 PFX
 *   certificates (2 encryption, 1 signing).
 * - 98% of devices are managed, 1% retired, 1% with a wipe pending.
 * - Apps (Outlook, Teams, Edge), a trusted root, 5 SCEP profiles, 2
 *   PKCS-imported profiles and 50 S/MIME policies for Outlook whose settings
 *   differ (so some users see conflicts), each included for one or two
 *   groups drawn towards the top of the tree and excluded for a random
 *   group three times in ten.
 */
import { createHash } from 'node:crypto';
import type { TenantStore } from '../../src/store/store.ts';
import type { JsonObject } from '../../src/store/resources.ts';
import type { BulkTable, Row } from './db.ts';

export const TENANT = 'bench';
const DOMAIN = 'bench.keyfleet.example';

export interface Sizes {
  readonly users: number;
  readonly devices: number;
  readonly groups: number;
  readonly policies: number;
}

export function sizesFor(scale: number): Sizes {
  return {
    users: Math.max(30, Math.round(100_000 * scale)),
    devices: Math.max(90, Math.round(300_000 * scale)),
    groups: Math.max(20, Math.round(2_000 * scale)),
    policies: 50,
  };
}

/** mulberry32: small, fast, and the same sequence everywhere. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const userId = (i: number): string => `u${String(i).padStart(6, '0')}`;
export const groupId = (i: number): string => `g${String(i).padStart(4, '0')}`;
export const deviceId = (i: number): string => `d${String(i).padStart(7, '0')}`;
export const upnOf = (i: number): string => `user${String(i).padStart(6, '0')}@${DOMAIN}`;
/** The user of device i: devices are spread evenly, three per user at the sizes. */
export const deviceUser = (s: Sizes, i: number): number => Math.floor((i * s.users) / s.devices);
export const parentOf = (g: number): number => Math.floor((g - 1) / 4);

/**
 * Stand-ins for the encrypted PFX and password, of their real sizes (a PKCS#12 of an RSA-2048 key and its
 * certificate; RSA-4096 OAEP ciphertext), so that reading them costs what it would.
 */
const PFX_BLOB = new Uint8Array(3_200).fill(0x5a);
const PFX_PASSWORD = new Uint8Array(512).fill(0xa5);

/** Every bulk row of the tenant, generated lazily in insertion order (parents before children). */
export function bulkTables(s: Sizes, now: number): BulkTable[] {
  const t = TENANT;
  const groups: BulkTable = {
    table: 'groups',
    columns: ['tenant_id', 'id', 'display_name', 'description', 'external_id', 'created_at', 'updated_at'],
    rows: (function* (): Generator<Row> {
      for (let g = 0; g < s.groups; g++) yield [t, groupId(g), `Group ${g}`, null, null, now, now];
    })(),
  };
  const nesting: BulkTable = {
    table: 'group_group_members',
    columns: ['tenant_id', 'group_id', 'member_group_id'],
    rows: (function* (): Generator<Row> {
      const r = prng(2);
      for (let g = 1; g < s.groups; g++) {
        const parent = parentOf(g);
        yield [t, groupId(parent), groupId(g)];
        if (g > 2 && r() < 0.1) {
          const second = Math.floor(r() * g);
          if (second !== parent) yield [t, groupId(second), groupId(g)];
        }
      }
    })(),
  };
  const users: BulkTable = {
    table: 'users',
    columns: ['tenant_id', 'id', 'user_principal_name', 'upn_key', 'mail', 'display_name', 'is_exchange_online', 'account_enabled', 'external_id', 'created_at', 'updated_at'],
    rows: (function* (): Generator<Row> {
      const r = prng(3);
      for (let u = 0; u < s.users; u++) yield [t, userId(u), upnOf(u), upnOf(u), upnOf(u), `User ${u}`, r() < 0.9 ? 1 : 0, 1, null, now, now];
    })(),
  };
  const memberships: BulkTable = {
    table: 'group_user_members',
    columns: ['tenant_id', 'group_id', 'user_id'],
    rows: (function* (): Generator<Row> {
      const r = prng(4);
      for (let u = 0; u < s.users; u++) {
        const picked = new Set<number>();
        while (picked.size < 3) picked.add(Math.floor(r() * s.groups));
        for (const g of picked) yield [t, groupId(g), userId(u)];
      }
    })(),
  };
  const devices: BulkTable = {
    table: 'managed_devices',
    columns: ['tenant_id', 'id', 'user_id', 'device_name', 'operating_system', 'os_version', 'model', 'serial_number', 'management_state', 'enrolled_at',
      'last_sync_at', 'identity_thumbprint', 'identity_certificate', 'desired_state_hash', 'version', 'created_at', 'updated_at'],
    rows: (function* (): Generator<Row> {
      const r = prng(5);
      for (let d = 0; d < s.devices; d++) {
        const x = r();
        const state = x < 0.01 ? 'retired' : x < 0.02 ? 'wipePending' : 'managed';
        yield [t, deviceId(d), userId(deviceUser(s, d)), `iPhone ${d}`, 'iOS', '18.1', 'iPhone16,2', null, state, now, null, null, null, null, 1, now, now];
      }
    })(),
  };
  const pfx: BulkTable = {
    table: 'user_pfx_certificates',
    columns: ['tenant_id', 'id', 'user_principal_name', 'upn_key', 'thumbprint', 'intended_purpose', 'start_at', 'expiration_at', 'provider_name', 'key_name',
      'padding_scheme', 'encrypted_pfx_blob', 'encrypted_pfx_password', 'created_at'],
    rows: (function* (): Generator<Row> {
      const year = 365 * 24 * 3600 * 1000;
      for (let u = 0; u < s.users; u += 10) {
        for (const [k, purpose] of (['smimeEncryption', 'smimeEncryption', 'smimeSigning'] as const).entries()) {
          yield [t, `pfx-${userId(u)}-${k}`, upnOf(u), upnOf(u), thumbprint(`${u}/${k}`), purpose, now - (3 - k) * year, now + k * year,
            'Keyfleet PFX Connector', 'bench-connector', 'oaepSha512', PFX_BLOB, PFX_PASSWORD, now];
        }
      }
    })(),
  };
  return [groups, nesting, users, memberships, devices, pfx];
}

export const BULK_TABLE_NAMES = ['groups', 'group_group_members', 'users', 'group_user_members', 'managed_devices', 'user_pfx_certificates'];

function thumbprint(seed: string): string {
  return createHash('sha1').update(seed).digest('hex').toUpperCase();
}

/** A group drawn towards the top of the tree (index ~ groups × r³), where assignments reach many users. */
function upperGroup(s: Sizes, r: () => number): string {
  return groupId(Math.floor(s.groups * r() ** 3));
}

const SCEP_PROFILES = 5;

/** Apps, profiles, policies and their assignments, through the store (tens of rows, not worth bulk). */
export async function seedResources(tenant: TenantStore, s: Sizes): Promise<void> {
  const r = prng(6);
  const at = new Date();
  const put = (collection: 'app' | 'certificateProfile' | 'policy', id: string, kind: string, body: JsonObject) =>
    tenant.resources.putResource({ collection, id, kind, displayName: String(body['displayName']), body, createdAt: at, updatedAt: at });
  const everyone = groupId(0);

  await put('app', 'app-outlook', 'iosStoreApp', { kind: 'iosStoreApp', displayName: 'Microsoft Outlook', bundleId: 'com.microsoft.Office.Outlook' });
  await put('app', 'app-teams', 'iosStoreApp', { kind: 'iosStoreApp', displayName: 'Microsoft Teams', bundleId: 'com.microsoft.skype.teams' });
  await put('app', 'app-edge', 'iosStoreApp', { kind: 'iosStoreApp', displayName: 'Microsoft Edge', bundleId: 'com.microsoft.msedge' });
  await tenant.resources.replaceAssignments('app', 'app-outlook', [everyone], []);
  await tenant.resources.replaceAssignments('app', 'app-teams', [upperGroup(s, r), upperGroup(s, r)], []);
  await tenant.resources.replaceAssignments('app', 'app-edge', [upperGroup(s, r)], [groupId(Math.floor(r() * s.groups))]);

  await put('certificateProfile', 'prof-root', 'iosTrustedRootCertificate', { kind: 'iosTrustedRootCertificate', displayName: 'Bench root', certFileName: 'root.cer', trustedRootCertificate: 'AAAA' });
  await tenant.resources.replaceAssignments('certificateProfile', 'prof-root', [everyone], []);
  for (let k = 0; k < SCEP_PROFILES; k++) {
    await put('certificateProfile', `prof-scep-${k}`, 'iosScepCertificateProfile', {
      kind: 'iosScepCertificateProfile', displayName: `S/MIME signing ${k}`, subjectNameFormat: 'commonNameAsEmail', subjectAlternativeNameType: ['emailAddress'],
      keyUsage: ['digitalSignature'], keySize: 2048, extendedKeyUsages: [{ name: 'Secure Email', objectIdentifier: '1.3.6.1.5.5.7.3.4' }],
      certificateValidityPeriodValue: 1, certificateValidityPeriodScale: 'years', renewalThresholdPercentage: 20,
      scepServerUrls: ['https://keyfleet.bench.example/scep/default'], rootCertificateId: 'prof-root',
    });
    await tenant.resources.replaceAssignments('certificateProfile', `prof-scep-${k}`, [upperGroup(s, r)], r() < 0.3 ? [groupId(Math.floor(r() * s.groups))] : []);
  }
  for (const [id, purpose] of [['prof-pfx-enc', 'smimeEncryption'], ['prof-pfx-sign', 'smimeSigning']] as const) {
    await put('certificateProfile', id, 'iosImportedPfxCertificateProfile', { kind: 'iosImportedPfxCertificateProfile', displayName: purpose, intendedPurpose: purpose });
  }
  await tenant.resources.replaceAssignments('certificateProfile', 'prof-pfx-enc', [everyone], []);
  await tenant.resources.replaceAssignments('certificateProfile', 'prof-pfx-sign', [upperGroup(s, r)], []);

  for (let k = 0; k < s.policies; k++) {
    const importedSigning = k % 7 === 0;
    const policy: JsonObject = {
      displayName: `Outlook S/MIME ${k}`, deviceEnrollmentType: 'managedDevices', platform: 'iOS/iPadOS', targetedMobileApps: ['app-outlook'],
      enableSmime: true, deploySmimeCertificates: true,
      signingCertificateProfileType: importedSigning ? 'pkcsImported' : 'scep', signingCertificateProfileId: importedSigning ? 'prof-pfx-sign' : `prof-scep-${k % SCEP_PROFILES}`,
      encryptionCertificateProfileType: 'pkcsImported', encryptionCertificateProfileId: 'prof-pfx-enc', endUserNotification: k % 2 === 0 ? 'companyPortal' : 'email',
      signAllMail: k % 2 === 0, encryptAllMail: k % 3 === 0,
      ...(k % 5 === 0 ? { ldapHostName: `ldaps://ldap${k % 2}.${DOMAIN}` } : {}),
    };
    await put('policy', policyId(k), 'iosMobileAppConfiguration', policy);
    const include = r() < 0.5 ? [upperGroup(s, r)] : [upperGroup(s, r), upperGroup(s, r)];
    await tenant.resources.replaceAssignments('policy', policyId(k), include, r() < 0.3 ? [groupId(Math.floor(r() * s.groups))] : []);
  }
}

export const policyId = (k: number): string => `pol-${String(k).padStart(2, '0')}`;
