import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type AssignmentTarget, buildGroupIndex } from '../../src/policy/assignments.ts';
import { type EvaluablePolicy, effectiveState, evaluablePolicy } from '../../src/policy/effective-state.ts';
import { seedPolicy } from './helpers.ts';

const index = buildGroupIndex([], [
  { groupId: 'smime-users', memberId: 'alice', memberType: 'user' },
  { groupId: 'strict', memberId: 'alice', memberType: 'user' },
  { groupId: 'smime-users', memberId: 'bob', memberType: 'user' },
]);

function policies(...list: EvaluablePolicy[]): Map<string, EvaluablePolicy> {
  return new Map(list.map((p) => [p.id, p]));
}

test("the seed's assignment: the policy, its profiles and Outlook reach the group's users", () => {
  const targets: AssignmentTarget[] = [
    { kind: 'policy', id: 'p1', include: ['smime-users'], exclude: [] },
    { kind: 'app', id: 'app-outlook', include: ['smime-users'], exclude: [] },
    { kind: 'certificateProfile', id: 'scep-sign', include: ['smime-users'], exclude: [] },
    { kind: 'certificateProfile', id: 'pfx-enc', include: ['smime-users'], exclude: [] },
  ];
  const p1 = evaluablePolicy('p1', seedPolicy());
  const state = effectiveState('bob', index, targets, policies(p1));
  assert.deepEqual(state.policies, ['p1']);
  assert.deepEqual(state.certificateProfiles, ['scep-sign', 'pfx-enc']);
  assert.deepEqual(state.apps, ['app-outlook']);
  assert.deepEqual(state.appConfigurations, [{ appId: 'app-outlook', policyIds: ['p1'], settings: p1.settings }]);
  assert.deepEqual(state.conflicts, []);
  assert.deepEqual(state.warnings, []);
  const nobody = effectiveState('carol', index, targets, policies(p1));
  assert.deepEqual([nobody.policies, nobody.appConfigurations, nobody.conflicts], [[], [], []]);
});

test('two policies for Outlook: agreeing keys apply, a conflicting key is reported and applied from neither', () => {
  const lenient = evaluablePolicy('lenient', seedPolicy({ signAllMail: false, ldapHostName: 'ldap.contoso.com' }));
  const strict = evaluablePolicy('strict', seedPolicy({ signAllMail: true, ldapHostName: 'ldap.contoso.com' }));
  const targets: AssignmentTarget[] = [
    { kind: 'policy', id: 'lenient', include: ['smime-users'], exclude: [] },
    { kind: 'policy', id: 'strict', include: ['strict'], exclude: [] },
    { kind: 'app', id: 'app-outlook', include: ['smime-users'], exclude: [] },
    { kind: 'certificateProfile', id: 'scep-sign', include: ['smime-users'], exclude: [] },
    { kind: 'certificateProfile', id: 'pfx-enc', include: ['smime-users'], exclude: [] },
  ];
  const both = policies(lenient, strict);
  const alice = effectiveState('alice', index, targets, both);
  // Merges are memoised per policy map: a second evaluation gives the same answer.
  assert.deepEqual(effectiveState('alice', index, targets, both), alice);
  assert.deepEqual(alice.conflicts, [
    {
      appId: 'app-outlook',
      appConfigKey: 'com.microsoft.outlook.Mail.SMIMEEnabled.SignAllMail',
      values: [
        { policyId: 'lenient', appConfigKeyType: 'booleanType', appConfigKeyValue: 'false' },
        { policyId: 'strict', appConfigKeyType: 'booleanType', appConfigKeyValue: 'true' },
      ],
    },
  ]);
  const config = alice.appConfigurations[0]!;
  assert.deepEqual(config.policyIds, ['lenient', 'strict']);
  const keys = config.settings.map((s) => s.appConfigKey);
  assert.ok(!keys.includes('com.microsoft.outlook.Mail.SMIMEEnabled.SignAllMail'));
  assert.ok(keys.includes('com.microsoft.outlook.Mail.SMIMEEnabled'));
  assert.ok(keys.includes('com.microsoft.outlook.Mail.SMIMEEnabled.LDAPHostName'));
  // Bob gets only the lenient policy: no conflict.
  const bob = effectiveState('bob', index, targets, policies(lenient, strict));
  assert.deepEqual(bob.conflicts, []);
  assert.deepEqual(bob.appConfigurations[0]!.settings, lenient.settings);
});

test('warnings: the app or a certificate profile not assigned, an unknown policy', () => {
  const p1 = evaluablePolicy('p1', seedPolicy());
  const targets: AssignmentTarget[] = [
    { kind: 'policy', id: 'p1', include: ['smime-users'], exclude: [] },
    { kind: 'policy', id: 'deleted', include: ['smime-users'], exclude: [] },
    { kind: 'certificateProfile', id: 'scep-sign', include: ['smime-users'], exclude: [] },
  ];
  assert.deepEqual(effectiveState('bob', index, targets, policies(p1)).warnings, [
    { reason: 'policy-app-not-assigned', policyId: 'p1', targetId: 'app-outlook' },
    { reason: 'policy-profile-not-assigned', policyId: 'p1', targetId: 'pfx-enc' },
    { reason: 'policy-unknown', policyId: 'deleted' },
  ]);
});
