/**
 * SCEP server and client against each other: enrolment with each envelope
 * cipher, renewal, pending/GetCertInitial, GetCert, replay rules, and the
 * refusals of issue 3 (challenge, subject/SAN, key size, garbage), each
 * checked to have issued nothing.
 */
import { strict as assert } from 'node:assert';
import { before, describe, it } from 'node:test';
import { encodeName } from '../../src/x509/name.ts';
import { StaticChallengeValidator, StoreChallengeValidator } from '../../src/scep/challenge.ts';
import { type ScepRequest, buildGetCert, buildGetCertInitial, buildPkcsReq, buildRenewalReq, parseCertRep } from '../../src/scep/client.ts';
import { decodeCertsOnly } from '../../src/scep/certs-only.ts';
import { encodeCertificationRequest } from '../../src/scep/csr.ts';
import { decodePkiMessage } from '../../src/scep/message.ts';
import { defaultKeyPolicy, type ScepProfile } from '../../src/scep/policy.ts';
import { type ScepService, createScepService } from '../../src/scep/service.ts';
import { DAY, FakeIssuer, MemoryScepStore, type TestCa, createTestCa, rsaKey, selfSigned } from './support.ts';

const profile: ScepProfile = { name: 'default', keyPolicy: defaultKeyPolicy };

interface Setup {
  ca: TestCa;
  issuer: FakeIssuer;
  store: MemoryScepStore;
  validator: StoreChallengeValidator;
  service: ScepService;
  now: { t: number };
}

async function setup(ca?: TestCa): Promise<Setup> {
  const testCa = ca ?? (await createTestCa());
  const issuer = new FakeIssuer(testCa);
  const store = new MemoryScepStore();
  const now = { t: Date.now() };
  const clock = () => new Date(now.t);
  const validator = new StoreChallengeValidator(store, clock);
  const service = createScepService({ profiles: new Map([['default', profile]]), issuer, ra: testCa.ra, challengeValidator: validator, store, clock });
  return { ca: testCa, issuer, store, validator, service, now };
}

const aliceSubject = 'CN=alice@example.org,O=Example';
const aliceName = () => encodeName([['O', 'Example'], ['CN', 'alice@example.org']]);

async function requester(bits = 2048, subject = aliceName()) {
  const key = rsaKey(bits);
  return { key, certificate: await selfSigned(key, subject) };
}

async function pkiOperation(s: Setup, request: ScepRequest) {
  const r = await s.service.handle('PKIOperation', request.der, 'default');
  assert.equal(r.status, 200, Buffer.from(r.body).toString());
  assert.equal(r.contentType, 'application/x-pki-message');
  return parseCertRep(r.body, request, [s.ca.ra.certificate, s.ca.certificate]);
}

