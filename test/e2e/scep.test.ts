/**
 * Issue 3, "Tests": real SCEP clients enrol against `keyfleet serve` (one
 * `ca init`, one server for the file; tests run in order):
 *
 * - micromdm's scepclient over POST (its DES-CBC envelope) and renews with
 *   its key and certificate (RenewalReq);
 * - scepclient over GET: serve always offers POSTPKIOperation, so a
 *   recording proxy hides it (and SCEPStandard, which implies POST) from
 *   GetCACaps and passes everything else to serve unchanged;
 * - our own client (src/scep/client.ts) over POST and GET with AES-128,
 *   AES-256, DES-EDE3 and DES envelopes, GET against serve directly;
 * - certmonger's scep-submit reads GetCACaps and GetCACert.
 *
 * Every certificate obtained passes `openssl verify -x509_strict -purpose
 * smimesign` against the root from `keyfleet ca show --pem`, and appears in
 * `keyfleet ca list` and the SCEP transaction log.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OID } from '../../src/asn1/oids.ts';
import { decodePkiMessage } from '../../src/scep/message.ts';
import { defaultCapabilities } from '../../src/scep/service.ts';
import { describeEnvelope } from '../../src/smime/cms/enveloped-data.ts';
import { type Certificate, loadCertificates } from '../../src/x509/certificate.ts';
import { nameToString } from '../../src/x509/name.ts';
import { describeRun, run } from '../support/exec.ts';
import type { ScepCipher } from '../../src/scep/envelope.ts';
import { exchange, getCaCerts, newDevice, pkcsReq, subjectOf } from './scep-http.ts';
import {
  type CaFiles,
  type RecordingProxy,
  type Served,
  caList,
  certificateIn,
  initCa,
  keyfleetOk,
  opensslVerify,
  scepSubmit,
  scepTransactions,
  scepclient,
  startProxy,
  startServe,
  tempDir,
  writeCertPem,
} from './support.ts';

const missing = [scepclient, scepSubmit].filter((p) => !existsSync(p));

function envelopeCipher(message: Uint8Array): string {
  return describeEnvelope(decodePkiMessage(message).envelope!).contentCipher;
}

describe('SCEP enrolment against keyfleet serve', { skip: missing.length > 0 ? `missing ${missing.join(', ')}` : false, timeout: 120_000 }, () => {
  const tmp = tempDir('scep');
  let ca: CaFiles;
  let serve: Served;

  before(async () => {
    ca = await initCa(tmp.path);
    serve = await startServe(ca.dataDir);
  });
  after(async () => {
    const exit = await serve?.stop();
    tmp.cleanup();
    // SIGTERM is the documented way to stop it: a clean exit, not a crash.
    assert.deepEqual(exit, { status: 0, signal: null }, serve?.output());
  });

  async function challenge(cn: string, extra: readonly string[] = []): Promise<string> {
    return (await keyfleetOk(['scep', 'challenge', '--data', ca.dataDir, '--profile', 'default', '--subject', subjectOf(cn), ...extra])).toString('utf8').trim();
  }

  /** scepclient in its own directory (it writes and reuses ./csr.pem). */
  async function scepclientRun(name: string, url: string, args: readonly string[]) {
    const cwd = tmp.sub(name);
    const r = await run(scepclient, ['-server-url', url, '-private-key', join(cwd, 'key.pem'), '-certificate', join(cwd, 'cert.pem'), ...args], { cwd, timeoutMs: 60_000 });
    return { r, cwd, certPath: join(cwd, 'cert.pem'), keyPath: join(cwd, 'key.pem') };
  }

  async function assertVerifies(certPath: string): Promise<void> {
    const v = await opensslVerify(ca, certPath);
    assert.equal(v.status, 0, describeRun(v));
    assert.match(v.stdout.toString(), /: OK\s*$/);
  }

  let postCert: Certificate;
  let postDir: string;

  it('scepclient enrols over POST with its DES envelope; the certificate verifies with openssl and is on record', async () => {
    const password = await challenge('dev-post', ['--device', 'device-post']);
    const { r, certPath, cwd } = await scepclientRun('post', serve.scepUrl(), ['-challenge', password, '-cn', 'dev-post']);
    assert.equal(r.status, 0, describeRun(r));
    await assertVerifies(certPath);
    postCert = certificateIn(certPath);
    postDir = cwd;
    assert.equal(nameToString(postCert.subject), 'C=US, O=scep-client, OU=MDM, CN=dev-post');
    assert.ok(postCert.extKeyUsage?.includes(OID.emailProtection));
    assert.ok(postCert.keyUsage?.has('digitalSignature'));

    const listed = (await caList(ca.dataDir)).find((c) => c.serialHex === postCert.serialHex);
    assert.deepEqual(listed && { status: listed.status, profile: listed.profile }, { status: 'good', profile: 'default' });
    const t = (await scepTransactions(ca.dataDir)).find((x) => x.serialHex === postCert.serialHex);
    assert.deepEqual(t && { type: t.messageType, outcome: t.outcome, requester: t.requester }, { type: 'PKCSReq', outcome: 'success', requester: 'device-post' });
  });

  it('scepclient renews with its key and certificate (RenewalReq, no challenge)', async () => {
    assert.ok(postCert, 'needs the POST enrolment');
    const r = await run(scepclient, ['-server-url', serve.scepUrl(), '-private-key', join(postDir, 'key.pem'), '-certificate', join(postDir, 'cert.pem'), '-cn', 'dev-post'], { cwd: postDir, timeoutMs: 60_000 });
    assert.equal(r.status, 0, describeRun(r));
    const certPath = join(postDir, 'cert.pem');
    const renewed = certificateIn(certPath);
    assert.notEqual(renewed.serialHex, postCert.serialHex);
    assert.ok(namesMatch(renewed, postCert), 'the renewal keeps the subject');
    await assertVerifies(certPath);
    const t = (await scepTransactions(ca.dataDir)).find((x) => x.serialHex === renewed.serialHex);
    assert.deepEqual(t && { type: t.messageType, outcome: t.outcome }, { type: 'RenewalReq', outcome: 'success' });
  });

  // Bug (reported): scepclient's transactionID is a hash of its public key, so a second renewal
  // with the same key arrives under the transactionID of the first; src/scep/transactions.ts
  // recognises it as a new renewal (`newRenewal`) and then refuses it as a replay (badRequest).
  it('scepclient renews a second time with the same key', async () => {
    const before = certificateIn(join(postDir, 'cert.pem'));
    const r = await run(scepclient, ['-server-url', serve.scepUrl(), '-private-key', join(postDir, 'key.pem'), '-certificate', join(postDir, 'cert.pem'), '-cn', 'dev-post'], { cwd: postDir, timeoutMs: 60_000 });
    assert.equal(r.status, 0, describeRun(r));
    assert.notEqual(certificateIn(join(postDir, 'cert.pem')).serialHex, before.serialHex);
  });

  it('scepclient enrols over GET (…/pkiclient.exe) when GetCACaps offers no POST', async () => {
    let proxy: RecordingProxy | undefined;
    try {
      proxy = await startProxy(serve.origin, ['POSTPKIOperation', 'SCEPStandard']);
      const password = await challenge('dev-get');
      const { r, certPath } = await scepclientRun('get', `${proxy.origin}/scep/default/pkiclient.exe`, ['-challenge', password, '-cn', 'dev-get']);
      assert.equal(r.status, 0, describeRun(r));
      await assertVerifies(certPath);
      const ops = proxy.requests.filter((q) => q.operation === 'PKIOperation');
      assert.ok(ops.length > 0 && ops.every((q) => q.method === 'GET'), `PKIOperation methods: ${ops.map((q) => q.method).join(', ')}`);
      assert.deepEqual(
        ops.map((q) => envelopeCipher(q.message!)),
        [OID.desCBC],
        'scepclient sends single DES',
      );
      assert.equal(nameToString(certificateIn(certPath).subject), 'C=US, O=scep-client, OU=MDM, CN=dev-get');
    } finally {
      await proxy?.close();
    }
  });

  const cases: readonly { cipher: ScepCipher; method: 'POST' | 'GET'; oid: string }[] = [
    { cipher: 'aes-256-cbc', method: 'POST', oid: OID.aes256CBC },
    { cipher: 'aes-128-cbc', method: 'GET', oid: OID.aes128CBC },
    { cipher: 'des-ede3-cbc', method: 'POST', oid: OID.desEde3CBC },
    { cipher: 'des-ede3-cbc', method: 'GET', oid: OID.desEde3CBC },
    { cipher: 'des-cbc', method: 'GET', oid: OID.desCBC },
  ];
  it(`our client enrols with ${cases.map((c) => `${c.cipher}/${c.method}`).join(', ')}`, async () => {
    const trusted = await getCaCerts(serve.scepUrl());
    const certPaths: string[] = [];
    for (const [i, c] of cases.entries()) {
      const cn = `dev-own-${i}`;
      const device = await newDevice(cn);
      const request = pkcsReq(device, trusted, { challenge: await challenge(cn) }, { cipher: c.cipher });
      assert.equal(envelopeCipher(request.der), c.oid);
      const { rep } = await exchange(serve.scepUrl(), request, trusted, c.method);
      assert.equal(rep.status, 'SUCCESS', `${c.cipher}/${c.method}: ${rep.status} ${rep.failInfo ?? ''}`);
      const issued = rep.certificates[0]!;
      assert.equal(nameToString(issued.subject), subjectOf(cn));
      assert.equal(Buffer.compare(Buffer.from(issued.spki), Buffer.from(device.certificate.spki)), 0, 'issued for the requested key');
      certPaths.push(writeCertPem(join(tmp.sub('own'), `${i}.pem`), issued));
    }
    for (const p of certPaths) await assertVerifies(p);
  });

  it('certmonger scep-submit reads GetCACaps and GetCACert (the RA, the issuing CA and the root)', async () => {
    const caps = await run(scepSubmit, ['-u', serve.scepUrl(), '-c'], { timeoutMs: 30_000 });
    assert.equal(caps.status, 0, describeRun(caps));
    assert.deepEqual(
      caps.stdout
        .toString()
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean),
      [...defaultCapabilities],
    );
    const certs = await run(scepSubmit, ['-u', `${serve.scepUrl()}/pkiclient.exe`, '-C'], { timeoutMs: 30_000 });
    assert.equal(certs.status, 0, describeRun(certs));
    const got = loadCertificates(certs.stdout);
    const issuing = certificateIn(ca.issuingPem);
    const root = certificateIn(ca.rootPem);
    const fingerprints = got.map((c) => c.fingerprint256);
    assert.ok(fingerprints.includes(issuing.fingerprint256), 'the issuing CA');
    assert.ok(fingerprints.includes(root.fingerprint256), 'the root');
    const ra = got.find((c) => c.fingerprint256 !== issuing.fingerprint256 && c.fingerprint256 !== root.fingerprint256);
    assert.ok(ra, 'the RA certificate');
    // REFERENCE.md: the RA needs digitalSignature and keyEncipherment, and chains to the root.
    assert.ok(ra.keyUsage?.has('digitalSignature') && ra.keyUsage.has('keyEncipherment'));
    const raPath = writeCertPem(join(tmp.path, 'ra.pem'), ra);
    const v = await run('openssl', ['verify', '-CAfile', ca.rootPem, '-untrusted', ca.issuingPem, raPath]);
    assert.equal(v.status, 0, describeRun(v));
    // scep-submit -C prints what GetCACert returned: compare with our own read of it.
    assert.deepEqual(new Set(fingerprints), new Set((await getCaCerts(serve.scepUrl())).map((c) => c.fingerprint256)));
  });

  it('the server is still up and every enrolment is in ca list', async () => {
    assert.ok(serve.alive());
    const listed = await caList(ca.dataDir);
    // The RA, the POST enrolment and its renewal, the GET enrolment, our client's five.
    assert.ok(listed.filter((c) => c.profile === 'default').length >= 1 + 1 + 1 + cases.length, listed.map((l) => l.subject).join('\n'));
  });
});

function namesMatch(a: Certificate, b: Certificate): boolean {
  return Buffer.compare(Buffer.from(a.subject.der), Buffer.from(b.subject.der)) === 0;
}
