/**
 * Interop suite for `keyfleet smime` (issue 2), run as a child process the
 * way users and outside checks run it, against OpenSSL (`openssl cms`),
 * GnuPG (`gpgsm`) and NSS (`cmsutil`) in both directions.
 *
 * Peer coverage follows what each peer can do here, established by
 * test/interop/peers-smoke.test.ts ("limitation: …" tests):
 * - OpenSSL 3.0 CLI: everything except Ed25519 CMS (cannot sign or verify:
 *   "eddsa_digest_signverify_init: invalid digest") and X25519 key agreement
 *   (cannot encrypt, "no matching recipient" on decrypt).
 * - gpgsm 2.2.40: RSA PKCS#1 v1.5 signatures and key transport with
 *   AES-CBC; verifies ECDSA (P-384 only with SHA-384 or longer); no PSS, no
 *   OAEP, no GCM, no SubjectKeyIdentifier recipients, no ECDH, and it
 *   imports only RSA keys from (legacy 3DES) PKCS#12.
 * - NSS 3.87 cmsutil: RSA and ECDSA signatures (verifies PSS, cannot make
 *   it); RSA PKCS#1 v1.5 key transport with AES-CBC only (cmsutil picks
 *   AES-128-CBC itself); no OAEP, no GCM, no ECDH (a key agreement
 *   recipient anywhere in the message makes decoding fail).
 * Ed25519 and X25519 are therefore checked as keyfleet round trips only.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunResult, describeRun } from '../support/exec.ts';
import {
  type VerifyReason,
  assertOneReadableLine,
  decryptArgs,
  encryptArgs,
  keyfleet,
  keyfleetOk,
  parseVerifyJson,
  reasonsOnStderr,
  rfc5322Message,
  signArgs,
  verifyArgs,
} from '../support/keyfleet.ts';
import { type Entity, contentType, decodedBody, extractCms, multipartParts, multipartSignedMessage, parseEntity, pkcs7MimeMessage, textEntity } from '../support/mime.ts';
import { Gpgsm, type GpgsmResult, NssDb, openssl, opensslSmime, requirePeers, scratchDir } from '../support/peers.ts';
import { type EntityName, type TestEntity, type TestPki, createTestPki } from '../support/pki.ts';

const TEXT = 'Hello from the Keyfleet interop suite.\nSecond line.';

let pki: TestPki;
let gpgsm: Gpgsm;
let nss: NssDb;
const E = (n: EntityName): TestEntity => pki.entity(n);

before(async () => {
  requirePeers('openssl', 'gpgsm', 'nss');
  pki = await createTestPki();
  [gpgsm, nss] = await Promise.all([Gpgsm.create(pki, ['alice', 'bob-3']), NssDb.create(pki, ['alice', 'carol', 'dave', 'bob-3'])]);
});

after(async () => {
  await Promise.all([gpgsm?.close(), nss?.close()]);
});

// --- helpers -----------------------------------------------------------------

function mail(from: TestEntity | string, text = TEXT): Buffer {
  const address = typeof from === 'string' ? from : (from.email ?? '');
  return rfc5322Message({ from: `Sender <${address}>`, text });
}

/** The MIME entity a sender's client signs or encrypts (peers get this, not a whole message). */
const innerEntity = (): Buffer => textEntity(TEXT);

/** The text of an entity (descending into multipart/signed), transfer encoding undone, LF line ends. */
function textOf(bytes: Uint8Array): string {
  let e: Entity = parseEntity(bytes);
  for (let depth = 0; depth < 4 && contentType(e).type.startsWith('multipart/'); depth++) {
    const [first] = multipartParts(e);
    if (first === undefined) break;
    e = parseEntity(first);
  }
  return decodedBody(e).toString('utf8').replace(/\r\n/g, '\n').replace(/\n+$/, '');
}

function ok(r: RunResult, what: string): void {
  assert.equal(r.status, 0, `${what} failed:\n${describeRun(r)}`);
}

function gpgsmOk(r: GpgsmResult, what: string): void {
  assert.ok(r.ok, `${what} failed:\n${describeRun(r)}`);
}

function nssOk(r: RunResult & { good: boolean }, what: string): void {
  assert.ok(r.good, `${what} failed:\n${describeRun(r)}`);
}

/** keyfleet verify passed and wrote the signed content. */
function verified(r: RunResult, what: string, text = TEXT): void {
  assert.equal(r.status, 0, `${what}: verify failed:\n${describeRun(r)}`);
  assert.equal(textOf(r.stdout), text, `${what}: signed content`);
}

/** keyfleet verify failed with exactly these reasons, one line each, and wrote no content. */
function refused(r: RunResult, expected: readonly VerifyReason[], what: string): void {
  assert.equal(r.status, 1, `${what}: expected exit 1\n${describeRun(r)}`);
  assert.deepEqual([...reasonsOnStderr(r)].sort(), [...expected].sort(), `${what}: reasons\n${describeRun(r)}`);
  assert.equal(r.stderr.split('\n').filter((l) => l.trim() !== '').length, expected.length, `${what}: one line per reason\n${describeRun(r)}`);
  assert.ok(!r.stdout.toString('utf8').includes(TEXT.split('\n')[0] ?? ''), `${what}: content written despite failure`);
}

