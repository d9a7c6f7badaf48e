import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CertificateIssuanceState, CertificateIssuanceStates, allowedNextStates, isInstalled, nextState } from '../../src/policy/certificate-state.ts';
import { refusal } from './helpers.ts';

function walk(path: readonly CertificateIssuanceState[], source?: 'scep' | 'pkcsImported'): CertificateIssuanceState {
  let s: CertificateIssuanceState | undefined;
  for (const e of path) s = nextState(s, e, source);
  return s!;
}

test('SCEP: request, challenge, issuance, installation, renewal, revocation', () => {
  const installed = walk(['requested', 'challengeIssued', 'challengeValidationSucceeded', 'issuePending', 'issued', 'responsePending', 'enrollmentSucceeded', 'installed'], 'scep');
  assert.ok(isInstalled(installed));
  assert.equal(walk(['requested', 'challengeIssued', 'challengeValidationSucceeded', 'issued', 'enrollmentSucceeded', 'installed', 'renewalRequested', 'challengeIssued', 'challengeValidationSucceeded', 'issued', 'enrollmentSucceeded', 'renewVerified', 'revoked', 'removedFromCollection', 'deleted'], 'scep'), 'deleted');
});

test('PKCS-imported: no enrolment, removed rather than revoked, never renewed', () => {
  assert.equal(walk(['requested', 'enrollmentNotNeeded', 'installed', 'removedFromCollection', 'deleted'], 'pkcsImported'), 'deleted');
  assert.throws(() => nextState('installed', 'revoked', 'pkcsImported'), refusal('certificate-transition-impossible'));
  assert.throws(() => nextState('installed', 'renewalRequested', 'pkcsImported'), refusal('certificate-transition-impossible'));
  assert.throws(() => nextState('requested', 'challengeIssued', 'pkcsImported'), refusal('certificate-transition-impossible'));
  assert.throws(() => nextState('requested', 'enrollmentNotNeeded', 'scep'), refusal('certificate-transition-impossible'));
});

test('failures can be retried or given up', () => {
  for (const failure of ['challengeIssueFailed', 'requestCreationFailed', 'requestSubmitFailed', 'challengeValidationFailed', 'issueFailed'] as const) {
    assert.deepEqual(allowedNextStates(failure), ['requested', 'deleted'], failure);
  }
  assert.equal(walk(['requested', 'challengeIssued', 'challengeValidationFailed', 'requested', 'challengeIssued', 'challengeValidationSucceeded', 'issueFailed', 'requested']), 'requested');
});

test('impossible transitions are refused', () => {
  const impossible: [CertificateIssuanceState | undefined, CertificateIssuanceState][] = [
    [undefined, 'installed'],
    [undefined, 'challengeIssued'],
    ['requested', 'installed'],
    ['challengeIssued', 'issued'],
    ['deleted', 'installed'],
    ['revoked', 'installed'],
    ['installed', 'installed'],
    ['issued', 'challengeIssued'],
  ];
  for (const [from, to] of impossible) assert.throws(() => nextState(from, to), refusal('certificate-transition-impossible'), `${from} → ${to}`);
  assert.throws(() => nextState('installed', 'gone' as CertificateIssuanceState), refusal('certificate-transition-impossible'));
});

test("every state of Graph's enum is reachable from a new request, and none is a dead end", () => {
  for (const source of [undefined, 'scep', 'pkcsImported'] as const) {
    const seen = new Set<CertificateIssuanceState>();
    const queue: (CertificateIssuanceState | undefined)[] = [undefined];
    while (queue.length > 0) {
      for (const s of allowedNextStates(queue.pop(), source)) if (!seen.has(s)) queue.push(seen.add(s) && s);
    }
    for (const s of seen) assert.ok(allowedNextStates(s, source).length > 0, `${s} is a dead end for ${source}`);
    const expected =
      source === undefined
        ? [...CertificateIssuanceStates]
        : source === 'scep'
          ? CertificateIssuanceStates.filter((s) => s !== 'enrollmentNotNeeded')
          : ['requested', 'enrollmentNotNeeded', 'installed', 'installFailed', 'removedFromCollection', 'deleted', 'deleteFailed'];
    assert.deepEqual([...seen].sort(), expected.sort(), String(source));
  }
  assert.equal(CertificateIssuanceStates.length, 22);
});
