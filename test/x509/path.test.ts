/**
 * Path validation against chains made by the openssl CLI at test time, with
 * the verdicts cross-checked against `openssl verify -x509_strict` where
 * OpenSSL implements the same rule.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decodeCertificate, type Certificate } from '../../src/x509/certificate.ts';
import type { CertificateList } from '../../src/x509/crl.ts';
import { type PathReason, type PathResult, type Purpose, type RevocationSource, validatePath } from '../../src/x509/path.ts';
import { type Issued, TestPki, caExt, days, leafExt } from './pki.ts';

let pki: TestPki;
const at = () => new Date(); // certificates are dated around the real clock (see pki.ts)

function validate(
  leaf: Issued | Certificate,
  anchors: readonly Issued[],
  intermediates: readonly Issued[],
  options: { purpose?: Purpose; at?: Date; crls?: readonly CertificateList[]; revocation?: readonly RevocationSource[] } = {},
): PathResult {
  return validatePath('certificate' in leaf ? leaf.certificate : leaf, {
    trustAnchors: anchors.map((a) => a.certificate),
    intermediates: intermediates.map((c) => c.certificate),
    purpose: options.purpose ?? 'smime-sign',
    at: options.at ?? at(),
    ...(options.crls ? { crls: options.crls } : {}),
    ...(options.revocation ? { revocation: options.revocation } : {}),
  });
}

/** The chain as certificate names, each with its reasons. */
function steps(result: PathResult): [string, readonly PathReason[]][] {
  return result.chain.map((s) => [s.certificate.subject.rdns[0]![0]!.value, s.reasons]);
}

function assertOpenssl(expectOk: boolean, leaf: Issued, anchors: readonly Issued[], untrusted: readonly Issued[], options: { purpose?: string; at?: Date; crls?: string[]; extra?: string[]; expect?: RegExp } = {}): void {
  const r = pki.opensslVerify(leaf, { anchors, untrusted, ...options });
  assert.equal(r.ok, expectOk, `openssl verify: ${r.output}`);
  if (options.expect) assert.match(r.output, options.expect);
}

// The test PKI. EC keys where the algorithm does not matter (they are quick to make).
let rsaRoot: Issued, rsaInt: Issued, rsaLeaf: Issued;
let ecRoot: Issued, ecInt: Issued, ecLeaf: Issued;
let edRoot: Issued, edInt: Issued, edLeaf: Issued;

before(() => {
  pki = new TestPki();
  rsaRoot = pki.root('RSA Root', { key: 'rsa2048' });
  rsaInt = pki.issue('RSA Intermediate', rsaRoot, { key: 'rsa2048', ext: caExt(0) });
  rsaLeaf = pki.issue('RSA Leaf', rsaInt, { key: 'rsa2048', subject: '/CN=RSA Leaf/emailAddress=rsa@example.com' });
  ecRoot = pki.root('EC Root', { key: 'p384' });
  ecInt = pki.issue('EC Intermediate', ecRoot, { key: 'p384', ext: caExt(0) });
  ecLeaf = pki.issue('EC Leaf', ecInt, { ext: leafExt('critical,digitalSignature,keyAgreement') });
  edRoot = pki.root('Ed Root', { key: 'ed25519' });
  edInt = pki.issue('Ed Intermediate', edRoot, { key: 'ed25519', ext: caExt() });
  edLeaf = pki.issue('Ed Leaf', edInt, { key: 'ed25519', ext: leafExt('critical,digitalSignature,nonRepudiation') });
});

after(() => pki.cleanup());