describe('SCEP enrolment with our client', () => {
  let s: Setup;
  before(async () => {
    s = await setup();
  });

  it('answers GetCACaps one capability per line and GetCACert with RA and CA', async () => {
    const caps = await s.service.handle('GetCACaps', undefined, 'default');
    assert.equal(caps.status, 200);
    assert.deepEqual(Buffer.from(caps.body).toString().trim().split('\n'), ['POSTPKIOperation', 'SHA-256', 'SHA-512', 'AES', 'DES3', 'SCEPStandard', 'Renewal']);
    const ca = await s.service.handle('GetCACert', undefined, 'default');
    assert.equal(ca.contentType, 'application/x-x509-ca-ra-cert');
    assert.deepEqual(decodeCertsOnly(ca.body).map((c) => c.fingerprint256), [s.ca.ra.certificate.fingerprint256, s.ca.certificate.fingerprint256]);
    assert.equal((await s.service.handle('GetCACaps', undefined, 'nope')).status, 404);
  });

  for (const cipher of ['aes-256-cbc', 'aes-128-cbc', 'des-ede3-cbc', 'des-cbc'] as const) {
    it(`enrols with a ${cipher} request envelope and a one-time challenge`, async () => {
      const { password } = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject, sanEmail: 'alice@example.org', deviceId: 'device-1' });
      const me = await requester();
      const csr = encodeCertificationRequest({ subject: aliceName(), challengePassword: password, sanEmails: ['alice@example.org'] }, me.key);
      const request = buildPkcsReq(csr, me, [s.ca.ra.certificate], { cipher });
      const rep = await pkiOperation(s, request);
      assert.equal(rep.status, 'SUCCESS');
      const cert = rep.certificates[0]!;
      assert.deepEqual(cert.emailAddresses, ['alice@example.org']);
      assert.equal(cert.issuer.der.toString(), s.ca.certificate.subject.der.toString());
      assert.equal(rep.certificates[1]?.fingerprint256, s.ca.certificate.fingerprint256);
      const t = s.store.transactions.get(request.transactionId)!;
      assert.equal(t.outcome, 'success');
      assert.equal(t.serialHex, cert.serialHex);
      assert.equal(t.requester, 'device-1');
      // The reply is always AES-256-CBC, signed by the RA, echoing the nonce.
      const reply = decodePkiMessage((await s.service.handle('PKIOperation', request.der, 'default')).body);
      assert.equal(reply.signerCertificate?.fingerprint256, s.ca.ra.certificate.fingerprint256);
    });
  }

  it('renews with the current certificate, without a challenge', async () => {
    const { password } = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject, sanEmail: 'alice@example.org' });
    const me = await requester();
    const first = await pkiOperation(s, buildPkcsReq(encodeCertificationRequest({ subject: aliceName(), challengePassword: password, sanEmails: ['alice@example.org'] }, me.key), me, [s.ca.ra.certificate]));
    const current = { certificate: first.certificates[0]!, key: me.key };
    const newKey = rsaKey();
    const renewal = buildRenewalReq(encodeCertificationRequest({ subject: aliceName(), sanEmails: ['alice@example.org'] }, newKey), current, [s.ca.ra.certificate]);
    const rep = await pkiOperation(s, renewal);
    assert.equal(rep.status, 'SUCCESS');
    assert.notEqual(rep.certificates[0]!.serialHex, current.certificate.serialHex);
    assert.equal(s.issuer.requests.at(-1)?.renewalOf?.serialHex, current.certificate.serialHex);

    // A revoked certificate cannot renew: badCertId, nothing issued.
    s.issuer.revoke(rep.certificates[0]!.serialHex);
    const calls = s.issuer.calls;
    const again = buildRenewalReq(encodeCertificationRequest({ subject: aliceName() }, rsaKey()), { certificate: rep.certificates[0]!, key: newKey }, [s.ca.ra.certificate]);
    const refused = await pkiOperation(s, again);
    assert.deepEqual([refused.status, refused.failInfo], ['FAILURE', 'badCertId']);
    assert.equal(s.issuer.calls, calls);
  });

  it('refuses a renewal signed by a certificate this CA did not issue (badCertId)', async () => {
    const other = await createTestCa();
    const key = rsaKey();
    const foreign = await other.issue(aliceName(), key);
    const calls = s.issuer.calls;
    const rep = await pkiOperation(s, buildRenewalReq(encodeCertificationRequest({ subject: aliceName() }, key), { certificate: foreign, key }, [s.ca.ra.certificate]));
    assert.deepEqual([rep.status, rep.failInfo], ['FAILURE', 'badCertId']);
    assert.equal(s.issuer.calls, calls);
  });

  it('answers GetCert for an issued certificate and badCertId for an unknown one', async () => {
    const { password } = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject });
    const me = await requester();
    const issued = (await pkiOperation(s, buildPkcsReq(encodeCertificationRequest({ subject: aliceName(), challengePassword: password }, me.key), me, [s.ca.ra.certificate]))).certificates[0]!;
    const got = await pkiOperation(s, buildGetCert(issued.issuer.der, issued.serialNumber, me, [s.ca.ra.certificate]));
    assert.equal(got.certificates[0]?.fingerprint256, issued.fingerprint256);
    const missing = await pkiOperation(s, buildGetCert(issued.issuer.der, Buffer.from('0badc0de', 'hex'), me, [s.ca.ra.certificate]));
    assert.deepEqual([missing.status, missing.failInfo], ['FAILURE', 'badCertId']);
  });
});

describe('SCEP pending issuance and GetCertInitial', () => {
  it('answers PENDING, then the certificate once approved', async () => {
    const s = await setup();
    s.issuer.mode = 'pending';
    const { password } = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject });
    const me = await requester();
    const request = buildPkcsReq(encodeCertificationRequest({ subject: aliceName(), challengePassword: password }, me.key), me, [s.ca.ra.certificate]);
    assert.equal((await pkiOperation(s, request)).status, 'PENDING');
    assert.equal(s.store.transactions.get(request.transactionId)?.outcome, 'pending');
    const poll = () => buildGetCertInitial(s.ca.certificate.subject.der, aliceName(), me, [s.ca.ra.certificate], { transactionId: request.transactionId });
    assert.equal((await pkiOperation(s, poll())).status, 'PENDING');
    s.issuer.approve(request.transactionId);
    const done = await pkiOperation(s, poll());
    assert.equal(done.status, 'SUCCESS');
    assert.equal(s.store.transactions.get(request.transactionId)?.serialHex, done.certificates[0]!.serialHex);
    // Polling again returns the same certificate.
    assert.equal((await pkiOperation(s, poll())).certificates[0]?.fingerprint256, done.certificates[0]!.fingerprint256);
    const unknown = await pkiOperation(s, buildGetCertInitial(s.ca.certificate.subject.der, aliceName(), me, [s.ca.ra.certificate], { transactionId: 'NO-SUCH-ID' }));
    assert.deepEqual([unknown.status, unknown.failInfo], ['FAILURE', 'badCertId']);
  });
});

