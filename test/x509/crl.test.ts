import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as der from '../../src/asn1/writer.ts';
import { OID } from '../../src/asn1/oids.ts';
import { encodePem } from '../../src/asn1/pem.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { CrlReason, decodeCrl, isRevoked, loadCrls, verifyCrlSignature } from '../../src/x509/crl.ts';
import { crlRevocationSource } from '../../src/x509/revocation.ts';
import { createSignature, encodeSignatureAlgorithm, schemeForKey } from '../../src/x509/signature.ts';
import { type Issued, TestPki, caExt, days, NOW } from './pki.ts';

// ------------------------------------------------------------ a CRL writer for cases openssl cannot produce

interface EntrySpec {
  readonly serial: bigint;
  readonly date: Date;
  readonly reason?: number;
  readonly entryExtensions?: readonly Uint8Array[];
}

interface CrlSpec {
  readonly issuer: Issued;
  readonly key: KeyObject;
  readonly entries?: readonly EntrySpec[];
  readonly thisUpdate?: Date;
  readonly nextUpdate?: Date | null;
  /** Raw Extension encodings for crlExtensions; undefined → a v1 CRL without extensions. */
  readonly extensions?: readonly Uint8Array[];
  /** Override the TBSCertList signature field (to test the mismatch rule). */
  readonly innerAlgorithm?: Uint8Array;
}

function extension(oid: string, value: Uint8Array, critical = false): Uint8Array {
  return der.sequence(der.oid(oid), ...(critical ? [der.boolean(true)] : []), der.octetString(value));
}

const enumerated = (n: number) => der.tlv(0x0a, Uint8Array.of(n));

function buildCrl(spec: CrlSpec): Uint8Array {
  const scheme = schemeForKey(spec.key, 'sha256');
  const alg = encodeSignatureAlgorithm(scheme, spec.key);
  const entries = (spec.entries ?? []).map((e) => {
    const exts = [...(e.reason === undefined ? [] : [extension(OID.cRLReason, enumerated(e.reason))]), ...(e.entryExtensions ?? [])];
    return der.sequence(der.integer(e.serial), der.time(e.date), ...(exts.length ? [der.sequence(...exts)] : []));
  });
  const v2 = spec.extensions !== undefined || (spec.entries ?? []).some((e) => e.reason !== undefined || e.entryExtensions);
  const tbs = der.sequence(
    ...(v2 ? [der.integer(1)] : []),
    spec.innerAlgorithm ?? alg,
    spec.issuer.certificate.subject.der,
    der.time(spec.thisUpdate ?? NOW),
    ...(spec.nextUpdate === null ? [] : [der.time(spec.nextUpdate ?? days(30))]),
    // 100,000 entries are too many for a spread call
    ...(entries.length ? [Buffer.concat([der.header(0x30, entries.reduce((n, e) => n + e.length, 0)), ...entries])] : []),
    ...(spec.extensions && spec.extensions.length ? [der.explicit(0, der.sequence(...spec.extensions))] : []),
  );
  return der.sequence(tbs, alg, der.bitString(createSignature(scheme, tbs, spec.key)));
}

const crlNumber = (n: number) => extension(OID.cRLNumber, der.integer(n));

// ------------------------------------------------------------ fixtures

let pki: TestPki;
let ca: Issued;
let caKey: KeyObject;
let otherCa: Issued; // same name as ca, different key
let leaf: Issued;
let other: Issued;

before(() => {
  pki = new TestPki();
  ca = pki.root('CRL CA', { ext: caExt() });
  caKey = createPrivateKey(readFileSync(ca.keyPath));
  otherCa = pki.root('CRL CA', { ext: caExt() });
  leaf = pki.issue('Revoked Leaf', ca);
  other = pki.issue('Good Leaf', ca);
});

after(() => pki.cleanup());