/** keyfleet decrypt succeeded and wrote the inner entity. */
function decrypted(r: RunResult, what: string, text = TEXT): void {
  assert.equal(r.status, 0, `${what}: decrypt failed:\n${describeRun(r)}`);
  assert.equal(textOf(r.stdout), text, `${what}: inner entity`);
}

function pkcs7Der(message: Uint8Array): Buffer {
  const x = extractCms(message);
  assert.equal(x.kind, 'pkcs7-mime', 'expected application/pkcs7-mime');
  if (x.kind !== 'pkcs7-mime') throw new Error('unreachable');
  return x.der;
}

function smimeTypeOf(message: Uint8Array): string | undefined {
  const x = extractCms(message);
  return x.kind === 'pkcs7-mime' ? x.smimeType : undefined;
}

function detachedOf(message: Uint8Array): { content: Buffer; signature: Buffer; micalg: string | undefined } {
  const x = extractCms(message);
  assert.equal(x.kind, 'detached', 'expected multipart/signed');
  if (x.kind !== 'detached') throw new Error('unreachable');
  return x;
}

const sign = (signer: TestEntity, flags: Parameters<typeof signArgs>[1] = {}, input: Uint8Array = mail(signer)): Promise<Buffer> =>
  keyfleetOk(signArgs(signer, flags), input);
const verify = (message: Uint8Array, extra: readonly string[] = [], trust: readonly TestEntity[] = [pki.root]): Promise<RunResult> =>
  keyfleet(verifyArgs(trust, extra), message);
const decrypt = (message: Uint8Array, pairs: readonly TestEntity[]): Promise<RunResult> => keyfleet(decryptArgs(pairs), message);

const micalgOf = { sha256: 'sha-256', sha384: 'sha-384', sha512: 'sha-512' } as const;

// --- the suite -----------------------------------------------------------------

