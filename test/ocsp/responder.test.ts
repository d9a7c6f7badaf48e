/**
 * The responder's behaviour on its own: error statuses for bad input (never
 * an exception), limits, lookup failures, the unknown-issuer policy, times,
 * and the response cache.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KeyfleetError } from '../../src/errors.ts';
import * as der from '../../src/asn1/writer.ts';
import { createOcspResponder, type OcspLookup, type OcspResponderOptions } from '../../src/ca/ocsp.ts';
import { buildOcspRequest, decodeOcspResponse, encodeCertId, verifyOcspResponse } from '../../src/x509/ocsp-client.ts';
import { type OcspPki, buildOcspPki } from './support.ts';

let t: OcspPki;
before(() => {
  t = buildOcspPki();
});
after(() => t.cleanup());

const NOW = new Date('2030-01-02T03:04:05.678Z');

function responder(overrides: Partial<OcspResponderOptions> = {}) {
  return createOcspResponder({
    signer: { certificate: t.ca.certificate, key: t.caKey },
    caCertificates: [t.ca.certificate],
    lookup: t.lookupFor(t.ca),
    clock: () => NOW,
    ...overrides,
  });
}

const statusOf = (bytes: Uint8Array) => decodeOcspResponse(bytes).responseStatus;

/** An OCSPRequest with the given CertIDs and raw request extensions. */
function request(certIds: readonly Uint8Array[], extensions?: readonly Uint8Array[]): Uint8Array {
  const list = der.sequence(...certIds.map((id) => der.sequence(id)));
  return der.sequence(der.sequence(list, ...(extensions ? [der.explicit(2, der.sequence(...extensions))] : [])));
}

const nonceExt = (value: Uint8Array) => der.sequence(der.oid('1.3.6.1.5.5.7.48.1.2'), der.octetString(der.octetString(value)));

describe('bad input is answered, never thrown', () => {
  test('garbage, empty, truncated and trailing bytes → malformedRequest (1)', async () => {
    const r = responder();
    const good = buildOcspRequest(t.good.certificate, t.ca.certificate).der;
    for (const input of [new Uint8Array(0), Buffer.from('hello'), good.subarray(0, good.length - 1), good.subarray(0, 10), Buffer.concat([good, Uint8Array.of(0)])]) {
      assert.equal(statusOf(await r.respond(input)), 1);
    }
  });

  test('structural errors → malformedRequest', async () => {
    const r = responder();
    const id = encodeCertId(t.good.certificate, t.ca.certificate);
    const cases = [
      der.sequence(der.sequence(der.sequence())), // empty requestList
      der.sequence(der.sequence(der.explicit(0, der.integer(1)), der.sequence(der.sequence(id)))), // version v2
      request([id], [nonceExt(new Uint8Array(0))]), // empty nonce
      request([id], [nonceExt(new Uint8Array(129))]), // nonce over RFC 9654's 128
      request([id], [nonceExt(Uint8Array.of(1)), nonceExt(Uint8Array.of(2))]), // two nonces
      request([id], [der.sequence(der.oid('1.2.3.4'), der.boolean(true), der.octetString(Uint8Array.of(0)))]), // unknown critical extension
      request([der.sequence(der.sequence(der.oid('1.3.14.3.2.26')), der.octetString(new Uint8Array(20)))]), // CertID without key hash and serial
    ];
    for (const c of cases) assert.equal(statusOf(await r.respond(c)), 1);
  });

  test('oversize requests and too many CertIDs → malformedRequest', async () => {
    const r = responder();
    const id = encodeCertId(t.good.certificate, t.ca.certificate);
    assert.equal(statusOf(await r.respond(request(Array.from({ length: 65 }, () => id)))), 1);
    assert.equal(statusOf(await r.respond(request(Array.from({ length: 64 }, () => id)))), 0);
    const huge = request([id], [der.sequence(der.oid('1.2.3.4'), der.octetString(new Uint8Array(70_000)))]);
    assert.equal(statusOf(await r.respond(huge)), 1);
  });

  test('random bytes and mutated requests never throw (fast-check)', async () => {
    const r = responder();
    const seed = buildOcspRequest(t.good.certificate, t.ca.certificate).der;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        const status = statusOf(await r.respond(bytes));
        assert.ok(status === 0 || status === 1);
      }),
      { numRuns: 300 },
    );
    await fc.assert(
      fc.asyncProperty(fc.nat(seed.length - 1), fc.integer({ min: 0, max: 255 }), async (at, value) => {
        const m = Buffer.from(seed);
        m[at] = value;
        const status = statusOf(await r.respond(m));
        assert.ok(status === 0 || status === 1);
      }),
      { numRuns: 500 },
    );
  });
});

