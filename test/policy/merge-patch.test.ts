/** JSON Merge Patch (src/policy/merge-patch.ts) against RFC 7396 Appendix A, and the derived-credential settings schema. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDerivedCredentialSettings } from '../../src/policy/derived-credential.ts';
import { applyMergePatch } from '../../src/policy/merge-patch.ts';
import { refusal } from './helpers.ts';

test('RFC 7396 Appendix A: every example', () => {
  const cases: [unknown, unknown, unknown][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  for (const [target, patch, result] of cases) assert.deepEqual(applyMergePatch(target, patch), result, JSON.stringify([target, patch]));
});

test('the target is not modified, and a "__proto__" member stays a plain member', () => {
  const target = { a: { b: 1 }, c: [1] };
  const copy = structuredClone(target);
  applyMergePatch(target, { a: { b: 2, d: 3 }, c: null });
  assert.deepEqual(target, copy);
  const patched = applyMergePatch({}, JSON.parse('{"__proto__": {"polluted": true}}')) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(patched), Object.prototype);
  assert.deepEqual(Object.keys(patched), ['__proto__']);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
});

test('derived-credential settings: Graph’s fields; notification "none" stands alone; bad URLs and issuers refused', () => {
  const s = { displayName: 'Purebred', issuer: 'purebred', helpUrl: 'https://help.contoso.com/derived', notificationType: ['companyPortal', 'email'], renewalThresholdPercentage: 20 };
  assert.deepEqual(parseDerivedCredentialSettings(s), s);
  assert.deepEqual(parseDerivedCredentialSettings({ displayName: 'X', issuer: 'xTec' }), { displayName: 'X', issuer: 'xTec' });
  const refused: unknown[] = [
    { ...s, issuer: 'Purebred' },
    { ...s, issuer: 'digicert' },
    { ...s, notificationType: ['none', 'email'] },
    { ...s, notificationType: [] },
    { ...s, notificationType: 'email' },
    { ...s, renewalThresholdPercentage: 0 },
    { ...s, renewalThresholdPercentage: 100 },
    { ...s, helpUrl: 'ftp://help.contoso.com' },
    { ...s, helpUrl: 'https://user:pw@help.contoso.com/' },
    { ...s, kind: 'deviceManagementDerivedCredentialSettings' },
    { issuer: 'purebred' },
  ];
  for (const r of refused) assert.throws(() => parseDerivedCredentialSettings(r), refusal('schema-violation'), JSON.stringify(r));
});
