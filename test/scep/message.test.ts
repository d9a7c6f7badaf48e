/**
 * pkiMessage build/parse in both directions, and the client's refusal of
 * CertReps that were tampered with or do not answer its request.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { encodeName } from '../../src/x509/name.ts';
import { buildPkcsReq, parseCertRep, type ScepRequest } from '../../src/scep/client.ts';
import { StaticChallengeValidator } from '../../src/scep/challenge.ts';
import { encodeCertsOnly } from '../../src/scep/certs-only.ts';
import { encodeCertificationRequest } from '../../src/scep/csr.ts';
import { decodeCsr } from '../../src/ca/csr.ts';
import { openEnvelope, sealEnvelope } from '../../src/scep/envelope.ts';
import { decodePkiMessage, encodePkiMessage } from '../../src/scep/message.ts';
import { defaultKeyPolicy } from '../../src/scep/policy.ts';
import { createScepService } from '../../src/scep/service.ts';
import { FakeIssuer, MemoryScepStore, type TestCa, createTestCa, rsaKey, selfSigned } from './support.ts';

describe('pkiMessage', () => {
  let ca: TestCa;
  let me: { key: ReturnType<typeof rsaKey>; certificate: Awaited<ReturnType<typeof selfSigned>> };
  before(async () => {
    ca = await createTestCa();
    const key = rsaKey();
    me = { key, certificate: await selfSigned(key, encodeName([['CN', 'device']])) };
  });

  it('round-trips a PKCSReq: attributes, signature, envelope and CSR', () => {
    const csr = encodeCertificationRequest({ subject: encodeName([['CN', 'device']]), challengePassword: 'pw', sanEmails: ['d@example.org'] }, me.key);
    const request = buildPkcsReq(csr, me, [ca.ra.certificate], { cipher: 'des-cbc', transactionId: 'TX-1' });
    const msg = decodePkiMessage(request.der);
    assert.equal(msg.messageType, 'PKCSReq');
    assert.equal(msg.transactionId, 'TX-1');
    assert.deepEqual(Buffer.from(msg.senderNonce), Buffer.from(request.senderNonce));
    assert.equal(msg.signatureProblem, undefined);
    assert.equal(msg.signerCertificate?.fingerprint256, me.certificate.fingerprint256);
    const opened = openEnvelope(msg.envelope!, ca.ra);
    const decoded = decodeCsr(opened.content);
    assert.equal(decoded.challengePassword, 'pw');
    assert.deepEqual(decoded.subjectAltName?.rfc822Names, ['d@example.org']);
  });

  it('refuses to open an envelope for someone else, and reports damage with coded errors', () => {
    const env = sealEnvelope(Buffer.from('hello'), [ca.ra.certificate], 'aes-256-cbc');
    assert.throws(() => openEnvelope(env, me), { code: 'KF_CMS_NO_MATCHING_KEY' });
    assert.throws(() => openEnvelope(Buffer.from(env).subarray(0, 30), ca.ra), { code: 'KF_CMS_MALFORMED' });
  });

  describe('the client checks the CertRep', () => {
    let request: ScepRequest;
    let good: Uint8Array;
    before(async () => {
      const service = createScepService({
        profiles: new Map([['p', { name: 'p', keyPolicy: defaultKeyPolicy }]]),
        issuer: new FakeIssuer(ca),
        ra: ca.ra,
        challengeValidator: new StaticChallengeValidator('pw'),
        store: new MemoryScepStore(),
      });
      const csr = encodeCertificationRequest({ subject: encodeName([['CN', 'device']]), challengePassword: 'pw' }, me.key);
      request = buildPkcsReq(csr, me, [ca.ra.certificate]);
      good = (await service.handle('PKIOperation', request.der, 'p')).body;
    });

    it('accepts the genuine reply', () => {
      assert.equal(parseCertRep(good, request, [ca.ra.certificate]).status, 'SUCCESS');
    });

    it('rejects a reply with any signed byte changed', () => {
      // Flip bytes across the message: each must give a coded error, or (for a change in the unsigned
      // certificate bag) the very certificate the genuine reply holds — never another one.
      const genuine = parseCertRep(good, request, [ca.ra.certificate]).certificates[0]!.fingerprint256;
      let rejected = 0;
      for (let i = 40; i < good.length; i += Math.max(1, Math.floor(good.length / 97))) {
        const bad = Buffer.from(good);
        bad[i]! ^= 0x04;
        try {
          assert.equal(parseCertRep(bad, request, [ca.ra.certificate]).certificates[0]!.fingerprint256, genuine);
        } catch (e) {
          if (e instanceof assert.AssertionError) throw e;
          assert.ok((e as { code?: string }).code?.startsWith('KF_'), String(e));
          rejected++;
          continue;
        }
      }
      assert.ok(rejected > 60, `only ${rejected} tampered replies were rejected`);
    });

    it('rejects a reply signed by someone other than the RA', async () => {
      const other = await createTestCa();
      const forged = encodePkiMessage({
        messageType: 'CertRep',
        transactionId: request.transactionId,
        senderNonce: randomBytes(16),
        recipientNonce: request.senderNonce,
        pkiStatus: 'SUCCESS',
        envelope: sealEnvelope(encodeCertsOnly([other.certificate]), [me.certificate], 'aes-256-cbc'),
        signer: { certificate: other.ra.certificate, key: other.ra.key },
      });
      assert.throws(() => parseCertRep(forged, request, [ca.ra.certificate]), /not signed by the RA/);
    });

    it('rejects a reply to another request (nonce or transactionID)', () => {
      const base = { messageType: 'CertRep' as const, senderNonce: randomBytes(16), pkiStatus: 'FAILURE' as const, failInfo: 'badRequest' as const, signer: ca.ra };
      assert.throws(() => parseCertRep(encodePkiMessage({ ...base, transactionId: request.transactionId, recipientNonce: randomBytes(16) }), request, [ca.ra.certificate]), /recipientNonce/);
      assert.throws(() => parseCertRep(encodePkiMessage({ ...base, transactionId: 'OTHER', recipientNonce: request.senderNonce }), request, [ca.ra.certificate]), /transactionID/);
      assert.equal(parseCertRep(encodePkiMessage({ ...base, transactionId: request.transactionId, recipientNonce: request.senderNonce }), request, [ca.ra.certificate]).failInfo, 'badRequest');
    });
  });
});