describe('valid chains', () => {
  test('RSA root → intermediate (pathlen:0) → leaf, for signing and encryption', () => {
    for (const purpose of ['smime-sign', 'smime-encrypt', 'any'] as const) {
      const r = validate(rsaLeaf, [rsaRoot], [rsaInt], { purpose });
      assert.deepEqual(r.reasons, [], purpose);
      assert.deepEqual(steps(r), [
        ['RSA Leaf', []],
        ['RSA Intermediate', []],
        ['RSA Root', []],
      ]);
    }
    assertOpenssl(true, rsaLeaf, [rsaRoot], [rsaInt]);
    assertOpenssl(true, rsaLeaf, [rsaRoot], [rsaInt], { purpose: 'smimeencrypt' });
  });

  test('EC (P-384 CA, P-256 leaf with keyAgreement)', () => {
    assert.deepEqual(validate(ecLeaf, [ecRoot], [ecInt]).reasons, []);
    assert.deepEqual(validate(ecLeaf, [ecRoot], [ecInt], { purpose: 'smime-encrypt' }).reasons, []);
    assertOpenssl(true, ecLeaf, [ecRoot], [ecInt]);
  });

  test('Ed25519 throughout', () => {
    assert.deepEqual(validate(edLeaf, [edRoot], [edInt]).reasons, []);
    assertOpenssl(true, edLeaf, [edRoot], [edInt]);
  });

  test('intermediates out of order, with unrelated extras, the leaf and the root among them', () => {
    const r = validate(ecLeaf, [edRoot, ecRoot, rsaRoot], [rsaLeaf, edInt, ecRoot, rsaInt, ecLeaf, ecInt]);
    assert.deepEqual(r.reasons, []);
    assert.deepEqual(
      steps(r).map(([n]) => n),
      ['EC Leaf', 'EC Intermediate', 'EC Root'],
    );
  });

  test('a trusted intermediate ends the path', () => {
    const r = validate(ecLeaf, [ecInt], []);
    assert.deepEqual(r.reasons, []);
    assert.equal(r.chain.length, 2);
  });

  test('a self-signed end-entity certificate that is itself a trust anchor', () => {
    const self = pki.root('Self Signed', { ext: leafExt('critical,digitalSignature') });
    assert.deepEqual(steps(validate(self, [self], [])), [['Self Signed', []]]);
    assert.deepEqual(steps(validate(self, [ecRoot], [])), [['Self Signed', ['untrusted-chain']]]);
  });
});

