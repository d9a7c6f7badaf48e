/**
 * The relying party's side: requests built by buildOcspRequest are answered
 * by `openssl ocsp -index` (the CA database) and verified by
 * verifyOcspResponse; the negative cases are the attacks and accidents the
 * checks exist for; verified results feed path validation and S/MIME
 * signature verification through ocspRevocationSource.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createOcspResponder, type OcspResponder } from '../../src/ca/ocsp.ts';
import { type OcspCheckResult, buildOcspRequest, ocspRevocationSource, verifyOcspResponse } from '../../src/x509/ocsp-client.ts';
import { validatePath } from '../../src/x509/path.ts';
import { decodeSignedData, signContent } from '../../src/smime/cms/signed-data.ts';
import { verifySignedData } from '../../src/smime/cms/verify.ts';
import type { Issued } from '../x509/pki.ts';
import { type OcspPki, buildOcspPki, openssl, said } from './support.ts';

let t: OcspPki;
let ours: OcspResponder;
let n = 0;

before(() => {
  t = buildOcspPki();
  ours = createOcspResponder({ signer: { certificate: t.ca.certificate, key: t.caKey }, caCertificates: [t.ca.certificate], lookup: t.lookupFor(t.ca) });
});
after(() => t.cleanup());

/** Our request, answered by `openssl ocsp` acting as the responder over the CA's index.txt. */
async function opensslAnswer(leaf: Issued, signer: Issued, flags: readonly string[] = [], options: { nonce?: false; hash?: 'sha1' | 'sha256' } = {}) {
  const built = buildOcspRequest(leaf.certificate, t.ca.certificate, options);
  const reqPath = t.write(`creq${++n}.der`, built.der);
  const respPath = join(t.pki.dir, `cresp${n}.der`);
  const r = await openssl(['ocsp', '-index', join(t.ca.caDir, 'index.txt'), '-CA', t.ca.certPath, '-rsigner', signer.certPath, '-rkey', signer.keyPath, '-reqin', reqPath, '-respout', respPath, '-nmin', '10', ...flags]);
  assert.equal(r.status, 0, said(r));
  return { response: new Uint8Array(readFileSync(respPath)), nonce: built.nonce };
}

const check = (response: Uint8Array, leaf: Issued, extra: Partial<Parameters<typeof verifyOcspResponse>[1]> = {}) =>
  verifyOcspResponse(response, { cert: leaf.certificate, issuer: t.ca.certificate, ...extra });

const rejects = (f: () => unknown, problem: string) => assert.throws(f, (e: unknown) => (e as { code?: string; detail?: string }).code === 'KF_OCSP_INVALID' && (e as { detail?: string }).detail === problem);

describe('openssl ocsp as the responder', () => {
  test('CA-signed (ResponderID byName): good, with nonce', async () => {
    const { response, nonce } = await opensslAnswer(t.good, t.ca);
    const v = check(response, t.good, { nonce: nonce! });
    assert.equal(v.status, 'good');
    assert.ok(v.nextUpdate && v.nextUpdate > v.thisUpdate);
    assert.equal(v.responder.fingerprint256, t.ca.certificate.fingerprint256);
  });

  test('delegated responder (ResponderID byKey, SHA-256 CertID): revoked with reason and time', async () => {
    const { response, nonce } = await opensslAnswer(t.revoked, t.responder, ['-resp_key_id'], { hash: 'sha256' });
    const v = check(response, t.revoked, { nonce: nonce! });
    assert.equal(v.status, 'revoked');
    assert.equal(v.reason, 1);
    assert.ok(v.revokedAt && Math.abs(v.revokedAt.getTime() - Date.now()) < 3_600_000);
    assert.equal(v.responder.fingerprint256, t.responder.certificate.fingerprint256);
  });

  test('a responder certificate without id-kp-OCSPSigning is not authorised, unless configured locally', async () => {
    const { response } = await opensslAnswer(t.good, t.impostor, [], { nonce: false });
    rejects(() => check(response, t.good), 'unauthorized-responder');
    assert.equal(check(response, t.good, { trustedResponders: [t.impostor.certificate] }).status, 'good');
  });

  test('a response for another certificate does not answer for this one', async () => {
    const { response } = await opensslAnswer(t.good, t.ca, [], { nonce: false });
    rejects(() => check(response, t.revoked), 'no-matching-response');
  });
});

