import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { OID } from '../../src/asn1/oids.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { initCa, openCa } from '../../src/ca/setup.ts';
import { SealedKeyStore } from '../../src/ca/keystore.ts';
import { defaultProfile } from '../../src/ca/templates.ts';
import { decodeCertificate } from '../../src/x509/certificate.ts';
import { decodeCrl, isRevoked, verifyCrlSignature } from '../../src/x509/crl.ts';
import { validatePath } from '../../src/x509/path.ts';
import { type TestCa, URLS, makeTestCa, openssl, opensslVerify, writePem } from './helpers.ts';
import { MemoryCaStore } from './memory-store.ts';

const rsaKey = () => generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
const ecKey = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey;
const alice = { emailAddress: 'alice@example.test', userName: 'Alice Example', userPrincipalName: 'alice@corp.example.test' };

for (const caKey of ['rsa-2048', 'p-256'] as const) {
  describe(`certificate authority with a ${caKey} CA`, () => {
    let t: TestCa;
    before(async () => {
      t = await makeTestCa(caKey);
    });
    after(() => t.cleanup());

    const path = (der: Uint8Array, purpose: 'smime-sign' | 'smime-encrypt') =>
      validatePath(decodeCertificate(der), { trustAnchors: [t.ca.root!], intermediates: [t.ca.certificate], purpose });

    test('the root and issuing CA chain up and the issuing CA has pathLen 0', () => {
      assert.ok(t.ca.root, 'the chain ends in a self-signed root');
      assert.equal(t.ca.certificate.basicConstraints?.cA, true);
      assert.equal(t.ca.certificate.basicConstraints?.pathLenConstraint, 0);
      assert.deepEqual([...t.ca.certificate.keyUsage!].sort(), ['cRLSign', 'digitalSignature', 'keyCertSign']);
      const years = (c: { notBefore: Date; notAfter: Date }) => (c.notAfter.getTime() - c.notBefore.getTime()) / (365.25 * 86_400_000);
      assert.ok(Math.abs(years(t.ca.root!) - 10) < 0.01);
      assert.ok(Math.abs(years(t.ca.certificate) - 5) < 0.01);
    });

    test('a signing certificate passes openssl -x509_strict smimesign and our path validation', async () => {
      for (const key of [rsaKey(), ecKey()]) {
        const issued = await t.ca.issue({ profile: defaultProfile('smimeSigning'), attributes: alice, publicKey: key, requester: 'test' });
        const file = writePem(t.dir, `sign-${issued.certificate.serialHex}.pem`, 'CERTIFICATE', issued.der);
        const r = await opensslVerify(t, file, 'smimesign');
        assert.equal(r.status, 0, r.stderr + r.stdout.toString());
        assert.deepEqual(path(issued.der, 'smime-sign').reasons, []);
        assert.deepEqual([...issued.certificate.keyUsage!].sort(), ['digitalSignature', 'nonRepudiation']);
        assert.deepEqual(issued.certificate.extKeyUsage, [OID.emailProtection]);
        // a signing-only certificate is not an encryption certificate
        assert.ok(path(issued.der, 'smime-encrypt').reasons.includes('wrong-key-usage'));
      }
    });

    test('an RSA encryption certificate passes openssl smimeencrypt; an EC one has keyAgreement and passes our validation', async () => {
      const rsa = await t.ca.issue({ profile: defaultProfile('smimeEncryption'), attributes: alice, publicKey: rsaKey() });
      assert.deepEqual([...rsa.certificate.keyUsage!], ['keyEncipherment']);
      const r = await opensslVerify(t, writePem(t.dir, 'enc-rsa.pem', 'CERTIFICATE', rsa.der), 'smimeencrypt');
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(path(rsa.der, 'smime-encrypt').reasons, []);
      // OpenSSL 3.0's smimeencrypt purpose demands keyEncipherment even for EC keys, so only our RFC 8550 check applies to ECDH certificates.
      const ec = await t.ca.issue({ profile: defaultProfile('smimeEncryption'), attributes: alice, publicKey: ecKey() });
      assert.deepEqual([...ec.certificate.keyUsage!], ['keyAgreement']);
      assert.deepEqual(path(ec.der, 'smime-encrypt').reasons, []);
      const strict = await opensslVerify(t, writePem(t.dir, 'enc-ec.pem', 'CERTIFICATE', ec.der), 'any');
      assert.equal(strict.status, 0, strict.stderr);
    });

    test('a dual-use certificate verifies for both purposes and carries SAN email and UPN, CRL DP and AIA', async () => {
      const profile = defaultProfile('smimeDual', { subjectAlternativeNameTypes: ['emailAddress', 'userPrincipalName'] });
      const issued = await t.ca.issue({ profile, attributes: alice, publicKey: rsaKey() });
      const file = writePem(t.dir, 'dual.pem', 'CERTIFICATE', issued.der);
      for (const purpose of ['smimesign', 'smimeencrypt']) {
        const r = await opensslVerify(t, file, purpose);
        assert.equal(r.status, 0, `${purpose}: ${r.stderr}`);
      }
      const c = issued.certificate;
      assert.deepEqual(c.subjectAltName?.rfc822Names, ['alice@example.test']);
      assert.deepEqual(c.subjectAltName?.upns, ['alice@corp.example.test']);
      assert.deepEqual(c.crlDistributionPoints, URLS.crl);
      assert.deepEqual(c.ocspUrls, URLS.ocsp);
      assert.deepEqual(c.authorityKeyIdentifier, t.ca.certificate.subjectKeyIdentifier);
      assert.equal(c.serialNumber.length, 20);
      assert.equal(c.serialNumber[0]! & 0x80, 0);
    });

    test('every issuance is recorded with its profile and requester, and can be listed', async () => {
      const issued = await t.ca.issue({ profile: defaultProfile('smimeSigning', { name: 'mobile-signing' }), attributes: alice, publicKey: ecKey(), requester: 'device-42' });
      const record = await t.ca.get(issued.certificate.serialHex.toUpperCase());
      assert.equal(record.profile, 'mobile-signing');
      assert.equal(record.requester, 'device-42');
      assert.equal(record.subject, 'CN=alice@example.test');
      assert.deepEqual(record.emailAddresses, ['alice@example.test']);
      assert.equal(record.status, 'good');
      assert.deepEqual(Buffer.from(record.certificateDer), Buffer.from(issued.der));
      const all = await t.ca.list();
      assert.ok(all.some((r) => r.serialHex === issued.certificate.serialHex));
      await assert.rejects(t.ca.get('00ff'), (e) => isKeyfleetError(e, 'KF_NOT_FOUND'));
    });

    test('refuses RSA-1024, P-521 and Ed25519 subject keys with KF_KEY_INVALID naming the profile', async () => {
      const profile = defaultProfile('smimeSigning', { name: 'strict-profile' });
      const countBefore = (await t.ca.list()).length;
      const keys = [
        generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey,
        generateKeyPairSync('ec', { namedCurve: 'secp521r1' }).publicKey,
        generateKeyPairSync('ed25519').publicKey,
      ];
      for (const publicKey of keys) {
        await assert.rejects(t.ca.issue({ profile, attributes: alice, publicKey }), (e) => isKeyfleetError(e, 'KF_KEY_INVALID') && /strict-profile/.test(e.message));
      }
      const rsaOnly = defaultProfile('smimeSigning', { name: 'rsa-only', keyTypes: ['rsa-3072', 'rsa-4096'] });
      await assert.rejects(t.ca.issue({ profile: rsaOnly, attributes: alice, publicKey: rsaKey() }), (e) => isKeyfleetError(e, 'KF_KEY_INVALID') && /RSA-2048/.test(e.message));
      assert.equal((await t.ca.list()).length, countBefore, 'nothing recorded for a refused request');
    });

    test('renewal keeps subject, SAN and usages with a new serial and validity; a new key of the same type is accepted', async () => {
      const profile = defaultProfile('smimeDual', { subjectAlternativeNameTypes: ['emailAddress', 'userPrincipalName'], validity: { value: 30, scale: 'days' } });
      const first = await t.ca.issue({ profile, attributes: alice, publicKey: rsaKey(), requester: 'dev-1' });
      const renewed = await t.ca.renew(first.certificate.serialHex);
      const a = first.certificate;
      const b = renewed.certificate;
      assert.notEqual(b.serialHex, a.serialHex);
      assert.deepEqual(Buffer.from(b.subject.der), Buffer.from(a.subject.der));
      assert.deepEqual(b.subjectAltName, a.subjectAltName);
      assert.deepEqual(b.keyUsage, a.keyUsage);
      assert.deepEqual(Buffer.from(b.spki), Buffer.from(a.spki));
      assert.equal(b.notAfter.getTime() - b.notBefore.getTime(), a.notAfter.getTime() - a.notBefore.getTime());
      assert.equal(renewed.record.requester, 'dev-1');
      assert.equal(renewed.record.profile, profile.name);
      const withNewKey = await t.ca.renew(b.serialHex, { publicKey: rsaKey() });
      assert.notDeepEqual(Buffer.from(withNewKey.certificate.spki), Buffer.from(a.spki));
      assert.deepEqual(withNewKey.certificate.subjectKeyIdentifier?.length, 20);
      const r = await opensslVerify(t, writePem(t.dir, 'renewed.pem', 'CERTIFICATE', withNewKey.der), 'smimeencrypt');
      assert.equal(r.status, 0, r.stderr);
      await assert.rejects(t.ca.renew(b.serialHex, { publicKey: ecKey() }), (e) => isKeyfleetError(e, 'KF_KEY_INVALID'));
    });

    test('revocation publishes a CRL that openssl and decodeCrl agree on', async () => {
      const profile = defaultProfile('smimeSigning');
      const good = await t.ca.issue({ profile, attributes: alice, publicKey: ecKey() });
      const bad = await t.ca.issue({ profile, attributes: alice, publicKey: ecKey() });
      const before = (await t.ca.latestCrl())!;
      const result = await t.ca.revoke(bad.certificate.serialHex, 'keyCompromise');
      assert.equal(result.newlyRevoked, true);
      assert.equal(result.record.status, 'revoked');
      assert.equal(result.record.revocationReason, 1);
      const crl = result.crl!;
      assert.equal(crl.crlNumber, before.crlNumber + 1n);
      const again = await t.ca.revoke(bad.certificate.serialHex, 'superseded');
      assert.equal(again.newlyRevoked, false);
      assert.equal(again.record.revocationReason, 1, 'the first revocation stands');
      await assert.rejects(t.ca.renew(bad.certificate.serialHex), (e) => isKeyfleetError(e, 'KF_CONFLICT'));
      await assert.rejects(t.ca.revoke(good.certificate.serialHex, 'removeFromCRL'), (e) => isKeyfleetError(e, 'KF_USAGE'));

      const crlPath = writePem(t.dir, 'issuing.crl.pem', 'X509 CRL', crl.der);
      const crlCheck = await openssl(['crl', '-noout', '-verify', '-CAfile', t.issuingPath, '-in', crlPath]);
      assert.equal(crlCheck.status, 0, crlCheck.stderr);
      assert.match(crlCheck.stderr, /verify OK/);
      const revokedRun = await opensslVerify(t, writePem(t.dir, 'bad.pem', 'CERTIFICATE', bad.der), 'smimesign', ['-crl_check', '-CRLfile', crlPath]);
      assert.notEqual(revokedRun.status, 0);
      assert.match(revokedRun.stdout.toString() + revokedRun.stderr, /certificate revoked/);
      const goodRun = await opensslVerify(t, writePem(t.dir, 'good.pem', 'CERTIFICATE', good.der), 'smimesign', ['-crl_check', '-CRLfile', crlPath]);
      assert.equal(goodRun.status, 0, goodRun.stderr + goodRun.stdout.toString());

      const decoded = decodeCrl(crl.der);
      assert.equal(decoded.version, 2);
      assert.equal(decoded.crlNumber, crl.crlNumber);
      assert.deepEqual(decoded.authorityKeyIdentifier, t.ca.certificate.subjectKeyIdentifier);
      assert.ok(verifyCrlSignature(decoded, t.ca.certificate));
      assert.equal(isRevoked(decoded, bad.certificate)?.reason, 1);
      assert.equal(isRevoked(decoded, good.certificate), undefined);
      assert.equal(decoded.nextUpdate!.getTime() - decoded.thisUpdate.getTime(), 7 * 86_400_000);
      const pathResult = validatePath(bad.certificate, { trustAnchors: [t.ca.root!], intermediates: [t.ca.certificate], purpose: 'smime-sign', crls: [decoded] });
      assert.ok(pathResult.reasons.includes('revoked'));
      assert.deepEqual((await t.ca.list({ status: 'revoked' })).map((r) => r.serialHex), [bad.certificate.serialHex]);
    });

    test('openCa reopens the CA from the store; a wrong KEK is KF_MASTER_KEY', async () => {
      const reopened = await openCa({ store: t.store, keyStore: new SealedKeyStore(t.kek), urls: URLS });
      const issued = await reopened.issue({ profile: defaultProfile('smimeSigning'), attributes: alice, publicKey: ecKey() });
      assert.deepEqual(path(issued.der, 'smime-sign').reasons, []);
      await assert.rejects(openCa({ store: t.store, keyStore: new SealedKeyStore(randomBytes(32)) }), (e) => isKeyfleetError(e, 'KF_MASTER_KEY'));
    });
  });
}