describe('untrusted chains', () => {
  test('missing intermediate', () => {
    const r = validate(ecLeaf, [ecRoot], [rsaInt]);
    assert.deepEqual(steps(r), [['EC Leaf', ['untrusted-chain']]]);
    assertOpenssl(false, ecLeaf, [ecRoot], [rsaInt], { expect: /unable to get local issuer/ });
  });

  test('chain to a root that is not trusted', () => {
    const r = validate(ecLeaf, [edRoot], [ecInt, ecRoot]);
    assert.deepEqual(steps(r), [
      ['EC Leaf', []],
      ['EC Intermediate', []],
      ['EC Root', ['untrusted-chain']],
    ]);
    assert.deepEqual(r.reasons, ['untrusted-chain']);
    assertOpenssl(false, ecLeaf, [edRoot], [ecInt, ecRoot], { expect: /self-signed certificate in certificate chain/ });
  });

  test('a tampered intermediate breaks the link to the root', () => {
    const der = Buffer.from(ecInt.certificate.der);
    der[der.length - 5]! ^= 0x01;
    const tampered = decodeCertificate(der);
    const r = validatePath(ecLeaf.certificate, { trustAnchors: [ecRoot.certificate], intermediates: [tampered], purpose: 'smime-sign', at: at() });
    assert.deepEqual(steps(r), [
      ['EC Leaf', []],
      ['EC Intermediate', ['untrusted-chain']],
      ['EC Root', []],
    ]);
    // With the genuine one beside it, the genuine one is chosen.
    const ok = validatePath(ecLeaf.certificate, { trustAnchors: [ecRoot.certificate], intermediates: [tampered, ecInt.certificate], purpose: 'smime-sign', at: at() });
    assert.deepEqual(ok.reasons, []);
  });

  test('an issuer that is not a CA (basicConstraints cA=false, no keyCertSign)', () => {
    const notCa = pki.issue('Not A CA', ecRoot, { ext: leafExt('critical,digitalSignature') });
    const victim = pki.issue('Issued By Leaf', notCa);
    const r = validate(victim, [ecRoot], [notCa]);
    assert.deepEqual(steps(r), [
      ['Issued By Leaf', []],
      ['Not A CA', ['untrusted-chain', 'wrong-key-usage']],
      ['EC Root', []],
    ]);
    assertOpenssl(false, victim, [ecRoot], [notCa], { expect: /invalid CA certificate/ });
    // Below a pathlen:0 CA even a non-CA "intermediate" counts against the constraint (RFC 5280 §6.1.4 (l)).
    const underInt = pki.issue('Not A CA Either', ecInt, { ext: leafExt('critical,digitalSignature') });
    const victim2 = pki.issue('Issued By Leaf 2', underInt);
    assert.deepEqual(validate(victim2, [ecRoot], [ecInt, underInt]).chain[2]!.reasons, ['untrusted-chain']);
  });

  test('a CA whose keyUsage lacks keyCertSign', () => {
    const ca = pki.issue('No CertSign CA', ecRoot, { ext: ['basicConstraints = critical,CA:true', 'keyUsage = critical,digitalSignature,cRLSign', 'subjectKeyIdentifier = hash', 'authorityKeyIdentifier = keyid'] });
    const leaf = pki.issue('Under No CertSign', ca);
    const r = validate(leaf, [ecRoot], [ca]);
    assert.deepEqual(r.reasons, ['wrong-key-usage']);
    assert.deepEqual(r.chain[1]!.reasons, ['wrong-key-usage']);
    assertOpenssl(false, leaf, [ecRoot], [ca]);
  });

  test('a v1 intermediate is not accepted as a CA', () => {
    const v1 = pki.issue('V1 CA', ecRoot, { ext: null });
    assert.equal(v1.certificate.version, 1);
    const leaf = pki.issue('Under V1', v1, { ext: ['basicConstraints = critical,CA:false', 'keyUsage = critical,digitalSignature'] });
    assert.deepEqual(validate(leaf, [ecRoot], [v1]).chain[1]!.reasons, ['untrusted-chain']);
    assertOpenssl(false, leaf, [ecRoot], [v1]);
  });

  test('pathLenConstraint: an intermediate with pathlen:0 issuing another CA', () => {
    const sub = pki.issue('Sub CA', ecInt, { ext: caExt() });
    const leaf = pki.issue('Too Deep', sub);
    const r = validate(leaf, [ecRoot], [ecInt, sub]);
    assert.deepEqual(steps(r), [
      ['Too Deep', []],
      ['Sub CA', []],
      ['EC Intermediate', ['untrusted-chain']],
      ['EC Root', []],
    ]);
    assertOpenssl(false, leaf, [ecRoot], [ecInt, sub], { expect: /path length constraint exceeded/ });
    // pathlen:1 above the same depth is fine
    const roomy = pki.issue('Roomy CA', ecRoot, { ext: caExt(1) });
    const sub2 = pki.issue('Sub CA 2', roomy, { ext: caExt(0) });
    const leaf2 = pki.issue('Deep Enough', sub2);
    assert.deepEqual(validate(leaf2, [ecRoot], [roomy, sub2]).reasons, []);
    assertOpenssl(true, leaf2, [ecRoot], [roomy, sub2]);
  });

  test('an unknown critical extension on an intermediate', () => {
    const odd = pki.issue('Odd CA', ecRoot, { ext: [...caExt(), '1.3.6.1.4.1.55555.1 = critical,ASN1:NULL'] });
    const leaf = pki.issue('Under Odd', odd);
    assert.deepEqual(validate(leaf, [ecRoot], [odd]).chain[1]!.reasons, ['untrusted-chain']);
    assertOpenssl(false, leaf, [ecRoot], [odd], { expect: /unhandled critical extension/ });
  });
});

