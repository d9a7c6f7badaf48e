/**
 * Access control on every admin and SCIM endpoint: no or a bad token → 401,
 * a read-only (help desk) token writing → 403, a policy-manager token
 * writing the directory or tokens → 403 but writing resources (apps,
 * profiles, policies, derived credentials, assignments, the VPP sync,
 * imported PFX) allowed, another tenant's token on this tenant's resources →
 * 404 (never 403: existence is not revealed). Nothing any refused request
 * tried is written. A token's last use is written at most once a minute.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LOCAL_OPERATOR, authenticate, createToken, revokeToken } from '../../src/directory/access.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import type { TokenLookup } from '../../src/store/access.ts';
import type { Store } from '../../src/store/store.ts';
import { json, startHarness, type Harness } from './support.ts';

interface Endpoint {
  readonly method: string;
  readonly url: string;
  readonly body?: unknown;
  readonly write: boolean;
  /** Names a resource of tenant A by id (so another tenant gets 404). */
  readonly scoped: boolean;
  readonly tokensOnly?: boolean;
  readonly scim?: boolean;
  /** A resource write (resources:write): the policy manager may do it, and gets this status. */
  readonly policyManager?: number;
}

describe('admin API access control', () => {
  let h: Harness;
  let endpoints: Endpoint[];
  let auditBefore: number;

  before(async () => {
    h = await startHarness();
    const user = json(await h.request('POST', '/api/v1/users', { body: { userPrincipalName: 'alice@a.example', displayName: 'Alice' } }));
    const user2 = json(await h.request('POST', '/api/v1/users', { body: { userPrincipalName: 'bob@a.example', displayName: 'Bob' } }));
    const group = json(await h.request('POST', '/api/v1/groups', { body: { displayName: 'Sales' } }));
    const sub = json(await h.request('POST', '/api/v1/groups', { body: { displayName: 'Sub' } }));
    assert.equal((await h.request('POST', `/api/v1/groups/${group['id']}/members`, { body: { type: 'user', id: user['id'] } })).statusCode, 204);
    const tokens = json<{ value: { id: string; name: string }[] }>(await h.request('GET', '/api/v1/tokens'));
    const helpDeskToken = tokens.value.find((t) => t.name === 'helpDesk token')!.id;
    const u = user['id'] as string;
    const u2 = user2['id'] as string;
    const g = group['id'] as string;
    const s = sub['id'] as string;
    endpoints = [
      { method: 'GET', url: '/api/v1/users', write: false, scoped: false },
      { method: 'POST', url: '/api/v1/users', body: { userPrincipalName: 'new@a.example', displayName: 'New' }, write: true, scoped: false },
      { method: 'GET', url: `/api/v1/users/${u}`, write: false, scoped: true },
      { method: 'PATCH', url: `/api/v1/users/${u}`, body: { displayName: 'Changed' }, write: true, scoped: true },
      { method: 'DELETE', url: `/api/v1/users/${u2}`, write: true, scoped: true },
      { method: 'GET', url: '/api/v1/groups', write: false, scoped: false },
      { method: 'POST', url: '/api/v1/groups', body: { displayName: 'New group' }, write: true, scoped: false },
      { method: 'GET', url: `/api/v1/groups/${g}`, write: false, scoped: true },
      { method: 'PATCH', url: `/api/v1/groups/${g}`, body: { description: 'changed' }, write: true, scoped: true },
      { method: 'DELETE', url: `/api/v1/groups/${s}`, write: true, scoped: true },
      { method: 'GET', url: `/api/v1/groups/${g}/members`, write: false, scoped: true },
      { method: 'GET', url: `/api/v1/groups/${g}/transitiveMembers`, write: false, scoped: true },
      { method: 'POST', url: `/api/v1/groups/${g}/members`, body: { type: 'group', id: s }, write: true, scoped: true },
      { method: 'DELETE', url: `/api/v1/groups/${g}/members/${u}`, write: true, scoped: true },
      { method: 'GET', url: '/api/v1/tokens', write: false, scoped: false, tokensOnly: true },
      { method: 'POST', url: '/api/v1/tokens', body: { name: 'x', role: 'helpDesk' }, write: true, scoped: false, tokensOnly: true },
      { method: 'DELETE', url: `/api/v1/tokens/${helpDeskToken}`, write: true, scoped: true, tokensOnly: true },
      { method: 'GET', url: '/api/v1/auditEvents', write: false, scoped: false },
      { method: 'GET', url: '/api/v1/auditEvents/verification', write: false, scoped: false },
      { method: 'GET', url: '/scim/v2/Users', write: false, scoped: false, scim: true },
      { method: 'POST', url: '/scim/v2/Users', body: { userName: 'scim@a.example' }, write: true, scoped: false, scim: true },
      { method: 'GET', url: `/scim/v2/Users/${u}`, write: false, scoped: true, scim: true },
      { method: 'PUT', url: `/scim/v2/Users/${u}`, body: { userName: 'alice@a.example', displayName: 'X' }, write: true, scoped: true, scim: true },
      {
        method: 'PATCH',
        url: `/scim/v2/Users/${u}`,
        body: { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'replace', path: 'active', value: false }] },
        write: true,
        scoped: true,
        scim: true,
      },
      { method: 'DELETE', url: `/scim/v2/Users/${u2}`, write: true, scoped: true, scim: true },
      { method: 'GET', url: '/scim/v2/Groups', write: false, scoped: false, scim: true },
      { method: 'POST', url: '/scim/v2/Groups', body: { displayName: 'SCIM group' }, write: true, scoped: false, scim: true },
      { method: 'GET', url: `/scim/v2/Groups/${g}`, write: false, scoped: true, scim: true },
      { method: 'PUT', url: `/scim/v2/Groups/${g}`, body: { displayName: 'Sales' }, write: true, scoped: true, scim: true },
      {
        method: 'PATCH',
        url: `/scim/v2/Groups/${g}`,
        body: { schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'remove', path: 'members' }] },
        write: true,
        scoped: true,
        scim: true,
      },
      { method: 'DELETE', url: `/scim/v2/Groups/${s}`, write: true, scoped: true, scim: true },
      ...(await resourceEndpoints(h)),
    ];
    auditBefore = json<{ entries: number }>(await h.request('GET', '/api/v1/auditEvents/verification')).entries;
  });
  after(() => h.close());

  const call = (e: Endpoint, token: string | null) => h.request(e.method, e.url, { token, ...(e.body === undefined ? {} : { body: e.body }) });

  function assertProblem(e: Endpoint, response: Awaited<ReturnType<Harness['request']>>, status: number, code: string): void {
    assert.equal(response.statusCode, status, `${e.method} ${e.url}: ${response.body}`);
    const body = json(response);
    if (e.scim) {
      assert.match(String(response.headers['content-type']), /^application\/scim\+json/);
      assert.deepEqual(body['schemas'], ['urn:ietf:params:scim:api:messages:2.0:Error']);
      assert.equal(body['status'], String(status));
      assert.match(String(body['detail']), new RegExp(`^${code}`));
    } else {
      assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
      assert.equal(body['code'], code);
    }
  }

  test('no token, a malformed token, an unknown token → 401 on every endpoint', async () => {
    const unknown = 'kf_' + 'A'.repeat(43);
    for (const e of endpoints) {
      assertProblem(e, await call(e, null), 401, 'KF_UNAUTHENTICATED');
      assertProblem(e, await call(e, 'not-a-token'), 401, 'KF_UNAUTHENTICATED');
      assertProblem(e, await call(e, unknown), 401, 'KF_UNAUTHENTICATED');
    }
  });

  test('a help-desk token may read but every write is 403; tokens are for administrators only', async () => {
    for (const e of endpoints) {
      const response = await call(e, h.tokens.helpDesk);
      if (e.write || e.tokensOnly) assertProblem(e, response, 403, 'KF_FORBIDDEN');
      else if (e.method === 'GET' && e.url.startsWith('/api/v1/audit')) assertProblem(e, response, 403, 'KF_FORBIDDEN');
      else assert.equal(response.statusCode, 200, `${e.method} ${e.url}: ${response.body}`);
    }
  });

  test('a policy-manager token may not write the directory or manage tokens (its resource writes come last)', async () => {
    for (const e of endpoints) {
      if (e.policyManager !== undefined) continue;
      const response = await call(e, h.tokens.policyManager);
      if (e.write || e.tokensOnly) assertProblem(e, response, 403, 'KF_FORBIDDEN');
      else assert.equal(response.statusCode, 200, `${e.method} ${e.url}: ${response.body}`);
    }
  });

  test("another tenant's administrator gets 404 for every resource of this tenant, and lists without them", async () => {
    for (const e of endpoints) {
      if (e.scoped) {
        assertProblem(e, await call(e, h.tokens.otherTenant), 404, 'KF_NOT_FOUND');
      } else if (e.method === 'GET' && !e.url.includes('audit')) {
        const response = await call(e, h.tokens.otherTenant);
        assert.equal(response.statusCode, 200);
        const body = json(response);
        const items = (body['value'] ?? body['Resources']) as unknown[];
        assert.deepEqual(items.filter((i) => JSON.stringify(i).includes('a.example') || JSON.stringify(i).includes('Sales')), [], `${e.url} leaks`);
      }
    }
  });

  test('nothing the refused requests tried was written: the audit log only grew by nothing', async () => {
    const verification = json<{ ok: boolean; entries: number }>(await h.request('GET', '/api/v1/auditEvents/verification'));
    assert.equal(verification.ok, true);
    assert.equal(verification.entries, auditBefore);
    const users = json<{ value: { displayName: string }[] }>(await h.request('GET', '/api/v1/users'));
    assert.deepEqual(users.value.map((u) => u.displayName).sort(), ['Alice', 'Bob']);
  });

  test('a policy-manager token writes every resource: create, PATCH, delete, assign, the derived-credential issuer, the VPP sync', async () => {
    const resourceWrites = endpoints.filter((e) => e.policyManager !== undefined);
    assert.ok(resourceWrites.length >= 18, 'every resource write is listed');
    const before = json<{ entries: number }>(await h.request('GET', '/api/v1/auditEvents/verification')).entries;
    let changes = 0;
    for (const e of resourceWrites) {
      const response = await call(e, h.tokens.policyManager);
      assert.equal(response.statusCode, e.policyManager, `${e.method} ${e.url}: ${response.body}`);
      if (response.statusCode < 300) changes++;
    }
    const after = json<{ ok: boolean; entries: number }>(await h.request('GET', '/api/v1/auditEvents/verification'));
    assert.equal(after.ok, true);
    assert.equal(after.entries, before + changes, 'each change recorded once');
  });

  test('a revoked token is refused from then on', async () => {
    const created = json(await h.request('POST', '/api/v1/tokens', { body: { name: 'short-lived', role: 'helpDesk' } }));
    assert.match(String(created['secret']), /^kf_[A-Za-z0-9_-]{43}$/);
    assert.equal((await h.request('GET', '/api/v1/users', { token: created['secret'] as string })).statusCode, 200);
    assert.equal((await h.request('DELETE', `/api/v1/tokens/${created['id']}`)).statusCode, 204);
    assert.equal((await h.request('GET', '/api/v1/users', { token: created['secret'] as string })).statusCode, 401);
    const list = json<{ value: Record<string, unknown>[] }>(await h.request('GET', '/api/v1/tokens'));
    assert.ok(list.value.every((t) => !('secret' in t) && !('secretHash' in t)));
  });
  test("a token's use is recorded at most once a minute, with no UPDATE at all in between", async () => {
    const created = await createToken(h.store.forTenant('a'), LOCAL_OPERATOR, 'counted', 'helpDesk');
    const marks: number[] = [];
    const lookup = h.store.tokens;
    const tokens: TokenLookup = {
      findByHash: (hash) => lookup.findByHash(hash),
      markUsed: (tenantId, id, at, coarser) => (marks.push(at.getTime()), lookup.markUsed(tenantId, id, at, coarser)),
      anyTokens: () => lookup.anyTokens(),
    };
    const counting: Store = Object.assign(Object.create(h.store) as Store, { tokens });
    const t0 = Date.parse('2030-01-01T00:00:00Z');
    const at = (seconds: number) => new Date(t0 + seconds * 1000);
    const lastUsed = async () => (await h.store.forTenant('a').access.getToken(created.token.id))?.lastUsedAt?.getTime();

    assert.equal((await authenticate(counting, created.secret, at(0))).id, created.token.id);
    assert.deepEqual(marks, [t0]);
    for (const s of [1, 30, 60]) await authenticate(counting, created.secret, at(s));
    assert.deepEqual(marks, [t0], 'within the minute: no statement');
    assert.equal(await lastUsed(), t0);
    await authenticate(counting, created.secret, at(61));
    assert.deepEqual(marks, [t0, t0 + 61_000]);
    assert.equal(await lastUsed(), t0 + 61_000);

    for (const secret of [undefined, 'kf_short', `kf_${'A'.repeat(43)}`]) {
      await assert.rejects(authenticate(counting, secret, at(200)), (e: unknown) => isKeyfleetError(e, 'KF_UNAUTHENTICATED') && /valid API token is required/.test((e as Error).message));
    }
    await revokeToken(h.store.forTenant('a'), LOCAL_OPERATOR, created.token.id);
    await assert.rejects(authenticate(counting, created.secret, at(300)), (e: unknown) => isKeyfleetError(e, 'KF_UNAUTHENTICATED'));
    assert.equal(marks.length, 2, 'a refused token is never marked');
  });
});

