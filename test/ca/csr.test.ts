import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodePemAll } from '../../src/asn1/pem.ts';
import { OID } from '../../src/asn1/oids.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { decodeCsr, loadCsr, verifyCsrSignature } from '../../src/ca/csr.ts';
import { keyIdentifier } from '../../src/ca/extensions.ts';
import { defaultProfile } from '../../src/ca/templates.ts';
import { nameToString } from '../../src/x509/name.ts';
import { decodeCertificate } from '../../src/x509/certificate.ts';
import { type TestCa, makeTestCa, openssl, opensslVerify, writePem } from './helpers.ts';

const reqConfig = `
[req]
distinguished_name = dn
attributes = attrs
req_extensions = ext
prompt = no
[dn]
O = Example
CN = bob@example.test
[attrs]
challengePassword = s3cret-Challenge
[ext]
subjectAltName = email:bob@example.test, otherName:1.3.6.1.4.1.311.20.2.3;UTF8:bob@corp.example.test
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = emailProtection
`;

describe('PKCS#10 requests from openssl req', () => {
  let t: TestCa;
  const csrs: Record<string, Uint8Array> = {};
  before(async () => {
    t = await makeTestCa('p-256');
    writeFileSync(join(t.dir, 'req.cnf'), reqConfig);
    for (const [name, alg] of [
      ['rsa', ['-newkey', 'rsa:2048']],
      ['ec', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384']],
    ] as const) {
      const out = join(t.dir, `${name}.csr`);
      const r = await openssl(['req', '-new', ...alg, '-nodes', '-keyout', join(t.dir, `${name}.key`), '-config', join(t.dir, 'req.cnf'), '-outform', 'DER', '-out', out]);
      assert.equal(r.status, 0, r.stderr);
      csrs[name] = readFileSync(out);
    }
  });
  after(() => t.cleanup());

  test('subject, public key, challengePassword and extensionRequest are decoded and the signature verifies', async () => {
    for (const [name, der] of Object.entries(csrs)) {
      const csr = loadCsr(der);
      assert.equal(nameToString(csr.subject), 'O=Example, CN=bob@example.test', name);
      assert.equal(csr.challengePassword, 's3cret-Challenge');
      assert.deepEqual(csr.subjectAltName?.rfc822Names, ['bob@example.test']);
      assert.deepEqual(csr.subjectAltName?.upns, ['bob@corp.example.test']);
      assert.deepEqual([...csr.keyUsage!].sort(), ['digitalSignature', 'keyEncipherment']);
      assert.deepEqual(csr.extKeyUsage, [OID.emailProtection]);
      assert.ok(csr.requestedExtensions.find((e) => e.extnID === OID.keyUsage)?.critical);
      assert.deepEqual(csr.attributes.map((a) => a.type).sort(), [OID.challengePassword, OID.extensionRequest].sort());
      assert.equal(csr.publicKey.asymmetricKeyType, name === 'rsa' ? 'rsa' : 'ec');
      // Same subject key identifier as openssl would compute (RFC 5280 §4.2.1.2 method 1), via a certificate openssl signs.
      const pub = await openssl(['req', '-inform', 'DER', '-in', join(t.dir, `${name}.csr`), '-pubkey', '-noout']);
      assert.equal(pub.status, 0);
      assert.deepEqual(Buffer.from(csr.spki), decodePemAll(pub.stdout.toString())[0]!.der);
    }
    // PEM input works too
    const pem = await openssl(['req', '-inform', 'DER', '-in', join(t.dir, 'rsa.csr'), '-outform', 'PEM']);
    assert.equal(loadCsr(pem.stdout).challengePassword, 's3cret-Challenge');
  });

  test('the subject key identifier matches openssl "subjectKeyIdentifier = hash"', async () => {
    const ext = join(t.dir, 'ski.ext');
    writeFileSync(ext, 'subjectKeyIdentifier = hash\n');
    const out = join(t.dir, 'self.pem');
    const r = await openssl(['x509', '-req', '-inform', 'DER', '-in', join(t.dir, 'rsa.csr'), '-signkey', join(t.dir, 'rsa.key'), '-extfile', ext, '-out', out, '-days', '1']);
    assert.equal(r.status, 0, r.stderr);
    const cert = decodeCertificate(decodePemAll(readFileSync(out, 'latin1'))[0]!.der);
    assert.deepEqual(Buffer.from(keyIdentifier(cert.spki)), Buffer.from(cert.subjectKeyIdentifier!));
  });

  test('a CSR with a tampered subject or signature is refused', () => {
    const der = Buffer.from(csrs.rsa!);
    const at = der.indexOf(Buffer.from('bob@example.test'));
    const tampered = Buffer.from(der);
    tampered[at] = 'c'.charCodeAt(0);
    assert.equal(verifyCsrSignature(decodeCsr(tampered)), false);
    assert.throws(() => loadCsr(tampered), (e) => isKeyfleetError(e, 'KF_KEY_INVALID'));
    const badSig = Buffer.from(der);
    badSig[badSig.length - 5]! ^= 0x01;
    assert.throws(() => loadCsr(badSig), (e) => isKeyfleetError(e, 'KF_KEY_INVALID'));
  });

  test('garbage and truncated input are KF_ASN1_MALFORMED, oversized KF_INPUT_TOO_LARGE', () => {
    const der = csrs.ec!;
    for (const bad of [Buffer.from('not a csr'), der.subarray(0, der.length - 10), Buffer.concat([der, Buffer.from([0])]), Buffer.alloc(0)]) {
      assert.throws(() => decodeCsr(bad), (e) => isKeyfleetError(e, 'KF_ASN1_MALFORMED'));
    }
    assert.throws(() => decodeCsr(Buffer.alloc(70_000)), (e) => isKeyfleetError(e, 'KF_INPUT_TOO_LARGE'));
  });

  test('a certificate issued from a CSR has the CSR key and the profile names, and verifies', async () => {
    const csr = loadCsr(csrs.rsa!);
    const issued = await t.ca.issue({ profile: defaultProfile('smimeEncryption'), attributes: { emailAddress: 'bob@example.test' }, csr, requester: 'scep' });
    assert.deepEqual(Buffer.from(issued.certificate.spki), Buffer.from(csr.spki));
    const r = await opensslVerify(t, writePem(t.dir, 'from-csr.pem', 'CERTIFICATE', issued.der), 'smimeencrypt');
    assert.equal(r.status, 0, r.stderr);
    // CSR bytes are verified before use
    const tampered = Buffer.from(csrs.rsa!);
    tampered[tampered.length - 3]! ^= 0xff;
    await assert.rejects(t.ca.issue({ profile: defaultProfile('smimeSigning'), attributes: { emailAddress: 'bob@example.test' }, csr: tampered }), (e) => isKeyfleetError(e, 'KF_KEY_INVALID'));
  });
});
