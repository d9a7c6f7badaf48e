/**
 * Changing resources through the admin API (inject() on SQLite): JSON merge
 * patch (RFC 7396) validated again as creation is, the tenant's
 * derived-credential issuer, and the Apple VPP app sync from a file the
 * server was configured with. Every refusal leaves the resource and the
 * audit log as they were.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileVppSource } from '../../src/policy/vpp.ts';
import { json, startHarness, type Harness } from '../admin/support.ts';
import { policyFixtures } from '../policy/fixtures.ts';
import { OUTLOOK_VPP, TEAMS_VPP, vppAnswer } from '../policy/helpers.ts';
import { OUTLOOK, PKCS_ENCRYPTION, scepProfile, seedPolicy, trustedRoot, withVpp } from './support.ts';

type Obj = Record<string, unknown>;
const PURBRED = { displayName: 'Purebred', issuer: 'purebred', helpUrl: 'https://help.contoso.com/derived', notificationType: ['companyPortal'], renewalThresholdPercentage: 20 };

describe('changing resources: PATCH, derived credentials, VPP sync', () => {
  let h: Harness;
  let vpp: Harness;
  let dir: string;
  let vppFile: string;
  const ids: Record<string, string> = {};

  const ok = async (method: string, url: string, body?: unknown, expected = 200, on: Harness = h, token?: string): Promise<Obj> => {
    const r = await on.request(method, url, { ...(body === undefined ? {} : { body }), ...(token === undefined ? {} : { token }) });
    assert.equal(r.statusCode, expected, r.body);
    return r.body === '' ? {} : json(r);
  };
  const auditCount = async () => (await h.store.forTenant('a').audit.verifyChain()).entries;
  /** Refused with `status` and `code`; the resource at `check` (if given) and the audit log unchanged. */
  const refused = async (method: string, url: string, body: unknown, status: number, code: string, message?: RegExp, options: { on?: Harness; check?: string; contentType?: string; token?: string } = {}) => {
    const on = options.on ?? h;
    const auditBefore = await auditCount();
    const resourceBefore = options.check === undefined ? undefined : (await h.request('GET', options.check)).body;
    const r = await on.request(method, url, { body, ...(options.contentType === undefined ? {} : { contentType: options.contentType }), ...(options.token === undefined ? {} : { token: options.token }) });
    assert.equal(r.statusCode, status, r.body);
    assert.equal(json(r)['code'], code, r.body);
    if (message) assert.match(String(json(r)['detail']), message);
    assert.equal(await auditCount(), auditBefore, 'nothing recorded');
    if (options.check !== undefined) assert.equal((await h.request('GET', options.check)).body, resourceBefore, 'nothing changed');
  };
  const lastAudit = async () => {
    const entries = json<{ value: Obj[] }>(await h.request('GET', '/api/v1/auditEvents?limit=1000')).value;
    return entries.reduce((a, b) => ((a['id'] as number) > (b['id'] as number) ? a : b));
  };

  before(async () => {
    h = await startHarness();
    dir = mkdtempSync(join(tmpdir(), 'kf-changes-'));
    vppFile = join(dir, 'vpp.json');
    writeFileSync(vppFile, JSON.stringify(vppAnswer()));
    // Tenant a syncs from the file; tenant b has no token.
    vpp = await withVpp(h, (tenantId) => (tenantId === 'a' ? new FileVppSource(vppFile, 'vpp-contoso') : undefined));
    const f = await policyFixtures();
    ids['app'] = (await ok('POST', '/api/v1/apps', OUTLOOK, 201))['id'] as string;
    ids['root'] = (await ok('POST', '/api/v1/profiles', trustedRoot(f.ca.cert.der), 201))['id'] as string;
    ids['scep'] = (await ok('POST', '/api/v1/profiles', scepProfile(ids['root']!), 201))['id'] as string;
    ids['pkcs'] = (await ok('POST', '/api/v1/profiles', PKCS_ENCRYPTION, 201))['id'] as string;
    ids['policy'] = (await ok('POST', '/api/v1/policies', seedPolicy(ids['app']!, ids['scep']!, ids['pkcs']!), 201))['id'] as string;
  });
  after(async () => {
    await vpp.close();
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('PATCH merges, validates the whole again, advances lastModifiedDateTime and records before and after', async () => {
    const url = `/api/v1/policies/${ids['policy']}`;
    const before = await ok('GET', url);
    const r = await h.request('PATCH', url, { rawBody: JSON.stringify({ displayName: 'Outlook S/MIME (all users)', description: null, signAllMail: true }), contentType: 'application/merge-patch+json' });
    assert.equal(r.statusCode, 200, r.body);
    const patched = json(r);
    assert.equal(patched['displayName'], 'Outlook S/MIME (all users)');
    assert.equal(patched['signAllMail'], true);
    assert.equal('description' in patched, false, 'null removes the member');
    assert.equal(patched['createdDateTime'], before['createdDateTime']);
    assert.ok(Date.parse(patched['lastModifiedDateTime'] as string) > Date.parse(before['lastModifiedDateTime'] as string));
    assert.deepEqual(await ok('GET', url), patched);
    const entry = await lastAudit();
    assert.equal(entry['action'], 'policy.update');
    assert.equal(entry['resourceId'], ids['policy']);
    assert.deepEqual(entry['before'], before);
    assert.deepEqual(entry['after'], patched);
    // The compiled settings follow the change.
    assert.match(JSON.stringify(await ok('GET', `${url}/settings`)), /SignAllMail","appConfigKeyType":"booleanType","appConfigKeyValue":"true"/);
    // application/json is accepted too (the CLI sends it).
    assert.equal((await ok('PATCH', url, { displayName: 'Outlook S/MIME' }))['displayName'], 'Outlook S/MIME');
  });

  test('a refused PATCH changes nothing: invalid result, unknown field, id or kind, a broken reference, a policy it would break', async () => {
    const policy = `/api/v1/policies/${ids['policy']}`;
    const app = `/api/v1/apps/${ids['app']}`;
    const scep = `/api/v1/profiles/${ids['scep']}`;
    const pkcs = `/api/v1/profiles/${ids['pkcs']}`;
    await refused('PATCH', policy, { platform: 'android' }, 400, 'KF_USAGE', /platform must be iOS/, { check: policy });
    await refused('PATCH', policy, { enableSmime: false }, 400, 'KF_USAGE', /deploySmimeCertificates needs enableSmime/, { check: policy });
    await refused('PATCH', policy, { displayName: null }, 400, 'KF_USAGE', /displayName is required/, { check: policy });
    await refused('PATCH', policy, { colour: 'blue' }, 400, 'KF_USAGE', /colour is not a known field/, { check: policy });
    await refused('PATCH', policy, { encryptionCertificateProfileId: 'missing' }, 400, 'KF_USAGE', /does not exist/, { check: policy });
    await refused('PATCH', policy, { signingCertificateProfileType: 'derivedCredential', signingCertificateProfileId: null }, 400, 'KF_USAGE', /derived-credential issuer/, { check: policy });
    await refused('PATCH', policy, { id: 'another' }, 400, 'KF_USAGE', /id cannot change/, { check: policy });
    await refused('PATCH', policy, { kind: 'iosStoreApp' }, 400, 'KF_USAGE', /kind cannot change/, { check: policy });
    await refused('PATCH', policy, {}, 400, 'KF_USAGE', undefined, { check: policy });
    await refused('PATCH', policy, ['not', 'an', 'object'], 400, 'KF_USAGE', undefined, { check: policy });
    await refused('PATCH', policy, 'displayName=x', 415, 'KF_UNSUPPORTED_MEDIA_TYPE', undefined, { check: policy, contentType: 'application/x-www-form-urlencoded' });
    await refused('PATCH', app, { kind: 'iosVppApp' }, 400, 'KF_USAGE', /kind cannot change/, { check: app });
    // A SCEP profile is validated as on creation: its trusted root must exist and be one.
    await refused('PATCH', scep, { rootCertificateId: 'no-such-root' }, 400, 'KF_USAGE', /trusted-root profile no-such-root does not exist/, { check: scep });
    await refused('PATCH', scep, { rootCertificateId: ids['pkcs'] }, 400, 'KF_USAGE', /not a trusted-root profile/, { check: scep });
    // What the policy relies on cannot be patched out from under it.
    await refused('PATCH', app, { bundleId: 'com.microsoft.skype.teams' }, 409, 'KF_CONFLICT', new RegExp(`policy "${ids['policy']}" uses app .* must be Outlook for iOS`), { check: app });
    await refused('PATCH', pkcs, { intendedPurpose: 'vpn' }, 409, 'KF_CONFLICT', /would no longer be valid: .*intended purpose vpn/, { check: pkcs });
    await refused('PATCH', scep, { keyUsage: ['keyEncipherment'] }, 409, 'KF_CONFLICT', /cannot sign mail/, { check: scep });
    await refused('PATCH', '/api/v1/policies/no-such-policy', { displayName: 'x' }, 404, 'KF_NOT_FOUND');
    await refused('PATCH', policy, { displayName: 'x' }, 404, 'KF_NOT_FOUND', undefined, { check: policy, token: h.tokens.otherTenant });
    await refused('PATCH', policy, { displayName: 'x' }, 403, 'KF_FORBIDDEN', undefined, { check: policy, token: h.tokens.helpDesk });
    // A change the policy does not mind is fine.
    assert.equal((await ok('PATCH', pkcs, { description: 'Encryption certificates from the old CA' }))['description'], 'Encryption certificates from the old CA');
    assert.equal((await ok('PATCH', app, { displayName: 'Outlook' }, 200, h, h.tokens.policyManager))['displayName'], 'Outlook');
  });

  test('derived credentials: a policy may choose them once the tenant has its one issuer, which it then cannot lose', async () => {
    const derivedPolicy = seedPolicy(ids['app']!, ids['scep']!, ids['pkcs']!, { displayName: 'Derived', signingCertificateProfileType: 'derivedCredential', signingCertificateProfileId: undefined });
    await refused('POST', '/api/v1/policies', derivedPolicy, 400, 'KF_USAGE', /no derived-credential issuer is configured/);
    await refused('POST', '/api/v1/derivedCredentials', { ...PURBRED, issuer: 'Purebred' }, 400, 'KF_USAGE');
    await refused('POST', '/api/v1/derivedCredentials', PURBRED, 403, 'KF_FORBIDDEN', undefined, { token: h.tokens.helpDesk });

    const setting = await ok('POST', '/api/v1/derivedCredentials', PURBRED, 201, h, h.tokens.policyManager);
    assert.equal(setting['issuer'], 'purebred');
    const url = `/api/v1/derivedCredentials/${setting['id']}`;
    assert.deepEqual((await ok('GET', '/api/v1/derivedCredentials', undefined, 200, h, h.tokens.helpDesk))['value'], [setting]);
    await refused('POST', '/api/v1/derivedCredentials', { ...PURBRED, issuer: 'intercede' }, 409, 'KF_CONFLICT', /already configured/);
    assert.equal((await h.request('GET', `${url}/assignments`)).statusCode, 404, 'tenant-wide: nothing to assign');

    const policy = await ok('POST', '/api/v1/policies', derivedPolicy, 201);
    await refused('DELETE', url, undefined, 409, 'KF_CONFLICT', new RegExp(`used by policy "${policy['id']}"`), { check: url });
    // Changing the issuer keeps what the policy relies on: an issuer.
    assert.equal((await ok('PATCH', url, { issuer: 'intercede', notificationType: ['none'] }))['issuer'], 'intercede');
    await refused('PATCH', url, { notificationType: ['none', 'email'] }, 400, 'KF_USAGE', /cannot be combined/, { check: url });
    await refused('PATCH', url, { issuer: null }, 400, 'KF_USAGE', /issuer is required/, { check: url });
    await refused('GET', url, undefined, 404, 'KF_NOT_FOUND', undefined, { token: h.tokens.otherTenant });

    await ok('DELETE', `/api/v1/policies/${policy['id']}`, undefined, 204);
    await ok('DELETE', url, undefined, 204);
    assert.deepEqual((await ok('GET', '/api/v1/derivedCredentials'))['value'], []);
  });

  test("VPP sync: Outlook and Teams from the server's file, idempotent, counts updated, policy targets the VPP Outlook", async () => {
    await refused('POST', '/api/v1/apps/syncVpp', undefined, 409, 'KF_VPP_NOT_CONFIGURED', /no Apple VPP token/);
    await refused('POST', '/api/v1/apps/syncVpp', undefined, 409, 'KF_VPP_NOT_CONFIGURED', undefined, { on: vpp, token: h.tokens.otherTenant });
    await refused('POST', '/api/v1/apps/syncVpp', undefined, 403, 'KF_FORBIDDEN', undefined, { on: vpp, token: h.tokens.helpDesk });
    await refused('POST', '/api/v1/apps/syncVpp', { path: '/etc/passwd' }, 400, 'KF_USAGE', /configured on the server/, { on: vpp });

    const auditBefore = await auditCount();
    const first = (await ok('POST', '/api/v1/apps/syncVpp', undefined, 200, vpp, h.tokens.policyManager))['value'] as Obj[];
    assert.deepEqual(first.map((e) => [e['change'], e['bundleId'], e['usedLicenseCount'], e['totalLicenseCount']]), [
      ['created', 'com.microsoft.Office.Outlook', 12, 500],
      ['created', 'com.microsoft.skype.teams', 3, 200],
    ]);
    assert.equal(await auditCount(), auditBefore + 2);
    const outlookId = first[0]!['id'] as string;
    const teamsId = first[1]!['id'] as string;
    const outlook = await ok('GET', `/api/v1/apps/${outlookId}`);
    assert.equal(outlook['kind'], 'iosVppApp');
    assert.equal(outlook['vppTokenId'], 'vpp-contoso');
    assert.equal(outlook['appleId'], OUTLOOK_VPP.adamId);
    assert.deepEqual(outlook['licensingType'], { supportsUserLicensing: true, supportsDeviceLicensing: true });
    assert.deepEqual(((await ok('GET', '/api/v1/apps'))['value'] as Obj[]).map((a) => a['kind']).sort(), ['iosStoreApp', 'iosVppApp', 'iosVppApp']);

    // The same answer again: nothing written.
    const second = (await ok('POST', '/api/v1/apps/syncVpp', undefined, 200, vpp))['value'] as Obj[];
    assert.deepEqual(second.map((e) => e['change']), ['unchanged', 'unchanged']);
    assert.equal(await auditCount(), auditBefore + 2);
    assert.deepEqual(await ok('GET', `/api/v1/apps/${outlookId}`), outlook);

    // A licence assigned at Apple: Outlook is updated, Teams is not.
    writeFileSync(vppFile, JSON.stringify(vppAnswer([{ ...OUTLOOK_VPP, assignedCount: 13 }, TEAMS_VPP])));
    const third = (await ok('POST', '/api/v1/apps/syncVpp', undefined, 200, vpp))['value'] as Obj[];
    assert.deepEqual(third.map((e) => [e['id'], e['change']]), [[outlookId, 'updated'], [teamsId, 'unchanged']]);
    assert.equal(await auditCount(), auditBefore + 3);
    const entry = await lastAudit();
    assert.equal(entry['action'], 'app.update');
    assert.equal((entry['before'] as Obj)['usedLicenseCount'], 12);
    assert.equal((entry['after'] as Obj)['usedLicenseCount'], 13);

    // The VPP Outlook is targeted exactly like the App Store one; the VPP Teams is not Outlook.
    const policy = await ok('POST', '/api/v1/policies', seedPolicy(outlookId, ids['scep']!, ids['pkcs']!, { displayName: 'VPP Outlook' }), 201);
    await refused('POST', '/api/v1/policies', seedPolicy(teamsId, ids['scep']!, ids['pkcs']!), 400, 'KF_USAGE', /must be Outlook for iOS/);
    // Apple now says that adamId is some other bundle: the sync would break the policy, so nothing is synced.
    const results = { [OUTLOOK_VPP.adamId]: { bundleId: 'com.example.notoutlook', name: 'Not Outlook' }, [TEAMS_VPP.adamId]: { bundleId: TEAMS_VPP.bundleId, name: 'Microsoft Teams (new name)' } };
    writeFileSync(vppFile, JSON.stringify({ ...vppAnswer([OUTLOOK_VPP, TEAMS_VPP]), results }));
    await refused('POST', '/api/v1/apps/syncVpp', undefined, 409, 'KF_CONFLICT', new RegExp(`policy "${policy['id']}" uses app`), { on: vpp, check: `/api/v1/apps/${teamsId}` });
  });

  test('a malformed or oversized VPP file is KF_VPP_SOURCE_INVALID and syncs nothing', async () => {
    const apps = (await ok('GET', '/api/v1/apps'))['value'];
    const cases: [string, RegExp][] = [
      ['{"assets": [', /not JSON/],
      [JSON.stringify({ ...vppAnswer(), results: [] }), /results must be of type object/],
      [JSON.stringify({ ...vppAnswer([{ ...OUTLOOK_VPP, assignedCount: 1 }]), results: {} }), /no entry in results/],
      [JSON.stringify(vppAnswer()).padEnd(9 * 1024 * 1024, ' '), /larger than 8388608 bytes/],
    ];
    for (const [content, message] of cases) {
      writeFileSync(vppFile, content);
      await refused('POST', '/api/v1/apps/syncVpp', undefined, 502, 'KF_VPP_SOURCE_INVALID', message, { on: vpp });
    }
    rmSync(vppFile);
    await refused('POST', '/api/v1/apps/syncVpp', undefined, 502, 'KF_VPP_SOURCE_INVALID', /cannot be read/, { on: vpp });
    assert.deepEqual((await ok('GET', '/api/v1/apps'))['value'], apps);
  });
});
