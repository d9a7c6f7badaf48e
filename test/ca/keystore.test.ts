import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKeyfleetError } from '../../src/errors.ts';
import { SealedKeyStore } from '../../src/ca/keystore.ts';
import { MASTER_KEY_ENV, parseMasterKey, resolveMasterKey } from '../../src/ca/master-key.ts';
import { schemeForKey, verifySignature } from '../../src/x509/signature.ts';

const masterKey = (e: unknown) => isKeyfleetError(e, 'KF_MASTER_KEY');
const keyInvalid = (e: unknown) => isKeyfleetError(e, 'KF_KEY_INVALID');

describe('SealedKeyStore', () => {
  test('generate, seal and sign round trip for RSA and EC; the sealed blob holds no plaintext key', async () => {
    const store = new SealedKeyStore(randomBytes(32));
    for (const spec of ['rsa-2048', 'p-384'] as const) {
      const { stored, publicKey } = await store.generate('sealed:test', spec);
      assert.equal(stored.keyRef, 'sealed:test');
      const blob = Buffer.from(stored.sealedKey!);
      assert.equal(blob.subarray(0, 4).toString('latin1'), 'KFSK');
      assert.equal(blob[4], 1);
      const scheme = schemeForKey(publicKey, spec === 'p-384' ? 'sha384' : 'sha256');
      const sig = await store.sign(stored, scheme, Buffer.from('to be signed'));
      assert.ok(verifySignature(scheme, Buffer.from('to be signed'), sig, publicKey));
      assert.deepEqual((await store.publicKey(stored)).export({ format: 'der', type: 'spki' }), publicKey.export({ format: 'der', type: 'spki' }));
    }
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const sealed = store.seal('k', privateKey);
    const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
    assert.equal(Buffer.from(sealed).indexOf(pkcs8.subarray(-40)), -1);
    assert.ok(store.open('k', sealed).equals(privateKey));
  });

  test('a different KEK is KF_MASTER_KEY; a tampered or moved blob is KF_KEY_INVALID', async () => {
    const kek = randomBytes(32);
    const store = new SealedKeyStore(kek);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const sealed = Buffer.from(store.seal('sealed:issuing', privateKey));
    assert.throws(() => new SealedKeyStore(randomBytes(32)).open('sealed:issuing', sealed), masterKey);
    await assert.rejects(new SealedKeyStore(randomBytes(32)).sign({ keyRef: 'sealed:issuing', sealedKey: sealed }, schemeForKey(privateKey, 'sha256'), Buffer.alloc(1)), masterKey);
    assert.throws(() => store.open('sealed:root', sealed), keyInvalid, 'the key reference is authenticated');
    for (const at of [13, 20, 30, sealed.length - 1]) {
      const tampered = Buffer.from(sealed);
      tampered[at]! ^= 0x01;
      assert.throws(() => store.open('sealed:issuing', tampered), keyInvalid, `byte ${at}`);
    }
    const wrongVersion = Buffer.from(sealed);
    wrongVersion[4] = 2;
    assert.throws(() => store.open('sealed:issuing', wrongVersion), keyInvalid);
    assert.throws(() => store.open('sealed:issuing', sealed.subarray(0, 20)), keyInvalid);
    assert.throws(() => store.open('sealed:issuing', Buffer.from('not sealed at all, clearly')), keyInvalid);
    await assert.rejects(store.sign({ keyRef: 'hsm:1', sealedKey: undefined }, schemeForKey(privateKey, 'sha256'), Buffer.alloc(1)), keyInvalid);
    assert.throws(() => new SealedKeyStore(randomBytes(16)), masterKey);
  });
});

describe('master key (KEK) sources', () => {
  const hex = randomBytes(32).toString('hex');

  test('hex and base64 forms; other lengths refused without echoing the value', () => {
    assert.equal(Buffer.from(parseMasterKey(hex, 'env')).toString('hex'), hex);
    assert.equal(Buffer.from(parseMasterKey(Buffer.from(hex, 'hex').toString('base64'), 'env')).toString('hex'), hex);
    assert.equal(Buffer.from(parseMasterKey(` ${Buffer.from(hex, 'hex').toString('base64url')}\n`, 'env')).toString('hex'), hex);
    for (const bad of ['', 'abc', hex.slice(2), randomBytes(16).toString('base64'), randomBytes(48).toString('base64')]) {
      assert.throws(() => parseMasterKey(bad, 'KEYFLEET_MASTER_KEY'), (e) => masterKey(e) && (bad.length < 8 || !(e as Error).message.includes(bad)));
    }
  });

  test('the environment wins; otherwise master.key is created 0600 once and reused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kf-kek-'));
    try {
      const data = join(dir, 'data');
      assert.throws(() => resolveMasterKey({ dataDir: data, env: {} }), masterKey, 'no variable, no file, no create');
      const created = resolveMasterKey({ dataDir: data, env: {}, create: true });
      assert.equal(created.source, 'new-file');
      assert.equal(statSync(join(data, 'master.key')).mode & 0o777, 0o600);
      const again = resolveMasterKey({ dataDir: data, env: {}, create: true });
      assert.equal(again.source, 'file');
      assert.deepEqual(Buffer.from(again.key), Buffer.from(created.key));
      const env = resolveMasterKey({ dataDir: data, env: { [MASTER_KEY_ENV]: hex } });
      assert.equal(env.source, 'env');
      assert.equal(Buffer.from(env.key).toString('hex'), hex);
      assert.ok(readFileSync(join(data, 'master.key'), 'latin1').trim().length > 40);
      writeFileSync(join(data, 'master.key'), 'garbage');
      assert.throws(() => resolveMasterKey({ dataDir: data, env: {} }), masterKey);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
