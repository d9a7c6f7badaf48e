import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isKeyfleetError } from '../../src/errors.ts';
import { IterationBudget, bmpPassword, defaultBudget, pkcs12Kdf, type KdfId } from '../../src/pkcs12/kdf.ts';

// Dr Stephen Henson's PKCS#12 KDF vectors (SHA-1), used by OpenSSL, Bouncy Castle and NSS tests.
const vectors: readonly [string, string, number, KdfId, string][] = [
  ['smeg', '0A58CF64530D823F', 1, 1, '8AAAE6297B6CB04642AB5B077851284EB7128F1A2A7FBCA3'],
  ['smeg', '0A58CF64530D823F', 1, 2, '79993DFE048D3B76'],
  ['smeg', '642B99AB44FB4B1F', 1, 1, 'F3A95FEC48D7711E985CFE67908C5AB79FA3D7C5CAA5D966'],
  ['smeg', '642B99AB44FB4B1F', 1, 2, 'C0A38D64A79BEA1D'],
  ['smeg', '3D83C0E4546AC140', 1, 3, '8D967D88F6CAA9D714800AB3D48051D63F73A312'],
  ['queeg', '05DEC959ACFF72F7', 1000, 1, 'ED2034E36328830FF09DF1E1A07DD357185DAC0D4F9EB3D4'],
  ['queeg', '05DEC959ACFF72F7', 1000, 2, '11DEDAD7758D4860'],
  ['queeg', '1682C0FC5B3F7EC5', 1000, 1, '483DD6E919D7DE2E8E648BA8F862F3FBFBDC2BCB2C02957F'],
];

test('the PKCS#12 KDF reproduces the published SHA-1 vectors (keys of one and two hash blocks, IVs, MAC keys)', () => {
  for (const [password, salt, iterations, id, expected] of vectors) {
    const out = pkcs12Kdf('sha1', bmpPassword(password), Buffer.from(salt, 'hex'), iterations, id, expected.length / 2, defaultBudget());
    assert.equal(Buffer.from(out).toString('hex').toUpperCase(), expected, `${password}/${salt}/${iterations}/ID ${id}`);
  }
});

test('passwords become BMPStrings with two trailing zero bytes (RFC 7292 §B.1), surrogate pairs beyond the BMP', () => {
  assert.equal(Buffer.from(bmpPassword('smeg')).toString('hex'), '0073006d006500670000');
  assert.equal(Buffer.from(bmpPassword('')).toString('hex'), '0000');
  assert.equal(Buffer.from(bmpPassword('é🔑')).toString('hex'), '00e9d83ddd110000');
});

test('the iteration budget refuses an oversized count before doing any work', () => {
  const started = performance.now();
  assert.throws(
    () => pkcs12Kdf('sha1', bmpPassword('x'), Buffer.alloc(8), 2 ** 31 - 1, 1, 24, defaultBudget()),
    (e) => isKeyfleetError(e, 'KF_KEY_INVALID') && /exceeds the limit/.test(e.message),
  );
  assert.ok(performance.now() - started < 100);
  const budget = new IterationBudget(1000, 2500);
  budget.charge(1000, 2);
  assert.throws(() => budget.charge(600), (e) => isKeyfleetError(e, 'KF_KEY_INVALID') && /in total/.test(e.message));
  assert.throws(() => budget.charge(0), (e) => isKeyfleetError(e, 'KF_KEY_INVALID'));
});