/**
 * Every resource route, on resources of tenant A made here. Spares are deleted, so the other writes
 * still find what they change; the derived-credential issuer is deleted before one is created, as a
 * tenant has one. The harness's server has no VPP token: past the permission check, the sync says so.
 */
async function resourceEndpoints(h: Harness): Promise<Endpoint[]> {
  const made = async (path: string, body: unknown) => {
    const r = await h.request('POST', `/api/v1/${path}`, { body });
    assert.equal(r.statusCode, 201, r.body);
    return json(r)['id'] as string;
  };
  const outlook = { kind: 'iosStoreApp', displayName: 'Microsoft Outlook', bundleId: 'com.microsoft.Office.Outlook' };
  const pkcs = { kind: 'iosImportedPfxCertificateProfile', displayName: 'Encryption history', intendedPurpose: 'smimeEncryption' };
  const policy = (app: string) => ({ displayName: 'Outlook S/MIME', deviceEnrollmentType: 'managedDevices', platform: 'iOS/iPadOS', targetedMobileApps: [app], enableSmime: true });
  const derived = { displayName: 'Purebred', issuer: 'purebred' };
  const app = await made('apps', outlook);
  const spareApp = await made('apps', { ...outlook, displayName: 'Spare' });
  const profile = await made('profiles', pkcs);
  const spareProfile = await made('profiles', { ...pkcs, displayName: 'Spare' });
  const pol = await made('policies', policy(app));
  const sparePolicy = await made('policies', policy(app));
  const dc = await made('derivedCredentials', derived);
  const u = json<{ value: { id: string }[] }>(await h.request('GET', '/api/v1/users')).value[0]!.id;
  const assign = { include: ['allUsers'] };
  return [
    { method: 'GET', url: '/api/v1/apps', write: false, scoped: false },
    { method: 'POST', url: '/api/v1/apps', body: outlook, write: true, scoped: false, policyManager: 201 },
    { method: 'GET', url: `/api/v1/apps/${app}`, write: false, scoped: true },
    { method: 'PATCH', url: `/api/v1/apps/${app}`, body: { displayName: 'Outlook' }, write: true, scoped: true, policyManager: 200 },
    { method: 'DELETE', url: `/api/v1/apps/${spareApp}`, write: true, scoped: true, policyManager: 204 },
    { method: 'GET', url: `/api/v1/apps/${app}/assignments`, write: false, scoped: true },
    { method: 'POST', url: `/api/v1/apps/${app}/assignments`, body: assign, write: true, scoped: true, policyManager: 200 },
    { method: 'POST', url: '/api/v1/apps/syncVpp', write: true, scoped: false, policyManager: 409 },
    { method: 'GET', url: '/api/v1/profiles', write: false, scoped: false },
    { method: 'POST', url: '/api/v1/profiles', body: pkcs, write: true, scoped: false, policyManager: 201 },
    { method: 'GET', url: `/api/v1/profiles/${profile}`, write: false, scoped: true },
    { method: 'PATCH', url: `/api/v1/profiles/${profile}`, body: { description: 'changed' }, write: true, scoped: true, policyManager: 200 },
    { method: 'DELETE', url: `/api/v1/profiles/${spareProfile}`, write: true, scoped: true, policyManager: 204 },
    { method: 'GET', url: `/api/v1/profiles/${profile}/assignments`, write: false, scoped: true },
    { method: 'POST', url: `/api/v1/profiles/${profile}/assignments`, body: assign, write: true, scoped: true, policyManager: 200 },
    { method: 'GET', url: '/api/v1/policies', write: false, scoped: false },
    { method: 'POST', url: '/api/v1/policies', body: policy(app), write: true, scoped: false, policyManager: 201 },
    { method: 'GET', url: `/api/v1/policies/${pol}`, write: false, scoped: true },
    { method: 'GET', url: `/api/v1/policies/${pol}/settings`, write: false, scoped: true },
    { method: 'PATCH', url: `/api/v1/policies/${pol}`, body: { signAllMail: true }, write: true, scoped: true, policyManager: 200 },
    { method: 'DELETE', url: `/api/v1/policies/${sparePolicy}`, write: true, scoped: true, policyManager: 204 },
    { method: 'GET', url: `/api/v1/policies/${pol}/assignments`, write: false, scoped: true },
    { method: 'POST', url: `/api/v1/policies/${pol}/assignments`, body: assign, write: true, scoped: true, policyManager: 200 },
    { method: 'GET', url: '/api/v1/derivedCredentials', write: false, scoped: false },
    { method: 'GET', url: `/api/v1/derivedCredentials/${dc}`, write: false, scoped: true },
    { method: 'PATCH', url: `/api/v1/derivedCredentials/${dc}`, body: { issuer: 'intercede' }, write: true, scoped: true, policyManager: 200 },
    { method: 'DELETE', url: `/api/v1/derivedCredentials/${dc}`, write: true, scoped: true, policyManager: 204 },
    { method: 'POST', url: '/api/v1/derivedCredentials', body: derived, write: true, scoped: false, policyManager: 201 },
    { method: 'GET', url: `/api/v1/users/${u}/effectiveState`, write: false, scoped: true },
    { method: 'GET', url: '/api/v1/userPfxCertificates', write: false, scoped: false },
    { method: 'POST', url: '/api/v1/userPfxCertificates', body: {}, write: true, scoped: false, policyManager: 400 },
    { method: 'POST', url: '/api/v1/userPfxCertificates/import', body: { value: [] }, write: true, scoped: false, policyManager: 400 },
    { method: 'DELETE', url: '/api/v1/userPfxCertificates/no-such-pfx', write: true, scoped: true, policyManager: 404 },
  ];
}
