/**
 * writePkcs12 → readPkcs12 / inspectPkcs12: several identities per file,
 * pairing by localKeyId and by public key, attributes, profiles, and the
 * writer's refusals.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey } from 'node:crypto';
import * as der from '../../src/asn1/writer.ts';
import { OID } from '../../src/asn1/oids.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { inspectPkcs12, readPkcs12, writePkcs12 } from '../../src/pkcs12/index.ts';
import { encodeCertBag, encodeSafeBag } from '../../src/pkcs12/bags.ts';
import { P12 } from '../../src/pkcs12/oids.ts';
import { type Fixtures, makeFixtures, pkcs8 } from './fixtures.ts';

let f: Fixtures;
before(async () => {
  f = await makeFixtures();
});
after(() => f.cleanup());

const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest();

/** A deterministic stand-in for randomBytes. */
function counter(): (n: number) => Uint8Array {
  let next = 0;
  return (n) => Uint8Array.from({ length: n }, () => next++ & 0xff);
}

describe('writePkcs12 then readPkcs12', () => {
  for (const profile of ['modern', 'legacy'] as const) {
    test(`${profile}: a history of three RSA identities and an EC one come back paired, named and in order`, () => {
      // RSA and EC keys in one file also guard the pairing against Node's KeyObject.equals
      // leaving "different key types" on OpenSSL's error queue (see src/pkcs12/public-key.ts).
      const ids = [...f.alice, f.bob];
      const der = writePkcs12(
        ids.map((id, i) => ({ key: id.key, certificate: id.cert, chain: [f.ca.cert], ...(i < 3 ? { friendlyName: `alice ${i + 1}` } : {}) })),
        'pw',
        { profile, friendlyName: 'fallback name' },
      );
      const p12 = readPkcs12(der, 'pw');
      assert.deepEqual(
        p12.keys.map((k) => [pkcs8(k.key), k.certificate?.der, k.friendlyName, Buffer.from(k.localKeyId ?? [])]),
        ids.map((id, i) => [pkcs8(id.key), id.cert.der, i < 3 ? `alice ${i + 1}` : 'fallback name', sha1(id.cert.der)]),
      );
      assert.deepEqual(
        p12.certificates.map((c) => c.fingerprint256),
        [...ids, f.ca].map((id) => id.cert.fingerprint256),
        'every certificate once; the CA shared by all entries is written once',
      );
      const scheme = profile === 'modern' ? 'PBES2/PBKDF2-hmacWithSHA256/aes256-CBC' : 'pbeWithSHAAnd3-KeyTripleDES-CBC';
      assert.equal(p12.macAlgorithm, profile === 'modern' ? 'sha256' : 'sha1');
      assert.deepEqual(p12.encryption, [scheme]);
      assert.deepEqual(inspectPkcs12(der), {
        macAlgorithm: p12.macAlgorithm,
        iterations: 2048,
        bags: [
          { type: 'encryptedData', encryption: scheme, iterations: 2048 },
          ...ids.map((_, i) => ({ type: 'pkcs8ShroudedKeyBag', encryption: scheme, iterations: 2048, friendlyName: i < 3 ? `alice ${i + 1}` : 'fallback name' })),
        ],
      });
    });
  }

  test('a key certified twice is paired with each certificate by localKeyId', () => {
    const der = writePkcs12(
      [
        { key: f.alice[2].key, certificate: f.aliceRekeyless.cert, friendlyName: 'renewed' },
        { key: f.alice[2].key, certificate: f.alice[2].cert, friendlyName: 'original' },
      ],
      'pw',
    );
    const p12 = readPkcs12(der, 'pw');
    assert.deepEqual(
      p12.keys.map((k) => [k.friendlyName, k.certificate?.fingerprint256]),
      [
        ['renewed', f.aliceRekeyless.cert.fingerprint256],
        ['original', f.alice[2].cert.fingerprint256],
      ],
    );
  });

  test('friendly names outside ASCII survive; without one, none is written', () => {
    const named = readPkcs12(writePkcs12([{ key: f.bob.key, certificate: f.bob.cert, friendlyName: 'Zoë 🔑 Ñandú' }], ''), '');
    assert.equal(named.keys[0]!.friendlyName, 'Zoë 🔑 Ñandú');
    const unnamed = readPkcs12(writePkcs12([{ key: f.bob.key, certificate: f.bob.cert }], 'pw'), 'pw');
    assert.equal(unnamed.keys[0]!.friendlyName, undefined);
  });

  test('output is a function of the injected randomness, and fresh salts differ by default', () => {
    const entries = [{ key: f.bob.key, certificate: f.bob.cert }];
    assert.deepEqual(writePkcs12(entries, 'pw', { random: counter() }), writePkcs12(entries, 'pw', { random: counter() }));
    assert.notDeepEqual(writePkcs12(entries, 'pw'), writePkcs12(entries, 'pw'));
  });

  test('iterations are configurable, and a count of 1 is left to its DEFAULT in MacData', () => {
    for (const iterations of [1, 5000]) {
      const der = writePkcs12([{ key: f.bob.key, certificate: f.bob.cert }], 'pw', { iterations, profile: 'legacy' });
      assert.equal(inspectPkcs12(der).iterations, iterations);
      assert.equal(readPkcs12(der, 'pw').keys.length, 1);
    }
  });

  test('the writer refuses a key that is not the certificate’s, a public key, nothing to write and bad iteration counts', () => {
    const mismatch = () => writePkcs12([{ key: f.alice[0].key, certificate: f.alice[1].cert }], 'pw');
    assert.throws(mismatch, (e) => isKeyfleetError(e, 'KF_KEY_INVALID') && /does not belong/.test(e.message));
    const crossType = () => writePkcs12([{ key: f.bob.key, certificate: f.alice[0].cert }], 'pw');
    assert.throws(crossType, (e) => isKeyfleetError(e, 'KF_KEY_INVALID'));
    assert.throws(() => writePkcs12([{ key: createPublicKey(f.bob.key), certificate: f.bob.cert }], 'pw'), (e) => isKeyfleetError(e, 'KF_KEY_INVALID'));
    assert.throws(() => writePkcs12([], 'pw'), (e) => isKeyfleetError(e, 'KF_USAGE'));
    for (const iterations of [0, 1.5, 1e9]) {
      assert.throws(() => writePkcs12([{ key: f.bob.key, certificate: f.bob.cert }], 'pw', { iterations }), (e) => isKeyfleetError(e, 'KF_USAGE'));
    }
  });
});