describe('validity periods', () => {
  test('expired and not-yet-valid leaves', () => {
    const expired = pki.issue('Expired Leaf', ecInt, { notBefore: days(-400), notAfter: days(-30) });
    const future = pki.issue('Future Leaf', ecInt, { notBefore: days(10), notAfter: days(400) });
    assert.deepEqual(steps(validate(expired, [ecRoot], [ecInt]))[0], ['Expired Leaf', ['expired']]);
    assert.deepEqual(steps(validate(future, [ecRoot], [ecInt]))[0], ['Future Leaf', ['not-yet-valid']]);
    assertOpenssl(false, expired, [ecRoot], [ecInt], { expect: /certificate has expired/ });
    assertOpenssl(false, future, [ecRoot], [ecInt], { expect: /certificate is not yet valid/ });
    // --at: archived mail, validated as of a time when the certificate was valid
    assert.deepEqual(validate(expired, [ecRoot], [ecInt], { at: days(-100) }).reasons, []);
    assertOpenssl(true, expired, [ecRoot], [ecInt], { at: days(-100) });
    assert.deepEqual(validate(future, [ecRoot], [ecInt], { at: days(100) }).reasons, []);
  });

  test('expired and not-yet-valid intermediates are reported at their step', () => {
    const oldCa = pki.issue('Expired CA', ecRoot, { ext: caExt(), notBefore: days(-300), notAfter: days(-1) });
    const underOld = pki.issue('Under Expired CA', oldCa, { notBefore: days(-200), notAfter: days(300) });
    assert.deepEqual(steps(validate(underOld, [ecRoot], [oldCa])), [
      ['Under Expired CA', []],
      ['Expired CA', ['expired']],
      ['EC Root', []],
    ]);
    assertOpenssl(false, underOld, [ecRoot], [oldCa], { expect: /certificate has expired/ });
    const newCa = pki.issue('Future CA', ecRoot, { ext: caExt(), notBefore: days(5), notAfter: days(300) });
    const underNew = pki.issue('Under Future CA', newCa);
    assert.deepEqual(validate(underNew, [ecRoot], [newCa]).chain[1]!.reasons, ['not-yet-valid']);
    assertOpenssl(false, underNew, [ecRoot], [newCa], { expect: /not yet valid/ });
  });

  test('a renewed CA certificate (same name and key) is preferred over the expired one', () => {
    const key = pki.newKey('p256');
    const old = pki.issue('Renewed CA', ecRoot, { key: { path: key }, ext: caExt(), notBefore: days(-700), notAfter: days(-2) });
    const renewed = pki.issue('Renewed CA', ecRoot, { key: { path: key }, ext: caExt(), notBefore: days(-3), notAfter: days(700) });
    const leaf = pki.issue('Under Renewed', old, { notBefore: days(-100), notAfter: days(100) });
    const r = validate(leaf, [ecRoot], [old, renewed]);
    assert.deepEqual(r.reasons, []);
    assert.equal(r.chain[1]!.certificate.fingerprint256, renewed.certificate.fingerprint256);
  });
});

describe('usage (RFC 8550 §4.4)', () => {
  test('EKU: emailProtection, none and anyExtendedKeyUsage are accepted; serverAuth alone is not', () => {
    const tls = pki.issue('TLS Leaf', ecInt, { ext: leafExt('critical,digitalSignature', 'serverAuth,clientAuth') });
    const none = pki.issue('No EKU Leaf', ecInt, { ext: leafExt('critical,digitalSignature', null) });
    const any = pki.issue('Any EKU Leaf', ecInt, { ext: leafExt('critical,digitalSignature', 'anyExtendedKeyUsage') });
    assert.deepEqual(validate(tls, [ecRoot], [ecInt]).reasons, ['wrong-eku']);
    assert.deepEqual(validate(none, [ecRoot], [ecInt]).reasons, []);
    assert.deepEqual(validate(any, [ecRoot], [ecInt]).reasons, []);
    assertOpenssl(false, tls, [ecRoot], [ecInt], { expect: /unsuitable certificate purpose/ });
    assertOpenssl(true, none, [ecRoot], [ecInt]);
  });

  test('an intermediate restricted by EKU to TLS cannot vouch for S/MIME', () => {
    const tlsCa = pki.issue('TLS CA', ecRoot, { ext: [...caExt(), 'extendedKeyUsage = serverAuth'] });
    const leaf = pki.issue('Under TLS CA', tlsCa);
    assert.deepEqual(validate(leaf, [ecRoot], [tlsCa]).chain[1]!.reasons, ['wrong-eku']);
    assertOpenssl(false, leaf, [ecRoot], [tlsCa]);
  });

  test('keyUsage per purpose and key type', () => {
    const rsaKey = { path: rsaLeaf.keyPath };
    const signOnly = pki.issue('RSA Sign Only', rsaInt, { key: rsaKey, ext: leafExt('critical,digitalSignature') });
    const nrOnly = pki.issue('RSA NR Only', rsaInt, { key: rsaKey, ext: leafExt('critical,nonRepudiation') });
    const encOnly = pki.issue('RSA Enc Only', rsaInt, { key: rsaKey, ext: leafExt('critical,keyEncipherment') });
    const noKu = pki.issue('RSA No KU', rsaInt, { key: rsaKey, ext: leafExt('') });
    const ecKeyEnc = pki.issue('EC KeyEncipherment', ecInt, { ext: leafExt('critical,keyEncipherment') });
    const expectations: [Issued, Issued[], Purpose, PathReason[]][] = [
      [signOnly, [rsaRoot, rsaInt], 'smime-sign', []],
      [signOnly, [rsaRoot, rsaInt], 'smime-encrypt', ['wrong-key-usage']],
      [nrOnly, [rsaRoot, rsaInt], 'smime-sign', []],
      [encOnly, [rsaRoot, rsaInt], 'smime-sign', ['wrong-key-usage']],
      [encOnly, [rsaRoot, rsaInt], 'smime-encrypt', []],
      [encOnly, [rsaRoot, rsaInt], 'any', []],
      [noKu, [rsaRoot, rsaInt], 'smime-sign', []],
      [noKu, [rsaRoot, rsaInt], 'smime-encrypt', []],
      [ecLeaf, [ecRoot, ecInt], 'smime-encrypt', []],
      [ecKeyEnc, [ecRoot, ecInt], 'smime-encrypt', ['wrong-key-usage']],
      [edLeaf, [edRoot, edInt], 'smime-encrypt', ['wrong-key-usage']],
    ];
    for (const [leaf, [root, int], purpose, reasons] of expectations) {
      assert.deepEqual(validate(leaf, [root!], [int!], { purpose }).reasons, reasons, `${leaf.name} for ${purpose}`);
    }
    assertOpenssl(false, encOnly, [rsaRoot], [rsaInt], { purpose: 'smimesign' });
    assertOpenssl(false, signOnly, [rsaRoot], [rsaInt], { purpose: 'smimeencrypt' });
    assertOpenssl(true, encOnly, [rsaRoot], [rsaInt], { purpose: 'smimeencrypt' });
  });
});

