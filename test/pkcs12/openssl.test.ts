/**
 * Interop with `openssl pkcs12` (OpenSSL 3.0 CLI) both ways: files OpenSSL
 * writes in every form it offers are read, and files we write are read by
 * OpenSSL with the keys, certificates and attributes intact.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { decodePemAll } from '../../src/asn1/pem.ts';
import { readPkcs12, writePkcs12 } from '../../src/pkcs12/index.ts';
import { type Fixtures, type Identity, makeFixtures, openssl, pkcs8 } from './fixtures.ts';
import { run } from '../support/exec.ts';

let f: Fixtures;
before(async () => {
  f = await makeFixtures();
});
after(() => f.cleanup());

const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest();

interface Variant {
  readonly name: string;
  readonly args: readonly string[];
  readonly mac: string | undefined;
  readonly encryption: readonly string[];
}

const variants: readonly Variant[] = [
  { name: 'OpenSSL 3 default: PBES2/AES-256-CBC, SHA-256 MAC', args: [], mac: 'sha256', encryption: ['PBES2/PBKDF2-hmacWithSHA256/aes256-CBC'] },
  { name: '-legacy: RC2-40 certificates, 3DES key, SHA-1 MAC (what Windows writes)', args: ['-legacy'], mac: 'sha1', encryption: ['pbeWithSHAAnd40BitRC2-CBC', 'pbeWithSHAAnd3-KeyTripleDES-CBC'] },
  {
    name: '3DES certificates and key, SHA-1 MAC (the iOS form)',
    args: ['-certpbe', 'PBE-SHA1-3DES', '-keypbe', 'PBE-SHA1-3DES', '-macalg', 'sha1'],
    mac: 'sha1',
    encryption: ['pbeWithSHAAnd3-KeyTripleDES-CBC'],
  },
  {
    name: 'RC2-128 certificates, two-key 3DES key',
    args: ['-legacy', '-certpbe', 'PBE-SHA1-RC2-128', '-keypbe', 'PBE-SHA1-2DES'],
    mac: 'sha1',
    encryption: ['pbeWithSHAAnd128BitRC2-CBC', 'pbeWithSHAAnd2-KeyTripleDES-CBC'],
  },
  {
    name: 'PBES2 with AES-128 certificates and a DES-EDE3 key, SHA-512 MAC',
    args: ['-certpbe', 'AES-128-CBC', '-keypbe', 'DES-EDE3-CBC', '-macalg', 'sha512'],
    mac: 'sha512',
    encryption: ['PBES2/PBKDF2-hmacWithSHA256/aes128-CBC', 'PBES2/PBKDF2-hmacWithSHA256/des-EDE3-CBC'],
  },
  { name: 'AES-192, SHA-384 MAC', args: ['-certpbe', 'AES-192-CBC', '-keypbe', 'AES-192-CBC', '-macalg', 'sha384'], mac: 'sha384', encryption: ['PBES2/PBKDF2-hmacWithSHA256/aes192-CBC'] },
  { name: 'no encryption and no MAC (plain keyBag)', args: ['-keypbe', 'NONE', '-certpbe', 'NONE', '-nomac'], mac: undefined, encryption: [] },
  { name: 'encrypted but without a MAC', args: ['-nomac'], mac: undefined, encryption: ['PBES2/PBKDF2-hmacWithSHA256/aes256-CBC'] },
];

async function exportWithOpenssl(who: Identity, args: readonly string[], password: string, file: string): Promise<Uint8Array> {
  const out = f.path(file);
  await openssl(['pkcs12', '-export', '-in', who.certPath, '-inkey', who.keyPath, '-certfile', f.ca.certPath, '-name', `${who.name} (S/MIME)`, '-passout', `pass:${password}`, ...args, '-out', out]);
  return readFileSync(out);
}

describe('reading files written by openssl pkcs12 -export', () => {
  const cases = variants.flatMap((v) => [
    { v, who: () => f.alice[0], key: 'RSA' },
    { v, who: () => f.bob, key: 'EC P-256' },
  ]);
  for (const { v, who, key } of cases) {
    test(`${v.name}, ${key} key`, async () => {
      const id = who();
      const der = await exportWithOpenssl(id, v.args, 'secret pw', `${id.name}-${variants.indexOf(v)}.p12`);
      const p12 = readPkcs12(der, 'secret pw');
      assert.equal(p12.macAlgorithm, v.mac);
      assert.deepEqual(p12.encryption, v.encryption);
      assert.equal(p12.keys.length, 1);
      const k = p12.keys[0]!;
      assert.deepEqual(pkcs8(k.key), pkcs8(id.key), 'the same private key');
      assert.deepEqual(k.certificate?.der, id.cert.der, 'paired with its certificate');
      assert.equal(k.friendlyName, `${id.name} (S/MIME)`);
      // OpenSSL's localKeyID is the SHA-1 of the certificate.
      assert.deepEqual(Buffer.from(k.localKeyId ?? []), sha1(id.cert.der));
      assert.deepEqual(
        p12.certificates.map((c) => c.fingerprint256).sort(),
        [id.cert.fingerprint256, f.ca.cert.fingerprint256].sort(),
        'the certificate and its CA',
      );
    });
  }

  test('a wrong password is a clear KF_PKCS12_BAD_PASSWORD, with and without a MAC', async () => {
    for (const [i, args] of [[], ['-nomac'], ['-legacy'], ['-legacy', '-nomac']].entries()) {
      const der = await exportWithOpenssl(f.alice[0], args, 'right', `wrong-${i}.p12`);
      assert.throws(
        () => readPkcs12(der, 'wrong'),
        (e: unknown) => e instanceof Error && 'code' in e && e.code === 'KF_PKCS12_BAD_PASSWORD' && /wrong password/.test(e.message),
        args.join(' '),
      );
    }
  });

  test('empty and non-ASCII passwords match OpenSSL (UTF-8 to BMPString)', async () => {
    for (const [i, password] of ['', 'Zoë 🔑 пароль'].entries()) {
      for (const args of [[], ['-legacy']]) {
        const der = await exportWithOpenssl(f.bob, args, password, `pw-${i}-${args.length}.p12`);
        assert.deepEqual(pkcs8(readPkcs12(der, password).keys[0]!.key), pkcs8(f.bob.key), `password ${JSON.stringify(password)} ${args.join(' ')}`);
        assert.throws(() => readPkcs12(der, `${password}x`));
      }
    }
  });
});

/** `openssl pkcs12 -info -nodes` on our file: the PEM blocks and the -info lines it prints on stderr. */
async function readWithOpenssl(der: Uint8Array, password: string, file: string) {
  const path = f.path(file);
  writeFileSync(path, der);
  const r = await openssl(['pkcs12', '-in', path, '-passin', `pass:${password}`, '-info', '-nodes']);
  const text = r.stdout.toString('utf8');
  const blocks = decodePemAll(text);
  return {
    info: r.stderr,
    text,
    keys: blocks.filter((b) => b.label === 'PRIVATE KEY').map((b) => pkcs8(createPrivateKey({ key: Buffer.from(b.der), format: 'der', type: 'pkcs8' }))),
    certs: blocks.filter((b) => b.label === 'CERTIFICATE').map((b) => Buffer.from(b.der)),
  };
}

