/**
 * Issue 4's resources through the admin API (inject() on SQLite): the seed's
 * steps 2–12 as one scenario, refusals that write nothing, roles and
 * tenants, and PFX custody (the database holds only ciphertext).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, generateKeyPairSync, privateDecrypt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { preparePfxImport } from '../../src/policy/index.ts';
import { readPfxMetadata } from '../../src/pkcs12/pfx-metadata.ts';
import { json, startHarness, type Harness } from '../admin/support.ts';
import { policyFixtures, type PolicyFixtures } from '../policy/fixtures.ts';
import { OUTLOOK, PKCS_ENCRYPTION, opensslPfx, scepProfile, seedPolicy, trustedRoot } from './support.ts';

type Obj = Record<string, unknown>;

describe('resources API', () => {
  let h: Harness;
  let f: PolicyFixtures;
  const ids: Record<string, string> = {};

  const create = async (path: string, body: unknown, token?: string): Promise<Obj> => {
    const r = await h.request('POST', `/api/v1/${path}`, { body, ...(token === undefined ? {} : { token }) });
    assert.equal(r.statusCode, 201, r.body);
    return json(r);
  };
  const auditCount = async () => (await h.store.forTenant('a').audit.verifyChain()).entries;
  /** The request is refused with `status` and `code`, and the audit log (so: nothing) changed. */
  const refused = async (method: string, url: string, body: unknown, status: number, code: string, message?: RegExp, token?: string) => {
    const before = await auditCount();
    const r = await h.request(method, url, { body, ...(token === undefined ? {} : { token }) });
    assert.equal(r.statusCode, status, r.body);
    assert.equal(json(r).code, code);
    assert.match(r.headers['content-type'] as string, /^application\/problem\+json/);
    if (message) assert.match(String(json(r).detail), message);
    assert.equal(await auditCount(), before, 'nothing recorded');
    return json(r);
  };

  before(async () => {
    h = await startHarness();
    f = await policyFixtures();
  });
  after(() => h.close());

  test("the seed's steps 2–12: app, trusted root, SCEP and PKCS profiles, policy, settings, assignment, effective state", async () => {
    const app = await create('apps', OUTLOOK);
    assert.equal(app['bundleId'], 'com.microsoft.Office.Outlook');
    const root = await create('profiles', trustedRoot(f.ca.cert.der));
    const scep = await create('profiles', scepProfile(root['id'] as string));
    const pkcs = await create('profiles', PKCS_ENCRYPTION);
    const policy = await create('policies', seedPolicy(app['id'] as string, scep['id'] as string, pkcs['id'] as string));
    Object.assign(ids, { app: app['id'], root: root['id'], scep: scep['id'], pkcs: pkcs['id'], policy: policy['id'] });

    const settings = json<{ settings: { appConfigKey: string; appConfigKeyType: string; appConfigKeyValue: string }[]; plist: string }>(
      await h.request('GET', `/api/v1/policies/${ids['policy']}/settings`),
    );
    assert.deepEqual(settings.settings[0], { appConfigKey: 'com.microsoft.outlook.Mail.SMIMEEnabled', appConfigKeyType: 'booleanType', appConfigKeyValue: 'true' });
    assert.match(settings.plist, /<key>com\.microsoft\.outlook\.Mail\.SMIMEEnabled<\/key>\n\t<true\/>/);

    const listed = json<{ value: Obj[] }>(await h.request('GET', '/api/v1/profiles?kind=iosScepCertificateProfile'));
    assert.deepEqual(listed.value.map((p) => p['id']), [ids['scep']]);

    // Alice is in Sales, which is nested in Everyone; Bob is in Everyone but excluded through Contractors.
    const user = async (upn: string) => json(await h.request('POST', '/api/v1/users', { body: { userPrincipalName: upn, displayName: upn, isExchangeOnline: true } }))['id'] as string;
    const group = async (name: string) => json(await h.request('POST', '/api/v1/groups', { body: { displayName: name } }))['id'] as string;
    const alice = await user('alice@contoso.com');
    const bob = await user('bob@contoso.com');
    const everyone = await group('Everyone');
    const sales = await group('Sales');
    const contractors = await group('Contractors');
    const member = (g: string, type: string, id: string) => h.request('POST', `/api/v1/groups/${g}/members`, { body: { type, id } });
    await member(everyone, 'group', sales);
    await member(sales, 'user', alice);
    await member(everyone, 'user', bob);
    await member(contractors, 'user', bob);

    for (const [path, id] of [['policies', ids['policy']], ['apps', ids['app']], ['profiles', ids['scep']], ['profiles', ids['pkcs']]] as const) {
      const r = await h.request('POST', `/api/v1/${path}/${id}/assignments`, { body: { include: [everyone], exclude: [contractors] } });
      assert.equal(r.statusCode, 200, r.body);
      assert.deepEqual(json(r), { include: [everyone], exclude: [contractors] });
    }
    assert.deepEqual(json(await h.request('GET', `/api/v1/policies/${ids['policy']}/assignments`)), { include: [everyone], exclude: [contractors] });

    const state = json<{ policies: string[]; apps: string[]; certificateProfiles: string[]; appConfigurations: { appId: string; settings: unknown[] }[]; conflicts: unknown[]; warnings: unknown[] }>(
      await h.request('GET', `/api/v1/users/${alice}/effectiveState`),
    );
    assert.deepEqual(state.policies, [ids['policy']]);
    assert.deepEqual(state.apps, [ids['app']]);
    assert.deepEqual(new Set(state.certificateProfiles), new Set([ids['scep'], ids['pkcs']]));
    assert.equal(state.appConfigurations[0]!.appId, ids['app']);
    assert.deepEqual(state.appConfigurations[0]!.settings, settings.settings);
    assert.deepEqual(state.conflicts, []);
    assert.deepEqual(state.warnings, []);
    const bobState = json<{ policies: string[] }>(await h.request('GET', `/api/v1/users/${bob}/effectiveState`));
    assert.deepEqual(bobState.policies, [], 'exclusion wins');

    // Every change is in the audit log, and the chain holds.
    const audit = json<{ value: { action: string }[] }>(await h.request('GET', '/api/v1/auditEvents?limit=1000'));
    const actions = audit.value.map((e) => e.action);
    for (const a of ['app.create', 'certificateProfile.create', 'policy.create', 'policy.assign', 'app.assign']) assert.ok(actions.includes(a), a);
    assert.equal((await h.store.forTenant('a').audit.verifyChain()).ok, true);
  });

  test('invalid combinations are refused with a 4xx problem and nothing written', async () => {
    const policy = (o: Obj = {}) => seedPolicy(ids['app']!, ids['scep']!, ids['pkcs']!, o);
    await refused('POST', '/api/v1/profiles', scepProfile('no-such-root'), 400, 'KF_USAGE', /trusted-root profile no-such-root does not exist/);
    await refused('POST', '/api/v1/profiles', scepProfile(ids['pkcs']!), 400, 'KF_USAGE', /not a trusted-root profile/);
    await refused('POST', '/api/v1/profiles', { ...trustedRoot(f.encryption.cert.der) }, 400, 'KF_USAGE', /not a CA certificate/);
    await refused('POST', '/api/v1/policies', policy({ platform: 'android' }), 400, 'KF_USAGE', /platform must be iOS/);
    await refused('POST', '/api/v1/policies', policy({ enableSmime: false }), 400, 'KF_USAGE', /deploySmimeCertificates needs enableSmime/);
    await refused('POST', '/api/v1/policies', policy({ encryptionCertificateProfileId: 'missing' }), 400, 'KF_USAGE', /does not exist/);
    await refused('POST', '/api/v1/policies', policy({ signingCertificateProfileType: 'derivedCredential', signingCertificateProfileId: undefined }), 400, 'KF_USAGE', /derived-credential issuer/);
    await refused('POST', '/api/v1/policies', policy({ signingCertificateProfileId: ids['pkcs'] }), 400, 'KF_USAGE', /not a SCEP profile/);
    await refused('POST', '/api/v1/policies', policy({ unknownField: 1 }), 400, 'KF_USAGE');
    const teams = await create('apps', { kind: 'iosStoreApp', displayName: 'Teams', bundleId: 'com.microsoft.skype.teams' });
    await refused('POST', '/api/v1/policies', seedPolicy(teams['id'] as string, ids['scep']!, ids['pkcs']!), 400, 'KF_USAGE', /must be Outlook for iOS/);
    await refused('POST', '/api/v1/policies', "{\"displayName\": 'x'}", 400, 'KF_USAGE');
    await refused('POST', `/api/v1/policies/${ids['policy']}/assignments`, { include: ['no-such-group'] }, 404, 'KF_NOT_FOUND', /no group/);
    await refused('POST', '/api/v1/policies/no-such-policy/assignments', { include: ['allUsers'] }, 404, 'KF_NOT_FOUND');
    await refused('DELETE', `/api/v1/profiles/${ids['root']}`, undefined, 409, 'KF_CONFLICT', /used by certificate profile/);
    await refused('DELETE', `/api/v1/apps/${ids['app']}`, undefined, 409, 'KF_CONFLICT', /used by policy/);
    await refused('GET', '/api/v1/policies/no-such/settings', undefined, 404, 'KF_NOT_FOUND');
    // SQL metacharacters are data.
    const odd = await create('profiles', { ...PKCS_ENCRYPTION, displayName: "x'; drop table resources; --" });
    assert.equal(json(await h.request('GET', `/api/v1/profiles/${odd['id']}`))['displayName'], "x'; drop table resources; --");
  });

  test('roles: the policy manager writes, the help desk reads; another tenant sees 404', async () => {
    const pm = await create('profiles', { ...PKCS_ENCRYPTION, displayName: 'by policy manager' }, h.tokens.policyManager);
    assert.equal((await h.request('GET', `/api/v1/profiles/${pm['id']}`, { token: h.tokens.helpDesk })).statusCode, 200);
    assert.equal((await h.request('GET', `/api/v1/policies/${ids['policy']}/settings`, { token: h.tokens.helpDesk })).statusCode, 200);
    await refused('POST', '/api/v1/profiles', PKCS_ENCRYPTION, 403, 'KF_FORBIDDEN', undefined, h.tokens.helpDesk);
    await refused('DELETE', `/api/v1/profiles/${pm['id']}`, undefined, 403, 'KF_FORBIDDEN', undefined, h.tokens.helpDesk);
    await refused('POST', `/api/v1/policies/${ids['policy']}/assignments`, { include: ['allUsers'] }, 403, 'KF_FORBIDDEN', undefined, h.tokens.helpDesk);
    await refused('POST', '/api/v1/userPfxCertificates', {}, 403, 'KF_FORBIDDEN', undefined, h.tokens.helpDesk);

    const other = h.tokens.otherTenant;
    for (const url of [`/api/v1/apps/${ids['app']}`, `/api/v1/profiles/${ids['scep']}`, `/api/v1/policies/${ids['policy']}`, `/api/v1/policies/${ids['policy']}/settings`, `/api/v1/policies/${ids['policy']}/assignments`]) {
      assert.equal((await h.request('GET', url, { token: other })).statusCode, 404, url);
    }
    assert.equal((await h.request('DELETE', `/api/v1/profiles/${pm['id']}`, { token: other })).statusCode, 404);
    assert.equal((await h.request('POST', `/api/v1/policies/${ids['policy']}/assignments`, { token: other, body: { include: ['allUsers'] } })).statusCode, 404);
    assert.deepEqual(json(await h.request('GET', '/api/v1/policies', { token: other })), { value: [] });
    // A policy in tenant b cannot name tenant a's app.
    const r = await h.request('POST', '/api/v1/policies', { token: other, body: seedPolicy(ids['app']!, ids['scep']!, ids['pkcs']!) });
    assert.equal(r.statusCode, 400);
    assert.match(json(r)['detail'] as string, /app .* does not exist/);
    assert.equal((await h.request('DELETE', `/api/v1/profiles/${pm['id']}`, { token: h.tokens.policyManager })).statusCode, 204);
  });

  test('a PFX batch: stored in one transaction with one audit entry each, or refused whole naming the first bad record', async () => {
    const pfx = await opensslPfx(f.signing, 'batch-pw');
    const connector = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const upload = preparePfxImport({ pfx, password: 'batch-pw', connectorPublicKey: connector, userPrincipalName: 'u0@contoso.com', intendedPurpose: 'smimeSigning', keyName: 'k' }, readPfxMetadata);
    const forUser = (i: number) => ({ ...upload, userPrincipalName: `batch${i}@contoso.com` });
    const url = '/api/v1/userPfxCertificates/import';
    const stored = async () => (await h.store.forTenant('a').resources.listUserPfxCertificates({ limit: 1000 })).items.length;
    const before = { audit: await auditCount(), stored: await stored() };

    const r = await h.request('POST', url, { body: { value: [0, 1, 2].map(forUser) }, token: h.tokens.policyManager });
    assert.equal(r.statusCode, 201, r.body);
    const created = json<{ value: Obj[] }>(r).value;
    assert.deepEqual(created.map((c) => c['userPrincipalName']), ['batch0@contoso.com', 'batch1@contoso.com', 'batch2@contoso.com']);
    assert.equal(created[0]!['encryptedPfxBlob'], undefined);
    assert.equal(await stored(), before.stored + 3);
    const audit = (await h.store.forTenant('a').audit.list({ resourceType: 'userPfxCertificate', limit: 1000 })).items.slice(-3);
    assert.deepEqual(audit.map((e) => [e.action, e.resourceId, e.actorId]), created.map((c) => ['userPfxCertificate.create', c['id'], audit[0]!.actorId]));
    assert.equal(await auditCount(), before.audit + 3);

    // Refused whole, nothing written: a malformed record, bad dates, a thumbprint already imported for its
    // user, one repeated within the batch (UPNs compare case-insensitively), too many or no records.
    const batch = (bad: unknown, at = 2) => ({ value: [3, 4, 5, 6].map((i, k) => (k === at ? bad : forUser(i))) });
    await refused('POST', url, batch({ ...forUser(9), thumbprint: 'not hex' }), 400, 'KF_USAGE', /^record 2: PFX import: thumbprint must match pattern/);
    await refused('POST', url, batch({ ...forUser(9), password: 'x' }, 1), 400, 'KF_USAGE', /^record 1: PFX import: .*additional properties \(password\)/);
    await refused('POST', url, batch({ ...forUser(9), expirationDateTime: upload.startDateTime }, 3), 400, 'KF_USAGE', /^record 3: PFX import: expirationDateTime must be after startDateTime/);
    await refused('POST', url, batch(forUser(1), 1), 409, 'KF_CONFLICT', /^record 1: certificate [0-9A-F]{40} is already imported for batch1@contoso\.com/);
    await refused('POST', url, batch({ ...forUser(3), userPrincipalName: 'BATCH3@contoso.com' }), 409, 'KF_CONFLICT', /^record 2: .* repeats record 0/);
    await refused('POST', url, { value: Array.from({ length: 101 }, (_, i) => forUser(100 + i)) }, 400, 'KF_USAGE', /^PFX import: a batch holds 1 to 100 records$/);
    await refused('POST', url, { value: [] }, 400, 'KF_USAGE', /a batch holds 1 to 100 records/);
    await refused('POST', url, [forUser(7)], 400, 'KF_USAGE');
    await refused('POST', url, { value: [forUser(7)] }, 403, 'KF_FORBIDDEN', undefined, h.tokens.helpDesk);
    assert.equal(await stored(), before.stored + 3, 'nothing of a refused batch was stored');

    // The largest batch, 100 records, goes through; another tenant does not see them.
    const full = await h.request('POST', url, { body: { value: Array.from({ length: 100 }, (_, i) => forUser(200 + i)) } });
    assert.equal(full.statusCode, 201, full.body);
    assert.equal(await stored(), before.stored + 103);
    const other = json<{ value: Obj[] }>(await h.request('GET', '/api/v1/userPfxCertificates?userPrincipalName=batch200%40contoso.com', { token: h.tokens.otherTenant }));
    assert.deepEqual(other.value, []);

    const doc = json<{ paths: Record<string, Record<string, { requestBody?: unknown }>> }>(await h.request('GET', '/openapi.json', { token: null }));
    const body = JSON.stringify(doc.paths['/api/v1/userPfxCertificates/import']?.['post']?.requestBody);
    assert.ok(body.includes('"maxItems":100') && body.includes('encryptedPfxPassword'), 'the batch and its records are documented');
  });

  test('an imported PFX: the service keeps only ciphertext, even for a password encrypted to the wrong connector key', async () => {
    const password = 'Correct-Horse-Battery-Staple-7781';
    const pfx = await opensslPfx(f.encryption, password);
    // The admin encrypted to some other key than the connector's: nothing the service can see says so.
    const connector = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const wrongConnector = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
    const upload = preparePfxImport(
      { pfx, password, connectorPublicKey: wrongConnector, userPrincipalName: 'Alice@Contoso.com', intendedPurpose: 'smimeEncryption', keyName: 'connector-2024', paddingScheme: 'oaepSha256' },
      readPfxMetadata,
    );
    const created = await create('userPfxCertificates', upload);
    assert.equal(created['paddingScheme'], 'oaepSha256');
    assert.equal(created['thumbprint'], f.encryption.cert.thumbprint);
    assert.equal(created['encryptedPfxPassword'], undefined, 'the API does not hand the ciphertexts out');

    const stored = await h.store.forTenant('a').resources.getUserPfxCertificate(created['id'] as string);
    assert.deepEqual(Buffer.from(stored!.encryptedPfxBlob), Buffer.from(pfx));
    assert.equal(Buffer.from(stored!.encryptedPfxPassword).toString('base64'), upload.encryptedPfxPassword);
    // The connector, holding the real key, is where it fails: OAEP with the stored padding scheme rejects it.
    assert.throws(() => privateDecrypt({ key: connector.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, stored!.encryptedPfxPassword));

    await refused('POST', '/api/v1/userPfxCertificates', upload, 409, 'KF_CONFLICT', /already imported/);
    await refused('POST', '/api/v1/userPfxCertificates', { ...upload, encryptedPfxPassword: undefined }, 400, 'KF_USAGE');
    await refused('POST', '/api/v1/userPfxCertificates', { ...upload, password }, 400, 'KF_USAGE');

    const mine = json<{ value: Obj[] }>(await h.request('GET', '/api/v1/userPfxCertificates?userPrincipalName=alice%40contoso.com', { token: h.tokens.helpDesk }));
    assert.deepEqual(mine.value.map((c) => c['id']), [created['id']]);
    assert.deepEqual(json(await h.request('GET', '/api/v1/userPfxCertificates?userPrincipalName=bob%40contoso.com')), { value: [] });
    assert.equal((await h.request('GET', `/api/v1/userPfxCertificates/${created['id']}`, { token: h.tokens.otherTenant })).statusCode, 404);

    // The password appears nowhere in the database file (nor its write-ahead log), in any common encoding.
    await h.store.close().catch(() => {});
    const files = [h.dbPath, `${h.dbPath}-wal`].flatMap((p) => {
      try {
        return [readFileSync(p)];
      } catch {
        return [];
      }
    });
    assert.ok(files.length > 0);
    for (const bytes of files) {
      for (const needle of [Buffer.from(password, 'utf8'), Buffer.from(password, 'utf16le'), Buffer.from(Buffer.from(password).toString('base64').slice(0, 20))]) {
        assert.equal(bytes.indexOf(needle), -1, 'plaintext password found in the database');
      }
    }
  });
});