describe('weak algorithms', () => {
  test('a SHA-1 signature on the leaf', () => {
    const sha1 = pki.issue('SHA1 Leaf', rsaInt, { md: 'sha1' });
    assert.deepEqual(steps(validate(sha1, [rsaRoot], [rsaInt]))[0], ['SHA1 Leaf', ['weak-algorithm']]);
    // OpenSSL's default security level still accepts SHA-1; level 2 does not.
    assertOpenssl(false, sha1, [rsaRoot], [rsaInt], { extra: ['-auth_level', '2'] });
  });

  test('an RSA-1024 leaf key', () => {
    const small = pki.issue('RSA1024 Leaf', rsaInt, { key: 'rsa1024' });
    assert.deepEqual(validate(small, [rsaRoot], [rsaInt]).reasons, ['weak-algorithm']);
    assertOpenssl(false, small, [rsaRoot], [rsaInt], { extra: ['-auth_level', '2'] });
  });

  test('a SHA-1 intermediate is weak, a SHA-1 self-signed trust anchor is not', () => {
    const sha1Root = pki.root('SHA1 Root', { key: 'rsa2048', md: 'sha1' });
    const sha1Int = pki.issue('SHA1 Int', sha1Root, { key: { path: rsaInt.keyPath }, ext: caExt(), md: 'sha1' });
    const leaf = pki.issue('Under SHA1', sha1Int);
    assert.deepEqual(steps(validate(leaf, [sha1Root], [sha1Int])), [
      ['Under SHA1', []],
      ['SHA1 Int', ['weak-algorithm']],
      ['SHA1 Root', []],
    ]);
  });
});

