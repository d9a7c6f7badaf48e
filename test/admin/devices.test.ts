/**
 * Managed devices through the admin API (issue 4 "Managed devices"): the
 * list, retire and wipe (SCEP certificates revoked in the CA at once,
 * imported ones left for the device to remove), delete, and the status of
 * every policy and certificate per device, per user and per policy.
 * Devices are put into the store directly: enrolment is the delivery
 * issue's.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { ISSUING_CA_ID, type CertificateAuthority } from '../../src/ca/authority.ts';
import { SealedKeyStore } from '../../src/ca/keystore.ts';
import { initCa } from '../../src/ca/setup.ts';
import { defaultProfile } from '../../src/ca/templates.ts';
import { encodeName } from '../../src/x509/name.ts';
import type { DeviceCertificateRecord, ManagedDeviceRecord } from '../../src/store/devices.ts';
import { json, startHarness, type Harness } from './support.ts';
import { policyFixtures, type PolicyFixtures } from '../policy/fixtures.ts';
import { OUTLOOK, PKCS_ENCRYPTION, scepProfile, seedPolicy, trustedRoot } from '../resources/support.ts';

type Obj = Record<string, unknown>;
const T0 = new Date('2026-11-01T00:00:00.000Z');

function device(id: string, userId: string, overrides: Partial<ManagedDeviceRecord> = {}): ManagedDeviceRecord {
  return {
    id, userId, deviceName: `iPhone ${id}`, operatingSystem: 'iOS', osVersion: '18.1', model: 'iPhone16,1', serialNumber: undefined, portalUrl: undefined, managementState: 'managed',
    enrolledAt: T0, lastSyncAt: undefined, identityThumbprint: undefined, identityCertificate: undefined, desiredStateHash: undefined, recheckAt: undefined, version: 0, createdAt: T0, updatedAt: T0, ...overrides,
  };
}

function certificate(id: string, deviceId: string, profileId: string, overrides: Partial<DeviceCertificateRecord>): DeviceCertificateRecord {
  return {
    id, deviceId, profileId, source: 'scep', pfxId: undefined, state: 'installed', thumbprint: undefined, serialNumber: undefined, issuer: undefined, subject: undefined,
    expiresAt: undefined, errorCode: undefined, stateChangedAt: T0, createdAt: T0, ...overrides,
  };
}

describe('managed devices API', () => {
  let h: Harness;
  let f: PolicyFixtures;
  let ca: CertificateAuthority;
  const ids: Record<string, string> = {};

  const create = async (path: string, body: unknown): Promise<Obj> => {
    const r = await h.request('POST', `/api/v1/${path}`, { body });
    assert.equal(r.statusCode, 201, r.body);
    return json(r);
  };
  const get = async (url: string, token?: string): Promise<Obj> => {
    const r = await h.request('GET', url, token === undefined ? {} : { token });
    assert.equal(r.statusCode, 200, r.body);
    return json(r);
  };
  const auditCount = async () => (await h.store.forTenant('a').audit.verifyChain()).entries;

  before(async () => {
    h = await startHarness();
    f = await policyFixtures();
    const a = h.store.forTenant('a');
    ca = await initCa({ store: a.ca, keyStore: new SealedKeyStore(randomBytes(32)), keyType: 'p-256' });

    // The seed's set-up: users, a group, Outlook, profiles, the policy assigned to the group.
    const alice = await create('users', { userPrincipalName: 'alice@example.com', displayName: 'Alice', mail: 'alice@example.com', isExchangeOnline: true });
    const dave = await create('users', { userPrincipalName: 'dave@example.com', displayName: 'Dave (on-premises mailbox)', isExchangeOnline: false });
    const carol = await create('users', { userPrincipalName: 'carol@example.com', displayName: 'Carol', isExchangeOnline: true });
    const sales = await create('groups', { displayName: 'Sales' });
    for (const u of [alice, dave]) assert.equal((await h.request('POST', `/api/v1/groups/${sales['id']}/members`, { body: { type: 'user', id: u['id'] } })).statusCode, 204);
    const app = await create('apps', OUTLOOK);
    const root = await create('profiles', trustedRoot(f.ca.cert.der));
    const scep = await create('profiles', scepProfile(String(root['id'])));
    const pkcs = await create('profiles', PKCS_ENCRYPTION);
    const policy = await create('policies', seedPolicy(String(app['id']), String(scep['id']), String(pkcs['id'])));
    for (const [path, id] of [['apps', app['id']], ['profiles', root['id']], ['profiles', scep['id']], ['profiles', pkcs['id']], ['policies', policy['id']]] as const) {
      assert.equal((await h.request('POST', `/api/v1/${path}/${id}/assignments`, { body: { include: [sales['id']] } })).statusCode, 200);
    }
    Object.assign(ids, { alice: alice['id'], dave: dave['id'], carol: carol['id'], policy: policy['id'], scep: scep['id'], pkcs: pkcs['id'] });

    await a.devices.putDevice(device('d-alice-1', ids['alice']!));
    await a.devices.putDevice(device('d-alice-2', ids['alice']!, { deviceName: 'iPad', operatingSystem: 'iPadOS' }));
    await a.devices.putDevice(device('d-dave', ids['dave']!));
    await a.devices.putDevice(device('d-carol', ids['carol']!));
    await h.store.forTenant('b').devices.putDevice(device('d-other-tenant', 'someone'));
  });
  after(() => h.close());

  test('lists devices with Graph names, filters by user and state, pages with a cursor', async () => {
    const all = await get('/api/v1/managedDevices');
    assert.deepEqual((all['value'] as Obj[]).map((d) => d['id']), ['d-alice-1', 'd-alice-2', 'd-carol', 'd-dave']);
    const first = (all['value'] as Obj[])[0]!;
    assert.equal(first['managementState'], 'managed');
    assert.equal(first['enrolledDateTime'], T0.toISOString());
    assert.equal(first['lastSyncDateTime'], null);
    const alices = await get(`/api/v1/managedDevices?userId=${ids['alice']}`);
    assert.deepEqual((alices['value'] as Obj[]).map((d) => d['id']), ['d-alice-1', 'd-alice-2']);
    const p1 = await get('/api/v1/managedDevices?limit=3');
    assert.equal((p1['value'] as Obj[]).length, 3);
    const p2 = await get(`/api/v1/managedDevices?limit=3&cursor=${encodeURIComponent(String(p1['nextCursor']))}`);
    assert.deepEqual((p2['value'] as Obj[]).map((d) => d['id']), ['d-dave']);
    assert.equal((await get('/api/v1/managedDevices?managementState=retired'))['value'] instanceof Array, true);
  });

  test('status: the assigned policy is pending until reported, notApplicable without an Exchange Online mailbox, absent for an unassigned user', async () => {
    const s = await get('/api/v1/managedDevices/d-alice-1/status');
    assert.deepEqual(s['policyStatuses'], [{ policyId: ids['policy'], status: 'unknown', detail: null, lastReportedDateTime: null }]);
    const dave = await get('/api/v1/managedDevices/d-dave/status');
    assert.equal((dave['policyStatuses'] as Obj[])[0]!['status'], 'notApplicable');
    assert.deepEqual((await get('/api/v1/managedDevices/d-carol/status'))['policyStatuses'], []);

    const a = h.store.forTenant('a');
    const at = new Date('2026-11-02T10:00:00.000Z');
    await a.devices.putPolicyState({ deviceId: 'd-alice-1', policyId: ids['policy']!, status: 'compliant', detail: undefined, reportedAt: at });
    await a.devices.putPolicyState({ deviceId: 'd-alice-2', policyId: ids['policy']!, status: 'error', detail: 'Outlook is not installed', reportedAt: at });
    // A report for a policy no longer assigned shows as notAssigned: its settings leave at the next check-in.
    await a.devices.putPolicyState({ deviceId: 'd-carol', policyId: ids['policy']!, status: 'compliant', detail: undefined, reportedAt: at });
    assert.deepEqual((await get('/api/v1/managedDevices/d-alice-1/status'))['policyStatuses'], [{ policyId: ids['policy'], status: 'compliant', detail: null, lastReportedDateTime: at.toISOString() }]);
    assert.equal(((await get('/api/v1/managedDevices/d-carol/status'))['policyStatuses'] as Obj[])[0]!['status'], 'notAssigned');

    const perDevice = await get(`/api/v1/policies/${ids['policy']}/deviceStatuses`);
    assert.deepEqual((perDevice['value'] as Obj[]).map((s) => [s['deviceId'], s['status']]), [['d-alice-1', 'compliant'], ['d-alice-2', 'error'], ['d-carol', 'compliant']]);
    const perUser = await get(`/api/v1/policies/${ids['policy']}/userStatuses`);
    const aliceLine = (perUser['value'] as Obj[]).find((u) => u['userId'] === ids['alice'])!;
    assert.deepEqual([aliceLine['devicesCount'], aliceLine['status']], [2, 'error'], 'the worst of her two devices');
    const summary = await get(`/api/v1/policies/${ids['policy']}/deviceStatusSummary`);
    assert.equal(summary['compliant'], 2);
    assert.equal(summary['error'], 1);
    assert.equal((await h.request('GET', '/api/v1/policies/no-such-policy/deviceStatusSummary')).statusCode, 404);
  });

  test('retire revokes the SCEP certificate in the CA at once and leaves imported ones for the device to remove; a second retire is refused and writes nothing', async () => {
    const a = h.store.forTenant('a');
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    const issued = await ca.issue({ publicKey: key, profile: defaultProfile('smimeSigning', { name: 'signing' }), names: { subject: encodeName([['CN', 'alice@example.com']]), emails: ['alice@example.com'], upns: [] }, requester: 'd-alice-2' });
    const serial = issued.record.serialHex;
    await a.devices.putCertificateState(certificate('c-sign', 'd-alice-2', ids['scep']!, { serialNumber: serial, thumbprint: issued.certificate.thumbprint }));
    await a.devices.putCertificateState(certificate('c-enc', 'd-alice-2', ids['pkcs']!, { source: 'pkcsImported', pfxId: 'pfx-1', thumbprint: 'AB'.repeat(20) }));

    const r = await h.request('POST', '/api/v1/managedDevices/d-alice-2/retire');
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(json(r)['managementState'], 'retirePending');
    const record = await a.ca.getIssued(ISSUING_CA_ID, serial);
    assert.equal(record?.status, 'revoked');
    assert.equal(record?.revocationReason, 5, 'cessationOfOperation');
    const certs = await get('/api/v1/managedDevices/d-alice-2/managedDeviceCertificateStates');
    assert.deepEqual((certs['value'] as Obj[]).map((c) => [c['id'], c['certificateIssuanceState']]), [['c-enc', 'installed'], ['c-sign', 'revoked']]);
    const byProfile = await get(`/api/v1/profiles/${ids['scep']}/certificateStates`);
    assert.deepEqual((byProfile['value'] as Obj[]).map((c) => c['certificateSerialNumber']), [serial]);

    const before = await auditCount();
    const again = await h.request('POST', '/api/v1/managedDevices/d-alice-2/wipe');
    assert.equal(again.statusCode, 409);
    assert.equal(json(again)['code'], 'KF_CONFLICT');
    assert.equal(await auditCount(), before);
    const entry = (await a.audit.list({ limit: 1000 })).items.at(-1)!;
    assert.equal(entry.action, 'managedDevice.retire');
    assert.deepEqual((entry.after as Obj)['revokedCertificates'], [serial]);
  });

  test('delete is refused until the device is retired, then forgets it and its states', async () => {
    const a = h.store.forTenant('a');
    const refused = await h.request('DELETE', '/api/v1/managedDevices/d-alice-1');
    assert.equal(refused.statusCode, 409);
    assert.match(String(json(refused)['detail']), /retire or wipe it/);
    await a.devices.updateDevice('d-alice-2', { managementState: 'retired' }, new Date());
    assert.equal((await h.request('DELETE', '/api/v1/managedDevices/d-alice-2')).statusCode, 204);
    assert.equal((await h.request('GET', '/api/v1/managedDevices/d-alice-2')).statusCode, 404);
    assert.equal((await a.devices.listCertificateStates({ deviceId: 'd-alice-2' })).items.length, 0);
  });

  test('roles and tenants: the help desk and the policy manager read but cannot retire; another tenant sees 404', async () => {
    for (const role of ['helpDesk', 'policyManager'] as const) {
      assert.equal((await h.request('GET', '/api/v1/managedDevices/d-dave', { token: h.tokens[role] })).statusCode, 200);
      for (const [method, url] of [['POST', '/api/v1/managedDevices/d-dave/retire'], ['POST', '/api/v1/managedDevices/d-dave/wipe'], ['DELETE', '/api/v1/managedDevices/d-dave']] as const) {
        const r = await h.request(method, url, { token: h.tokens[role] });
        assert.equal(r.statusCode, 403, `${role} ${method} ${url}`);
      }
    }
    for (const url of ['/api/v1/managedDevices/d-dave', '/api/v1/managedDevices/d-dave/status', '/api/v1/managedDevices/d-dave/managedDeviceCertificateStates']) {
      assert.equal((await h.request('GET', url, { token: h.tokens.otherTenant })).statusCode, 404, url);
    }
    assert.equal((await h.request('POST', '/api/v1/managedDevices/d-dave/retire', { token: h.tokens.otherTenant })).statusCode, 404);
    // Enrollment tokens are the administrator's; another tenant cannot name this tenant's user or policy.
    for (const role of ['helpDesk', 'policyManager'] as const) {
      assert.equal((await h.request('POST', `/api/v1/users/${ids['dave']}/enrollmentTokens`, { token: h.tokens[role], body: {} })).statusCode, 403, role);
    }
    assert.equal((await h.request('POST', `/api/v1/users/${ids['dave']}/enrollmentTokens`, { token: h.tokens.otherTenant, body: {} })).statusCode, 404);
    for (const url of [`/api/v1/policies/${ids['policy']}/deviceStatuses`, `/api/v1/policies/${ids['policy']}/userStatuses`, `/api/v1/policies/${ids['policy']}/deviceStatusSummary`, `/api/v1/profiles/${ids['scep']}/certificateStates`]) {
      assert.equal((await h.request('GET', url, { token: h.tokens.otherTenant })).statusCode, 404, url);
      assert.equal((await h.request('GET', url, { token: h.tokens.helpDesk })).statusCode, 200, url);
    }
    const created = await h.request('POST', `/api/v1/users/${ids['dave']}/enrollmentTokens`, { body: { validityHours: 2 } });
    assert.equal(created.statusCode, 201, created.body);
    assert.match(String(json(created)['token']), /^kfe_[A-Za-z0-9_-]{43}$/);
    const audited = (await h.store.forTenant('a').audit.list({ limit: 1000 })).items.at(-1)!;
    assert.equal(audited.action, 'enrollmentToken.create');
    assert.doesNotMatch(JSON.stringify(audited), /kfe_/, 'the secret is not in the audit log');
    const theirs = await get('/api/v1/managedDevices', h.tokens.otherTenant);
    assert.deepEqual((theirs['value'] as Obj[]).map((d) => d['id']), ['d-other-tenant']);
    assert.equal((await h.request('GET', '/api/v1/managedDevices/d-other-tenant')).statusCode, 404);
  });
});
