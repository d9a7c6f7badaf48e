/**
 * Bad input: wrong passwords, truncated and garbage files, hostile iteration
 * counts, structures we do not support. Every failure is a coded
 * KeyfleetError, fast, and never a key made of garbage.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { children, parse, raw } from '../../src/asn1/reader.ts';
import * as der from '../../src/asn1/writer.ts';
import { OID } from '../../src/asn1/oids.ts';
import { KeyfleetError } from '../../src/errors.ts';
import { inspectPkcs12, readPkcs12, writePkcs12 } from '../../src/pkcs12/index.ts';
import { encodeSafeBag } from '../../src/pkcs12/bags.ts';
import { P12 } from '../../src/pkcs12/oids.ts';
import { type Fixtures, makeFixtures, pkcs8 } from './fixtures.ts';

let f: Fixtures;
let modern: Uint8Array;
let legacy: Uint8Array;
before(async () => {
  f = await makeFixtures();
  const entries = [{ key: f.bob.key, certificate: f.bob.cert, chain: [f.ca.cert], friendlyName: 'bob' }];
  modern = writePkcs12(entries, 'pw', { iterations: 100 });
  legacy = writePkcs12(entries, 'pw', { iterations: 100, profile: 'legacy' });
});
after(() => f.cleanup());

const coded = (code?: string, message?: RegExp) => (e: unknown) => e instanceof KeyfleetError && (code === undefined || e.code === code) && (message === undefined || message.test(e.message));

/** The PFX with its MacData replaced. */
function withMacData(pfx: Uint8Array, macData: Uint8Array): Uint8Array {
  const [version, authSafe] = children(parse(pfx));
  return der.sequence(raw(version!), raw(authSafe!), macData);
}