describe('decodeCrl on CRLs made by openssl ca', () => {
  test('reads issuer, times, CRL number and revoked entries with reasons', () => {
    pki.revoke(ca, leaf, 'keyCompromise');
    const { crl, path } = pki.crl(ca, { withAki: true });
    assert.equal(crl.version, 2);
    assert.deepEqual(crl.issuer.der, ca.certificate.subject.der);
    // openssl reads the clock twice, so a second may tick between thisUpdate and nextUpdate
    assert.ok(crl.nextUpdate && Math.abs(crl.nextUpdate.getTime() - crl.thisUpdate.getTime() - 30 * 86_400_000) <= 2000);
    assert.equal(typeof crl.crlNumber, 'bigint');
    assert.deepEqual(crl.authorityKeyIdentifier, ca.certificate.subjectKeyIdentifier);
    assert.equal(crl.revoked.size, 1);
    const entry = crl.revoked.get(leaf.certificate.serialHex);
    assert.ok(entry);
    assert.equal(entry.reason, CrlReason.keyCompromise);
    assert.ok(Math.abs(entry.revocationDate.getTime() - Date.now()) < 600_000);
    assert.deepEqual(crl.unknownCriticalExtensions, []);
    assert.equal(crl.signatureAlgorithmsMatch, true);
    // openssl's own view of the same file
    const text = execFileSync('openssl', ['crl', '-in', path, '-noout', '-text'], { encoding: 'latin1' });
    assert.match(text, new RegExp(leaf.certificate.serialHex.toUpperCase()));
  });

  test('loadCrls accepts PEM with several blocks and DER', () => {
    const a = pki.crl(ca);
    const b = pki.crl(otherCa);
    const pem = readFileSync(a.path, 'latin1') + readFileSync(b.path, 'latin1');
    const both = loadCrls(Buffer.from(pem, 'latin1'));
    assert.equal(both.length, 2);
    assert.deepEqual(both[0]!.der, a.crl.der);
    const [fromDer] = loadCrls(a.crl.der);
    assert.deepEqual(fromDer!.tbs, a.crl.tbs);
  });

  test('verifyCrlSignature: the issuer key verifies, a same-name CA with another key does not', () => {
    const { crl } = pki.crl(ca);
    assert.equal(verifyCrlSignature(crl, ca.certificate), true);
    assert.equal(verifyCrlSignature(crl, otherCa.certificate), false);
    assert.equal(verifyCrlSignature(crl, leaf.certificate), false);
    // cached answers stay the same
    assert.equal(verifyCrlSignature(crl, ca.certificate), true);
    assert.equal(verifyCrlSignature(crl, otherCa.certificate), false);
  });
});

describe('decodeCrl on constructed CRLs', () => {
  test('v1 CRL without nextUpdate, extensions or entries', () => {
    const crl = decodeCrl(buildCrl({ issuer: ca, key: caKey, nextUpdate: null }));
    assert.equal(crl.version, 1);
    assert.equal(crl.nextUpdate, undefined);
    assert.equal(crl.revoked.size, 0);
    assert.equal(crl.crlNumber, undefined);
    assert.equal(verifyCrlSignature(crl, ca.certificate), true);
  });

  test('GeneralizedTime dates (2050 and later) and UTCTime both decode', () => {
    const late = new Date('2051-02-03T04:05:06Z');
    const crl = decodeCrl(buildCrl({ issuer: ca, key: caKey, thisUpdate: new Date('2049-12-31T23:59:59Z'), nextUpdate: late, entries: [{ serial: 5n, date: late }], extensions: [crlNumber(7)] }));
    assert.equal(crl.thisUpdate.toISOString(), '2049-12-31T23:59:59.000Z');
    assert.equal(crl.nextUpdate?.toISOString(), '2051-02-03T04:05:06.000Z');
    assert.equal(crl.revoked.get('05')?.revocationDate.toISOString(), '2051-02-03T04:05:06.000Z');
    assert.equal(crl.crlNumber, 7n);
  });

  test('serials are keyed by their encoded contents, as Certificate.serialHex', () => {
    const crl = decodeCrl(buildCrl({ issuer: ca, key: caKey, entries: [{ serial: 0x80n, date: NOW }, { serial: BigInt(`0x${leaf.certificate.serialHex}`), date: NOW }] }));
    assert.ok(crl.revoked.has('0080'));
    assert.ok(isRevoked(crl, leaf.certificate));
    assert.equal(isRevoked(crl, other.certificate), undefined);
  });

  test('isRevoked honours the time and removeFromCRL', () => {
    const crl = decodeCrl(
      buildCrl({
        issuer: ca,
        key: caKey,
        entries: [
          { serial: 1n, date: days(-10), reason: CrlReason.keyCompromise },
          { serial: 2n, date: days(-10), reason: CrlReason.removeFromCRL },
        ],
        extensions: [crlNumber(1)],
      }),
    );
    assert.ok(isRevoked(crl, { serialHex: '01' }));
    assert.ok(isRevoked(crl, { serialHex: '01' }, days(-1)));
    assert.equal(isRevoked(crl, { serialHex: '01' }, days(-11)), undefined, 'not yet revoked at that time');
    assert.equal(isRevoked(crl, { serialHex: '02' }), undefined);
  });

  test('a TBSCertList signature different from the outer one is never accepted (RFC 5280 §5.1.1.2)', () => {
    const crl = decodeCrl(buildCrl({ issuer: ca, key: caKey, innerAlgorithm: der.sequence(der.oid(OID.ecdsaWithSHA384)) }));
    assert.equal(crl.signatureAlgorithmsMatch, false);
    assert.equal(verifyCrlSignature(crl, ca.certificate), false);
  });

  test('a tampered CRL does not verify', () => {
    const bytes = Buffer.from(buildCrl({ issuer: ca, key: caKey, entries: [{ serial: 77n, date: NOW }] }));
    const i = bytes.indexOf(Buffer.from([0x02, 0x01, 77]));
    bytes[i + 2] = 78;
    const crl = decodeCrl(bytes);
    assert.ok(crl.revoked.has('4e'));
    assert.equal(verifyCrlSignature(crl, ca.certificate), false);
  });

  test('unknown critical extensions are listed; known ones are not', () => {
    const crl = decodeCrl(
      buildCrl({
        issuer: ca,
        key: caKey,
        extensions: [crlNumber(3), extension('1.2.3.4.5', der.nullValue(), true), extension('1.2.3.4.6', der.nullValue(), false)],
        entries: [{ serial: 9n, date: NOW, entryExtensions: [extension('1.2.3.4.7', der.nullValue(), true)] }],
      }),
    );
    assert.deepEqual([...crl.unknownCriticalExtensions].sort(), ['1.2.3.4.5', '1.2.3.4.7']);
  });

  test('issuingDistributionPoint scope flags are decoded', () => {
    const idp = der.sequence(der.implicitPrimitive(2, Uint8Array.of(0xff)));
    const crl = decodeCrl(buildCrl({ issuer: ca, key: caKey, extensions: [extension('2.5.29.28', idp, true)] }));
    assert.equal(crl.issuingDistributionPoint?.onlyContainsCACerts, true);
    assert.equal(crl.issuingDistributionPoint?.onlyContainsUserCerts, false);
    assert.deepEqual(crl.unknownCriticalExtensions, []);
  });

  test('a 100,000-entry CRL decodes fast and looks up by serial', () => {
    const entries: EntrySpec[] = [];
    for (let i = 0; i < 100_000; i++) entries.push({ serial: 0x10_0000_0000n + BigInt(i) * 7919n, date: new Date(NOW.getTime() - (i % 5000) * 60_000), ...(i % 3 === 0 ? { reason: i % 10 } : {}) });
    const bytes = buildCrl({ issuer: ca, key: caKey, entries, extensions: [crlNumber(42)] });
    // CPU time rather than wall time: the suite runs beside openssl processes on small machines.
    const started = process.cpuUsage();
    const crl = decodeCrl(bytes);
    const used = process.cpuUsage(started);
    const elapsed = (used.user + used.system) / 1000;
    assert.equal(crl.revoked.size, 100_000);
    const probe = entries[54_321]!;
    const hexSerial = probe.serial.toString(16).padStart(10, '0');
    assert.equal(crl.revoked.get(hexSerial)?.revocationDate.getTime(), probe.date.getTime());
    assert.equal(crl.revoked.get(hexSerial)?.reason, probe.reason);
    assert.equal(verifyCrlSignature(crl, ca.certificate), true);
    assert.ok(elapsed < 1500, `decoding took ${elapsed.toFixed(0)} ms`);
  });
});

