/**
 * The device keystore (src/device/keystore.ts) in one process: what it
 * holds survives a round trip under both KDFs, a wrong key, a flipped byte
 * anywhere or a truncation is refused with the keystore's code and nothing
 * loaded, the encryption history is never thinned, listing shows no key
 * material, and an export opens in `openssl pkcs12` (the real peer).
 * Processes sharing the file are in keystore-concurrency.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type KeyObject, createPublicKey, randomBytes } from 'node:crypto';
import { type TestPki, createTestPki } from '../support/pki.ts';
import type { EntityName } from '../pki/pki.ts';
import { runOk } from '../support/exec.ts';
import { type Certificate, loadCertificates } from '../../src/x509/certificate.ts';
import { loadPrivateKey } from '../../src/smime/keys.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { DeviceKeystore, type KeystoreKeySource, defaultKeyFilePath } from '../../src/device/keystore.ts';
import { readHeader } from '../../src/device/keystore-format.ts';
import { KEYSTORE_ERROR } from '../../src/device/keystore-errors.ts';

let pki: TestPki;
let dir: string;
const cert = (n: EntityName): Certificate => loadCertificates(readFileSync(pki.entity(n).certPath))[0]!;
const key = (n: EntityName) => loadPrivateKey(readFileSync(pki.entity(n).keyPath));
let counter = 0;
const fresh = (): string => join(dir, `ks-${++counter}.kfks`);
const keyFile = (path: string): KeystoreKeySource => ({ kind: 'key-file', path: defaultKeyFilePath(path) });
const fastScrypt = { N: 2 ** 14, r: 8, p: 1 };

before(async () => {
  pki = await createTestPki();
  dir = mkdtempSync(join(tmpdir(), 'keyfleet-keystore-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function refused(code: string, detail?: string) {
  return (e: unknown) => isKeyfleetError(e) && e.code === code && (detail === undefined || e.detail === detail);
}

async function filled(path: string, source: KeystoreKeySource = keyFile(path)): Promise<DeviceKeystore> {
  const ks = await DeviceKeystore.create(path, source);
  await ks.update((d) => {
    d.setIdentity({ deviceId: 'dev-1', certificate: cert('carol'), key: key('carol'), caCertificates: [cert('intermediate'), cert('root')] });
    d.addSigning({ profileId: 'scep-1', certificate: cert('alice-pss'), key: key('alice-pss'), chain: [cert('intermediate')] });
    for (const n of ['bob-1', 'bob-2', 'bob-3'] as const) d.addEncryption({ pfxId: `pfx-${n}`, certificate: cert(n), key: key(n) });
    d.addTrustedRoot({ certificate: cert('root'), profileId: 'root-1' });
    d.setAppConfiguration({
      bundleId: 'com.microsoft.Office.Outlook',
      settings: [{ appConfigKey: 'com.microsoft.outlook.Mail.SMIMEEnabled', appConfigKeyType: 'booleanType', appConfigKeyValue: 'true' }],
      plist: '<plist/>',
    });
    d.addContact(cert('dave'), 'signed-message');
  });
  return ks;
}

const spki = (k: KeyObject) => (k.type === 'public' ? k : createPublicKey(k)).export({ format: 'der', type: 'spki' });

describe('round trip', () => {
  test('everything written with a key file reads back in another instance, files are 0600', async () => {
    const path = fresh();
    await filled(path);
    const snap = await (await DeviceKeystore.open(path, keyFile(path))).snapshot();
    assert.equal(snap.kdf, 'key-file');
    assert.equal(snap.generation, 2);
    assert.equal(snap.identity?.deviceId, 'dev-1');
    assert.equal(snap.identity?.certificate.thumbprint, cert('carol').thumbprint);
    assert.deepEqual(snap.identity?.caCertificates.map((c) => c.thumbprint), [cert('intermediate').thumbprint, cert('root').thumbprint]);
    assert.deepEqual(spki(snap.identity!.key), spki(key('carol')));
    assert.deepEqual(snap.signing.map((s) => [s.profileId, s.certificate.thumbprint, s.chain.length]), [['scep-1', cert('alice-pss').thumbprint, 1]]);
    assert.deepEqual(
      snap.encryption.map((e) => [e.pfxId, e.certificate.thumbprint]),
      (['bob-1', 'bob-2', 'bob-3'] as const).map((n) => [`pfx-${n}`, cert(n).thumbprint]),
    );
    for (const e of snap.encryption) assert.deepEqual(spki(e.key), spki(e.certificate.publicKey));
    assert.deepEqual(snap.trustedRoots.map((r) => [r.profileId, r.certificate.thumbprint]), [['root-1', cert('root').thumbprint]]);
    assert.equal(snap.appConfigurations[0]?.settings[0]?.appConfigKeyValue, 'true');
    assert.equal(snap.appConfigurations[0]?.plist, '<plist/>');
    assert.deepEqual(snap.contacts.map((c) => [c.certificate.thumbprint, c.source]), [[cert('dave').thumbprint, 'signed-message']]);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(defaultKeyFilePath(path)).mode & 0o777, 0o600);
    assert.equal(statSync(defaultKeyFilePath(path)).size, 32);
  });

  test('a passphrase keystore records scrypt and its parameters, and opens with the passphrase (default cost)', async () => {
    const path = fresh();
    await filled(path, { kind: 'passphrase', passphrase: 'correct horse battery staple' });
    const { header } = readHeader(readFileSync(path));
    assert.equal(header.kdf.name, 'scrypt');
    assert.ok(header.kdf.name === 'scrypt' && header.kdf.N === 2 ** 17 && header.kdf.r === 8 && header.kdf.p === 1);
    assert.equal(Buffer.from(header.kdf.name === 'scrypt' ? header.kdf.salt : '', 'base64').length, 16);
    const snap = await (await DeviceKeystore.open(path, { kind: 'passphrase', passphrase: 'correct horse battery staple' })).snapshot();
    assert.equal(snap.kdf, 'scrypt');
    assert.equal(snap.encryption.length, 3);
  });

  test('an update that changes nothing does not rewrite the file; a failing one leaves it as it was', async () => {
    const path = fresh();
    const ks = await filled(path);
    const before = readFileSync(path);
    const again = await ks.update((d) => d.addEncryption({ pfxId: 'pfx-bob-1', certificate: cert('bob-1'), key: key('bob-1') }));
    assert.equal(again.written, false);
    await assert.rejects(
      ks.update((d) => {
        d.addTrustedRoot({ certificate: cert('untrusted-root') });
        throw new Error('agent failed mid-change');
      }),
      /agent failed/,
    );
    assert.deepEqual(readFileSync(path), before);
  });

  test('create refuses an existing keystore; open of a missing one is KF_NOT_FOUND', async () => {
    const path = fresh();
    await DeviceKeystore.create(path, keyFile(path));
    await assert.rejects(DeviceKeystore.create(path, keyFile(path)), refused('KF_CONFLICT'));
    await assert.rejects(DeviceKeystore.open(join(dir, 'none.kfks'), keyFile(path)), refused('KF_NOT_FOUND'));
  });

  test('changeKey moves a key-file keystore to a passphrase; the old key no longer opens it', async () => {
    const path = fresh();
    const ks = await filled(path);
    await ks.changeKey({ kind: 'passphrase', passphrase: 'new one', scrypt: fastScrypt });
    await assert.rejects(DeviceKeystore.open(path, keyFile(path)), refused(KEYSTORE_ERROR, 'wrong-key'));
    const snap = await (await DeviceKeystore.open(path, { kind: 'passphrase', passphrase: 'new one' })).snapshot();
    assert.equal(snap.kdf, 'scrypt');
    assert.equal(snap.signing.length, 1);
  });
});

describe('contents rules', () => {
  test('the encryption history is never thinned; signing renewals are kept until removed by thumbprint', async () => {
    const path = fresh();
    const ks = await filled(path);
    const { snapshot } = await ks.update((d) => {
      d.addEncryption({ pfxId: 'pfx-bob-1', certificate: cert('bob-1'), key: key('bob-1') });
      d.addSigning({ profileId: 'scep-1', certificate: cert('alice'), key: key('alice'), chain: [cert('intermediate')] });
    });
    assert.equal(snapshot.encryption.length, 3);
    assert.equal(snapshot.signing.length, 2);
    assert.equal(await ks.remove(cert('alice-pss').thumbprint.toLowerCase()), 1);
    const snap = await ks.snapshot();
    assert.deepEqual(snap.signing.map((s) => s.certificate.thumbprint), [cert('alice').thumbprint]);
    assert.equal(snap.encryption.length, 3);
  });

  test('a key that is not the certificate\'s is refused with KF_KEY_INVALID', async () => {
    const path = fresh();
    const ks = await DeviceKeystore.create(path, keyFile(path));
    await assert.rejects(ks.update((d) => d.addEncryption({ pfxId: 'x', certificate: cert('bob-2'), key: key('bob-1') })), refused('KF_KEY_INVALID'));
  });

  test('list shows metadata of every item and no key material', async () => {
    const path = fresh();
    const ks = await filled(path);
    const listing = await ks.list();
    assert.deepEqual(
      listing.items.map((i) => [i.kind, i.hasPrivateKey]),
      [['device-identity', true], ['signing', true], ['encryption', true], ['encryption', true], ['encryption', true], ['trusted-root', false], ['contact', false]],
    );
    assert.equal(listing.items.find((i) => i.kind === 'encryption')?.pfxId, 'pfx-bob-1');
    assert.deepEqual(listing.items.find((i) => i.kind === 'signing')?.emailAddresses, ['alice@example.com']);
    const text = JSON.stringify(listing);
    assert.doesNotMatch(text, /PRIVATE KEY/);
    for (const n of ['carol', 'alice-pss', 'bob-1', 'bob-2', 'bob-3'] as const) {
      assert.ok(!text.includes(pki.entity(n).keyDer.toString('base64').slice(40, 80)), `${n}'s key appears in the listing`);
    }
  });
});

describe('refusals', () => {
  test('a wrong key file or passphrase is refused as wrong-key, a passphrase keystore opened with a key file too', async () => {
    const path = fresh();
    await filled(path);
    const other = join(dir, `other-${counter}.key`);
    writeFileSync(other, randomBytes(32), { mode: 0o600 });
    await assert.rejects(DeviceKeystore.open(path, { kind: 'key-file', path: other }), refused(KEYSTORE_ERROR, 'wrong-key'));
    await assert.rejects(DeviceKeystore.open(path, { kind: 'passphrase', passphrase: 'guess' }), refused(KEYSTORE_ERROR, 'wrong-key'));

    const pp = fresh();
    await DeviceKeystore.create(pp, { kind: 'passphrase', passphrase: 'right', scrypt: fastScrypt });
    await assert.rejects(DeviceKeystore.open(pp, { kind: 'passphrase', passphrase: 'wrong' }), refused(KEYSTORE_ERROR, 'wrong-key'));
    await assert.rejects(DeviceKeystore.open(pp, { kind: 'key-file', path: other }), refused(KEYSTORE_ERROR, 'wrong-key'));
  });

  test('a key file readable by others is refused', async () => {
    const path = fresh();
    await filled(path);
    chmodSync(defaultKeyFilePath(path), 0o644);
    await assert.rejects(DeviceKeystore.open(path, keyFile(path)), refused(KEYSTORE_ERROR, 'key-file'));
  });

  test('one flipped bit anywhere in the file (prefix, header, ciphertext, tag) is refused, never loaded', async () => {
    const path = fresh();
    await filled(path);
    const good = readFileSync(path);
    const { headerEnd } = readHeader(good);
    const positions = [0, 4, 6, 9, Math.floor(headerEnd / 2), headerEnd - 2, headerEnd, headerEnd + 100, Math.floor(good.length / 2), good.length - 17, good.length - 1];
    for (const at of positions) {
      const bad = Buffer.from(good);
      bad[at]! ^= 0x01;
      writeFileSync(path, bad, { mode: 0o600 });
      await assert.rejects(DeviceKeystore.open(path, keyFile(path)), (e: unknown) => isKeyfleetError(e) && e.code === KEYSTORE_ERROR, `flip at ${at}`);
    }
  });

  test('a truncated file is refused as damaged at every length', async () => {
    const path = fresh();
    await filled(path);
    const good = readFileSync(path);
    for (const length of [0, 3, 8, 20, readHeader(good).headerEnd, Math.floor(good.length / 2), good.length - 1]) {
      writeFileSync(path, good);
      truncateSync(path, length);
      await assert.rejects(DeviceKeystore.open(path, keyFile(path)), refused(KEYSTORE_ERROR, 'damaged'), `length ${length}`);
    }
  });

  test('a file past the size limit is refused before it is read, and a write that would pass it is refused', async () => {
    const path = fresh();
    await filled(path);
    const size = statSync(path).size;
    await assert.rejects(DeviceKeystore.open(path, keyFile(path), { maxBytes: size - 1 }), refused('KF_INPUT_TOO_LARGE'));
    const ks = await DeviceKeystore.open(path, keyFile(path), { maxBytes: size + 100 });
    const before = readFileSync(path);
    await assert.rejects(ks.update((d) => d.addContact(cert('erin'), 'attachment')), refused('KF_INPUT_TOO_LARGE'));
    assert.deepEqual(readFileSync(path), before);
  });
});

describe('export through openssl pkcs12', () => {
  for (const profile of ['modern', 'legacy'] as const) {
    test(`the ${profile} PKCS#12 of an encryption certificate opens with its key and certificate`, async () => {
      const path = fresh();
      const ks = await filled(path);
      const p12 = join(dir, `export-${counter}-${profile}.p12`);
      writeFileSync(p12, await ks.export(cert('bob-2').thumbprint, { format: 'pkcs12', password: 'export-pw', profile }));
      // OpenSSL 3 reads the legacy profile's 3DES without its legacy provider (write.ts).
      const certOut = await runOk('openssl', ['pkcs12', '-in', p12, '-passin', 'pass:export-pw', '-nokeys', '-clcerts']);
      assert.deepEqual(loadCertificates(certOut.stdout)[0]!.thumbprint, cert('bob-2').thumbprint);
      const keyOut = await runOk('openssl', ['pkcs12', '-in', p12, '-passin', 'pass:export-pw', '-nocerts', '-nodes']);
      assert.deepEqual(spki(loadPrivateKey(keyOut.stdout)), spki(key('bob-2')));
      const wrong = await runOk('openssl', ['pkcs12', '-in', p12, '-passin', 'pass:nope', '-nokeys']).catch((e: Error) => e);
      assert.ok(wrong instanceof Error, 'openssl accepted a wrong password');
    });
  }

  test('a signing certificate exports with its chain; PEM carries the key only when asked; a root has no key to export', async () => {
    const path = fresh();
    const ks = await filled(path);
    const p12 = join(dir, `export-${counter}-chain.p12`);
    writeFileSync(p12, await ks.export(cert('alice-pss').thumbprint, { format: 'pkcs12', password: 'pw' }));
    const all = await runOk('openssl', ['pkcs12', '-in', p12, '-passin', 'pass:pw', '-nokeys']);
    assert.deepEqual(loadCertificates(all.stdout).map((c) => c.thumbprint).sort(), [cert('alice-pss').thumbprint, cert('intermediate').thumbprint].sort());
    const pem = Buffer.from(await ks.export(cert('alice-pss').thumbprint, { format: 'pem' })).toString();
    assert.doesNotMatch(pem, /PRIVATE KEY/);
    const withKey = Buffer.from(await ks.export(cert('alice-pss').thumbprint, { format: 'pem', includeKey: true })).toString();
    const pemFile = join(dir, `export-${counter}.pem`);
    writeFileSync(pemFile, withKey);
    const parsed = await runOk('openssl', ['pkey', '-in', pemFile, '-pubout']);
    assert.match(parsed.stdout.toString(), /BEGIN PUBLIC KEY/);
    await assert.rejects(ks.export(cert('root').thumbprint, { format: 'pkcs12', password: 'pw' }), refused('KF_USAGE'));
    await assert.rejects(ks.export('00', { format: 'pem' }), refused('KF_NOT_FOUND'));
  });
});