test('crlNeedsRefresh follows the injected clock and the period', async () => {
  let now = new Date();
  const t = await makeTestCa('p-256', { clock: () => now });
  try {
    assert.equal(await t.ca.crlNeedsRefresh(), false, 'init publishes a first CRL');
    now = new Date(now.getTime() + 3 * 86_400_000);
    assert.equal(await t.ca.crlNeedsRefresh(), false);
    now = new Date(now.getTime() + 1 * 86_400_000);
    assert.equal(await t.ca.crlNeedsRefresh(), true, 'past half the 7-day period');
    const next = await t.ca.refreshCrlIfDue();
    assert.equal(next?.crlNumber, 2n);
    assert.equal(next?.thisUpdate.getTime(), now.getTime());
    assert.equal(await t.ca.crlNeedsRefresh(), false);
    assert.equal(await t.ca.refreshCrlIfDue(), undefined);
  } finally {
    t.cleanup();
  }
});

test('a second init on the same store is refused, and an empty store is KF_CA_NOT_INITIALISED', async () => {
  const t = await makeTestCa('p-256');
  try {
    await assert.rejects(initCa({ store: t.store, keyStore: t.keyStore, keyType: 'p-256' }), (e) => isKeyfleetError(e, 'KF_CONFLICT'));
    await assert.rejects(openCa({ store: new MemoryCaStore(), keyStore: t.keyStore }), (e) => isKeyfleetError(e, 'KF_CA_NOT_INITIALISED'));
  } finally {
    t.cleanup();
  }
});
