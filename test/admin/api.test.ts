/** The admin REST API through inject(): users, groups, members, pagination, tokens, the OpenAPI document. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { json, startHarness, type Harness } from './support.ts';

describe('admin REST API', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test('users: create, get, update (null clears), list by UPN case-insensitively, delete', async () => {
    const created = await h.request('POST', '/api/v1/users', {
      body: { userPrincipalName: 'Carol@Contoso.com', displayName: 'Carol', mail: 'carol@contoso.com', isExchangeOnline: true, externalId: 'ext-9' },
    });
    assert.equal(created.statusCode, 201);
    const carol = json(created);
    assert.equal(carol['userPrincipalName'], 'Carol@Contoso.com');
    assert.equal(carol['accountEnabled'], true);
    assert.deepEqual(json(await h.request('GET', `/api/v1/users/${carol['id']}`)), carol);
    const patched = json(await h.request('PATCH', `/api/v1/users/${carol['id']}`, { body: { mail: null, accountEnabled: false } }));
    assert.equal(patched['mail'], null);
    assert.equal(patched['accountEnabled'], false);
    assert.equal(patched['displayName'], 'Carol');
    const found = json<{ value: { id: string }[] }>(await h.request('GET', '/api/v1/users?userPrincipalName=carol%40contoso.com'));
    assert.deepEqual(found.value.map((u) => u.id), [carol['id']]);
    const dup = await h.request('POST', '/api/v1/users', { body: { userPrincipalName: 'CAROL@contoso.com', displayName: 'Other' } });
    assert.equal(dup.statusCode, 409);
    assert.equal(json(dup)['code'], 'KF_CONFLICT');
    assert.equal((await h.request('DELETE', `/api/v1/users/${carol['id']}`)).statusCode, 204);
    assert.equal((await h.request('GET', `/api/v1/users/${carol['id']}`)).statusCode, 404);
    assert.equal((await h.request('DELETE', `/api/v1/users/${carol['id']}`)).statusCode, 404);
  });

  test('lists page with an opaque cursor', async () => {
    for (let i = 0; i < 5; i++) await h.request('POST', '/api/v1/users', { body: { userPrincipalName: `page${i}@contoso.com`, displayName: `P${i}` } });
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = json<{ value: { userPrincipalName: string }[]; nextCursor?: string }>(
        await h.request('GET', `/api/v1/users?limit=2${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`),
      );
      assert.ok(page.value.length <= 2);
      seen.push(...page.value.map((u) => u.userPrincipalName));
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    assert.equal(seen.filter((u) => u.startsWith('page')).length, 5);
    assert.equal(new Set(seen).size, seen.length);
    assert.equal((await h.request('GET', '/api/v1/users?limit=0')).statusCode, 400);
    assert.equal((await h.request('GET', '/api/v1/users?limit=5000')).statusCode, 400);
    assert.equal((await h.request('GET', '/api/v1/users?cursor=garbage!')).statusCode, 400);
  });

  test('groups: nested members, transitive members, member removal by id, cascade on delete', async () => {
    const user = json(await h.request('POST', '/api/v1/users', { body: { userPrincipalName: 'dave@contoso.com', displayName: 'Dave' } }));
    const outer = json(await h.request('POST', '/api/v1/groups', { body: { displayName: 'All staff', description: 'everyone' } }));
    const inner = json(await h.request('POST', '/api/v1/groups', { body: { displayName: 'Engineering' } }));
    assert.equal((await h.request('POST', `/api/v1/groups/${outer['id']}/members`, { body: { type: 'group', id: inner['id'] } })).statusCode, 204);
    assert.equal((await h.request('POST', `/api/v1/groups/${inner['id']}/members`, { body: { type: 'user', id: user['id'] } })).statusCode, 204);
    // Adding again is idempotent.
    assert.equal((await h.request('POST', `/api/v1/groups/${inner['id']}/members`, { body: { type: 'user', id: user['id'] } })).statusCode, 204);
    const direct = json<{ value: unknown[] }>(await h.request('GET', `/api/v1/groups/${outer['id']}/members`));
    assert.deepEqual(direct.value, [{ type: 'group', id: inner['id'] }]);
    const transitive = json<{ value: unknown[] }>(await h.request('GET', `/api/v1/groups/${outer['id']}/transitiveMembers`));
    assert.deepEqual(transitive.value, [
      { type: 'group', id: inner['id'] },
      { type: 'user', id: user['id'] },
    ]);
    const missing = await h.request('POST', `/api/v1/groups/${outer['id']}/members`, { body: { type: 'user', id: 'no-such-user' } });
    assert.equal(missing.statusCode, 404);
    assert.equal((await h.request('DELETE', `/api/v1/groups/${inner['id']}/members/${user['id']}`)).statusCode, 204);
    assert.equal((await h.request('DELETE', `/api/v1/groups/${inner['id']}/members/${user['id']}`)).statusCode, 404);
    assert.equal((await h.request('DELETE', `/api/v1/groups/${inner['id']}`)).statusCode, 204);
    assert.deepEqual(json<{ value: unknown[] }>(await h.request('GET', `/api/v1/groups/${outer['id']}/members`)).value, []);
    const renamed = json(await h.request('PATCH', `/api/v1/groups/${outer['id']}`, { body: { displayName: 'Everyone', description: null } }));
    assert.equal(renamed['displayName'], 'Everyone');
    assert.equal(renamed['description'], null);
  });

  test('every change is in the audit log with actor, before and after', async () => {
    const user = json(await h.request('POST', '/api/v1/users', { body: { userPrincipalName: 'erin@contoso.com', displayName: 'Erin' } }));
    await h.request('PATCH', `/api/v1/users/${user['id']}`, { body: { displayName: 'Erin E.' } });
    const events = json<{ value: Record<string, unknown>[] }>(await h.request('GET', `/api/v1/auditEvents?resourceType=user&resourceId=${user['id']}`)).value;
    assert.deepEqual(events.map((e) => e['action']), ['user.create', 'user.update']);
    assert.equal((events[0]!['actor'] as { name: string }).name, 'administrator token');
    assert.match((events[0]!['actor'] as { id: string }).id, /^[0-9a-f-]{36}$/);
    assert.equal(events[0]!['before'], null);
    assert.equal((events[1]!['before'] as Record<string, unknown>)['displayName'], 'Erin');
    assert.equal((events[1]!['after'] as Record<string, unknown>)['displayName'], 'Erin E.');
    assert.ok((events[1]!['id'] as number) > (events[0]!['id'] as number));
    assert.match(String(events[1]!['hash']), /^[0-9a-f]{64}$/);
  });

  test('token creation is audited without the secret or its hash', async () => {
    const created = json(await h.request('POST', '/api/v1/tokens', { body: { name: 'ci', role: 'policyManager' } }));
    const secret = created['secret'] as string;
    const events = json<{ value: Record<string, unknown>[] }>(await h.request('GET', `/api/v1/auditEvents?resourceType=token&resourceId=${created['id']}`)).value;
    assert.equal(events.length, 1);
    const text = JSON.stringify(events);
    assert.ok(!text.includes(secret) && !text.includes(secret.slice(3)));
    assert.ok(!/secret/i.test(text));
  });

  test('OpenAPI 3.1 document at /openapi.json lists the routes with their schemas', async () => {
    const response = await h.request('GET', '/openapi.json', { token: null });
    assert.equal(response.statusCode, 200);
    const doc = json<{ openapi: string; paths: Record<string, Record<string, { requestBody?: unknown; security?: unknown }>> }>(response);
    assert.equal(doc.openapi, '3.1.0');
    for (const path of ['/api/v1/users', '/api/v1/users/{id}', '/api/v1/groups/{id}/members', '/api/v1/groups/{id}/transitiveMembers', '/api/v1/tokens', '/api/v1/auditEvents', '/scim/v2/Users']) {
      assert.ok(doc.paths[path], `${path} documented`);
    }
    const post = doc.paths['/api/v1/users']!['post']!;
    assert.ok(JSON.stringify(post.requestBody).includes('userPrincipalName'));
    assert.ok(JSON.stringify(post.requestBody).includes('"additionalProperties":false'));
    assert.deepEqual(post.security, [{ bearerAuth: [] }]);
  });
});