describe('files written by writePkcs12 and read by openssl pkcs12', () => {
  const profiles = [
    { profile: 'modern', info: ['MAC: sha256', 'Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC', 'PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC'] },
    { profile: 'legacy', info: ['MAC: sha1', 'Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC', 'PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC'] },
  ] as const;
  for (const { profile, info } of profiles) {
    test(`${profile} profile: a history of three RSA identities and an EC one, with chain and names`, async () => {
      const ids = [...f.alice, f.bob];
      const der = writePkcs12(
        ids.map((id, i) => ({ key: id.key, certificate: id.cert, chain: [f.ca.cert], friendlyName: `${id.name} #${i + 1}` })),
        'pässword',
        { profile },
      );
      const got = await readWithOpenssl(der, 'pässword', `ours-${profile}.p12`);
      for (const line of info) assert.ok(got.info.includes(line), `openssl -info says "${line}":\n${got.info}`);
      assert.deepEqual(got.keys, ids.map((id) => pkcs8(id.key)));
      assert.deepEqual(got.certs, [...ids.map((id) => Buffer.from(id.cert.der)), Buffer.from(f.ca.cert.der)], 'each certificate once, the CA after the identities');
      for (const [i, id] of ids.entries()) {
        assert.ok(got.text.includes(`friendlyName: ${id.name} #${i + 1}`), `friendlyName of ${id.name}`);
        const keyId = sha1(id.cert.der).toString('hex').toUpperCase().replace(/(..)(?!$)/g, '$1 ');
        assert.equal(got.text.split(`localKeyID: ${keyId}`).length - 1, 2, `localKeyID of ${id.name} on its key and its certificate`);
      }
      // And the MAC really is keyed by the password.
      const wrong = await run('openssl', ['pkcs12', '-in', f.path(`ours-${profile}.p12`), '-passin', 'pass:wrong', '-nodes']);
      assert.notEqual(wrong.status, 0);
      assert.match(wrong.stderr, /mac verify/i);
    });
  }

  test('openssl re-exports what it read from our file, and we read that back', async () => {
    const der = writePkcs12([{ key: f.bob.key, certificate: f.bob.cert, friendlyName: 'bob' }], 'pw', { profile: 'legacy' });
    writeFileSync(f.path('rt.p12'), der);
    const pem = (await openssl(['pkcs12', '-in', f.path('rt.p12'), '-passin', 'pass:pw', '-nodes'])).stdout;
    writeFileSync(f.path('rt.pem'), pem);
    await openssl(['pkcs12', '-export', '-in', f.path('rt.pem'), '-passout', 'pass:pw2', '-out', f.path('rt2.p12')]);
    const back = readPkcs12(readFileSync(f.path('rt2.p12')), 'pw2');
    assert.deepEqual(pkcs8(back.keys[0]!.key), pkcs8(f.bob.key));
    assert.deepEqual(back.keys[0]!.certificate?.der, f.bob.cert.der);
  });

});
