import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ALL_DEVICES, ALL_USERS, type AssignmentTarget, type GroupMembership, buildGroupIndex, compileAssignments, effectiveAssignments } from '../../src/policy/assignments.ts';

/** Transitive closure the slow, obvious way: walk up from every direct group. */
function naiveGroups(userId: string, memberships: readonly GroupMembership[]): Set<string> {
  const seen = new Set<string>();
  const queue = memberships.filter((m) => m.memberType === 'user' && m.memberId === userId).map((m) => m.groupId);
  while (queue.length > 0) {
    const g = queue.pop()!;
    if (seen.has(g)) continue;
    seen.add(g);
    for (const m of memberships) if (m.memberType === 'group' && m.memberId === g) queue.push(m.groupId);
  }
  seen.add(ALL_USERS);
  return seen;
}

const GROUPS = 70; // more than two 32-bit words, so word boundaries are exercised
const USERS = 12;
const group = fc.integer({ min: 0, max: GROUPS - 1 }).map((i) => `g${i}`);
const user = fc.integer({ min: 0, max: USERS - 1 }).map((i) => `u${i}`);
const membership: fc.Arbitrary<GroupMembership> = fc.oneof(
  fc.record({ groupId: group, memberId: group, memberType: fc.constant('group' as const) }),
  fc.record({ groupId: group, memberId: user, memberType: fc.constant('user' as const) }),
);
const memberships = fc.array(membership, { maxLength: 250 });

test('nested groups: the index equals a naive transitive closure on random graphs (cycles included)', () => {
  fc.assert(
    fc.property(memberships, fc.boolean(), (ms, declareGroups) => {
      const groups = declareGroups ? Array.from({ length: GROUPS }, (_, i) => ({ id: `g${i}` })) : [];
      const index = buildGroupIndex(groups, ms);
      for (let u = 0; u < USERS; u++) assert.deepEqual(index.groupsOf(`u${u}`), naiveGroups(`u${u}`, ms), `u${u}`);
    }),
    { numRuns: 300 },
  );
});

const target = fc.record({
  kind: fc.constantFrom('policy' as const, 'certificateProfile' as const, 'app' as const),
  id: fc.string({ minLength: 1, maxLength: 4 }),
  include: fc.array(fc.oneof(group, fc.constant(ALL_USERS), fc.constant('unknown-group')), { maxLength: 4 }),
  exclude: fc.array(fc.oneof(group, fc.constant(ALL_USERS)), { maxLength: 3 }),
});

test('assignments: a target applies iff an include group contains the user and no exclude group does (exclusion wins)', () => {
  fc.assert(
    fc.property(memberships, fc.array(target, { maxLength: 12 }), (ms, targets) => {
      const index = buildGroupIndex([], ms);
      const compiled = compileAssignments(index, targets);
      const narrow = buildGroupIndex([], ms, { columns: targets.flatMap((t) => [...t.include, ...t.exclude]) });
      for (let u = 0; u < USERS; u++) {
        const groups = naiveGroups(`u${u}`, ms);
        const expected = targets.filter((t) => t.include.some((g) => groups.has(g)) && !t.exclude.some((g) => groups.has(g)));
        const got = effectiveAssignments(`u${u}`, index, compiled);
        assert.deepEqual(got.policies, expected.filter((t) => t.kind === 'policy').map((t) => t.id));
        assert.deepEqual(got.certificateProfiles, expected.filter((t) => t.kind === 'certificateProfile').map((t) => t.id));
        assert.deepEqual(got.apps, expected.filter((t) => t.kind === 'app').map((t) => t.id));
        // Raw targets give the same answer (compiled on the fly and cached).
        assert.deepEqual(effectiveAssignments(`u${u}`, index, targets), got);
        // So does an index with bits only for the assigned groups.
        assert.deepEqual(effectiveAssignments(`u${u}`, narrow, targets), got);
        const columns = new Set(narrow.columnIds);
        assert.deepEqual(narrow.groupsOf(`u${u}`), new Set([...groups].filter((g) => columns.has(g))));
      }
    }),
    { numRuns: 200 },
  );
});