describe('path building', () => {
  test('AKI/SKI choose between two CAs with the same name (re-keyed CA)', () => {
    const oldCa = pki.issue('Rekeyed CA', ecRoot, { ext: caExt() });
    const newCa = pki.issue('Rekeyed CA', ecRoot, { ext: caExt() });
    const underOld = pki.issue('Under Old Key', oldCa);
    const underNew = pki.issue('Under New Key', newCa);
    for (const order of [
      [oldCa, newCa],
      [newCa, oldCa],
    ]) {
      const a = validate(underNew, [ecRoot], order);
      assert.deepEqual(a.reasons, []);
      assert.equal(a.chain[1]!.certificate.fingerprint256, newCa.certificate.fingerprint256);
      const b = validate(underOld, [ecRoot], order);
      assert.deepEqual(b.reasons, []);
      assert.equal(b.chain[1]!.certificate.fingerprint256, oldCa.certificate.fingerprint256);
    }
    assertOpenssl(true, underNew, [ecRoot], [oldCa, newCa]);
  });

  test('two trust anchors with the same name', () => {
    const a = pki.root('Twin Root');
    const b = pki.root('Twin Root');
    const leaf = pki.issue('Under Twin B', b);
    for (const anchors of [
      [a, b],
      [b, a],
    ]) {
      const r = validate(leaf, anchors, []);
      assert.deepEqual(r.reasons, []);
      assert.equal(r.chain[1]!.certificate.fingerprint256, b.certificate.fingerprint256);
    }
  });

  test('cross-certificates: the path goes to whichever root is trusted', () => {
    const rootA = pki.root('Cross Root A');
    const rootB = pki.root('Cross Root B');
    const key = pki.newKey('p256');
    const byA = pki.issue('Cross CA', rootA, { key: { path: key }, ext: caExt() });
    const byB = pki.issue('Cross CA', rootB, { key: { path: key }, ext: caExt() });
    const leaf = pki.issue('Cross Leaf', byA);
    const viaB = validate(leaf, [rootB], [byA, byB, rootA]);
    assert.deepEqual(viaB.reasons, []);
    assert.deepEqual(
      steps(viaB).map(([n]) => n),
      ['Cross Leaf', 'Cross CA', 'Cross Root B'],
    );
    const viaA = validate(leaf, [rootA], [byB, byA]);
    assert.deepEqual(viaA.reasons, []);
    assert.equal(viaA.chain[2]!.certificate.fingerprint256, rootA.certificate.fingerprint256);
    // OpenSSL takes the first issuer it finds and does not backtrack, so it is given the helpful order.
    assertOpenssl(true, leaf, [rootB], [byB, byA, rootA]);
  });

  test('mutually cross-signed roots, neither trusted: the search ends', () => {
    const keyA = pki.newKey('p256');
    const keyB = pki.newKey('p256');
    const rootA = pki.root('Loop Root A', { key: { path: keyA } });
    const rootB = pki.root('Loop Root B', { key: { path: keyB } });
    const aByB = pki.issue('Loop Root A', rootB, { key: { path: keyA }, ext: caExt() });
    const bByA = pki.issue('Loop Root B', rootA, { key: { path: keyB }, ext: caExt() });
    const leaf = pki.issue('Loop Leaf', rootA);
    const started = process.cpuUsage();
    const r = validate(leaf, [edRoot], [aByB, bByA, rootA, rootB]);
    assert.ok(process.cpuUsage(started).user < 1_000_000);
    assert.deepEqual(r.reasons, ['untrusted-chain']);
    // and with B trusted, A's cross-certificate leads there
    const viaB = validate(leaf, [rootB], [aByB, bByA, rootA]);
    assert.deepEqual(viaB.reasons, []);
    assert.deepEqual(
      steps(viaB).map(([n]) => n),
      ['Loop Leaf', 'Loop Root A', 'Loop Root B'],
    );
  });

  test('reasons are de-duplicated across steps, in a fixed order', () => {
    const expiredCa = pki.issue('Expired Weak CA', rsaRoot, { key: { path: rsaInt.keyPath }, ext: caExt(), md: 'sha1', notBefore: days(-300), notAfter: days(-1) });
    const leaf = pki.issue('Expired Weak Leaf', expiredCa, { md: 'sha1', notBefore: days(-200), notAfter: days(-2) });
    const r = validate(leaf, [rsaRoot], [expiredCa]);
    assert.deepEqual(r.chain[0]!.reasons, ['expired', 'weak-algorithm']);
    assert.deepEqual(r.chain[1]!.reasons, ['expired', 'weak-algorithm']);
    assert.deepEqual(r.reasons, ['expired', 'weak-algorithm']);
  });

  test('validating the same chain repeatedly is cheap (signature results are cached)', () => {
    const anchors = [rsaRoot.certificate];
    const intermediates = [rsaInt.certificate, rsaLeaf.certificate];
    const options = { trustAnchors: anchors, intermediates, purpose: 'smime-sign' as const };
    validatePath(rsaLeaf.certificate, options);
    const started = process.cpuUsage();
    for (let i = 0; i < 20_000; i++) assert.equal(validatePath(rsaLeaf.certificate, options).reasons.length, 0);
    const used = process.cpuUsage(started);
    const perOp = (used.user + used.system) / 1000 / 20_000;
    assert.ok(perOp < 0.1, `${(perOp * 1000).toFixed(1)} µs per validation`);
  });
});

