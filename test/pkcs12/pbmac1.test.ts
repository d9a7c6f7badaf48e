/**
 * PBMAC1 (RFC 9579) against the RFC's own test file A.1, and the invalid
 * files of A.4–A.6 rebuilt from it (same changes: iteration count, salt,
 * missing keyLength), so no second opaque blob is needed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { children, parse, raw } from '../../src/asn1/reader.ts';
import * as der from '../../src/asn1/writer.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { inspectPkcs12, readPkcs12 } from '../../src/pkcs12/index.ts';
import { P12 } from '../../src/pkcs12/oids.ts';
import { rfc9579A1 } from './rfc9579-vectors.ts';

const a1 = Buffer.from(rfc9579A1, 'base64');

test('RFC 9579 A.1 (PBMAC1 with PBKDF2-HMAC-SHA-256) opens with its password and pairs key and certificate', () => {
  const p12 = readPkcs12(a1, '1234');
  assert.equal(p12.macAlgorithm, 'PBMAC1/PBKDF2-hmacWithSHA256/hmacWithSHA256');
  assert.deepEqual(p12.encryption, ['PBES2/PBKDF2-hmacWithSHA256/aes256-CBC']);
  assert.equal(p12.keys.length, 1);
  assert.equal(p12.keys[0]!.key.asymmetricKeyType, 'rsa');
  assert.ok(p12.keys[0]!.certificate, 'the key has its certificate');
  assert.equal(p12.certificates.length, 1);
  assert.deepEqual(inspectPkcs12(a1).macAlgorithm, 'PBMAC1/PBKDF2-hmacWithSHA256/hmacWithSHA256');
  assert.throws(() => readPkcs12(a1, '12345'), (e) => isKeyfleetError(e, 'KF_PKCS12_BAD_PASSWORD') && /wrong password/.test(e.message));
});

/** A.1 with its PBMAC1 PBKDF2 parameters replaced (the MAC value kept). */
function withPbkdf2Params(params: { salt?: Uint8Array; iterations?: number; keyLength?: number | null }): Uint8Array {
  const [version, authSafe, macData] = children(parse(a1));
  const [digestInfo, macSalt, macIterations] = children(macData!);
  const [alg, digest] = children(digestInfo!);
  const [, pbmac1Params] = children(alg!);
  const [, macScheme] = children(pbmac1Params!);
  const keyLength = params.keyLength === undefined ? 32 : params.keyLength;
  const pbkdf2 = der.sequence(
    der.oid(P12.pbkdf2),
    der.sequence(
      der.octetString(params.salt ?? Buffer.from('6f473c38b02e3173', 'hex')),
      der.integer(params.iterations ?? 2048),
      ...(keyLength === null ? [] : [der.integer(keyLength)]),
      der.sequence(der.oid(P12.hmacWithSHA256), der.nullValue()),
    ),
  );
  const newAlg = der.sequence(der.oid(P12.pbmac1), der.sequence(pbkdf2, raw(macScheme!)));
  return der.sequence(raw(version!), raw(authSafe!), der.sequence(der.sequence(newAlg, raw(digest!)), raw(macSalt!), raw(macIterations!)));
}

test('the rebuilt A.1 with unchanged parameters still verifies (the rebuilding is faithful)', () => {
  assert.equal(readPkcs12(withPbkdf2Params({}), '1234').keys.length, 1);
});

test('RFC 9579 A.4 and A.5: a changed iteration count or salt fails the MAC', () => {
  for (const changed of [{ iterations: 2049 }, { salt: Buffer.from('6f473c38b02e3174', 'hex') }]) {
    assert.throws(() => readPkcs12(withPbkdf2Params(changed), '1234'), (e) => isKeyfleetError(e, 'KF_PKCS12_BAD_PASSWORD') && /wrong password/.test(e.message));
  }
});

test('RFC 9579 A.6: PBMAC1 without keyLength is refused', () => {
  assert.throws(() => readPkcs12(withPbkdf2Params({ keyLength: null }), '1234'), (e) => isKeyfleetError(e, 'KF_KEY_INVALID') && /keyLength/.test(e.message));
});