describe('SCEP refusals issue nothing', () => {
  let s: Setup;
  before(async () => {
    s = await setup();
  });

  async function refused(request: ScepRequest, failInfo: string) {
    const calls = s.issuer.calls;
    const rep = await pkiOperation(s, request);
    assert.deepEqual([rep.status, rep.failInfo], ['FAILURE', failInfo]);
    assert.equal(rep.certificates.length, 0);
    assert.equal(s.issuer.calls, calls, 'the issuer must not be called');
    const t = s.store.transactions.get(request.transactionId);
    assert.notEqual(t?.outcome, 'success');
    assert.equal(t?.serialHex, undefined);
  }

  async function enrolWith(password: string | undefined, o: { subject?: Uint8Array; emails?: string[]; bits?: number; upns?: string[] } = {}) {
    const me = await requester(o.bits ?? 2048);
    const csr = encodeCertificationRequest({ subject: o.subject ?? aliceName(), ...(password !== undefined ? { challengePassword: password } : {}), sanEmails: o.emails ?? [], sanUpns: o.upns ?? [] }, me.key);
    return buildPkcsReq(csr, me, [s.ca.ra.certificate]);
  }

  it('wrong, missing, used, expired and other-profile challenges (badRequest)', async () => {
    await refused(await enrolWith('not-a-challenge'), 'badRequest');
    await refused(await enrolWith(undefined), 'badRequest');
    const { password } = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject });
    assert.equal((await pkiOperation(s, await enrolWith(password))).status, 'SUCCESS');
    await refused(await enrolWith(password), 'badRequest');
    const short = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject, ttlMs: 1000 });
    s.now.t += 2000;
    await refused(await enrolWith(short.password), 'badRequest');
    const other = await s.validator.issueChallenge({ profile: 'vpn', subject: aliceSubject });
    await refused(await enrolWith(other.password), 'badRequest');
    assert.equal((await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject })).expiresAt.getTime() - s.now.t, 60 * 60 * 1000);
  });

  it('a subject or SAN the challenge does not allow (badRequest)', async () => {
    const c1 = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject, sanEmail: 'alice@example.org' });
    await refused(await enrolWith(c1.password, { subject: encodeName([['O', 'Example'], ['CN', 'mallory@example.org']]), emails: ['alice@example.org'] }), 'badRequest');
    const c2 = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject, sanEmail: 'alice@example.org' });
    await refused(await enrolWith(c2.password, { emails: ['mallory@example.org'] }), 'badRequest');
    const c3 = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject, sanEmail: 'alice@example.org' });
    await refused(await enrolWith(c3.password, { emails: ['alice@example.org', 'mallory@example.org'] }), 'badRequest');
    const c4 = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject });
    await refused(await enrolWith(c4.password, { upns: ['alice@corp'] }), 'badRequest');
  });

  it('an RSA-1024 key (badRequest)', async () => {
    const c = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject });
    await refused(await enrolWith(c.password, { bits: 1024 }), 'badRequest');
  });

  it('a CSR whose self-signature is wrong (badMessageCheck)', async () => {
    const c = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject });
    const me = await requester();
    const csr = Buffer.from(encodeCertificationRequest({ subject: aliceName(), challengePassword: c.password }, me.key));
    csr[csr.length - 5]! ^= 0x01;
    await refused(buildPkcsReq(csr, me, [s.ca.ra.certificate]), 'badMessageCheck');
  });

  it('a pkiMessage whose signature does not verify (badMessageCheck)', async () => {
    const c = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject });
    const me = await requester();
    const other = await requester();
    const csr = encodeCertificationRequest({ subject: aliceName(), challengePassword: c.password }, me.key);
    const honest = buildPkcsReq(csr, me, [s.ca.ra.certificate]);
    // Signed by one key, presenting another's certificate with the same issuer and serial is impossible to
    // build honestly; flip a byte in the signature instead.
    const bytes = Buffer.from(honest.der);
    bytes[bytes.length - 10]! ^= 0x01;
    void other;
    await refused({ ...honest, der: bytes }, 'badMessageCheck');
  });

  it('a request signed too far from the server clock (badTime)', async () => {
    const c = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject });
    const me = await requester();
    const csr = encodeCertificationRequest({ subject: aliceName(), challengePassword: c.password }, me.key);
    await refused(buildPkcsReq(csr, me, [s.ca.ra.certificate], { signingTime: new Date(s.now.t - 3 * DAY) }), 'badTime');
  });

  it('an envelope not addressed to the RA (badMessageCheck)', async () => {
    const c = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject });
    const me = await requester();
    const csr = encodeCertificationRequest({ subject: aliceName(), challengePassword: c.password }, me.key);
    await refused(buildPkcsReq(csr, me, [s.ca.certificate]), 'badMessageCheck');
  });

  it('garbage and truncated bodies get an HTTP error, not a crash', async () => {
    const c = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject });
    const good = await enrolWith(c.password);
    const calls = s.issuer.calls;
    for (const body of [Buffer.from('hello'), Buffer.alloc(0), good.der.subarray(0, good.der.length - 7), good.der.subarray(0, 40), Buffer.alloc(1 << 19, 0x30)]) {
      const r = await s.service.handle('PKIOperation', body, 'default');
      assert.ok(r.status >= 400 && r.status < 500, `status ${r.status}`);
    }
    assert.equal((await s.service.handle('PKIOperation', '!!!not base64', 'default')).status, 400);
    assert.equal((await s.service.handle('Bogus', undefined, 'default')).status, 400);
    assert.equal(s.issuer.calls, calls);
    assert.equal(s.store.transactions.has(good.transactionId), false);
  });

  it('replayed transaction ids: the same request gets the same certificate, a different CSR is refused', async () => {
    const c = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject });
    const me = await requester();
    const request = buildPkcsReq(encodeCertificationRequest({ subject: aliceName(), challengePassword: c.password }, me.key), me, [s.ca.ra.certificate]);
    const first = await pkiOperation(s, request);
    const calls = s.issuer.calls;
    // The same request resent (a lost reply): the same certificate, nothing new issued.
    const retry = buildPkcsReq(encodeCertificationRequest({ subject: aliceName(), challengePassword: c.password }, me.key), me, [s.ca.ra.certificate], { transactionId: request.transactionId });
    assert.equal((await pkiOperation(s, retry)).certificates[0]?.fingerprint256, first.certificates[0]!.fingerprint256);
    // A different key under the same id: refused, and the record of the first stays.
    const c2 = await s.validator.issueChallenge({ profile: 'default', subject: aliceSubject });
    const mallory = await requester();
    const replay = buildPkcsReq(encodeCertificationRequest({ subject: aliceName(), challengePassword: c2.password }, mallory.key), mallory, [s.ca.ra.certificate], { transactionId: request.transactionId });
    const rep = await pkiOperation(s, replay);
    assert.deepEqual([rep.status, rep.failInfo], ['FAILURE', 'badRequest']);
    assert.equal(s.issuer.calls, calls);
    assert.equal(s.store.transactions.get(request.transactionId)?.serialHex, first.certificates[0]!.serialHex);
  });
});

