/**
 * Bad input to the admin API: malformed JSON, unknown fields, wrong types,
 * oversized bodies, SQL metacharacters in every string field, a group
 * cycle → the right 4xx problem and nothing written (the audit log too).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { json, startHarness, type Harness } from './support.ts';

const SQL_STRINGS = [`'; DROP TABLE users; --`, `" OR 1=1 --`, `x%' OR '%'='`, `\\'; DELETE FROM groups; /*`, `Robert'); DROP TABLE audit_events;--`];

describe('admin API bad input', () => {
  let h: Harness;
  let entries: () => Promise<number>;
  before(async () => {
    h = await startHarness();
    entries = async () => json<{ entries: number; ok: boolean }>(await h.request('GET', '/api/v1/auditEvents/verification')).entries;
  });
  after(() => h.close());

  async function refused(method: string, url: string, options: Parameters<Harness['request']>[2], status: number, code: string): Promise<void> {
    const before = await entries();
    const response = await h.request(method, url, options);
    assert.equal(response.statusCode, status, `${method} ${url}: ${response.body}`);
    assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
    const problem = json(response);
    assert.equal(problem['code'], code);
    assert.equal(problem['status'], status);
    assert.equal(typeof problem['detail'], 'string');
    assert.equal(await entries(), before, 'nothing audited');
  }

  test('malformed JSON → 400', async () => {
    await refused('POST', '/api/v1/users', { rawBody: '{"userPrincipalName": "a@b.c", ' }, 400, 'KF_USAGE');
    await refused('POST', '/api/v1/groups', { rawBody: 'not json' }, 400, 'KF_USAGE');
  });

  test('unknown fields, missing fields and wrong types → 400, nothing created', async () => {
    await refused('POST', '/api/v1/users', { body: { userPrincipalName: 'u@x.example', displayName: 'U', isAdmin: true } }, 400, 'KF_USAGE');
    await refused('POST', '/api/v1/users', { body: { displayName: 'no upn' } }, 400, 'KF_USAGE');
    await refused('POST', '/api/v1/users', { body: { userPrincipalName: 'u@x.example', displayName: 'U', accountEnabled: 'true' } }, 400, 'KF_USAGE');
    await refused('POST', '/api/v1/users', { body: { userPrincipalName: 'not an address', displayName: 'U' } }, 400, 'KF_USAGE');
    await refused('POST', '/api/v1/users', { body: ['a'] }, 400, 'KF_USAGE');
    await refused('POST', '/api/v1/groups', { body: { displayName: 'G', owner: 'me' } }, 400, 'KF_USAGE');
    await refused('PATCH', '/api/v1/users/whatever', { body: {} }, 400, 'KF_USAGE');
    await refused('POST', '/api/v1/tokens', { body: { name: 'x', role: 'root' } }, 400, 'KF_USAGE');
    await refused('GET', '/api/v1/users?unknown=1', {}, 400, 'KF_USAGE');
    assert.deepEqual(json<{ value: unknown[] }>(await h.request('GET', '/api/v1/users')).value, []);
  });

  test('oversized bodies and over-long fields → 413 / 400', async () => {
    const huge = JSON.stringify({ userPrincipalName: 'big@x.example', displayName: 'x'.repeat(100 * 1024) });
    await refused('POST', '/api/v1/users', { rawBody: huge }, 413, 'KF_INPUT_TOO_LARGE');
    await refused('POST', '/api/v1/users', { body: { userPrincipalName: 'big@x.example', displayName: 'x'.repeat(300) } }, 400, 'KF_USAGE');
    const scimHuge = JSON.stringify({ displayName: 'g', members: Array.from({ length: 80_000 }, (_, i) => ({ value: `member-${i}` })) });
    const response = await h.request('POST', '/scim/v2/Groups', { rawBody: scimHuge, contentType: 'application/scim+json' });
    assert.equal(response.statusCode, 413);
    assert.equal(json(response)['status'], '413');
  });

  test('SQL metacharacters in every string field are stored and returned verbatim', async () => {
    for (const [i, s] of SQL_STRINGS.entries()) {
      const upn = `${s.replace(/[\s@]/g, '')}${i}@x.example`;
      const user = await h.request('POST', '/api/v1/users', { body: { userPrincipalName: upn, displayName: s, mail: `m${i}${s.replace(/[\s@]/g, '')}@x.example`, externalId: s } });
      assert.equal(user.statusCode, 201, user.body);
      const u = json(user);
      assert.equal(u['displayName'], s);
      assert.equal(u['externalId'], s);
      assert.equal(json(await h.request('GET', `/api/v1/users/${u['id']}`))['userPrincipalName'], upn);
      const found = json<{ value: { id: string }[] }>(await h.request('GET', `/api/v1/users?userPrincipalName=${encodeURIComponent(upn)}`));
      assert.deepEqual(found.value.map((x) => x.id), [u['id']]);
      const group = json(await h.request('POST', '/api/v1/groups', { body: { displayName: s, description: s, externalId: s } }));
      assert.equal(group['description'], s);
      const patched = json(await h.request('PATCH', `/api/v1/groups/${group['id']}`, { body: { displayName: `${s}!` } }));
      assert.equal(patched['displayName'], `${s}!`);
      const token = json(await h.request('POST', '/api/v1/tokens', { body: { name: s, role: 'helpDesk' } }));
      assert.equal(token['name'], s);
      // In path parameters and query strings too.
      assert.equal((await h.request('GET', `/api/v1/users/${encodeURIComponent(s)}`)).statusCode, 404);
      assert.equal((await h.request('GET', `/api/v1/groups/${encodeURIComponent(s)}/members`)).statusCode, 404);
      const scim = await h.request('GET', `/scim/v2/Users?filter=${encodeURIComponent(`displayName eq ${JSON.stringify(s)}`)}`);
      assert.equal(json<{ totalResults: number }>(scim).totalResults, 1);
    }
    // The tables are all still there and the chain verifies.
    const verification = json<{ ok: boolean }>(await h.request('GET', '/api/v1/auditEvents/verification'));
    assert.equal(verification.ok, true);
    assert.ok(json<{ value: unknown[] }>(await h.request('GET', '/api/v1/users')).value.length >= SQL_STRINGS.length);
  });

  test('a cycle in nested groups → 409 KF_GROUP_CYCLE, nothing written or audited', async () => {
    const ids: string[] = [];
    for (const name of ['A', 'B', 'C']) ids.push(json(await h.request('POST', '/api/v1/groups', { body: { displayName: `cycle ${name}` } }))['id'] as string);
    const [a, b, c] = ids as [string, string, string];
    assert.equal((await h.request('POST', `/api/v1/groups/${a}/members`, { body: { type: 'group', id: b } })).statusCode, 204);
    assert.equal((await h.request('POST', `/api/v1/groups/${b}/members`, { body: { type: 'group', id: c } })).statusCode, 204);
    await refused('POST', `/api/v1/groups/${c}/members`, { body: { type: 'group', id: a } }, 409, 'KF_GROUP_CYCLE');
    await refused('POST', `/api/v1/groups/${a}/members`, { body: { type: 'group', id: a } }, 409, 'KF_GROUP_CYCLE');
    assert.deepEqual(json<{ value: unknown[] }>(await h.request('GET', `/api/v1/groups/${c}/members`)).value, []);
  });

  test('a SCIM group whose later member fails leaves no group behind (one transaction)', async () => {
    const before = await entries();
    const user = json(await h.request('POST', '/api/v1/users', { body: { userPrincipalName: 'tx@x.example', displayName: 'Tx' } }));
    const response = await h.request('POST', '/scim/v2/Groups', {
      body: { displayName: 'half-made', members: [{ value: user['id'] }, { value: 'no-such-member' }] },
      contentType: 'application/scim+json',
    });
    assert.equal(response.statusCode, 404);
    const groups = json<{ totalResults: number }>(await h.request('GET', `/scim/v2/Groups?filter=${encodeURIComponent('displayName eq "half-made"')}`));
    assert.equal(groups.totalResults, 0);
    assert.equal(await entries(), before + 1, 'only the user creation is audited');
  });
});