describe('revocation', () => {
  let revoked: Issued, good: Issued, crlPath: string, crl: CertificateList;

  before(() => {
    revoked = pki.issue('Revoked Leaf', ecInt);
    good = pki.issue('Good Leaf', ecInt);
    pki.revoke(ecInt, revoked, 'keyCompromise');
    ({ path: crlPath, crl } = pki.crl(ecInt));
  });

  test('a certificate on a CRL of its issuer is revoked; others are not', () => {
    assert.deepEqual(steps(validate(revoked, [ecRoot], [ecInt], { crls: [crl] })), [
      ['Revoked Leaf', ['revoked']],
      ['EC Intermediate', []],
      ['EC Root', []],
    ]);
    assert.deepEqual(validate(good, [ecRoot], [ecInt], { crls: [crl] }).reasons, []);
    assert.deepEqual(validate(revoked, [ecRoot], [ecInt]).reasons, [], 'no revocation data, no verdict');
    const rootCrl = pki.crl(ecRoot).path;
    assertOpenssl(false, revoked, [ecRoot], [ecInt], { crls: [crlPath, rootCrl], expect: /certificate revoked/ });
    assertOpenssl(true, good, [ecRoot], [ecInt], { crls: [crlPath, rootCrl] });
  });

  test('validated as of a time before the revocation, the certificate is not revoked', () => {
    assert.deepEqual(validate(revoked, [ecRoot], [ecInt], { crls: [crl], at: days(-1) }).reasons, []);
  });

  test('an expired CRL is still evidence of revocation', () => {
    assert.ok(crl.nextUpdate && crl.nextUpdate < days(40));
    assert.deepEqual(validate(revoked, [ecRoot], [ecInt], { crls: [crl], at: days(40) }).reasons, ['revoked']);
  });

  test('a CRL with the issuer name but signed by another key is ignored', () => {
    const impostor = pki.issue('EC Intermediate', ecRoot, { key: 'p384', ext: caExt(0) });
    pki.revoke(impostor, good, 'keyCompromise');
    const fake = pki.crl(impostor).crl;
    assert.ok(fake.revoked.has(good.certificate.serialHex));
    assert.deepEqual(validate(good, [ecRoot], [ecInt], { crls: [fake] }).reasons, []);
    // the impostor's own CRL does apply to certificates the impostor issued
    const underImpostor = pki.issue('Under Impostor', impostor);
    pki.revoke(impostor, underImpostor);
    assert.deepEqual(validate(underImpostor, [ecRoot], [impostor, ecInt], { crls: [pki.crl(impostor).crl, crl] }).reasons, ['revoked']);
  });

  test('a revoked intermediate', () => {
    const ca = pki.issue('Revoked CA', ecRoot, { ext: caExt() });
    const leaf = pki.issue('Under Revoked CA', ca);
    pki.revoke(ecRoot, ca, 'cACompromise');
    const rootCrl = pki.crl(ecRoot).crl;
    assert.deepEqual(steps(validate(leaf, [ecRoot], [ca], { crls: [rootCrl] })), [
      ['Under Revoked CA', []],
      ['Revoked CA', ['revoked']],
      ['EC Root', []],
    ]);
  });

  test('a RevocationSource plugs in beside CRLs', () => {
    const calls: [string, string, Date][] = [];
    const source: RevocationSource = {
      status(cert, issuer, when) {
        calls.push([cert.subject.rdns[0]![0]!.value, issuer.subject.rdns[0]![0]!.value, when]);
        return cert.fingerprint256 === ecInt.certificate.fingerprint256 ? { status: 'revoked', reason: 1, revocationTime: days(-1) } : { status: 'good' };
      },
    };
    const when = at();
    const r = validate(good, [ecRoot], [ecInt], { revocation: [source], at: when });
    assert.deepEqual(steps(r), [
      ['Good Leaf', []],
      ['EC Intermediate', ['revoked']],
      ['EC Root', []],
    ]);
    assert.deepEqual(calls, [
      ['Good Leaf', 'EC Intermediate', when],
      ['EC Intermediate', 'EC Root', when],
    ]);
  });

  test('CRLs loaded from a PEM file work the same', async () => {
    const { loadCrls } = await import('../../src/x509/crl.ts');
    const crls = loadCrls(readFileSync(crlPath));
    assert.deepEqual(validate(revoked, [ecRoot], [ecInt], { crls }).reasons, ['revoked']);
  });
});
