/**
 * SCIM 2.0 as an identity provider drives it (the sequence Entra ID's
 * provisioning service runs): look up by userName, create, deactivate with
 * PATCH, create a group, PATCH members in and out, filter, page, delete.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { json, startHarness, type Harness } from './support.ts';

const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

describe('SCIM 2.0 provisioning', () => {
  let h: Harness;
  const scim = (method: string, url: string, body?: unknown) =>
    h.request(method, `/scim/v2${url}`, body === undefined ? {} : { body, contentType: 'application/scim+json' });
  const filter = (expr: string) => `?filter=${encodeURIComponent(expr)}`;

  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test('an IdP-style sequence: users, deactivation, a group and its members', async () => {
    // 1. Does the user exist? (Entra ID asks before creating.)
    let response = await scim('GET', `/Users${filter('userName eq "alice@contoso.com"')}`);
    assert.equal(response.statusCode, 200);
    assert.match(String(response.headers['content-type']), /^application\/scim\+json/);
    assert.deepEqual(json(response), { schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'], totalResults: 0, startIndex: 1, itemsPerPage: 0, Resources: [] });

    // 2. Create it, with the attributes an IdP sends (including ones we do not keep).
    response = await scim('POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'],
      externalId: '0f6d8a9e-entra-object-id',
      userName: 'alice@contoso.com',
      active: true,
      displayName: 'Alice Adams',
      name: { formatted: 'Alice Adams', givenName: 'Alice', familyName: 'Adams' },
      emails: [{ primary: true, type: 'work', value: 'alice@contoso.com' }],
      title: 'Engineer',
      'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { department: 'R&D' },
      'urn:keyfleet:params:scim:schemas:extension:2.0:User': { isExchangeOnline: true },
    });
    assert.equal(response.statusCode, 201, response.body);
    const alice = json(response);
    assert.equal(response.headers['location'], (alice['meta'] as { location: string }).location);
    assert.equal(alice['userName'], 'alice@contoso.com');
    assert.equal(alice['active'], true);
    assert.deepEqual(alice['emails'], [{ value: 'alice@contoso.com', type: 'work', primary: true }]);
    const aliceId = alice['id'] as string;

    // The directory API sees the same user.
    const viaApi = json(await h.request('GET', `/api/v1/users/${aliceId}`));
    assert.equal(viaApi['isExchangeOnline'], true);
    assert.equal(viaApi['externalId'], '0f6d8a9e-entra-object-id');

    // 3. Filter by userName (case-insensitive, RFC 7643 §4.1.1) and by externalId.
    response = await scim('GET', `/Users${filter('userName eq "ALICE@contoso.com"')}`);
    assert.deepEqual(json<{ Resources: { id: string }[] }>(response).Resources.map((r) => r.id), [aliceId]);
    response = await scim('GET', `/Users${filter('externalId eq "0f6d8a9e-entra-object-id"')}`);
    assert.equal(json<{ totalResults: number }>(response).totalResults, 1);

    // 4. A second create for the same userName is a uniqueness error.
    response = await scim('POST', '/Users', { userName: 'Alice@Contoso.com' });
    assert.equal(response.statusCode, 409);
    assert.deepEqual(json(response)['schemas'], [ERROR]);
    assert.equal(json(response)['scimType'], 'uniqueness');

    // 5. Deactivate: Entra ID sends "Replace" with the value as a string.
    response = await scim('PATCH', `/Users/${aliceId}`, { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] });
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(json(response)['active'], false);
    assert.equal(json(await h.request('GET', `/api/v1/users/${aliceId}`))['accountEnabled'], false);

    // A path-less replace with several attributes, one of them not kept (name.givenName).
    response = await scim('PATCH', `/Users/${aliceId}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', value: { displayName: 'Alice A. Adams', 'name.givenName': 'Alicia', 'emails[type eq "work"].value': 'a.adams@contoso.com' } }],
    });
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(json(response)['displayName'], 'Alice A. Adams');
    assert.deepEqual(json(response)['emails'], [{ value: 'a.adams@contoso.com', type: 'work', primary: true }]);

    const bob = json(await scim('POST', '/Users', { userName: 'bob@contoso.com', name: { givenName: 'Bob', familyName: 'Brown' } }));
    assert.equal(bob['displayName'], 'Bob Brown');
    const bobId = bob['id'] as string;

    // 6. The group: look up, create empty, then PATCH members in (Entra ID's order).
    response = await scim('GET', `/Groups${filter('displayName eq "Sales"')}`);
    assert.equal(json<{ totalResults: number }>(response).totalResults, 0);
    response = await scim('POST', '/Groups', { schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'], displayName: 'Sales', externalId: 'grp-1', members: [] });
    assert.equal(response.statusCode, 201, response.body);
    const groupId = json(response)['id'] as string;
    response = await scim('PATCH', `/Groups/${groupId}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'Add', path: 'members', value: [{ value: aliceId }, { value: bobId }] }],
    });
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(
      json<{ members: { value: string }[] }>(response).members.map((m) => m.value).sort(),
      [aliceId, bobId].sort(),
    );

    // 7. Remove one member with a value filter, as RFC 7644 §3.5.2.2 shows.
    response = await scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH_OP], Operations: [{ op: 'remove', path: `members[value eq "${bobId}"]` }] });
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(json<{ members: { value: string }[] }>(response).members.map((m) => m.value), [aliceId]);
    // And Entra ID's form: path "members" with the members to remove as the value.
    await scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ value: bobId }] }] });
    response = await scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH_OP], Operations: [{ op: 'Remove', path: 'members', value: [{ value: aliceId }] }] });
    assert.deepEqual(json<{ members: { value: string }[] }>(response).members.map((m) => m.value), [bobId]);

    // 8. Nested: a group as a member, and the REST API's transitive view.
    const parent = json(await scim('POST', '/Groups', { displayName: 'All', members: [{ value: groupId, type: 'Group' }] }));
    const transitive = json<{ value: { id: string }[] }>(await h.request('GET', `/api/v1/groups/${parent['id']}/transitiveMembers`));
    assert.deepEqual(transitive.value.map((m) => m.id).sort(), [bobId, groupId].sort());
    // A cycle through SCIM is refused as invalidValue.
    response = await scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH_OP], Operations: [{ op: 'add', path: 'members', value: [{ value: parent['id'] }] }] });
    assert.equal(response.statusCode, 400);
    assert.equal(json(response)['scimType'], 'invalidValue');

    // 9. Rename via PATCH, filter groups by displayName, then PUT replaces members.
    await scim('PATCH', `/Groups/${groupId}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { displayName: 'Sales EMEA' } }] });
    response = await scim('GET', `/Groups${filter('displayName eq "Sales EMEA"')}`);
    assert.deepEqual(json<{ Resources: { id: string }[] }>(response).Resources.map((r) => r.id), [groupId]);
    response = await scim('PUT', `/Groups/${groupId}`, { displayName: 'Sales EMEA', members: [{ value: aliceId }] });
    assert.deepEqual(json<{ members: { value: string }[] }>(response).members.map((m) => m.value), [aliceId]);

    // 10. Deprovision: delete the user; its memberships go with it.
    assert.equal((await scim('DELETE', `/Users/${aliceId}`)).statusCode, 204);
    response = await scim('GET', `/Users/${aliceId}`);
    assert.equal(response.statusCode, 404);
    assert.equal(json(response)['status'], '404');
    assert.deepEqual(json<{ members: unknown[] }>(await scim('GET', `/Groups/${groupId}`)).members, []);

    // Every SCIM change is audited under the token's name, and the chain holds.
    const events = json<{ value: { action: string; actor: { name: string } }[] }>(await h.request('GET', '/api/v1/auditEvents?limit=1000')).value;
    assert.ok(events.some((e) => e.action === 'group.member.remove' && e.actor.name === 'administrator token'));
    assert.equal(json(await h.request('GET', '/api/v1/auditEvents/verification'))['ok'], true);
  });

  test('startIndex and count page through the list; count=0 gives only the total', async () => {
    for (const n of [1, 2, 3]) await scim('POST', '/Users', { userName: `pager${n}@contoso.com` });
    const all = json<{ totalResults: number }>(await scim('GET', '/Users'));
    const page = json<{ totalResults: number; startIndex: number; itemsPerPage: number }>(await scim('GET', '/Users?startIndex=2&count=2'));
    assert.equal(page.totalResults, all.totalResults);
    assert.equal(page.startIndex, 2);
    assert.equal(page.itemsPerPage, 2);
    const none = json<{ totalResults: number; Resources: unknown[] }>(await scim('GET', '/Users?count=0'));
    assert.equal(none.totalResults, all.totalResults);
    assert.deepEqual(none.Resources, []);
  });

  test('unsupported filters, bad PATCH operations and bad JSON are SCIM errors', async () => {
    let response = await scim('GET', `/Users${filter('userName sw "a"')}`);
    assert.equal(response.statusCode, 400);
    assert.equal(json(response)['scimType'], 'invalidFilter');
    response = await scim('GET', `/Users${filter('title eq "x"')}`);
    assert.equal(json(response)['scimType'], 'invalidFilter');
    const user = json(await scim('POST', '/Users', { userName: 'patchy@contoso.com' }));
    response = await scim('PATCH', `/Users/${user['id']}`, { schemas: [PATCH_OP], Operations: [{ op: 'explode', path: 'active' }] });
    assert.equal(response.statusCode, 400);
    response = await scim('PATCH', `/Users/${user['id']}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: 'maybe' }] });
    assert.equal(json(response)['scimType'], 'invalidValue');
    response = await scim('PATCH', `/Users/${user['id']}`, { schemas: [PATCH_OP], Operations: [{ op: 'remove' }] });
    assert.equal(json(response)['scimType'], 'noTarget');
    response = await h.request('POST', '/scim/v2/Users', { rawBody: '{"userName":', contentType: 'application/scim+json' });
    assert.equal(response.statusCode, 400);
    assert.deepEqual(json(response)['schemas'], [ERROR]);
    response = await scim('GET', '/Nope');
    assert.equal(response.statusCode, 404);
    assert.deepEqual(json(response)['schemas'], [ERROR]);
  });
});