describe('malformed CRLs give coded errors', () => {
  const good = () => buildCrl({ issuer: ca, key: caKey, entries: [{ serial: 1n, date: NOW, reason: 1 }], extensions: [crlNumber(1)] });

  test('garbage, truncation, trailing data and a certificate instead of a CRL', () => {
    const bytes = good();
    const cases: Uint8Array[] = [
      new Uint8Array(0),
      Buffer.from('not a crl at all'),
      bytes.subarray(0, bytes.length - 5),
      Buffer.concat([bytes, Uint8Array.of(0)]),
      ca.certificate.der,
      Uint8Array.of(0x30, 0x84, 0xff, 0xff, 0xff, 0xff),
    ];
    for (const c of cases) {
      assert.throws(
        () => decodeCrl(c),
        (e) => isKeyfleetError(e, 'KF_ASN1_MALFORMED') || isKeyfleetError(e, 'KF_ASN1_LIMIT'),
      );
    }
  });

  test('PEM without a CRL block, or with bad base64', () => {
    assert.throws(() => loadCrls(Buffer.from(encodePem('CERTIFICATE', ca.certificate.der))), (e) => isKeyfleetError(e, 'KF_ASN1_MALFORMED'));
    assert.throws(() => loadCrls(Buffer.from('-----BEGIN X509 CRL-----\n!!!!\n-----END X509 CRL-----\n')), (e) => isKeyfleetError(e, 'KF_ASN1_MALFORMED'));
  });

  test('seeded mutations never escape as anything but a coded error', () => {
    const bytes = good();
    let seed = 0x2545f491;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0), seed);
    for (let i = 0; i < 3000; i++) {
      const m = Buffer.from(bytes);
      const flips = 1 + (rand() % 4);
      for (let k = 0; k < flips; k++) m[rand() % m.length] = rand() & 0xff;
      try {
        decodeCrl(m);
      } catch (e) {
        assert.ok(isKeyfleetError(e, 'KF_ASN1_MALFORMED') || isKeyfleetError(e, 'KF_ASN1_LIMIT'), String(e));
      }
    }
  });
});

