/** DirectoryStore behaviour (src/store/directory.ts), part of the conformance suite. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { GroupRecord, MemberRef, UserRecord } from '../../src/store/directory.ts';
import type { TenantStore } from '../../src/store/store.ts';
import { rejectsWith, type SuiteContext } from './suite.ts';
import { T0, at } from './fixtures.ts';

export function userRecord(id: string, overrides: Partial<UserRecord> = {}): UserRecord {
  return {
    id,
    userPrincipalName: `${id}@example.com`,
    mail: `${id}@example.com`,
    displayName: `User ${id}`,
    isExchangeOnline: true,
    accountEnabled: true,
    externalId: undefined,
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

export function groupRecord(id: string, overrides: Partial<GroupRecord> = {}): GroupRecord {
  return { id, displayName: `Group ${id}`, description: undefined, externalId: undefined, createdAt: T0, updatedAt: T0, ...overrides };
}

const user = (id: string): MemberRef => ({ type: 'user', id });
const group = (id: string): MemberRef => ({ type: 'group', id });

async function all(t: TenantStore, list: (cursor: string | undefined) => Promise<{ items: MemberRef[]; nextCursor: string | undefined }>): Promise<MemberRef[]> {
  const out: MemberRef[] = [];
  let cursor: string | undefined;
  do {
    const page = await list(cursor);
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  void t;
  return out;
}

export function directoryConformance(ctx: SuiteContext): void {
  describe('DirectoryStore', () => {
    test('users round-trip; UPNs are unique per tenant regardless of case', async () => {
      const t = await ctx.newTenant();
      const alice = userRecord('alice', { externalId: 'ext-1', isExchangeOnline: false, accountEnabled: false });
      const bob = userRecord('bob', { mail: undefined });
      await t.directory.putUser(alice);
      await t.directory.putUser(bob);
      assert.deepEqual(await t.directory.getUser('alice'), alice);
      assert.deepEqual(await t.directory.getUser('bob'), bob);
      assert.equal(await t.directory.getUser('carol'), undefined);
      await rejectsWith(t.directory.putUser(userRecord('other', { userPrincipalName: 'ALICE@Example.com' })), 'KF_CONFLICT');
      await rejectsWith(t.directory.putUser(userRecord('alice', { userPrincipalName: 'x@example.com' })), 'KF_CONFLICT');
      const changed = { ...alice, displayName: 'Alice A.', mail: undefined, updatedAt: at(1) };
      await t.directory.replaceUser(changed);
      assert.deepEqual(await t.directory.getUser('alice'), changed);
      await rejectsWith(t.directory.replaceUser({ ...bob, userPrincipalName: 'Alice@example.com' }), 'KF_CONFLICT');
      await rejectsWith(t.directory.replaceUser(userRecord('nobody')), 'KF_NOT_FOUND');
      assert.equal(await t.directory.deleteUser('bob'), true);
      assert.equal(await t.directory.deleteUser('bob'), false);
    });

    test('listUsers pages by an opaque cursor in a stable order, and filters by equality', async () => {
      const t = await ctx.newTenant();
      const ids = Array.from({ length: 7 }, (_, i) => `u${i}`);
      for (const id of [...ids].reverse()) await t.directory.putUser(userRecord(id, { externalId: `x-${id}`, displayName: id === 'u3' ? 'Same' : id === 'u5' ? 'Same' : id }));
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await t.directory.listUsers({ limit: 3, ...(cursor === undefined ? {} : { cursor }) });
        seen.push(...page.items.map((u) => u.id));
        cursor = page.nextCursor;
        pages++;
      } while (cursor !== undefined);
      assert.deepEqual(seen, ids);
      assert.equal(pages, 3);
      assert.equal(await t.directory.countUsers(), 7);
      const byUpn = await t.directory.listUsers({ filter: { attribute: 'userPrincipalName', value: 'U4@EXAMPLE.COM' } });
      assert.deepEqual(byUpn.items.map((u) => u.id), ['u4']);
      assert.deepEqual((await t.directory.listUsers({ filter: { attribute: 'externalId', value: 'x-u2' } })).items.map((u) => u.id), ['u2']);
      assert.deepEqual((await t.directory.listUsers({ filter: { attribute: 'displayName', value: 'Same' } })).items.map((u) => u.id), ['u3', 'u5']);
      assert.equal(await t.directory.countUsers({ attribute: 'displayName', value: 'Same' }), 2);
      assert.deepEqual((await t.directory.listUsers({ offset: 5, limit: 10 })).items.map((u) => u.id), ['u5', 'u6']);
      await rejectsWith(t.directory.listUsers({ cursor: 'not a cursor!' }), 'KF_USAGE');
      await rejectsWith(t.directory.listUsers({ limit: 0 }), 'KF_USAGE');
    });

    test('listUserRefs: every user of the tenant, in id order, with only what evaluation needs', async () => {
      const t = await ctx.newTenant();
      assert.deepEqual(await t.directory.listUserRefs(), []);
      for (const id of ['u3', 'u0', 'u2', 'u1']) {
        await t.directory.putUser(userRecord(id, { userPrincipalName: `${id.toUpperCase()}@Example.com`, isExchangeOnline: id !== 'u2', displayName: `long name ${id}`, externalId: `x-${id}` }));
      }
      await (await ctx.newTenant()).directory.putUser(userRecord('u9'));
      assert.deepEqual(await t.directory.listUserRefs(), [
        { id: 'u0', userPrincipalName: 'U0@Example.com', isExchangeOnline: true },
        { id: 'u1', userPrincipalName: 'U1@Example.com', isExchangeOnline: true },
        { id: 'u2', userPrincipalName: 'U2@Example.com', isExchangeOnline: false },
        { id: 'u3', userPrincipalName: 'U3@Example.com', isExchangeOnline: true },
      ]);
      await t.directory.replaceUser(userRecord('u2', { userPrincipalName: 'renamed@example.com', isExchangeOnline: true }));
      await t.directory.deleteUser('u0');
      assert.deepEqual((await t.directory.listUserRefs()).map((u) => [u.id, u.userPrincipalName, u.isExchangeOnline]), [
        ['u1', 'U1@Example.com', true],
        ['u2', 'renamed@example.com', true],
        ['u3', 'U3@Example.com', true],
      ]);
    });

    test('SQL metacharacters and non-ASCII text are stored as data', async () => {
      const t = await ctx.newTenant();
      const nasty = `Robert'); DROP TABLE users;-- "%_\\ ü 名前`;
      const u = userRecord(`id'--`, { displayName: nasty, userPrincipalName: `o'brien%_@example.com`, externalId: nasty });
      await t.directory.putUser(u);
      assert.deepEqual(await t.directory.getUser(`id'--`), u);
      assert.deepEqual((await t.directory.listUsers({ filter: { attribute: 'externalId', value: nasty } })).items, [u]);
      // LIKE wildcards in a value do not match other rows.
      await t.directory.putUser(userRecord('plain'));
      assert.deepEqual((await t.directory.listUsers({ filter: { attribute: 'userPrincipalName', value: '%' } })).items, []);
    });

    test('groups round-trip and filter', async () => {
      const t = await ctx.newTenant();
      const g = groupRecord('g1', { description: 'desc', externalId: 'e1' });
      await t.directory.putGroup(g);
      await t.directory.putGroup(groupRecord('g2'));
      assert.deepEqual(await t.directory.getGroup('g1'), g);
      await rejectsWith(t.directory.putGroup(groupRecord('g1')), 'KF_CONFLICT');
      assert.deepEqual((await t.directory.listGroups({ filter: { attribute: 'externalId', value: 'e1' } })).items, [g]);
      assert.equal(await t.directory.countGroups(), 2);
      await t.directory.replaceGroup({ ...g, displayName: 'renamed', description: undefined });
      assert.equal((await t.directory.getGroup('g1'))?.displayName, 'renamed');
      assert.equal((await t.directory.getGroup('g1'))?.description, undefined);
      await rejectsWith(t.directory.replaceGroup(groupRecord('nope')), 'KF_NOT_FOUND');
    });

    test('memberships: direct and transitive members, memberOf, idempotent adds, cascade on delete', async () => {
      const t = await ctx.newTenant();
      for (const id of ['a', 'b', 'c', 'd']) await t.directory.putUser(userRecord(id));
      for (const id of ['top', 'mid', 'leaf', 'other']) await t.directory.putGroup(groupRecord(id));
      // top ⊃ mid ⊃ leaf; top ⊃ leaf too (a diamond); users at every level.
      assert.equal(await t.directory.addMember('top', group('mid')), true);
      assert.equal(await t.directory.addMember('mid', group('leaf')), true);
      assert.equal(await t.directory.addMember('top', group('leaf')), true);
      assert.equal(await t.directory.addMember('top', user('a')), true);
      assert.equal(await t.directory.addMember('mid', user('b')), true);
      assert.equal(await t.directory.addMember('leaf', user('c')), true);
      assert.equal(await t.directory.addMember('leaf', user('a')), true);
      assert.equal(await t.directory.addMember('leaf', user('a')), false);
      assert.deepEqual((await t.directory.listMembers('top')).items, [group('leaf'), group('mid'), user('a')]);
      const transitive = await all(t, (cursor) => t.directory.listTransitiveMembers('top', { limit: 2, ...(cursor === undefined ? {} : { cursor }) }));
      assert.deepEqual(transitive, [group('leaf'), group('mid'), user('a'), user('b'), user('c')]);
      assert.deepEqual(await t.directory.listTransitiveGroupsOf(user('c')), ['leaf', 'mid', 'top']);
      assert.deepEqual(await t.directory.listTransitiveGroupsOf(group('leaf')), ['mid', 'top']);
      assert.deepEqual(await t.directory.listTransitiveGroupsOf(user('d')), []);

      assert.equal(await t.directory.removeMember('top', user('a')), true);
      assert.equal(await t.directory.removeMember('top', user('a')), false);
      // a is still reachable through leaf.
      assert.ok((await t.directory.listTransitiveMembers('top')).items.some((m) => m.id === 'a'));
      assert.equal(await t.directory.deleteUser('c'), true);
      assert.deepEqual((await t.directory.listMembers('leaf')).items, [user('a')]);
      assert.equal(await t.directory.deleteGroup('mid'), true);
      assert.deepEqual((await t.directory.listMembers('top')).items, [group('leaf')]);
    });

    test('a membership that would close a cycle is KF_GROUP_CYCLE and nothing is written; unknown members are KF_NOT_FOUND', async () => {
      const t = await ctx.newTenant();
      for (const id of ['g1', 'g2', 'g3']) await t.directory.putGroup(groupRecord(id));
      await t.directory.putUser(userRecord('u'));
      await t.directory.addMember('g1', group('g2'));
      await t.directory.addMember('g2', group('g3'));
      await rejectsWith(t.directory.addMember('g3', group('g1')), 'KF_GROUP_CYCLE');
      await rejectsWith(t.directory.addMember('g2', group('g1')), 'KF_GROUP_CYCLE');
      await rejectsWith(t.directory.addMember('g1', group('g1')), 'KF_GROUP_CYCLE');
      assert.deepEqual((await t.directory.listMembers('g3')).items, []);
      await rejectsWith(t.directory.addMember('g1', user('ghost')), 'KF_NOT_FOUND');
      await rejectsWith(t.directory.addMember('g1', group('ghost')), 'KF_NOT_FOUND');
      await rejectsWith(t.directory.addMember('ghost', user('u')), 'KF_NOT_FOUND');
    });

    test('concurrent opposite adds cannot both succeed (no cycle through a race)', async () => {
      const t = await ctx.newTenant();
      await t.directory.putGroup(groupRecord('x'));
      await t.directory.putGroup(groupRecord('y'));
      const results = await Promise.allSettled([t.directory.addMember('x', group('y')), t.directory.addMember('y', group('x'))]);
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, JSON.stringify(results.map((r) => r.status)));
    });
  });
}