describe('static challenge', () => {
  it('accepts the shared password with any subject and refuses others', async () => {
    const ca = await createTestCa();
    const issuer = new FakeIssuer(ca);
    const store = new MemoryScepStore();
    const service = createScepService({ profiles: new Map([['default', profile]]), issuer, ra: ca.ra, challengeValidator: new StaticChallengeValidator('s3cret'), store });
    const me = await requester();
    const ok = buildPkcsReq(encodeCertificationRequest({ subject: encodeName([['CN', 'anything']]), challengePassword: 's3cret' }, me.key), me, [ca.ra.certificate]);
    const rep = parseCertRep((await service.handle('PKIOperation', ok.der, 'default')).body, ok, [ca.ra.certificate]);
    assert.equal(rep.status, 'SUCCESS');
    const bad = buildPkcsReq(encodeCertificationRequest({ subject: encodeName([['CN', 'anything']]), challengePassword: 'guess' }, me.key), me, [ca.ra.certificate]);
    assert.equal(parseCertRep((await service.handle('PKIOperation', bad.der, 'default')).body, bad, [ca.ra.certificate]).failInfo, 'badRequest');
    assert.equal(issuer.calls, 1);
  });

  it('refuses an RA certificate without digitalSignature and keyEncipherment', async () => {
    const ca = await createTestCa({ raUsages: ['digitalSignature'] });
    assert.throws(() => createScepService({ profiles: new Map(), issuer: new FakeIssuer(ca), ra: ca.ra, challengeValidator: new StaticChallengeValidator('x'), store: new MemoryScepStore() }), /keyEncipherment/);
  });
});