describe('crlRevocationSource', () => {
  const revokedAt = days(-5);
  const source = (...crls: Uint8Array[]) => crlRevocationSource(crls.map(decodeCrl));
  const entry = (reason?: number): EntrySpec => ({ serial: BigInt(`0x${leaf.certificate.serialHex}`), date: revokedAt, ...(reason === undefined ? {} : { reason }) });

  test('revoked, good and unknown', () => {
    const s = source(buildCrl({ issuer: ca, key: caKey, entries: [entry(CrlReason.keyCompromise)], extensions: [crlNumber(1)] }));
    assert.deepEqual(s.status(leaf.certificate, ca.certificate, NOW), { status: 'revoked', reason: CrlReason.keyCompromise, revocationTime: revokedAt });
    assert.deepEqual(s.status(other.certificate, ca.certificate, NOW), { status: 'good' });
    assert.deepEqual(s.status(leaf.certificate, ca.certificate, days(-6)), { status: 'good' }, 'before the revocation');
    // a CRL that does not verify with the issuer key proves nothing
    assert.deepEqual(s.status(leaf.certificate, otherCa.certificate, NOW), { status: 'unknown' });
  });

  test('an expired CRL still proves revocation but not good standing', () => {
    const s = source(buildCrl({ issuer: ca, key: caKey, thisUpdate: days(-3), nextUpdate: days(-2), entries: [entry()] }));
    assert.equal(s.status(leaf.certificate, ca.certificate, NOW).status, 'revoked');
    assert.equal(s.status(other.certificate, ca.certificate, NOW).status, 'unknown');
  });

  test('certificateHold is lifted by a later CRL without the entry, or by removeFromCRL in a delta', () => {
    const hold = buildCrl({ issuer: ca, key: caKey, thisUpdate: days(-4), entries: [entry(CrlReason.certificateHold)], extensions: [crlNumber(1)] });
    const later = buildCrl({ issuer: ca, key: caKey, thisUpdate: days(-1), extensions: [crlNumber(2)] });
    assert.equal(source(hold).status(leaf.certificate, ca.certificate, NOW).status, 'revoked');
    assert.equal(source(later, hold).status(leaf.certificate, ca.certificate, NOW).status, 'good');
    const delta = buildCrl({
      issuer: ca,
      key: caKey,
      thisUpdate: days(-1),
      entries: [{ ...entry(CrlReason.removeFromCRL) }],
      extensions: [crlNumber(3), extension('2.5.29.27', der.integer(1), true)],
    });
    assert.equal(source(hold, delta).status(leaf.certificate, ca.certificate, NOW).status, 'good');
  });

  test('a permanent revocation is not undone by a later CRL', () => {
    const first = buildCrl({ issuer: ca, key: caKey, thisUpdate: days(-4), entries: [entry(CrlReason.superseded)], extensions: [crlNumber(1)] });
    const later = buildCrl({ issuer: ca, key: caKey, thisUpdate: days(-1), extensions: [crlNumber(2)] });
    assert.equal(source(first, later).status(leaf.certificate, ca.certificate, NOW).status, 'revoked');
  });

  test('CRLs outside their scope or with unknown critical extensions are not used', () => {
    const caOnly = der.sequence(der.implicitPrimitive(2, Uint8Array.of(0xff)));
    const scoped = buildCrl({ issuer: ca, key: caKey, entries: [entry()], extensions: [crlNumber(1), extension('2.5.29.28', caOnly, true)] });
    assert.equal(source(scoped).status(leaf.certificate, ca.certificate, NOW).status, 'unknown');
    const unknown = buildCrl({ issuer: ca, key: caKey, entries: [entry()], extensions: [crlNumber(1), extension('1.2.3.4', der.nullValue(), true)] });
    assert.equal(source(unknown).status(leaf.certificate, ca.certificate, NOW).status, 'unknown');
  });

  test('an issuer whose keyUsage lacks cRLSign cannot sign CRLs (RFC 5280 §6.3.3 (f))', () => {
    const noCrlSign = pki.root('No CRLSign CA', { ext: ['basicConstraints = critical,CA:true', 'keyUsage = critical,keyCertSign', 'subjectKeyIdentifier = hash'] });
    const sub = pki.issue('Sub', noCrlSign);
    const key = createPrivateKey(readFileSync(noCrlSign.keyPath));
    const s = source(buildCrl({ issuer: noCrlSign, key, entries: [{ serial: BigInt(`0x${sub.certificate.serialHex}`), date: revokedAt }] }));
    assert.equal(s.status(sub.certificate, noCrlSign.certificate, NOW).status, 'unknown');
  });
});
