import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as der from '../../src/asn1/writer.ts';
import { encodeRevokedCertificates } from '../../src/ca/crl-builder.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { CrlReason, decodeCrl, isRevoked, verifyCrlSignature } from '../../src/x509/crl.ts';
import type { IssuedCertificateRecord } from '../../src/store/ca.ts';
import { type TestCa, makeTestCa, openssl, writePem } from './helpers.ts';

const N = 100_000;

describe('CRL generation', () => {
  let t: TestCa;
  before(async () => {
    t = await makeTestCa('rsa-2048');
  });
  after(() => t.cleanup());

  test(`a CRL with ${N.toLocaleString('en')} entries is complete, correctly signed and accepted by openssl`, async () => {
    // Fill the store directly: the CRL builder, not issuance, is under test here.
    const issued = t.store.issued.get('issuing') ?? new Map<string, IssuedCertificateRecord>();
    t.store.issued.set('issuing', issued);
    const base = Date.UTC(2025, 5, 1);
    const reasons = [undefined, CrlReason.keyCompromise, CrlReason.superseded, CrlReason.cessationOfOperation, CrlReason.unspecified];
    const serials: string[] = [];
    for (let i = 0; i < N; i++) {
      const serial = randomBytes(20);
      serial[0] = (serial[0]! & 0x7f) | 0x01;
      const serialHex = serial.toString('hex');
      serials.push(serialHex);
      issued.set(serialHex, {
        caId: 'issuing',
        serialHex,
        subject: 'CN=x',
        emailAddresses: [],
        profile: undefined,
        requester: undefined,
        notBefore: new Date(base),
        notAfter: new Date(base + 1e10),
        issuedAt: new Date(base),
        certificateDer: new Uint8Array(0),
        status: 'revoked',
        // a new second every 7 entries: bursts share a timestamp, as real revocations do
        revokedAt: new Date(base + Math.floor(i / 7) * 1000),
        revocationReason: reasons[i % reasons.length],
      });
    }
    const crl = await t.ca.generateCrl();
    const decoded = decodeCrl(crl.der);
    assert.equal(decoded.revoked.size, N);
    assert.ok(verifyCrlSignature(decoded, t.ca.certificate));
    assert.equal(decoded.crlNumber, crl.crlNumber);
    for (const i of [0, 1, 2, 3, 4, 777, N - 1]) {
      const entry = decoded.revoked.get(serials[i]!)!;
      assert.ok(entry, `entry ${i}`);
      assert.equal(entry.revocationDate.getTime(), base + Math.floor(i / 7) * 1000);
      const expected = reasons[i % reasons.length];
      // unspecified (0) is written as an absent reasonCode (RFC 5280 §5.3.1)
      assert.equal(entry.reason, expected === 0 ? undefined : expected, `reason of entry ${i}`);
    }
    const path = writePem(t.dir, 'big.crl.pem', 'X509 CRL', crl.der);
    const r = await openssl(['crl', '-noout', '-verify', '-CAfile', t.issuingPath, '-in', path]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /verify OK/);
  });

  test('an empty CRL omits revokedCertificates, as RFC 5280 §5.1.2.6 requires', async () => {
    const fresh = await makeTestCa('p-256');
    try {
      const crl = (await fresh.ca.latestCrl())!;
      assert.equal(crl.crlNumber, 1n);
      const decoded = decodeCrl(crl.der);
      assert.equal(decoded.revoked.size, 0);
      assert.equal(encodeRevokedCertificates([]), undefined);
      assert.ok(isRevoked(decoded, { serialHex: '01' }) === undefined);
    } finally {
      fresh.cleanup();
    }
  });

  test('entries encode exactly as the generic DER writer would (UTCTime and GeneralizedTime, short and long serials)', () => {
    const dates = [Date.UTC(1949, 11, 31, 23, 59, 59), Date.UTC(1950, 0, 1), Date.UTC(2049, 11, 31, 23, 59, 59), Date.UTC(2050, 0, 1), Date.UTC(2107, 6, 9, 8, 7, 6)];
    const entries = dates.flatMap((d, i) => [
      { serialHex: '01', revokedAt: new Date(d), reason: undefined },
      { serialHex: '7f'.padEnd(40, String(i)), revokedAt: new Date(d), reason: CrlReason.keyCompromise },
    ]);
    const reference = der.sequence(
      ...entries.map((e) =>
        der.sequence(
          der.integerFromContents(Buffer.from(e.serialHex, 'hex')),
          der.time(e.revokedAt),
          ...(e.reason === undefined ? [] : [der.sequence(der.sequence(der.oid('2.5.29.21'), der.octetString(der.tlv(0x0a, Uint8Array.of(e.reason)))))]),
        ),
      ),
    );
    assert.deepEqual(Buffer.from(encodeRevokedCertificates(entries)!), Buffer.from(reference));
  });

  test('malformed stored serials and reasons are coded errors', () => {
    const at = new Date();
    assert.throws(() => encodeRevokedCertificates([{ serialHex: 'xyz', revokedAt: at, reason: undefined }]), (e) => isKeyfleetError(e, 'KF_USAGE'));
    assert.throws(() => encodeRevokedCertificates([{ serialHex: 'abc', revokedAt: at, reason: undefined }]), (e) => isKeyfleetError(e, 'KF_USAGE'));
    assert.throws(() => encodeRevokedCertificates([{ serialHex: '01', revokedAt: at, reason: 7 }]), (e) => isKeyfleetError(e, 'KF_USAGE'));
  });
});