describe('checks against our responder', () => {
  test('good, revoked and unknown', async () => {
    for (const [leaf, status] of [[t.good, 'good'], [t.revoked, 'revoked'], [t.superseded, 'revoked']] as const) {
      const { der, nonce } = buildOcspRequest(leaf.certificate, t.ca.certificate);
      assert.equal(check(await ours.respond(der), leaf, { nonce: nonce! }).status, status);
    }
    const { der } = buildOcspRequest(t.foreignLeaf.certificate, t.foreignCa.certificate);
    const v = verifyOcspResponse(await ours.respond(der), { cert: t.foreignLeaf.certificate, issuer: t.foreignCa.certificate, trustedResponders: [t.ca.certificate] });
    assert.equal(v.status, 'unknown');
  });

  test('nonce missing or different', async () => {
    const noNonce = await ours.respond(buildOcspRequest(t.good.certificate, t.ca.certificate, { nonce: false }).der);
    rejects(() => check(noNonce, t.good, { nonce: Uint8Array.of(1, 2, 3) }), 'nonce-missing');
    const other = await ours.respond(buildOcspRequest(t.good.certificate, t.ca.certificate).der);
    rejects(() => check(other, t.good, { nonce: new Uint8Array(32) }), 'nonce-mismatch');
  });

  test('stale and not yet valid', async () => {
    const response = await ours.respond(buildOcspRequest(t.good.certificate, t.ca.certificate, { nonce: false }).der);
    rejects(() => check(response, t.good, { at: new Date(Date.now() + 2 * 3_600_000) }), 'stale');
    rejects(() => check(response, t.good, { at: new Date(Date.now() - 3_600_000) }), 'not-yet-valid');
  });

  test('tampered, signed by a stranger, error status, garbage', async () => {
    const response = Buffer.from(await ours.respond(buildOcspRequest(t.good.certificate, t.ca.certificate, { nonce: false }).der));
    const tampered = Buffer.from(response);
    tampered[tampered.length - 1]! ^= 1;
    rejects(() => check(tampered, t.good), 'bad-signature');
    // The foreign CA signs statements about our CA's certificates and sends its certificate along: not a responder our CA authorised.
    const stranger = createOcspResponder({ signer: { certificate: t.foreignCa.certificate, key: createPrivateKey(readFileSync(t.foreignCa.keyPath)) }, caCertificates: [t.ca.certificate], lookup: async () => ({ status: 'good' }) });
    const strangerResponse = await stranger.respond(buildOcspRequest(t.good.certificate, t.ca.certificate, { nonce: false }).der);
    rejects(() => check(strangerResponse, t.good), 'unauthorized-responder');
    const refused = await ours.respond(Uint8Array.of(1, 2, 3));
    rejects(() => check(refused, t.good), 'not-successful');
    rejects(() => check(Buffer.from('garbage'), t.good), 'malformed');
  });
});

describe('ocspRevocationSource', () => {
  async function results(...leaves: Issued[]): Promise<OcspCheckResult[]> {
    return Promise.all(
      leaves.map(async (leaf) => {
        const { der, nonce } = buildOcspRequest(leaf.certificate, t.ca.certificate);
        return check(await ours.respond(der), leaf, { nonce: nonce! });
      }),
    );
  }

  test('path validation reports a certificate revoked by OCSP, and only from its revocation time', async () => {
    const source = ocspRevocationSource(await results(t.good, t.revoked));
    const validate = (leaf: Issued, at = new Date()) =>
      validatePath(leaf.certificate, { trustAnchors: [t.root.certificate], intermediates: [t.ca.certificate], purpose: 'smime-sign', at, revocation: [source] }).reasons;
    assert.deepEqual(validate(t.good), []);
    assert.deepEqual(validate(t.revoked), ['revoked']);
    assert.deepEqual(validate(t.revoked, new Date(Date.now() - 86_400_000)), []);
    // No OCSP data about the superseded certificate: the source has nothing to say.
    assert.deepEqual(validate(t.superseded), []);
    const status = source.status(t.revoked.certificate, t.ca.certificate, new Date());
    assert.equal(status.status, 'revoked');
    assert.equal(status.reason, 1);
    assert.equal(source.status(t.good.certificate, t.ca.certificate, new Date(Date.now() + 2 * 3_600_000)).status, 'unknown');
    assert.equal(source.status(t.good.certificate, t.foreignCa.certificate, new Date()).status, 'unknown');
  });

  test('S/MIME verification uses the OCSP data', async () => {
    const source = ocspRevocationSource(await results(t.good, t.revoked));
    for (const [leaf, valid] of [[t.good, true], [t.revoked, false]] as const) {
      const signed = signContent(Buffer.from('Hello'), [{ certificate: leaf.certificate, key: createPrivateKey(readFileSync(leaf.keyPath)), chain: [t.ca.certificate] }], { detached: false });
      const result = verifySignedData(decodeSignedData(signed), { trustAnchors: [t.root.certificate], revocation: [source] });
      assert.equal(result.valid, valid);
      if (!valid) assert.ok(result.signers[0]!.reasons.includes('revoked'), JSON.stringify(result.signers[0]!.reasons));
    }
  });
});