test('exclusion wins even when the user is included directly and excluded only through nesting', () => {
  const index = buildGroupIndex([], [
    { groupId: 'sales', memberId: 'alice', memberType: 'user' },
    { groupId: 'emea-sales', memberId: 'sales', memberType: 'group' },
    { groupId: 'contractors', memberId: 'alice', memberType: 'user' },
    { groupId: 'no-smime', memberId: 'contractors', memberType: 'group' },
  ]);
  const targets: AssignmentTarget[] = [
    { kind: 'policy', id: 'smime', include: ['sales'], exclude: ['no-smime'] },
    { kind: 'app', id: 'outlook', include: ['emea-sales'], exclude: [] },
  ];
  assert.deepEqual(effectiveAssignments('alice', index, targets), { policies: [], certificateProfiles: [], apps: ['outlook'] });
  assert.deepEqual(effectiveAssignments('bob', index, targets), { policies: [], certificateProfiles: [], apps: [] });
});

test('a nesting cycle puts every group of the cycle around each member, and terminates', () => {
  const index = buildGroupIndex([], [
    { groupId: 'a', memberId: 'b', memberType: 'group' },
    { groupId: 'b', memberId: 'c', memberType: 'group' },
    { groupId: 'c', memberId: 'a', memberType: 'group' },
    { groupId: 'top', memberId: 'b', memberType: 'group' },
    { groupId: 'c', memberId: 'carol', memberType: 'user' },
    { groupId: 'c', memberId: 'c', memberType: 'group' },
  ]);
  assert.deepEqual(index.groupsOf('carol'), new Set([ALL_USERS, 'a', 'b', 'c', 'top']));
});

test('a deep nesting chain does not overflow the stack', () => {
  const ms: GroupMembership[] = [{ groupId: 'g0', memberId: 'deep', memberType: 'user' }];
  for (let i = 0; i < 20_000; i++) ms.push({ groupId: `g${i + 1}`, memberId: `g${i}`, memberType: 'group' });
  const index = buildGroupIndex([], ms);
  assert.equal(index.groupsOf('deep').size, 20_002);
});

test('devices: their own groups and their primary user\'s count; All users and All devices', () => {
  const index = buildGroupIndex([], [
    { groupId: 'ios-devices', memberId: 'dev1', memberType: 'device' },
    { groupId: 'finance', memberId: 'alice', memberType: 'user' },
    { groupId: 'finance-with-all-devices', memberId: ALL_DEVICES, memberType: 'group' },
  ]);
  const targets: AssignmentTarget[] = [
    { kind: 'policy', id: 'to-devices', include: ['ios-devices'], exclude: [] },
    { kind: 'policy', id: 'to-finance', include: ['finance'], exclude: [] },
    { kind: 'policy', id: 'finance-but-not-ios', include: ['finance'], exclude: ['ios-devices'] },
    { kind: 'app', id: 'everyone', include: [ALL_USERS], exclude: [] },
    { kind: 'app', id: 'every-device', include: [ALL_DEVICES], exclude: [] },
    { kind: 'app', id: 'nested-all-devices', include: ['finance-with-all-devices'], exclude: [] },
  ];
  assert.deepEqual(effectiveAssignments({ userId: 'alice', deviceId: 'dev1' }, index, targets), {
    policies: ['to-devices', 'to-finance'],
    certificateProfiles: [],
    apps: ['everyone', 'every-device', 'nested-all-devices'],
  });
  assert.deepEqual(effectiveAssignments('alice', index, targets), { policies: ['to-finance', 'finance-but-not-ios'], certificateProfiles: [], apps: ['everyone'] });
  assert.deepEqual(effectiveAssignments({ deviceId: 'unknown' }, index, targets).apps, ['every-device', 'nested-all-devices']);
});

test('assignments compiled against another index are refused', () => {
  const a = buildGroupIndex([], []);
  const b = buildGroupIndex([], []);
  assert.throws(() => effectiveAssignments('u', b, compileAssignments(a, [])), /another group index/);
});

test('an index built with columns refuses assignments naming a group it has no column for', () => {
  const index = buildGroupIndex([{ id: 'a' }, { id: 'b' }], [], { columns: ['a'] });
  assert.doesNotThrow(() => compileAssignments(index, [{ kind: 'app', id: 'x', include: ['a', 'never-heard-of'], exclude: [] }]));
  assert.throws(() => compileAssignments(index, [{ kind: 'app', id: 'x', include: ['b'], exclude: [] }]), /rebuild the index/);
});
