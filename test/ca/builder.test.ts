import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { decodePemAll } from '../../src/asn1/pem.ts';
import { OID } from '../../src/asn1/oids.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { encodeTbsCertificate, randomSerial } from '../../src/ca/certificate-builder.ts';
import { SealedKeyStore } from '../../src/ca/keystore.ts';
import { importCa } from '../../src/ca/setup.ts';
import { defaultProfile } from '../../src/ca/templates.ts';
import { decodeCertificate } from '../../src/x509/certificate.ts';
import { validatePath } from '../../src/x509/path.ts';
import { type TestCa, makeTestCa, openssl, opensslVerify, writePem } from './helpers.ts';
import { MemoryCaStore } from './memory-store.ts';

test('serials are 20 octets, positive, without a leading zero octet', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), (bytes) => {
      const s = randomSerial(() => bytes);
      return s.length === 20 && (s[0]! & 0x80) === 0 && s[0] !== 0 && Buffer.compare(s.subarray(1), bytes.subarray(1)) === 0;
    }),
  );
  assert.throws(() => randomSerial(() => new Uint8Array(8)), (e) => isKeyfleetError(e, 'KF_KEY_INVALID'));
});

test('TBSCertificate refuses an empty validity and a bad serial', () => {
  const base = { serialNumber: Uint8Array.of(1), issuer: Uint8Array.of(0x30, 0), subject: Uint8Array.of(0x30, 0), spki: Uint8Array.of(0x30, 0), extensions: [] };
  const now = new Date();
  assert.throws(() => encodeTbsCertificate({ ...base, notBefore: now, notAfter: now }, Uint8Array.of(0x30, 0)), (e) => isKeyfleetError(e, 'KF_USAGE'));
  for (const serialNumber of [Uint8Array.of(0x80), new Uint8Array(21).fill(1), new Uint8Array(0)]) {
    assert.throws(() => encodeTbsCertificate({ ...base, serialNumber, notBefore: now, notAfter: new Date(now.getTime() + 1000) }, Uint8Array.of(0x30, 0)), (e) => isKeyfleetError(e, 'KF_USAGE'));
  }
});

describe('other templates and profile options', () => {
  let t: TestCa;
  before(async () => {
    t = await makeTestCa('p-256');
  });
  after(() => t.cleanup());
  const key = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey;

  test('ocspSigning: EKU ocspSigning, nocheck, no CRL DP or AIA', async () => {
    const issued = await t.ca.issue({ profile: defaultProfile('ocspSigning', { subjectNameFormat: 'custom', subjectNameFormatString: 'CN=Keyfleet OCSP Responder' }), attributes: {}, publicKey: key() });
    const c = issued.certificate;
    assert.deepEqual(c.extKeyUsage, [OID.ocspSigning]);
    assert.ok(c.extensions.some((e) => e.extnID === OID.ocspNoCheck));
    assert.deepEqual(c.crlDistributionPoints, []);
    assert.deepEqual(c.ocspUrls, []);
    const r = await opensslVerify(t, writePem(t.dir, 'ocsp.pem', 'CERTIFICATE', issued.der), 'ocsphelper');
    assert.equal(r.status, 0, r.stderr);
  });

  test('deviceIdentity: clientAuth with the device id as CN; certificatePolicies when asked', async () => {
    const profile = defaultProfile('deviceIdentity', { subjectNameFormat: 'custom', subjectNameFormatString: 'CN={{DeviceId}}', certificatePolicies: ['1.3.6.1.4.1.99999.1.2'] });
    const issued = await t.ca.issue({ profile, attributes: { deviceId: 'dev-123' }, publicKey: key() });
    assert.deepEqual(issued.certificate.extKeyUsage, [OID.clientAuth]);
    const r = await opensslVerify(t, writePem(t.dir, 'device.pem', 'CERTIFICATE', issued.der), 'sslclient');
    assert.equal(r.status, 0, r.stderr);
    const text = await openssl(['x509', '-noout', '-text', '-in', join(t.dir, 'device.pem')]);
    assert.match(text.stdout.toString(), /Policy: 1\.3\.6\.1\.4\.1\.99999\.1\.2/);
    assert.match(text.stdout.toString(), /Subject: CN = dev-123/);
  });

  test('openssl prints SAN email and UPN as we wrote them', async () => {
    const profile = defaultProfile('smimeSigning', { subjectAlternativeNameTypes: ['emailAddress', 'userPrincipalName'] });
    const issued = await t.ca.issue({ profile, attributes: { emailAddress: 'carol@example.test', userPrincipalName: 'carol@corp.example.test' }, publicKey: key() });
    const text = await openssl(['x509', '-noout', '-ext', 'subjectAltName', '-in', writePem(t.dir, 'san.pem', 'CERTIFICATE', issued.der)]);
    assert.match(text.stdout.toString(), /email:carol@example\.test, othername: UPN::carol@corp\.example\.test/);
  });

  test('a certificate never outlives the issuing CA', async () => {
    const issued = await t.ca.issue({ profile: defaultProfile('smimeSigning', { validity: { value: 10, scale: 'years' } }), attributes: { emailAddress: 'x@example.test' }, publicKey: key() });
    assert.equal(issued.certificate.notAfter.getTime(), t.ca.certificate.notAfter.getTime());
  });

  test('names resolved elsewhere (a SCEP challenge) can be issued as given; an empty subject makes the SAN critical', async () => {
    const issued = await t.ca.issue({ profile: defaultProfile('smimeSigning'), names: { subject: Uint8Array.of(0x30, 0), emails: ['dave@example.test'], upns: [] }, publicKey: key() });
    assert.equal(issued.certificate.extensions.find((e) => e.extnID === OID.subjectAltName)?.critical, true);
    const r = await opensslVerify(t, writePem(t.dir, 'empty-subject.pem', 'CERTIFICATE', issued.der), 'smimesign');
    assert.equal(r.status, 0, r.stderr);
    await assert.rejects(t.ca.issue({ profile: defaultProfile('smimeSigning'), names: { subject: Uint8Array.of(0x30, 0), emails: [], upns: [] }, publicKey: key() }), (e) => isKeyfleetError(e, 'KF_USAGE'));
    await assert.rejects(t.ca.issue({ profile: defaultProfile('smimeSigning'), publicKey: key() }), (e) => isKeyfleetError(e, 'KF_USAGE'));
    await assert.rejects(t.ca.issue({ profile: defaultProfile('smimeSigning'), attributes: { emailAddress: 'x@example.test' } }), (e) => isKeyfleetError(e, 'KF_USAGE'));
  });
});

