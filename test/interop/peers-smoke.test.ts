/**
 * Proves the interop harness without our code: the peers sign, verify,
 * encrypt and decrypt each other's messages through the wrappers in
 * test/support/peers.ts and the MIME helpers in test/support/mime.ts. When a
 * keyfleet interop test fails, this file says whether the harness or the
 * peer is to blame.
 *
 * Tests named "limitation: …" pin down what a peer version on Debian 12
 * cannot do (OpenSSL 3.0 CLI, gpgsm 2.2.40, NSS 3.87), found by trying. If
 * one starts failing, the peer gained the feature: add the combination to
 * smime-cli.test.ts and delete the limitation.
 */
import assert from 'node:assert/strict';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { describeRun, type RunResult, runOk } from '../support/exec.ts';
import { extractCms, multipartSignedMessage, pkcs7MimeMessage, textEntity, type ExtractedCms } from '../support/mime.ts';
import { Gpgsm, type GpgsmResult, NssDb, openssl, opensslSmime, requirePeers } from '../support/peers.ts';
import { type TestPki, createTestPki } from '../support/pki.ts';

const content = textEntity('Smoke test between peers.\nSecond line.');

function ok(r: RunResult, what: string): void {
  assert.equal(r.status, 0, `${what} failed:\n${describeRun(r)}`);
}

function failed(r: RunResult, what: string): void {
  assert.notEqual(r.status, 0, `${what} unexpectedly succeeded:\n${describeRun(r)}`);
  assert.equal(r.timedOut, false, `${what} timed out:\n${describeRun(r)}`);
}

function gpgsmOk(r: GpgsmResult, what: string): void {
  assert.ok(r.ok, `${what} failed:\n${describeRun(r)}`);
}

function gpgsmFailed(r: GpgsmResult, what: string): void {
  assert.equal(r.ok, false, `${what} unexpectedly succeeded:\n${describeRun(r)}`);
  assert.equal(r.timedOut, false, `${what} timed out:\n${describeRun(r)}`);
}

function detached(x: ExtractedCms): { content: Buffer; signature: Buffer } {
  assert.equal(x.kind, 'detached');
  if (x.kind !== 'detached') throw new Error('unreachable');
  return x;
}

function der(x: ExtractedCms): Buffer {
  assert.equal(x.kind, 'pkcs7-mime');
  if (x.kind !== 'pkcs7-mime') throw new Error('unreachable');
  return x.der;
}

let pki: TestPki;
let gpgsm: Gpgsm;
let nss: NssDb;

before(async () => {
  requirePeers('openssl', 'gpgsm', 'nss');
  pki = await createTestPki();
  [gpgsm, nss] = await Promise.all([
    // gpgsm 2.2 imports only RSA keys from PKCS#12 ("data.oid" error on EC keys).
    Gpgsm.create(pki, ['alice', 'bob-3']),
    NssDb.create(pki, ['alice', 'carol', 'dave', 'bob-3']),
  ]);
});

after(async () => {
  await Promise.all([gpgsm?.close(), nss?.close()]);
});