describe('pairing in files from other producers', () => {
  /** An unencrypted PFX without a MAC, from bags built here (some producers omit attributes). */
  function plainPfx(bags: Uint8Array[]): Uint8Array {
    const data = (content: Uint8Array) => der.sequence(der.oid(OID.data), der.explicit(0, der.octetString(content)));
    return der.sequence(der.integer(3), data(der.sequence(data(der.sequence(...bags)))));
  }
  const keyBag = (key: Fixtures['bob']['key'], attrs = {}) => encodeSafeBag(P12.keyBag, pkcs8(key), attrs);
  const certBag = (cert: Fixtures['bob']['cert'], attrs = {}) => encodeSafeBag(P12.certBag, encodeCertBag(cert.der), attrs);

  test('without localKeyId, a key is paired with the certificate for its public key', () => {
    const p12 = readPkcs12(plainPfx([certBag(f.alice[0].cert), certBag(f.bob.cert), keyBag(f.bob.key), keyBag(f.alice[0].key)]), 'any');
    assert.deepEqual(
      p12.keys.map((k) => k.certificate?.fingerprint256),
      [f.bob.cert.fingerprint256, f.alice[0].cert.fingerprint256],
    );
  });

  test('a localKeyId that points at another key’s certificate does not pair them', () => {
    const id = { localKeyId: Uint8Array.of(1) };
    const p12 = readPkcs12(plainPfx([certBag(f.alice[0].cert, id), certBag(f.bob.cert), keyBag(f.bob.key, id)]), 'any');
    assert.equal(p12.keys[0]!.certificate?.fingerprint256, f.bob.cert.fingerprint256);
  });

  test('bags inside a safeContentsBag are read like any others', () => {
    const p12 = readPkcs12(plainPfx([encodeSafeBag(P12.safeContentsBag, der.sequence(certBag(f.bob.cert), keyBag(f.bob.key, { friendlyName: 'nested' })))]), 'any');
    assert.equal(p12.keys[0]!.friendlyName, 'nested');
    assert.equal(p12.keys[0]!.certificate?.fingerprint256, f.bob.cert.fingerprint256);
  });

  test('a key without its certificate is returned unpaired, and certificates alone are listed', () => {
    const p12 = readPkcs12(plainPfx([keyBag(f.bob.key), certBag(f.ca.cert)]), 'any');
    assert.equal(p12.keys[0]!.certificate, undefined);
    assert.deepEqual(p12.certificates.map((c) => c.fingerprint256), [f.ca.cert.fingerprint256]);
  });
});
