/**
 * Every PBES2 PRF and cipher and every PKCS#12 PBE we claim to read, on
 * EncryptedPrivateKeyInfo made by `openssl pkcs8 -topk8` (the same structure
 * a pkcs8ShroudedKeyBag holds), plus the password encodings.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from '../../src/asn1/reader.ts';
import * as der from '../../src/asn1/writer.ts';
import { OID } from '../../src/asn1/oids.ts';
import { decodeAlgorithmIdentifier, encodeAlgorithmIdentifier } from '../../src/x509/algorithm.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { decodeEncryptedPrivateKeyInfo } from '../../src/pkcs12/bags.ts';
import { defaultBudget } from '../../src/pkcs12/kdf.ts';
import { P12 } from '../../src/pkcs12/oids.ts';
import { decodeEncryptionScheme, passwordForms } from '../../src/pkcs12/pbe.ts';
import { inPool } from '../support/exec.ts';
import { openssl, pkcs8 } from './fixtures.ts';

// Only a key is needed here (no certificates), so no full fixture set.
const dir = mkdtempSync(join(tmpdir(), 'keyfleet-pbe-'));
const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const keyPath = join(dir, 'key.pem');
writeFileSync(keyPath, key.export({ type: 'pkcs8', format: 'pem' }));
after(() => rmSync(dir, { recursive: true, force: true }));

const pbes2 = ['hmacWithSHA1', 'hmacWithSHA256', 'hmacWithSHA384', 'hmacWithSHA512'].flatMap((prf) =>
  [
    ['aes-128-cbc', 'aes128-CBC'],
    ['aes-192-cbc', 'aes192-CBC'],
    ['aes-256-cbc', 'aes256-CBC'],
    ['des-ede3-cbc', 'des-EDE3-CBC'],
  ].map(([cipher, name]) => ({ args: ['-v2', cipher!, '-v2prf', prf], name: `PBES2/PBKDF2-${prf}/${name}` })),
);
// The RC2 schemes need the legacy provider in the openssl CLI (only there, never in our process).
const legacy = ['-provider', 'legacy', '-provider', 'default'];
const pkcs12Pbes = [
  { args: ['-v1', 'PBE-SHA1-3DES'], name: 'pbeWithSHAAnd3-KeyTripleDES-CBC' },
  { args: ['-v1', 'PBE-SHA1-2DES', ...legacy], name: 'pbeWithSHAAnd2-KeyTripleDES-CBC' },
  { args: ['-v1', 'PBE-SHA1-RC2-128', ...legacy], name: 'pbeWithSHAAnd128BitRC2-CBC' },
  { args: ['-v1', 'PBE-SHA1-RC2-40', ...legacy], name: 'pbeWithSHAAnd40BitRC2-CBC' },
];

test('each scheme decrypts OpenSSL’s encryption of the key, and a wrong password yields no key', async () => {
  const password = 'pässwörd';
  const cases = [...pbes2, ...pkcs12Pbes];
  const files = await inPool(cases, 2, async (c) => {
    const out = join(dir, `${c.name.replace(/\W/g, '_')}.der`);
    await openssl(['pkcs8', '-topk8', '-in', keyPath, '-outform', 'DER', '-passout', `pass:${password}`, '-iter', '1000', ...c.args, '-out', out]);
    return readFileSync(out);
  });
  for (const [i, c] of cases.entries()) {
    const info = decodeEncryptedPrivateKeyInfo(parse(files[i]!));
    const scheme = decodeEncryptionScheme(info.encryptionAlgorithm);
    assert.equal(scheme.name, c.name);
    assert.equal(scheme.iterations, 1000);
    const [plain] = [...scheme.decrypt(info.encryptedData, passwordForms(password), defaultBudget())];
    assert.ok(plain, `${c.name} decrypts`);
    assert.deepEqual(pkcs8(createPrivateKey({ key: Buffer.from(plain), format: 'der', type: 'pkcs8' })), pkcs8(key), c.name);
    for (const wrong of [...scheme.decrypt(info.encryptedData, passwordForms('passwörd'), defaultBudget())]) {
      assert.throws(() => createPrivateKey({ key: Buffer.from(wrong), format: 'der', type: 'pkcs8' }), `${c.name}: a wrong password's padding passed by chance; the key must still not parse`);
    }
  }
});

test('unsupported schemes are named in a KF_CMS_UNSUPPORTED error before any work', () => {
  const pbeParams = der.sequence(der.octetString(Buffer.alloc(8)), der.integer(2 ** 40));
  const rc4 = encodeAlgorithmIdentifier(P12.pbeWithSHAAnd128BitRC4, pbeParams);
  // Single DES inside PBES2: OpenSSL 3 offers DES-CBC only through its legacy provider.
  const kdf = encodeAlgorithmIdentifier(P12.pbkdf2, der.sequence(der.octetString(Buffer.alloc(8)), der.integer(2048)));
  const desInPbes2 = encodeAlgorithmIdentifier(P12.pbes2, der.sequence(kdf, encodeAlgorithmIdentifier(OID.desCBC, der.octetString(Buffer.alloc(8)))));
  for (const [alg, oid] of [[rc4, P12.pbeWithSHAAnd128BitRC4], [desInPbes2, OID.desCBC]] as const) {
    assert.throws(() => decodeEncryptionScheme(decodeAlgorithmIdentifier(parse(alg))), (e) => isKeyfleetError(e, 'KF_CMS_UNSUPPORTED') && e.detail === oid);
  }
});