describe('lookup failures', () => {
  test('a store outage → tryLater (3); anything else → internalError (2)', async () => {
    const req = buildOcspRequest(t.good.certificate, t.ca.certificate).der;
    const down: OcspLookup = () => Promise.reject(new KeyfleetError('KF_STORE_UNAVAILABLE', 'database down'));
    const broken: OcspLookup = () => Promise.reject(new Error('bug'));
    assert.equal(statusOf(await responder({ lookup: down }).respond(req)), 3);
    assert.equal(statusOf(await responder({ lookup: broken }).respond(req)), 2);
  });

  test('an invalid revocation time from the lookup → internalError, not a broken response', async () => {
    const r = responder({ lookup: async () => ({ status: 'revoked', revokedAt: new Date(NaN) }) });
    assert.equal(statusOf(await r.respond(buildOcspRequest(t.good.certificate, t.ca.certificate).der)), 2);
  });

  test('the lookup is not asked about issuers the responder does not serve', async () => {
    const asked: string[] = [];
    const r = responder({ lookup: async (_i, serial) => (asked.push(serial), { status: 'good' }) });
    const v = verifyOcspResponse(await r.respond(buildOcspRequest(t.foreignLeaf.certificate, t.foreignCa.certificate).der), {
      cert: t.foreignLeaf.certificate,
      issuer: t.foreignCa.certificate,
      trustedResponders: [t.ca.certificate],
      at: NOW,
    });
    assert.equal(v.status, 'unknown');
    assert.deepEqual(asked, []);
  });

  test("unknownIssuer: 'unauthorized' → unauthorized (6) when no CertID is ours", async () => {
    const r = responder({ unknownIssuer: 'unauthorized' });
    assert.equal(statusOf(await r.respond(buildOcspRequest(t.foreignLeaf.certificate, t.foreignCa.certificate).der)), 6);
    assert.equal(statusOf(await r.respond(buildOcspRequest(t.good.certificate, t.ca.certificate).der)), 0);
  });
});

describe('content', () => {
  test('producedAt/thisUpdate from the clock, nextUpdate after nextUpdateSeconds, reason only when valid', async () => {
    const r = responder({ nextUpdateSeconds: 600, lookup: async () => ({ status: 'revoked', revokedAt: new Date('2029-05-06T07:08:09Z'), reason: 7 }) });
    const basic = decodeOcspResponse(await r.respond(buildOcspRequest(t.good.certificate, t.ca.certificate).der)).basic!;
    const s = basic.responses[0]!;
    assert.equal(basic.producedAt.toISOString(), '2030-01-02T03:04:05.000Z');
    assert.equal(s.thisUpdate.toISOString(), '2030-01-02T03:04:05.000Z');
    assert.equal(s.nextUpdate!.toISOString(), '2030-01-02T03:14:05.000Z');
    assert.equal(s.status, 'revoked');
    assert.equal(s.revokedAt!.toISOString(), '2029-05-06T07:08:09.000Z');
    assert.equal(s.reason, undefined); // 7 is not a CRLReason
  });

  test('nextUpdateSeconds: 0 leaves nextUpdate out', async () => {
    const r = responder({ nextUpdateSeconds: 0 });
    const basic = decodeOcspResponse(await r.respond(buildOcspRequest(t.good.certificate, t.ca.certificate).der)).basic!;
    assert.equal(basic.responses[0]!.nextUpdate, undefined);
  });

  test('a legacy raw nonce (no inner OCTET STRING) is echoed byte for byte', async () => {
    const r = responder();
    const raw = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
    const ext = der.sequence(der.oid('1.3.6.1.5.5.7.48.1.2'), der.octetString(raw));
    const basic = decodeOcspResponse(await r.respond(request([encodeCertId(t.good.certificate, t.ca.certificate)], [ext]))).basic!;
    assert.deepEqual(basic.extensions[0]!.extnValue, Buffer.from(raw));
  });

  test('a signer key that does not match its certificate is refused at creation', () => {
    assert.throws(() => responder({ signer: { certificate: t.ca.certificate, key: t.responderKey } }), { code: 'KF_KEY_INVALID' });
    assert.throws(() => responder({ signer: { certificate: t.ca.certificate } }), { code: 'KF_KEY_INVALID' });
  });

  test('a failing sign function → internalError', async () => {
    const r = responder({ signer: { certificate: t.ca.certificate, sign: () => Promise.reject(new Error('HSM offline')) } });
    assert.equal(statusOf(await r.respond(buildOcspRequest(t.good.certificate, t.ca.certificate).der)), 2);
  });
});

describe('cache (requests without a nonce)', () => {
  test('reused for cacheSeconds, never for nonce requests, dropped by clearCache', async () => {
    let now = NOW.getTime();
    let lookups = 0;
    const r = responder({ cacheSeconds: 30, clock: () => new Date(now), lookup: async () => (lookups++, { status: 'good' }) });
    const plain = buildOcspRequest(t.good.certificate, t.ca.certificate, { nonce: false }).der;
    const first = await r.respond(plain);
    assert.deepEqual(await r.respond(plain), first);
    assert.equal(lookups, 1);
    await r.respond(buildOcspRequest(t.good.certificate, t.ca.certificate).der);
    await r.respond(buildOcspRequest(t.good.certificate, t.ca.certificate).der);
    assert.equal(lookups, 3);
    now += 31_000;
    await r.respond(plain);
    assert.equal(lookups, 4);
    r.clearCache();
    await r.respond(plain);
    assert.equal(lookups, 5);
  });

  test('off by default', async () => {
    let lookups = 0;
    const r = responder({ lookup: async () => (lookups++, { status: 'good' }) });
    const plain = buildOcspRequest(t.good.certificate, t.ca.certificate, { nonce: false }).der;
    await r.respond(plain);
    await r.respond(plain);
    assert.equal(lookups, 2);
  });
});
