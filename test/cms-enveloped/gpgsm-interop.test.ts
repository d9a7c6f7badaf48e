/**
 * Interop with GnuPG's gpgsm (2.2 on Debian 12), both directions, in a
 * throw-away GNUPGHOME with keys imported from PKCS#12. gpgsm 2.2 reads only
 * RSA PKCS#1 v1.5 recipients named by issuerAndSerialNumber, and AES-CBC or
 * 3DES content (no OAEP, SKI, ECDH or AuthEnvelopedData, also for OpenSSL's
 * messages), so that is what is exercised here.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OID } from '../../src/asn1/oids.ts';
import { parse } from '../../src/asn1/reader.ts';
import { decryptContent, encryptContent } from '../../src/smime/cms/enveloped-data.ts';
import { type Identity, type Pki, makePki } from './pki.ts';

const haveGpgsm = spawnSync('gpgsm', ['--version']).status === 0;
const PASSPHRASE = 'interop-test';

let pki: Pki;
let env: NodeJS.ProcessEnv;

interface GpgsmResult {
  readonly status: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

function gpgsm(args: readonly string[]): GpgsmResult {
  // The passphrase of the imported keys comes on stdin (loopback pinentry), so data goes through files.
  const r = spawnSync('gpgsm', ['--batch', '--pinentry-mode', 'loopback', '--passphrase-fd', '0', ...args], { env, input: `${PASSPHRASE}\n`, maxBuffer: 1 << 28 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

function importIdentity(id: Identity, withKey: boolean) {
  if (!withKey) {
    assert.equal(gpgsm(['--import', id.certPath]).status, 0);
    return;
  }
  // gpgsm 2.2 reads the classic PKCS#12 encryption (3DES, SHA-1 MAC) that Windows also uses.
  const p12 = pki.file(`${id.name}.p12`);
  pki.openssl(['pkcs12', '-export', '-inkey', id.keyPath, '-in', id.certPath, '-out', p12, '-passout', `pass:${PASSPHRASE}`, '-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES', '-macalg', 'sha1']);
  const r = gpgsm(['--import', p12]);
  assert.equal(r.status, 0, r.stderr);
}

before(async () => {
  if (!haveGpgsm) return;
  pki = await makePki(['rsa', 'old1', 'old2', 'rsaNoSki', 'p256']);
  const home = join(pki.dir, 'gnupg');
  mkdirSync(home, { mode: 0o700 });
  // A low S2K count: the agent otherwise spends seconds protecting and unprotecting each test key.
  writeFileSync(join(home, 'gpg-agent.conf'), 'allow-loopback-pinentry\ns2k-count 65536\n');
  // No CRLs or dirmngr in tests; the CA is trusted through trustlist.txt ("S" = S/MIME, "relax" = no CRL for it).
  writeFileSync(join(home, 'gpgsm.conf'), 'disable-crl-checks\ndisable-trusted-cert-crl-check\n');
  const caFingerprint = execFileSync('openssl', ['x509', '-in', pki.caCertPath, '-noout', '-fingerprint', '-sha1']).toString().replace(/^.*=/, '').replace(/:/g, '').trim();
  writeFileSync(join(home, 'trustlist.txt'), `${caFingerprint} S relax\n`);
  env = { ...process.env, GNUPGHOME: home };
  assert.equal(gpgsm(['--import', pki.caCertPath]).status, 0);
  const { rsa, old1, old2, rsaNoSki } = pki.ids;
  for (const id of [rsa, old1, old2]) importIdentity(id, true);
  importIdentity(rsaNoSki, false);
});

after(() => {
  if (!haveGpgsm || !pki) return;
  spawnSync('gpgconf', ['--kill', 'gpg-agent'], { env }); // the agent this test's GNUPGHOME started
  pki.cleanup();
});

const message = Buffer.from('Content-Type: text/plain\r\n\r\nInterop with gpgsm.\r\n');

describe('Keyfleet encrypts, gpgsm decrypts', { skip: !haveGpgsm && 'gpgsm is not installed' }, () => {
  it('RSA PKCS#1 v1.5 with AES-128-CBC and AES-256-CBC', () => {
    for (const cipher of ['aes-128-cbc', 'aes-256-cbc'] as const) {
      const r = gpgsm(['--decrypt', pki.file('m.der', encryptContent(message, [{ certificate: pki.ids.rsa.certificate }], { cipher }))]);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(r.stdout, message);
    }
  });

  it('a message to several recipients, gpgsm holding the key of one', () => {
    const { rsa, rsaNoSki, p256 } = pki.ids;
    const out = encryptContent(message, [{ certificate: rsaNoSki.certificate }, { certificate: p256.certificate }, { certificate: rsa.certificate }], { cipher: 'aes-256-cbc' });
    const r = gpgsm(['--decrypt', pki.file('m.der', out)]);
    // gpgsm 2.2 logs "No secret key" for the recipients it cannot serve and so exits 2 even after
    // decrypting (it does the same with OpenSSL's multi-recipient messages).
    assert.ok(r.status === 0 || r.status === 2, r.stderr);
    assert.doesNotMatch(r.stderr, /message decryption failed/);
    assert.deepEqual(r.stdout, message);
  });

  it('an old key of the history opens its message in gpgsm too', () => {
    const r = gpgsm(['--decrypt', pki.file('m.der', encryptContent(message, [{ certificate: pki.ids.old1.certificate }], { cipher: 'aes-256-cbc' }))]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout, message);
  });
});

describe('gpgsm encrypts, Keyfleet decrypts', { skip: !haveGpgsm && 'gpgsm is not installed' }, () => {
  function gpgsmEncrypt(recipients: readonly Identity[], extra: string[] = []): Buffer {
    const out = pki.file('g.der');
    const args = ['--encrypt', ...extra, '--output', out];
    for (const id of recipients) args.push('-r', id.certificate.thumbprint);
    const r = gpgsm([...args, pki.file('plain.txt', message)]);
    assert.equal(r.status, 0, r.stderr);
    return readFileSync(out);
  }

  it('its default and every cipher it offers (AES-128, AES-256, 3DES)', () => {
    const { rsa } = pki.ids;
    for (const [extra, oid] of [
      [[], OID.aes128CBC],
      [['--cipher-algo', 'AES256'], OID.aes256CBC],
      [['--cipher-algo', '3DES'], OID.desEde3CBC],
    ] as const) {
      const out = gpgsmEncrypt([rsa], [...extra]);
      assert.equal(parse(out).indefinite, true); // gpgsm writes BER with indefinite lengths
      const result = decryptContent(out, [rsa.pair]);
      assert.deepEqual(Buffer.from(result.content), message);
      assert.equal(result.contentCipher, oid);
    }
  });

  it('several recipients; an old key picked out of a history of three', () => {
    const { rsa, old1, old2, rsaNoSki } = pki.ids;
    const out = gpgsmEncrypt([old1, rsaNoSki]);
    const result = decryptContent(out, [rsa.pair, old2.pair, old1.pair]);
    assert.equal(result.recipient, old1.pair);
    assert.deepEqual(Buffer.from(result.content), message);
    assert.throws(() => decryptContent(out, [rsa.pair, old2.pair]), (e: unknown) => (e as { code?: string }).code === 'KF_CMS_NO_MATCHING_KEY');
  });
});