describe('importing an issuing CA under an external root', () => {
  let dir: TestCa;
  before(async () => {
    dir = await makeTestCa('p-256'); // only for its scratch directory and helpers
    const d = dir.dir;
    writeFileSync(join(d, 'ca.ext'), 'basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
    const steps: string[][] = [
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(d, 'ext-root.key'), '-subj', '/O=External/CN=External Root', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-days', '3650', '-out', join(d, 'ext-root.pem')],
      ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(d, 'ext-issuing.key'), '-subj', '/O=External/CN=Imported Issuing CA', '-out', join(d, 'ext-issuing.csr')],
      ['x509', '-req', '-in', join(d, 'ext-issuing.csr'), '-CA', join(d, 'ext-root.pem'), '-CAkey', join(d, 'ext-root.key'), '-CAcreateserial', '-days', '1000', '-extfile', join(d, 'ca.ext'), '-out', join(d, 'ext-issuing.pem')],
    ];
    for (const s of steps) {
      const r = await openssl(s);
      assert.equal(r.status, 0, r.stderr);
    }
  });
  after(() => dir.cleanup());

  const pemDer = (file: string) => decodePemAll(readFileSync(join(dir.dir, file), 'latin1'))[0]!.der;

  test('issues certificates that chain to the external root', async () => {
    const store = new MemoryCaStore();
    const keyStore = new SealedKeyStore(randomBytes(32));
    const privateKey = createPrivateKey(readFileSync(join(dir.dir, 'ext-issuing.key')));
    const ca = await importCa({ store, keyStore, certificate: pemDer('ext-issuing.pem'), privateKey, chain: [pemDer('ext-root.pem')] });
    assert.equal((await store.getCa('issuing'))?.chainDer.length, 1);
    assert.ok(ca.root);
    const issued = await ca.issue({ profile: defaultProfile('smimeSigning'), attributes: { emailAddress: 'erin@example.test' }, publicKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey });
    const leaf = writePem(dir.dir, 'imported-leaf.pem', 'CERTIFICATE', issued.der);
    const r = await openssl(['verify', '-x509_strict', '-purpose', 'smimesign', '-CAfile', join(dir.dir, 'ext-root.pem'), '-untrusted', join(dir.dir, 'ext-issuing.pem'), leaf]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(validatePath(decodeCertificate(issued.der), { trustAnchors: [ca.root], intermediates: [ca.certificate], purpose: 'smime-sign' }).reasons, []);
    assert.equal((await ca.latestCrl())?.crlNumber, 1n);
  });

  test('refuses a key that is not the CA key, a broken chain and a non-CA certificate', async () => {
    const args = { store: new MemoryCaStore(), keyStore: new SealedKeyStore(randomBytes(32)) };
    const privateKey = createPrivateKey(readFileSync(join(dir.dir, 'ext-issuing.key')));
    const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    await assert.rejects(importCa({ ...args, certificate: pemDer('ext-issuing.pem'), privateKey: other, chain: [pemDer('ext-root.pem')] }), (e) => isKeyfleetError(e, 'KF_KEY_INVALID'));
    await assert.rejects(importCa({ ...args, certificate: pemDer('ext-issuing.pem'), privateKey, chain: [dir.ca.root!.der] }), (e) => isKeyfleetError(e, 'KF_CERT_INVALID'));
    const leaf = await dir.ca.issue({ profile: defaultProfile('smimeSigning'), attributes: { emailAddress: 'x@example.test' }, publicKey: createPrivateKey(readFileSync(join(dir.dir, 'ext-issuing.key'))) });
    await assert.rejects(importCa({ ...args, certificate: leaf.der, privateKey, chain: [] }), (e) => isKeyfleetError(e, 'KF_CERT_INVALID'));
    assert.equal((await args.store.listCas()).length, 0, 'nothing stored for a refused import');
  });
});