describe('wrong passwords', () => {
  test('a wrong password fails the MAC with KF_PKCS12_BAD_PASSWORD "wrong password or damaged PKCS#12 file"', () => {
    for (const file of [modern, legacy]) {
      for (const password of ['PW', 'pw ', '', 'p']) assert.throws(() => readPkcs12(file, password), coded('KF_PKCS12_BAD_PASSWORD', /^wrong password or damaged PKCS#12 file$/));
    }
  });

  test('a damaged MAC value reads as the same error (the two cannot be told apart)', () => {
    const damaged = Buffer.from(modern);
    damaged[damaged.length - 30]! ^= 1; // inside the HMAC value near the end
    assert.throws(() => readPkcs12(damaged, 'pw'), coded('KF_PKCS12_BAD_PASSWORD', /wrong password/));
  });
});

describe('malformed input', () => {
  test('empty, garbage, a certificate, PEM text and truncations give coded errors', () => {
    const inputs: [string, Uint8Array][] = [
      ['empty', new Uint8Array(0)],
      ['garbage', Buffer.from('this is not a PKCS#12 file at all')],
      ['a certificate', f.bob.cert.der],
      ['PEM', Buffer.from('-----BEGIN PKCS12-----\nAAAA\n-----END PKCS12-----\n')],
      ['a bare SEQUENCE', Uint8Array.of(0x30, 0)],
      ...[1, 2, 10, 100, modern.length - 1].map((n): [string, Uint8Array] => [`first ${n} bytes`, modern.subarray(0, n)]),
      ['trailing data', Buffer.concat([modern, Uint8Array.of(0)])],
    ];
    for (const [what, bytes] of inputs) {
      assert.throws(() => readPkcs12(bytes, 'pw'), coded(), what);
      assert.throws(() => inspectPkcs12(bytes), coded(), `inspect ${what}`);
    }
    assert.throws(() => readPkcs12(Buffer.from('junk'), 'pw'), coded('KF_ASN1_MALFORMED'));
  });

  test('random truncations and byte changes never crash, hang or yield a different key', () => {
    const original = pkcs8(f.bob.key);
    fc.assert(
      fc.property(fc.constantFrom(modern, legacy), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean(), (file, at, value, truncate) => {
        const i = at % file.length;
        const mutated = truncate ? file.subarray(0, i) : Buffer.from(file).fill(value, i, i + 1);
        try {
          const p12 = readPkcs12(mutated, 'pw', { maxTotalIterations: 100_000 });
          // Some bytes are not covered by the MAC (the outer headers, MacData itself): then the contents must be intact.
          assert.deepEqual(pkcs8(p12.keys[0]!.key), original);
        } catch (e) {
          if (!(e instanceof KeyfleetError)) throw e;
        }
        try {
          inspectPkcs12(mutated);
        } catch (e) {
          if (!(e instanceof KeyfleetError)) throw e;
        }
      }),
      { numRuns: 300 },
    );
  });

  test('unsupported structures are named, not misread: PFX version, public-key integrity, unknown MAC', () => {
    const [, authSafe, macData] = children(parse(modern));
    assert.throws(() => readPkcs12(der.sequence(der.integer(2), raw(authSafe!), raw(macData!)), 'pw'), coded('KF_CMS_UNSUPPORTED', /version 2/));
    const signed = der.sequence(der.oid(OID.signedData), der.explicit(0, der.sequence(der.integer(1))));
    assert.throws(() => readPkcs12(der.sequence(der.integer(3), signed), 'pw'), coded('KF_CMS_UNSUPPORTED', /public-key integrity/));
    const md5Mac = der.sequence(der.sequence(der.sequence(der.oid(OID.md5), der.nullValue()), der.octetString(Buffer.alloc(16))), der.octetString(Buffer.alloc(8)));
    assert.throws(() => readPkcs12(withMacData(modern, md5Mac), 'pw'), coded('KF_CMS_UNSUPPORTED'));
  });

  test('safeContentsBag nesting is bounded', () => {
    let contents = der.sequence();
    for (let i = 0; i < 10; i++) contents = der.sequence(encodeSafeBag(P12.safeContentsBag, contents));
    const data = (c: Uint8Array) => der.sequence(der.oid(OID.data), der.explicit(0, der.octetString(c)));
    const pfx = der.sequence(der.integer(3), data(der.sequence(data(contents))));
    assert.throws(() => readPkcs12(pfx, 'pw'), coded('KF_ASN1_LIMIT'));
    assert.throws(() => inspectPkcs12(pfx), coded('KF_ASN1_LIMIT'));
  });
});

describe('hostile iteration counts', () => {
  test('a MAC asking for 2^31 − 1 iterations is refused at once', () => {
    const [, , macData] = children(parse(modern));
    const [digestInfo, salt] = children(macData!);
    const hostile = withMacData(modern, der.sequence(raw(digestInfo!), raw(salt!), der.integer(2 ** 31 - 1)));
    const started = performance.now();
    assert.throws(() => readPkcs12(hostile, 'pw'), coded('KF_KEY_INVALID', /exceeds the limit of 10000000/));
    assert.ok(performance.now() - started < 500, 'no key derivation was attempted');
    assert.equal(inspectPkcs12(hostile).iterations, 2 ** 31 - 1, 'inspect reports it without deriving anything');
  });

  test('the limits are options: per derivation and for the whole file', () => {
    assert.throws(() => readPkcs12(modern, 'pw', { maxIterations: 99 }), coded('KF_KEY_INVALID', /exceeds the limit of 99/));
    // The MAC and two PBKDF2 derivations of 100 iterations each (AES-256 keys are one SHA-256 block).
    assert.throws(() => readPkcs12(modern, 'pw', { maxTotalIterations: 250 }), coded('KF_KEY_INVALID', /in total/));
    assert.equal(readPkcs12(modern, 'pw', { maxTotalIterations: 300 }).keys.length, 1);
  });

  test('a non-positive iteration count is refused', () => {
    const [, , macData] = children(parse(modern));
    const [digestInfo, salt] = children(macData!);
    for (const n of [0, -5]) {
      assert.throws(() => readPkcs12(withMacData(modern, der.sequence(raw(digestInfo!), raw(salt!), der.integer(n))), 'pw'), coded('KF_KEY_INVALID'));
    }
  });
});