describe('keyfleet smime interop', { concurrency: 2 }, () => {
  describe('keyfleet signs, peers verify', { concurrency: 2 }, () => {
    test('RSA PKCS#1 v1.5 with SHA-256/384/512 as multipart/signed: OpenSSL, gpgsm and NSS verify', async () => {
      for (const digest of ['sha256', 'sha384', 'sha512'] as const) {
        const msg = await sign(E('alice'), { digest });
        const x = detachedOf(msg);
        assert.equal(x.micalg?.toLowerCase(), micalgOf[digest], 'micalg names the digest (RFC 8551 §3.5.3.2)');
        const o = await openssl.verify(msg, { trust: [pki.root] });
        ok(o, `openssl ${digest}`);
        assert.equal(textOf(o.stdout), TEXT);
        gpgsmOk(await gpgsm.verify(x.signature, x.content), `gpgsm ${digest}`);
        nssOk(await nss.verify(x.signature, x.content), `NSS ${digest}`);
      }
    });

    test('opaque signed-data (--opaque): OpenSSL, gpgsm and NSS verify', async () => {
      const msg = await sign(E('alice'), { opaque: true });
      assert.equal(smimeTypeOf(msg), 'signed-data');
      const o = await openssl.verify(msg, { trust: [pki.root] });
      ok(o, 'openssl');
      assert.equal(textOf(o.stdout), TEXT);
      const der = pkcs7Der(msg);
      gpgsmOk(await gpgsm.verify(der), 'gpgsm');
      nssOk(await nss.verify(der), 'NSS');
    });

    test('RSASSA-PSS (--pss) with SHA-256 and SHA-512: OpenSSL and NSS verify', async () => {
      for (const digest of ['sha256', 'sha512'] as const) {
        const msg = await sign(E('alice-pss'), { pss: true, digest, opaque: true });
        assert.match(await openssl.print(msg), /rsassaPss/, 'the signature algorithm is id-RSASSA-PSS');
        ok(await openssl.verify(msg, { trust: [pki.root] }), `openssl PSS ${digest}`);
        nssOk(await nss.verify(pkcs7Der(msg)), `NSS PSS ${digest}`);
      }
    });

    test('ECDSA P-256/SHA-256 and P-384/SHA-384: OpenSSL, gpgsm and NSS verify', async () => {
      for (const [signer, digest] of [['carol', 'sha256'], ['dave', 'sha384']] as const) {
        const msg = await sign(E(signer), { digest });
        ok(await openssl.verify(msg, { trust: [pki.root] }), `openssl ${signer}`);
        const x = detachedOf(msg);
        gpgsmOk(await gpgsm.verify(x.signature, x.content), `gpgsm ${signer}`);
        nssOk(await nss.verify(x.signature, x.content), `NSS ${signer}`);
      }
    });

    test('Ed25519 signs and verifies (keyfleet alone: no peer here handles Ed25519 CMS)', async () => {
      for (const opaque of [false, true]) {
        const msg = await sign(E('erin'), { opaque });
        // OpenSSL 3.0 can still print what it cannot verify.
        assert.match(await openssl.print(opaque ? msg : detachedOf(msg).signature, opaque ? 'SMIME' : 'DER'), /ED25519 \(1\.3\.101\.112\)/);
        verified(await verify(msg), `Ed25519 opaque=${opaque}`);
      }
    });

    test('an 8-bit body is signed 7-bit safe (RFC 8551 §3.1.2) and verifies in OpenSSL', async () => {
      const text = 'Grüße aus Köln — 8-bit text.\nZweite Zeile.';
      const msg = await sign(E('alice'), {}, mail(E('alice'), text));
      const x = detachedOf(msg);
      assert.ok(x.content.every((b) => b < 0x80), 'the signed part is 7-bit');
      const o = await openssl.verify(msg, { trust: [pki.root] });
      ok(o, 'openssl');
      assert.equal(textOf(o.stdout), text);
      verified(await verify(msg), 'keyfleet', text);
    });
  });

  describe('peers sign, keyfleet verifies', { concurrency: 2 }, () => {
    test('OpenSSL multipart/signed, RSA SHA-256/384/512', async () => {
      for (const digest of ['sha256', 'sha384', 'sha512'] as const) {
        const msg = await openssl.sign(innerEntity(), { signer: E('alice'), digest, headers: { from: 'alice@example.com' } });
        verified(await verify(msg), `openssl ${digest}`);
      }
    });

    test('OpenSSL opaque RSA, PSS, ECDSA P-256 and P-384: --json names signer, chain and signing time', async () => {
      const cases = [
        ['alice', 'sha256', false],
        ['alice-pss', 'sha512', true],
        ['carol', 'sha256', false],
        ['dave', 'sha384', false],
      ] as const;
      for (const [signer, digest, pss] of cases) {
        const msg = await openssl.sign(innerEntity(), { signer: E(signer), digest, pss, opaque: true, headers: { from: E(signer).email ?? '' } });
        verified(await verify(msg), `openssl ${signer}`);
        const j = await verify(msg, ['--json']);
        assert.equal(j.status, 0, describeRun(j));
        const [s, ...more] = parseVerifyJson(j).signers;
        assert.equal(more.length, 0);
        assert.ok(s !== undefined);
        assert.deepEqual(s.reasons, []);
        assert.ok(s.emailAddresses.includes(E(signer).email ?? ''), `emailAddresses of ${signer}`);
        assert.equal(s.chain.length, 3, 'leaf, intermediate, root');
        assert.ok(typeof s.signingTime === 'string' && Math.abs(Date.parse(s.signingTime) - Date.now()) < 600_000, 'signingTime');
      }
    });

    test('gpgsm detached (SHA-256, SHA-512) and opaque, wrapped as S/MIME', async () => {
      for (const digest of ['sha256', 'sha512'] as const) {
        const sig = await gpgsm.sign(innerEntity(), { signer: E('alice'), digest });
        verified(await verify(multipartSignedMessage(innerEntity(), sig, micalgOf[digest], [['From', 'alice@example.com']])), `gpgsm ${digest}`);
      }
      const der = await gpgsm.sign(innerEntity(), { signer: E('alice'), opaque: true });
      verified(await verify(pkcs7MimeMessage(der, 'signed-data', [['From', 'alice@example.com']])), 'gpgsm opaque');
    });

    test('NSS detached RSA, P-256, P-384 and opaque, wrapped as S/MIME', async () => {
      for (const [signer, digest] of [['alice', 'sha256'], ['carol', 'sha256'], ['dave', 'sha384']] as const) {
        const sig = await nss.sign(innerEntity(), { signer: E(signer), digest });
        verified(await verify(multipartSignedMessage(innerEntity(), sig, micalgOf[digest], [['From', E(signer).email ?? '']])), `NSS ${signer}`);
      }
      const der = await nss.sign(innerEntity(), { signer: E('alice'), opaque: true, digest: 'sha512' });
      verified(await verify(pkcs7MimeMessage(der, 'signed-data', [['From', 'alice@example.com']])), 'NSS opaque');
    });

    test('legacy spellings older clients send: x-pkcs7-* types, no protocol, no micalg, p7m as octet-stream', async () => {
      const detached = (await openssl.sign(innerEntity(), { signer: E('alice'), headers: { from: 'alice@example.com' } })).toString('latin1');
      const legacy = detached
        .replace(/protocol="application\/pkcs7-signature";?\s*/, '')
        .replace(/micalg="?sha-256"?;?\s*/, '')
        .replace(/application\/pkcs7-signature/g, 'application/x-pkcs7-signature');
      verified(await verify(Buffer.from(legacy, 'latin1')), 'multipart/signed without protocol and micalg');
      const opaque = (await openssl.sign(innerEntity(), { signer: E('alice'), opaque: true, headers: { from: 'alice@example.com' } })).toString('latin1');
      verified(await verify(Buffer.from(opaque.replace(/application\/pkcs7-mime/g, 'application/x-pkcs7-mime'), 'latin1')), 'x-pkcs7-mime');
      const octet = opaque.replace(/Content-Type: application\/pkcs7-mime;[^\n]*\n/i, 'Content-Type: application/octet-stream; name="smime.p7m"\n');
      verified(await verify(Buffer.from(octet, 'latin1')), 'p7m as application/octet-stream');
    });
  });

  describe('keyfleet encrypts, peers decrypt', { concurrency: 2 }, () => {
    test('default: AES-256-CBC with RSA PKCS#1 v1.5 (RFC 8551 §2.7); OpenSSL, gpgsm and NSS decrypt', async () => {
      const msg = await keyfleetOk(encryptArgs([E('alice')]), mail('alice@example.com'));
      assert.equal(smimeTypeOf(msg), 'enveloped-data');
      const printed = await openssl.print(msg);
      assert.match(printed, /aes-256-cbc/);
      assert.match(printed, /rsaEncryption/);
      const o = await openssl.decrypt(msg, { recipient: E('alice') });
      ok(o, 'openssl');
      assert.equal(textOf(o.stdout), TEXT);
      const der = pkcs7Der(msg);
      const g = await gpgsm.decrypt(der);
      gpgsmOk(g, 'gpgsm');
      assert.equal(textOf(g.stdout), TEXT);
      const n = await nss.decrypt(der);
      ok(n, 'NSS');
      assert.equal(textOf(n.stdout), TEXT);
    });

    test('AES-128-CBC: OpenSSL, gpgsm and NSS decrypt', async () => {
      const msg = await keyfleetOk(encryptArgs([E('alice')], { cipher: 'aes-128-cbc' }), mail('alice@example.com'));
      assert.match(await openssl.print(msg), /aes-128-cbc/);
      ok(await openssl.decrypt(msg, { recipient: E('alice') }), 'openssl');
      gpgsmOk(await gpgsm.decrypt(pkcs7Der(msg)), 'gpgsm');
      ok(await nss.decrypt(pkcs7Der(msg)), 'NSS');
    });

    test('AES-128-GCM and AES-256-GCM make authEnveloped-data (RFC 5083) that OpenSSL decrypts', async () => {
      for (const cipher of ['aes-128-gcm', 'aes-256-gcm'] as const) {
        const msg = await keyfleetOk(encryptArgs([E('alice')], { cipher }), mail('alice@example.com'));
        assert.equal(smimeTypeOf(msg), 'authEnveloped-data');
        assert.match(await openssl.print(msg), /1\.2\.840\.113549\.1\.9\.16\.1\.23/, 'id-ct-authEnvelopedData');
        const o = await openssl.decrypt(msg, { recipient: E('alice') });
        ok(o, `openssl ${cipher}`);
        assert.equal(textOf(o.stdout), TEXT);
      }
    });

    test('RSAES-OAEP (--oaep) that OpenSSL decrypts', async () => {
      const msg = await keyfleetOk(encryptArgs([E('alice')], { oaep: true }), mail('alice@example.com'));
      assert.match(await openssl.print(msg), /rsaesOaep/);
      const o = await openssl.decrypt(msg, { recipient: E('alice') });
      ok(o, 'openssl');
      assert.equal(textOf(o.stdout), TEXT);
    });

    test('ECDH P-256 and P-384 (RFC 5753) that OpenSSL decrypts', async () => {
      for (const r of ['carol', 'dave'] as const) {
        const msg = await keyfleetOk(encryptArgs([E(r)]), mail('alice@example.com'));
        const o = await openssl.decrypt(msg, { recipient: E(r) });
        ok(o, `openssl ${r}`);
        assert.equal(textOf(o.stdout), TEXT);
      }
    });

    test('X25519 (RFC 8418) round trip (keyfleet alone: no peer here does X25519 key agreement)', async () => {
      for (const cipher of ['aes-256-cbc', 'aes-256-gcm'] as const) {
        const msg = await keyfleetOk(encryptArgs([E('frank')], { cipher }), mail('alice@example.com'));
        assert.match(await openssl.print(msg), /X25519 \(1\.3\.101\.110\)/, 'ephemeral X25519 originator key');
        decrypted(await decrypt(msg, [E('frank')]), `X25519 ${cipher}`);
      }
    });

    test('four recipients (RSA and ECDH): each opens it in OpenSSL, alice in gpgsm; NSS with RSA-only recipients', async () => {
      const four = [E('alice'), E('bob-3'), E('carol'), E('dave')];
      const msg = await keyfleetOk(encryptArgs(four), mail('alice@example.com'));
      for (const r of four) {
        const o = await openssl.decrypt(msg, { recipient: r });
        ok(o, `openssl as ${r.name}`);
        assert.equal(textOf(o.stdout), TEXT);
      }
      gpgsmOk(await gpgsm.decrypt(pkcs7Der(msg)), 'gpgsm as alice');
      const rsa = await keyfleetOk(encryptArgs([E('bob-2'), E('bob-3'), E('alice')]), mail('alice@example.com'));
      const n = await nss.decrypt(pkcs7Der(rsa));
      ok(n, 'NSS');
      assert.equal(textOf(n.stdout), TEXT);
    });

    test('outer headers stay outside the envelope; the inner entity is complete', async () => {
      const msg = await keyfleetOk(encryptArgs([E('alice')]), mail('alice@example.com'));
      const outer = parseEntity(msg);
      const from = outer.headers.find(([n]) => n.toLowerCase() === 'from')?.[1];
      assert.equal(from, 'Sender <alice@example.com>');
      assert.ok(!msg.toString('latin1').includes('Hello from'), 'the body is not in clear');
      const o = await openssl.decrypt(msg, { recipient: E('alice') });
      assert.match(contentType(parseEntity(o.stdout)).type, /^text\/plain$/);
    });
  });

  describe('peers encrypt, keyfleet decrypts', { concurrency: 2 }, () => {
    test('OpenSSL RSA PKCS#1 v1.5 with AES-128/256-CBC and AES-128/256-GCM', async () => {
      for (const cipher of ['aes-128-cbc', 'aes-256-cbc', 'aes-128-gcm', 'aes-256-gcm'] as const) {
        const msg = await openssl.encrypt(innerEntity(), { to: [E('alice')], cipher, headers: { from: 'bob@example.com', to: 'alice@example.com' } });
        decrypted(await decrypt(msg, [E('alice')]), `openssl ${cipher}`);
      }
    });

    test('OpenSSL RSAES-OAEP (SHA-256)', async () => {
      const msg = await openssl.encrypt(innerEntity(), { to: [E('alice')], oaep: true });
      decrypted(await decrypt(msg, [E('alice')]), 'openssl OAEP');
    });

    test('OpenSSL ECDH P-256 and P-384, with CBC and GCM', async () => {
      for (const r of ['carol', 'dave'] as const) {
        for (const cipher of ['aes-256-cbc', 'aes-128-gcm'] as const) {
          const msg = await openssl.encrypt(innerEntity(), { to: [E(r)], cipher });
          decrypted(await decrypt(msg, [E(r)]), `openssl ${r} ${cipher}`);
        }
      }
    });

    test('OpenSSL SubjectKeyIdentifier recipients (-keyid), RSA and ECDH', async () => {
      for (const r of ['alice', 'carol'] as const) {
        const msg = await openssl.encrypt(innerEntity(), { to: [E(r)], keyid: true });
        decrypted(await decrypt(msg, [E(r)]), `openssl -keyid ${r}`);
      }
    });

    test('OpenSSL to four recipients: each identity alone opens it, and all together', async () => {
      const four = [E('alice'), E('bob-3'), E('carol'), E('dave')];
      const msg = await openssl.encrypt(innerEntity(), { to: four });
      for (const r of four) decrypted(await decrypt(msg, [r]), `as ${r.name}`);
      decrypted(await decrypt(msg, [...four].reverse()), 'all identities');
    });

    test("an old key out of Bob's three: his key/certificate pairs and his PKCS#12 files open mail to bob-1", async () => {
      const msg = await openssl.encrypt(innerEntity(), { to: [E('bob-1')] });
      decrypted(await decrypt(msg, [E('bob-3'), E('bob-2'), E('bob-1')]), 'three pairs');
      const p12s = ['bob-3', 'bob-2', 'bob-1'].flatMap((n) => ['--p12', E(n as 'bob-1').p12Path ?? '', '--password', pki.p12Password]);
      decrypted(await keyfleet(['smime', 'decrypt', ...p12s], msg), 'three PKCS#12 files');
    });

    test('key and certificate formats: PKCS#1 and SEC1 keys, DER certificates, OpenSSL 3 and legacy PKCS#12', async () => {
      const toAlice = await openssl.encrypt(innerEntity(), { to: [E('alice')] });
      const a = E('alice');
      decrypted(await keyfleet(['smime', 'decrypt', '--key', a.legacyKeyPath ?? '', '--cert', a.certDerPath], toAlice), 'PKCS#1 + DER');
      const toCarol = await openssl.encrypt(innerEntity(), { to: [E('carol')] });
      const c = E('carol');
      decrypted(await keyfleet(['smime', 'decrypt', '--key', c.legacyKeyPath ?? '', '--cert', c.certDerPath], toCarol), 'SEC1 + DER');
      for (const p12 of [a.p12Path, a.legacyP12Path]) {
        decrypted(await keyfleet(['smime', 'decrypt', '--p12', p12 ?? '', '--password', pki.p12Password], toAlice), `PKCS#12 ${p12}`);
      }
    });

    test('gpgsm AES-256-CBC and AES-128-CBC, wrapped as S/MIME', async () => {
      for (const cipher of ['aes-256-cbc', 'aes-128-cbc'] as const) {
        const der = await gpgsm.encrypt(innerEntity(), { to: [E('alice')], cipher });
        decrypted(await decrypt(pkcs7MimeMessage(der, 'enveloped-data', [['From', 'bob@example.com']]), [E('alice')]), `gpgsm ${cipher}`);
      }
    });

    test('NSS to two RSA recipients, wrapped as S/MIME', async () => {
      const der = await nss.encrypt(innerEntity(), { to: [E('bob-3'), E('alice')] });
      const msg = pkcs7MimeMessage(der, 'enveloped-data', [['From', 'carol@example.com']]);
      decrypted(await decrypt(msg, [E('alice')]), 'NSS as alice');
      decrypted(await decrypt(msg, [E('bob-3')]), 'NSS as bob-3');
    });
  });

  describe('openssl smime (PKCS#7 code path, legacy x-pkcs7 types)', { concurrency: 2 }, () => {
    test('openssl smime signs (detached, opaque) and encrypts; keyfleet verifies and decrypts', async () => {
      for (const opaque of [false, true]) {
        const msg = await opensslSmime.sign(innerEntity(), { signer: E('alice'), opaque, headers: { from: 'alice@example.com' } });
        assert.match(msg.toString('latin1'), /application\/x-pkcs7-/);
        verified(await verify(msg), `openssl smime opaque=${opaque}`);
      }
      const enc = await opensslSmime.encrypt(innerEntity(), { to: [E('alice')], headers: { from: 'bob@example.com' } });
      decrypted(await decrypt(enc, [E('alice')]), 'openssl smime encrypt');
    });

    test('keyfleet output verifies and decrypts in openssl smime', async () => {
      for (const opaque of [false, true]) {
        const v = await opensslSmime.verify(await sign(E('alice'), { opaque }), { trust: [pki.root] });
        ok(v, `openssl smime verify opaque=${opaque}`);
        assert.equal(textOf(v.stdout), TEXT);
      }
      const d = await opensslSmime.decrypt(await keyfleetOk(encryptArgs([E('alice')]), mail('bob@example.com')), { recipient: E('alice') });
      ok(d, 'openssl smime decrypt');
      assert.equal(textOf(d.stdout), TEXT);
    });
  });

  describe('sign then encrypt', { concurrency: 2 }, () => {
    test('keyfleet signs and encrypts; OpenSSL, gpgsm and NSS decrypt and verify', async () => {
      const signed = await sign(E('alice'));
      const msg = await keyfleetOk(encryptArgs([E('bob-3')]), signed);
      const o = await openssl.decrypt(msg, { recipient: E('bob-3') });
      ok(o, 'openssl decrypt');
      const ov = await openssl.verify(o.stdout, { trust: [pki.root] });
      ok(ov, 'openssl verify');
      assert.equal(textOf(ov.stdout), TEXT);

      const der = pkcs7Der(msg);
      const g = await gpgsm.decrypt(der);
      gpgsmOk(g, 'gpgsm decrypt');
      const gx = detachedOf(g.stdout);
      gpgsmOk(await gpgsm.verify(gx.signature, gx.content), 'gpgsm verify');

      const n = await nss.decrypt(der);
      ok(n, 'NSS decrypt');
      const nx = detachedOf(n.stdout);
      nssOk(await nss.verify(nx.signature, nx.content), 'NSS verify');
    });

    test('OpenSSL, gpgsm and NSS sign and encrypt; keyfleet decrypts and verifies', async () => {
      const bob = E('bob-3');
      const viaOpenssl = await openssl.encrypt(await openssl.sign(innerEntity(), { signer: E('alice') }), { to: [bob], headers: { from: 'alice@example.com' } });
      const gSig = await gpgsm.sign(innerEntity(), { signer: E('alice') });
      const viaGpgsm = pkcs7MimeMessage(await gpgsm.encrypt(multipartSignedMessage(innerEntity(), gSig, 'sha-256'), { to: [bob] }), 'enveloped-data', [['From', 'alice@example.com']]);
      const nSig = await nss.sign(innerEntity(), { signer: E('carol') });
      const viaNss = pkcs7MimeMessage(await nss.encrypt(multipartSignedMessage(innerEntity(), nSig, 'sha-256'), { to: [bob] }), 'enveloped-data', [['From', 'carol@example.com']]);
      for (const [peer, msg] of [['openssl', viaOpenssl], ['gpgsm', viaGpgsm], ['NSS', viaNss]] as const) {
        const d = await decrypt(msg, [bob]);
        assert.equal(d.status, 0, `${peer}: decrypt\n${describeRun(d)}`);
        verified(await verify(d.stdout), `${peer}: verify`);
      }
    });
  });

  describe('verification failures name their reasons', { concurrency: 2 }, () => {
    test('tampered body: digest-mismatch or bad-signature, no content written', async () => {
      const msg = (await sign(E('alice'))).toString('latin1');
      assert.ok(msg.includes('Hello from'));
      const r = await verify(Buffer.from(msg.replace('Hello from', 'Jello from'), 'latin1'));
      assert.equal(r.status, 1, describeRun(r));
      const reasons = reasonsOnStderr(r);
      assert.ok(reasons.size === 1 && (reasons.has('digest-mismatch') || reasons.has('bad-signature')), describeRun(r));
      assert.ok(!r.stdout.toString('latin1').includes('ello from'), 'no content written');

      const opaque = pkcs7Der(await openssl.sign(innerEntity(), { signer: E('alice'), opaque: true, outform: 'SMIME' }));
      const at = opaque.indexOf('Hello from');
      assert.ok(at > 0);
      opaque[at] = 0x4a; // 'J'
      const o = await verify(pkcs7MimeMessage(opaque, 'signed-data', [['From', 'alice@example.com']]));
      assert.equal(o.status, 1, describeRun(o));
      assert.ok(reasonsOnStderr(o).has('digest-mismatch') || reasonsOnStderr(o).has('bad-signature'), describeRun(o));
    });

    test('tampered signed attributes (signingTime): bad-signature', async () => {
      const der = pkcs7Der(await openssl.sign(innerEntity(), { signer: E('alice'), opaque: true }));
      const oid = Buffer.from('06092a864886f70d010905', 'hex'); // id-signingTime
      const at = der.indexOf(oid);
      assert.ok(at > 0, 'signingTime present');
      const time = at + oid.length + 4; // SET header, UTCTime header
      assert.equal(der[time - 2], 0x17, 'UTCTime');
      const sec = time + 11; // YYMMDDHHMM S S
      der[sec] = der[sec] === 0x30 ? 0x31 : 0x30;
      refused(await verify(pkcs7MimeMessage(der, 'signed-data', [['From', 'alice@example.com']])), ['bad-signature'], 'signingTime changed');
    });

    test('untrusted root: untrusted-chain', async () => {
      const u = await openssl.sign(innerEntity(), { signer: E('untrusted'), headers: { from: 'untrusted@example.com' } });
      refused(await verify(u), ['untrusted-chain'], 'signer under another root');
      const a = await sign(E('alice'));
      refused(await verify(a, [], [E('untrusted-root')]), ['untrusted-chain'], 'alice against the wrong anchor');
    });

    test('expired: expired, and valid with --at inside its validity (archived mail)', async () => {
      const exp = E('expired');
      const msg = await openssl.sign(innerEntity(), { signer: exp, headers: { from: exp.email ?? '' } });
      refused(await verify(msg), ['expired'], 'expired now');
      const midpoint = new Date((exp.notBefore.getTime() + exp.notAfter.getTime()) / 2).toISOString();
      verified(await verify(msg, ['--at', midpoint]), `--at ${midpoint}`);
    });

    test('not yet valid: not-yet-valid', async () => {
      const f = E('not-yet-valid');
      refused(await verify(await openssl.sign(innerEntity(), { signer: f, headers: { from: f.email ?? '' } })), ['not-yet-valid'], 'future certificate');
    });

    test('wrong EKU: wrong-eku; no EKU at all is acceptable (RFC 8550 §4.4.4)', async () => {
      const w = E('wrong-eku');
      refused(await verify(await openssl.sign(innerEntity(), { signer: w, headers: { from: w.email ?? '' } })), ['wrong-eku'], 'serverAuth only');
      const n = E('no-eku');
      verified(await verify(await openssl.sign(innerEntity(), { signer: n, headers: { from: n.email ?? '' } })), 'no EKU');
    });

    test('wrong key usage: a keyEncipherment-only certificate cannot sign', async () => {
      const b = E('bob-3');
      refused(await verify(await openssl.sign(innerEntity(), { signer: b, headers: { from: b.email ?? '' } })), ['wrong-key-usage'], 'bob-3 signs');
    });

    test('sender mismatch: From is not in the certificate', async () => {
      const m = E('mallory');
      refused(await verify(await sign(m, {}, mail('alice@example.com'))), ['sender-mismatch'], 'mallory as alice');
      verified(await verify(await sign(m, {}, mail(m))), 'mallory as herself');
      refused(await verify(await openssl.sign(innerEntity(), { signer: E('alice'), headers: { from: 'mallory@example.com' } })), ['sender-mismatch'], 'openssl, alice as mallory');
    });

    test('revoked: only when the CRL is supplied (--crl, PEM or DER)', async () => {
      const r = E('revoked');
      const msg = await openssl.sign(innerEntity(), { signer: r, headers: { from: r.email ?? '' } });
      verified(await verify(msg), 'without revocation data');
      refused(await verify(msg, ['--crl', pki.intermediate.crlPath ?? '']), ['revoked'], 'PEM CRL');
      refused(await verify(msg, ['--crl', pki.intermediate.crlDerPath ?? '', '--crl', pki.root.crlPath ?? '']), ['revoked'], 'DER CRL and the root CRL');
      verified(await verify(await sign(E('alice')), ['--crl', pki.intermediate.crlPath ?? '']), 'alice is not revoked');
    });

    test('weak algorithms: RSA-1024, a SHA-1-signed certificate, a SHA-1 message digest', async () => {
      const weak1024 = E('weak-rsa1024');
      const a = await verify(await openssl.sign(innerEntity(), { signer: weak1024, headers: { from: weak1024.email ?? '' } }));
      refused(a, ['weak-algorithm'], 'RSA-1024');
      const sha1Cert = E('weak-sha1');
      refused(await verify(await openssl.sign(innerEntity(), { signer: sha1Cert, headers: { from: sha1Cert.email ?? '' } })), ['weak-algorithm'], 'SHA-1 certificate');
      refused(await verify(await openssl.sign(innerEntity(), { signer: E('alice'), digest: 'sha1', headers: { from: 'alice@example.com' } })), ['weak-algorithm'], 'SHA-1 digest');
    });

    test('--json on failure: exit 1, the reasons per signer', async () => {
      const exp = E('expired');
      const r = await verify(await openssl.sign(innerEntity(), { signer: exp, headers: { from: exp.email ?? '' } }), ['--json']);
      assert.equal(r.status, 1, describeRun(r));
      const [s] = parseVerifyJson(r).signers;
      assert.deepEqual(s?.reasons, ['expired']);
      assert.ok(s?.emailAddresses.includes('expired@example.com'));
    });
  });

  describe('decryption failures name their reasons', { concurrency: 2 }, () => {
    test('wrong key: no-matching-key', async () => {
      const msg = await openssl.encrypt(innerEntity(), { to: [E('alice')] });
      assert.match(assertOneReadableLine(await decrypt(msg, [E('bob-3')]), 'wrong key'), /no-matching-key/);
    });

    test("Bob's history without the key the mail was sent to: no-matching-key, not garbage (implicit rejection)", async () => {
      const msg = await openssl.encrypt(innerEntity(), { to: [E('bob-1')] });
      const r = await decrypt(msg, [E('bob-2'), E('bob-3')]);
      assert.match(assertOneReadableLine(r, 'history without bob-1'), /no-matching-key/);
      assert.equal(r.stdout.length, 0, 'nothing written');
    });

    test('a damaged GCM message: damaged', async () => {
      const der = pkcs7Der(await openssl.encrypt(innerEntity(), { to: [E('alice')], cipher: 'aes-256-gcm' }));
      der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0x01; // the last byte of the authentication tag
      const r = await decrypt(pkcs7MimeMessage(der, 'authEnveloped-data'), [E('alice')]);
      assert.match(assertOneReadableLine(r, 'bad tag'), /damaged/);
      assert.equal(r.stdout.length, 0, 'no unauthenticated plaintext written');
    });

    test('an unsupported content cipher: unsupported-algorithm with its OID', async () => {
      const msg = await openssl.encrypt(innerEntity(), { to: [E('alice')], cipher: 'camellia-128-cbc' });
      const line = assertOneReadableLine(await decrypt(msg, [E('alice')]), 'camellia');
      assert.match(line, /unsupported-algorithm 1\.2\.392\.200011\.61\.1\.1\.1\.2\b/);
    });
  });

  describe('bad input gives one readable line and exit 1', { concurrency: 2 }, () => {
    const absurd = (): Buffer => Buffer.concat([Buffer.from('3084ffffff00', 'hex'), Buffer.alloc(64, 0x41)]);
    const inputs: [string, () => Promise<Buffer>][] = [
      ['garbage bytes', async () => Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919 + 13) % 256))],
      ['empty input', async () => Buffer.alloc(0)],
      ['a plain message', async () => mail('alice@example.com')],
      ['a truncated signed message', async () => (await sign(E('alice'), { opaque: true })).subarray(0, 900)],
      ['a truncated encrypted message', async () => (await openssl.encrypt(innerEntity(), { to: [E('alice')] })).subarray(0, 700)],
      ['an absurd length field', async () => pkcs7MimeMessage(absurd(), 'signed-data')],
      ['garbage inside application/pkcs7-mime', async () => pkcs7MimeMessage(Buffer.from('not DER at all, just text'), 'enveloped-data')],
    ];
    for (const [label, make] of inputs) {
      test(`${label}: verify, decrypt and inspect`, async () => {
        const input = await make();
        const [v, d, i] = await Promise.all([verify(input), decrypt(input, [E('alice')]), keyfleet(['smime', 'inspect'], input)]);
        assertOneReadableLine(v, `verify ${label}`);
        assertOneReadableLine(d, `decrypt ${label}`);
        if (label !== 'a plain message') assertOneReadableLine(i, `inspect ${label}`);
      });
    }
  });

  describe('files and inspect', { concurrency: 2 }, () => {
    test('--in and --out: sign, verify, encrypt, decrypt through files', async () => {
      const dir = scratchDir('cli-files');
      const p = (n: string): string => join(dir, n);
      writeFileSync(p('mail.eml'), mail(E('alice')));
      await keyfleetOk([...signArgs(E('alice')), '--in', p('mail.eml'), '--out', p('signed.eml')]);
      await keyfleetOk([...encryptArgs([E('bob-3')]), '--in', p('signed.eml'), '--out', p('enc.eml')]);
      await keyfleetOk([...decryptArgs([E('bob-3')]), '--in', p('enc.eml'), '--out', p('dec.eml')]);
      await keyfleetOk([...verifyArgs([pki.root]), '--in', p('dec.eml'), '--out', p('content.eml')]);
      assert.equal(textOf(readFileSync(p('content.eml'))), TEXT);
      ok(await openssl.verify(readFileSync(p('signed.eml')), { trust: [pki.root] }), 'openssl reads the signed file');
    });

    test('inspect describes signed, enveloped and authEnveloped messages from peers', async () => {
      const messages = [
        await openssl.sign(innerEntity(), { signer: E('alice'), opaque: true }),
        await openssl.sign(innerEntity(), { signer: E('carol') }),
        await openssl.encrypt(innerEntity(), { to: [E('alice'), E('carol')] }),
        await openssl.encrypt(innerEntity(), { to: [E('alice')], cipher: 'aes-256-gcm' }),
      ];
      for (const m of messages) {
        const r = await keyfleet(['smime', 'inspect'], m);
        ok(r, 'inspect');
        assert.ok(r.stdout.length > 0, 'inspect prints something');
      }
    });
  });
});