describe('peers among themselves', { concurrency: true }, () => {
  describe('OpenSSL signs', () => {
    test('multipart/signed RSA: gpgsm and NSS verify the detached signature', async () => {
      const msg = await openssl.sign(content, { signer: pki.entity('alice'), headers: { from: 'alice@example.com' } });
      const x = detached(extractCms(msg));
      assert.deepEqual(x.content, content, 'the signed part comes back byte for byte');
      gpgsmOk(await gpgsm.verify(x.signature, x.content), 'gpgsm verify');
      const n = await nss.verify(x.signature, x.content);
      assert.ok(n.good, describeRun(n));
      ok(await openssl.verify(msg, { trust: [pki.root] }), 'openssl verify');
    });

    test('opaque RSA SHA-512: gpgsm and NSS verify, NSS returns the content', async () => {
      const d = await openssl.sign(content, { signer: pki.entity('alice'), opaque: true, digest: 'sha512', outform: 'DER' });
      gpgsmOk(await gpgsm.verify(d), 'gpgsm verify');
      assert.ok((await nss.verify(d)).good);
      const decoded = await nss.decode(d);
      ok(decoded, 'cmsutil -D');
      assert.deepEqual(decoded.stdout, content);
    });

    test('ECDSA P-256/SHA-256 and P-384/SHA-384: gpgsm and NSS verify', async () => {
      for (const [signer, digest] of [['carol', 'sha256'], ['dave', 'sha384']] as const) {
        const d = await openssl.sign(content, { signer: pki.entity(signer), opaque: true, digest, outform: 'DER' });
        gpgsmOk(await gpgsm.verify(d), `gpgsm verify ${signer}`);
        assert.ok((await nss.verify(d)).good, signer);
      }
    });

    test('limitation: gpgsm 2.2 rejects a P-384 signature over SHA-256 ("256 bit hash is not valid for a 384 bit ECC key")', async () => {
      const d = await openssl.sign(content, { signer: pki.entity('dave'), opaque: true, digest: 'sha256', outform: 'DER' });
      gpgsmFailed(await gpgsm.verify(d), 'gpgsm verify P-384/SHA-256');
      assert.ok((await nss.verify(d)).good, 'NSS accepts it');
    });

    test('RSASSA-PSS: NSS verifies; limitation: gpgsm 2.2 does not ("Invalid digest algorithm")', async () => {
      for (const digest of ['sha256', 'sha512'] as const) {
        const d = await openssl.sign(content, { signer: pki.entity('alice-pss'), opaque: true, pss: true, digest, outform: 'DER' });
        assert.ok((await nss.verify(d)).good, `NSS PSS ${digest}`);
        gpgsmFailed(await gpgsm.verify(d), `gpgsm PSS ${digest}`);
        ok(await openssl.verify(d, { trust: [pki.root], inform: 'DER' }), `openssl PSS ${digest}`);
      }
    });

    test('limitation: the OpenSSL 3.0 CLI cannot sign CMS with Ed25519 (fixed in later OpenSSL)', async () => {
      await assert.rejects(openssl.sign(content, { signer: pki.entity('erin'), digest: 'sha512' }), /eddsa|invalid digest|not supported/i);
    });

    test('a tampered signed part fails in all three peers; an untrusted signer too', async () => {
      const x = detached(extractCms(await openssl.sign(content, { signer: pki.entity('alice') })));
      const tampered = Buffer.from(x.content.toString('latin1').replace('Smoke', 'Smoky'), 'latin1');
      gpgsmFailed(await gpgsm.verify(x.signature, tampered), 'gpgsm tampered');
      const n = await nss.verify(x.signature, tampered);
      assert.equal(n.good, false);
      assert.deepEqual(n.statuses, ['DigestMismatch']);
      failed(await openssl.verify(multipartSignedMessage(tampered, x.signature, 'sha-256'), { trust: [pki.root] }), 'openssl tampered');

      const u = await openssl.sign(content, { signer: pki.entity('untrusted'), opaque: true, outform: 'DER' });
      gpgsmFailed(await gpgsm.verify(u), 'gpgsm untrusted');
      assert.deepEqual((await nss.verify(u)).statuses, ['SigningCertNotTrusted']);
      failed(await openssl.verify(u, { trust: [pki.root], inform: 'DER' }), 'openssl untrusted');
    });

    test('the intermediate\'s CRL makes OpenSSL reject the revoked signer', async () => {
      const msg = await openssl.sign(content, { signer: pki.entity('revoked') });
      const crls = [pki.intermediate.crlPath, pki.root.crlPath].filter((p) => p !== undefined);
      ok(await openssl.verify(msg, { trust: [pki.root] }), 'without CRLs');
      const r = await openssl.verify(msg, { trust: [pki.root], crls });
      failed(r, 'with CRLs');
      assert.match(r.stderr, /revoked/);
    });
  });

  describe('openssl smime (PKCS#7 code path, x-pkcs7 types)', () => {
    test('signs for openssl cms, gpgsm and NSS; encrypts for gpgsm and NSS', async () => {
      const msg = await opensslSmime.sign(content, { signer: pki.entity('alice'), headers: { from: 'alice@example.com' } });
      assert.match(msg.toString('latin1'), /application\/x-pkcs7-signature/);
      ok(await openssl.verify(msg, { trust: [pki.root] }), 'openssl cms verify');
      ok(await opensslSmime.verify(msg, { trust: [pki.root] }), 'openssl smime verify');
      const x = detached(extractCms(msg));
      gpgsmOk(await gpgsm.verify(x.signature, x.content), 'gpgsm verify');
      assert.ok((await nss.verify(x.signature, x.content)).good);
      const enc = await opensslSmime.encrypt(content, { to: [pki.entity('alice')] });
      assert.match(enc.toString('latin1'), /application\/x-pkcs7-mime/);
      gpgsmOk(await gpgsm.decrypt(der(extractCms(enc))), 'gpgsm decrypt');
      ok(await nss.decrypt(der(extractCms(enc))), 'NSS decrypt');
      const o = await opensslSmime.decrypt(enc, { recipient: pki.entity('alice') });
      ok(o, 'openssl smime decrypt');
      assert.deepEqual(o.stdout, content);
    });
  });

  describe('gpgsm signs', () => {
    test('detached RSA SHA-256/384/512 wrapped as multipart/signed: OpenSSL and NSS verify', async () => {
      for (const digest of ['sha256', 'sha384', 'sha512'] as const) {
        const sig = await gpgsm.sign(content, { signer: pki.entity('alice'), digest });
        const msg = multipartSignedMessage(content, sig, `sha-${digest.slice(3)}` as 'sha-256', [['From', 'alice@example.com']]);
        const r = await openssl.verify(msg, { trust: [pki.root] });
        ok(r, `openssl verify gpgsm ${digest}`);
        assert.deepEqual(r.stdout, content);
        assert.ok((await nss.verify(sig, content)).good, `NSS ${digest}`);
      }
    });

    test('opaque wrapped as application/pkcs7-mime: OpenSSL verifies and returns the content', async () => {
      const d = await gpgsm.sign(content, { signer: pki.entity('alice'), opaque: true });
      const r = await openssl.verify(pkcs7MimeMessage(d, 'signed-data'), { trust: [pki.root] });
      ok(r, 'openssl verify');
      assert.deepEqual(r.stdout, content);
    });
  });

  describe('NSS signs', () => {
    test('detached RSA, P-256, P-384 wrapped as multipart/signed: OpenSSL and gpgsm verify', async () => {
      for (const [signer, digest] of [['alice', 'sha256'], ['carol', 'sha256'], ['dave', 'sha384']] as const) {
        const sig = await nss.sign(content, { signer: pki.entity(signer), digest });
        const msg = multipartSignedMessage(content, sig, `sha-${digest.slice(3)}` as 'sha-256');
        ok(await openssl.verify(msg, { trust: [pki.root] }), `openssl verify NSS ${signer}`);
        gpgsmOk(await gpgsm.verify(sig, content), `gpgsm verify NSS ${signer}`);
      }
    });

    test('opaque SHA-512: OpenSSL verifies', async () => {
      const d = await nss.sign(content, { signer: pki.entity('alice'), opaque: true, digest: 'sha512' });
      const r = await openssl.verify(pkcs7MimeMessage(d, 'signed-data'), { trust: [pki.root] });
      ok(r, 'openssl verify');
      assert.deepEqual(r.stdout, content);
    });
  });

  describe('OpenSSL encrypts', () => {
    test('RSA PKCS#1 v1.5 with AES-256-CBC and AES-128-CBC: gpgsm and NSS decrypt', async () => {
      for (const cipher of ['aes-256-cbc', 'aes-128-cbc'] as const) {
        const msg = await openssl.encrypt(content, { to: [pki.entity('alice')], cipher, headers: { to: 'alice@example.com' } });
        const d = der(extractCms(msg));
        const g = await gpgsm.decrypt(d);
        gpgsmOk(g, `gpgsm ${cipher}`);
        assert.deepEqual(g.stdout, content);
        const n = await nss.decrypt(d);
        ok(n, `NSS ${cipher}`);
        assert.deepEqual(n.stdout, content);
        const o = await openssl.decrypt(msg, { recipient: pki.entity('alice') });
        ok(o, `openssl ${cipher}`);
        assert.deepEqual(o.stdout, content);
      }
    });

    test('DER re-wrapped by the MIME helper decrypts in OpenSSL (the wrapper is sound)', async () => {
      const d = await openssl.encrypt(content, { to: [pki.entity('alice')], outform: 'DER' });
      const o = await openssl.decrypt(pkcs7MimeMessage(d, 'enveloped-data'), { recipient: pki.entity('alice') });
      ok(o, 'openssl');
      assert.deepEqual(o.stdout, content);
    });

    test('SubjectKeyIdentifier recipient: NSS decrypts; limitation: gpgsm 2.2 cannot ("error getting info")', async () => {
      const d = der(extractCms(await openssl.encrypt(content, { to: [pki.entity('alice')], keyid: true })));
      const n = await nss.decrypt(d);
      ok(n, 'NSS SKI');
      assert.deepEqual(n.stdout, content);
      gpgsmFailed(await gpgsm.decrypt(d), 'gpgsm SKI');
    });

    test('limitation: neither gpgsm 2.2 nor NSS 3.87 decrypts RSAES-OAEP; OpenSSL does', async () => {
      const msg = await openssl.encrypt(content, { to: [pki.entity('alice')], oaep: true });
      const d = der(extractCms(msg));
      gpgsmFailed(await gpgsm.decrypt(d), 'gpgsm OAEP');
      failed(await nss.decrypt(d), 'NSS OAEP');
      ok(await openssl.decrypt(msg, { recipient: pki.entity('alice') }), 'openssl OAEP');
    });

    test('limitation: AES-GCM authEnveloped-data only in OpenSSL (gpgsm 2.2 "Buffer too short", NSS "Unrecognized OID")', async () => {
      for (const cipher of ['aes-128-gcm', 'aes-256-gcm'] as const) {
        const msg = await openssl.encrypt(content, { to: [pki.entity('alice')], cipher });
        const x = extractCms(msg);
        assert.equal(x.kind === 'pkcs7-mime' ? x.smimeType : '', 'authEnveloped-data');
        gpgsmFailed(await gpgsm.decrypt(der(x)), `gpgsm ${cipher}`);
        failed(await nss.decrypt(der(x)), `NSS ${cipher}`);
        const o = await openssl.decrypt(msg, { recipient: pki.entity('alice') });
        ok(o, `openssl ${cipher}`);
        assert.deepEqual(o.stdout, content);
      }
    });

    test('limitation: ECDH (P-256, P-384) decrypts only in OpenSSL (NSS 3.87 "improperly formatted DER"; gpgsm 2.2 cannot import EC keys)', async () => {
      for (const r of ['carol', 'dave'] as const) {
        const msg = await openssl.encrypt(content, { to: [pki.entity(r)] });
        failed(await nss.decrypt(der(extractCms(msg))), `NSS ${r}`);
        const o = await openssl.decrypt(msg, { recipient: pki.entity(r) });
        ok(o, `openssl ${r}`);
        assert.deepEqual(o.stdout, content);
      }
    });

    test('limitation: the OpenSSL 3.0 CLI cannot encrypt to X25519 (no RFC 8418 key agreement)', async () => {
      await assert.rejects(openssl.encrypt(content, { to: [pki.entity('frank')] }), /not supported/);
    });

    test('many recipients (RSA and ECDH): gpgsm decrypts; NSS only when every recipient is RSA', async () => {
      const mixed = der(extractCms(await openssl.encrypt(content, { to: ['carol', 'bob-3', 'dave', 'alice'].map((n) => pki.entity(n as 'alice')) })));
      const g = await gpgsm.decrypt(mixed);
      gpgsmOk(g, 'gpgsm mixed');
      assert.deepEqual(g.stdout, content);
      failed(await nss.decrypt(mixed), 'NSS with key agreement recipients (limitation)');
      const rsa = der(extractCms(await openssl.encrypt(content, { to: ['bob-1', 'bob-2', 'alice'].map((n) => pki.entity(n as 'alice')) })));
      const n = await nss.decrypt(rsa);
      ok(n, 'NSS RSA-only');
      assert.deepEqual(n.stdout, content);
    });

    test('an old key out of three: only bob-1\'s key opens mail to bob-1', async () => {
      const msg = await openssl.encrypt(content, { to: [pki.entity('bob-1')] });
      ok(await openssl.decrypt(msg, { recipient: pki.entity('bob-1') }), 'bob-1');
      failed(await openssl.decrypt(msg, { recipient: pki.entity('bob-3') }), 'bob-3');
      gpgsmFailed(await gpgsm.decrypt(der(extractCms(msg))), 'gpgsm holds bob-3 only');
    });
  });

  describe('gpgsm encrypts', () => {
    test('RSA with AES-256-CBC and AES-128-CBC: OpenSSL and NSS decrypt', async () => {
      for (const cipher of ['aes-256-cbc', 'aes-128-cbc'] as const) {
        const d = await gpgsm.encrypt(content, { to: [pki.entity('alice')], cipher });
        const o = await openssl.decrypt(pkcs7MimeMessage(d, 'enveloped-data'), { recipient: pki.entity('alice') });
        ok(o, `openssl ${cipher}`);
        assert.deepEqual(o.stdout, content);
        const n = await nss.decrypt(d);
        ok(n, `NSS ${cipher}`);
        assert.deepEqual(n.stdout, content);
      }
    });

    test('limitation: gpgsm 2.2 does not encrypt to ECDH certificates ("Wrong key usage" for keyAgreement)', async () => {
      await assert.rejects(gpgsm.encrypt(content, { to: [pki.entity('carol')] }), /Wrong key usage|not usable/);
    });
  });

  describe('NSS encrypts', () => {
    test('RSA (cmsutil picks AES-128-CBC): OpenSSL and gpgsm decrypt', async () => {
      const d = await nss.encrypt(content, { to: [pki.entity('alice'), pki.entity('bob-2')] });
      const o = await openssl.decrypt(pkcs7MimeMessage(d, 'enveloped-data'), { recipient: pki.entity('bob-2') });
      ok(o, 'openssl');
      assert.deepEqual(o.stdout, content);
      const g = await gpgsm.decrypt(d);
      gpgsmOk(g, 'gpgsm');
      assert.deepEqual(g.stdout, content);
    });

    test('limitation: NSS 3.87 cmsutil does not encrypt to EC certificates ("invalid algorithm")', async () => {
      await assert.rejects(nss.encrypt(content, { to: [pki.entity('carol')] }), /INVALID_ALGORITHM|recipientInfo/);
    });
  });

  describe('the test PKI', () => {
    test('every certificate is what test/pki/pki.ts declares', async () => {
      const kuText: Record<string, string> = {
        digitalSignature: 'Digital Signature',
        nonRepudiation: 'Non Repudiation',
        keyEncipherment: 'Key Encipherment',
        dataEncipherment: 'Data Encipherment',
        keyAgreement: 'Key Agreement',
        keyCertSign: 'Certificate Sign',
        cRLSign: 'CRL Sign',
      };
      const ekuText: Record<string, string> = {
        emailProtection: 'E-mail Protection',
        serverAuth: 'TLS Web Server Authentication',
        clientAuth: 'TLS Web Client Authentication',
        codeSigning: 'Code Signing',
      };
      const keyType = { 'rsa-2048': 'rsa', 'rsa-1024': 'rsa', 'p-256': 'ec', 'p-384': 'ec', ed25519: 'ed25519', x25519: 'x25519' } as const;
      const day = 86_400_000;
      for (const e of Object.values(pki.entities)) {
        const s = e.spec;
        const x = new X509Certificate(e.certDer);
        const what = `${e.name}: `;
        assert.equal(x.ca, s.ca !== undefined, `${what}CA`);
        assert.equal(x.publicKey.asymmetricKeyType, keyType[s.key], `${what}key type`);
        if (s.key === 'rsa-1024') assert.equal(x.publicKey.asymmetricKeyDetails?.modulusLength, 1024);
        if (s.key === 'p-384') assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, 'secp384r1');
        assert.equal(createPublicKey(e.keyPem).export({ format: 'der', type: 'spki' }).equals(x.publicKey.export({ format: 'der', type: 'spki' })), true, `${what}key matches`);
        for (const email of s.emails ?? []) assert.ok(x.subjectAltName?.includes(`email:${email}`), `${what}SAN ${email}`);
        const expectFrom = e.notBefore.getTime() - Date.now();
        assert.ok(Math.abs(expectFrom - (s.validity.notBefore ?? 0) * day) < 2 * day, `${what}notBefore`);
        assert.ok(Math.abs(e.notAfter.getTime() - Date.now() - s.validity.notAfter * day) < 2 * day, `${what}notAfter`);
        const issuer = s.issuer === undefined ? e : pki.entity(s.issuer as 'root');
        assert.ok(x.checkIssued(new X509Certificate(issuer.certDer)) && x.verify(new X509Certificate(issuer.certDer).publicKey), `${what}issued by ${issuer.name}`);

        const ext = (await runOk('openssl', ['x509', '-noout', '-ext', 'subjectKeyIdentifier,authorityKeyIdentifier,basicConstraints,keyUsage,extendedKeyUsage,subjectAltName', '-in', e.certPath])).stdout.toString('latin1');
        assert.match(ext, /Subject Key Identifier/, `${what}SKI (every certificate, for -keyid recipients)`);
        if (s.issuer !== undefined) assert.match(ext, /Authority Key Identifier/, `${what}AKI`);
        if (s.ca?.pathLen !== undefined) assert.match(ext, new RegExp(`CA:TRUE, pathlen:${s.ca.pathLen}`), `${what}pathLen`);
        assert.match(ext, new RegExp(`Key Usage: critical\\s+${s.keyUsage.map((k) => kuText[k]).join(', ')}\\s`), `${what}keyUsage`);
        if (s.extendedKeyUsage === undefined) assert.doesNotMatch(ext, /Extended Key Usage/, `${what}no EKU`);
        else assert.match(ext, new RegExp(`Extended Key Usage: \\s+${s.extendedKeyUsage.map((k) => ekuText[k]).join(', ')}\\s`), `${what}EKU`);
                if (e.p12Path !== undefined && e.legacyP12Path !== undefined) {
          for (const p12 of [e.p12Path, e.legacyP12Path]) {
            await runOk('openssl', ['pkcs12', '-in', p12, '-passin', `pass:${pki.p12Password}`, '-noout']);
          }
        }
      }
      const sha1 = (await runOk('openssl', ['x509', '-noout', '-text', '-in', pki.entity('weak-sha1').certPath])).stdout.toString('latin1');
      assert.match(sha1, /Signature Algorithm: sha1WithRSAEncryption/);
      const crl = (await runOk('openssl', ['crl', '-noout', '-text', '-in', pki.intermediate.crlPath ?? ''])).stdout.toString('latin1');
      assert.equal([...crl.matchAll(/Serial Number: (\w+)/g)].map((m) => (m[1] ?? '').toLowerCase().replace(/^0+/, '')).join(), pki.entity('revoked').serialHex);
    });

    test('scenario certificates behave as declared in OpenSSL: no EKU accepted, serverAuth-only and expired refused', async () => {
      const msg = await openssl.sign(content, { signer: pki.entity('no-eku') });
      ok(await openssl.verify(msg, { trust: [pki.root] }), 'no EKU is acceptable for S/MIME (RFC 8550 §4.4.4)');
      const r = await openssl.verify(await openssl.sign(content, { signer: pki.entity('wrong-eku') }), { trust: [pki.root] });
      failed(r, 'serverAuth-only EKU');
      const e = await openssl.verify(await openssl.sign(content, { signer: pki.entity('expired') }), { trust: [pki.root] });
      failed(e, 'expired');
      assert.match(e.stderr, /expired/);
    });
  });
});
