/**
 * Interop with real SCEP clients through a minimal node:http adapter:
 * micromdm's scepclient (Debian package scep) enrols over POST and over GET
 * (a server without POSTPKIOperation) with its DES-CBC envelopes, and renews;
 * certmonger's scep-submit reads GetCACaps and GetCACert. The certificates
 * obtained verify with `openssl verify`.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodePem } from '../../src/asn1/pem.ts';
import { loadCertificates } from '../../src/x509/certificate.ts';
import { StoreChallengeValidator } from '../../src/scep/challenge.ts';
import { defaultCapabilities, createScepService } from '../../src/scep/service.ts';
import { defaultKeyPolicy } from '../../src/scep/policy.ts';
import { run } from '../support/exec.ts';
import { FakeIssuer, MemoryScepStore, type ServedRequest, createTestCa, type TestCa } from './support.ts';
import { describeEnvelope } from '../../src/smime/cms/enveloped-data.ts';
import { decodePkiMessage } from '../../src/scep/message.ts';
import { OID } from '../../src/asn1/oids.ts';

/** The content ciphers of the PKIOperation requests a server saw. */
function requestCiphers(server: { requests: readonly ServedRequest[] }): string[] {
  return server.requests.filter((q) => q.operation === 'PKIOperation' && q.message).map((q) => describeEnvelope(decodePkiMessage(q.message!).envelope!).contentCipher);
}

const scepclient = '/usr/bin/scepclient';
const scepSubmit = '/usr/lib/certmonger/scep-submit';
const missing = [scepclient, scepSubmit].filter((p) => !existsSync(p));

interface Server {
  url: (p: string) => string;
  close: () => Promise<void>;
  requests: ServedRequest[];
  issuer: FakeIssuer;
  store: MemoryScepStore;
  validator: StoreChallengeValidator;
}

async function startServer(ca: TestCa, capabilities: readonly string[] = defaultCapabilities): Promise<Server> {
  const { serveScep } = await import('./support.ts');
  const issuer = new FakeIssuer(ca);
  const store = new MemoryScepStore();
  const validator = new StoreChallengeValidator(store);
  const service = createScepService({ profiles: new Map([['default', { name: 'default', keyPolicy: defaultKeyPolicy }]]), issuer, ra: ca.ra, challengeValidator: validator, store, capabilities });
  const http = await serveScep(service);
  return { ...http, issuer, store, validator };
}

describe('SCEP interop with real clients', { skip: missing.length > 0 ? `missing ${missing.join(', ')}` : false }, () => {
  let ca: TestCa;
  let dir: string;
  let caPem: string;
  before(async () => {
    ca = await createTestCa();
    dir = mkdtempSync(join(tmpdir(), 'kf-scep-'));
    caPem = join(dir, 'ca.pem');
    writeFileSync(caPem, encodePem('CERTIFICATE', ca.certificate.der));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function enrolWithScepclient(server: Server, name: string, cn: string, extra: string[] = []) {
    const work = join(dir, name);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(work, { recursive: true });
    const { password } = await server.validator.issueChallenge({ profile: 'default', subject: `CN=${cn},OU=MDM,O=scep-client,C=US`, deviceId: name });
    const r = await run(scepclient, ['-private-key', join(work, 'key.pem'), '-server-url', server.url('default'), '-challenge', password, '-cn', cn, ...extra], { timeoutMs: 60_000 });
    return { r, work, certPath: join(work, 'client.pem'), password };
  }

  async function opensslVerify(certPath: string) {
    const v = await run('openssl', ['verify', '-CAfile', caPem, certPath]);
    assert.equal(v.status, 0, v.stderr + v.stdout.toString());
  }

  it('scepclient enrols over POST (DES-CBC envelope) and renews', async () => {
    const server = await startServer(ca);
    try {
      const { r, certPath, work } = await enrolWithScepclient(server, 'post', 'device-post');
      assert.equal(r.status, 0, r.stdout.toString() + r.stderr);
      await opensslVerify(certPath);
      const cert = loadCertificates(readFileSync(certPath))[0]!;
      assert.match(cert.subject.rdns.flat().map((a) => a.value).join(','), /device-post/);
      assert.ok(server.requests.some((q) => q.method === 'POST' && q.operation === 'PKIOperation'));
      assert.deepEqual(requestCiphers(server), [OID.desCBC]);
      const t = [...server.store.transactions.values()].find((x) => x.serialHex === cert.serialHex);
      assert.equal(t?.outcome, 'success');
      assert.equal(t?.requester, 'post');

      // Renewal: scepclient signs a RenewalReq with the certificate it holds (no challenge).
      const renew = await run(scepclient, ['-private-key', join(work, 'key.pem'), '-certificate', certPath, '-server-url', server.url('default'), '-cn', 'device-post'], { timeoutMs: 60_000 });
      assert.equal(renew.status, 0, renew.stdout.toString() + renew.stderr);
      const renewed = loadCertificates(readFileSync(certPath))[0]!;
      assert.notEqual(renewed.serialHex, cert.serialHex);
      await opensslVerify(certPath);
      assert.equal(server.issuer.requests.at(-1)?.messageType, 'RenewalReq');
      assert.equal(server.issuer.requests.at(-1)?.renewalOf?.serialHex, cert.serialHex);
    } finally {
      await server.close();
    }
  });

  it('scepclient enrols over GET when POST is not offered', async () => {
    // micromdm takes SCEPStandard to imply POST as well (RFC 8894 §3.5.2), so both are left out.
    const server = await startServer(ca, defaultCapabilities.filter((c) => c !== 'POSTPKIOperation' && c !== 'SCEPStandard'));
    try {
      const { r, certPath } = await enrolWithScepclient(server, 'get', 'device-get');
      assert.equal(r.status, 0, r.stdout.toString() + r.stderr);
      await opensslVerify(certPath);
      assert.ok(server.requests.some((q) => q.method === 'GET' && q.operation === 'PKIOperation'));
      assert.ok(!server.requests.some((q) => q.method === 'POST'));
      assert.deepEqual(requestCiphers(server), [OID.desCBC]);
    } finally {
      await server.close();
    }
  });

  it('scepclient with a wrong challenge gets a FAILURE and nothing is issued', async () => {
    const server = await startServer(ca);
    try {
      const work = join(dir, 'wrong');
      const { mkdirSync } = await import('node:fs');
      mkdirSync(work, { recursive: true });
      await server.validator.issueChallenge({ profile: 'default', subject: 'CN=device-wrong,OU=MDM,O=scep-client,C=US' });
      const r = await run(scepclient, ['-private-key', join(work, 'key.pem'), '-server-url', server.url('default'), '-challenge', 'wrong', '-cn', 'device-wrong'], { timeoutMs: 60_000 });
      assert.notEqual(r.status, 0);
      assert.match(r.stdout.toString() + r.stderr, /failInfo: badRequest|badRequest/);
      assert.equal(server.issuer.calls, 0);
      assert.equal(existsSync(join(work, 'client.pem')), false);
    } finally {
      await server.close();
    }
  });

  it('certmonger scep-submit reads GetCACaps and GetCACert', async () => {
    const server = await startServer(ca);
    try {
      const caps = await run(scepSubmit, ['-u', server.url('default'), '-c'], { timeoutMs: 30_000 });
      assert.equal(caps.status, 0, caps.stderr);
      for (const cap of defaultCapabilities) assert.match(caps.stdout.toString(), new RegExp(`^${cap}$`, 'm'));
      const certs = await run(scepSubmit, ['-u', server.url('default'), '-C'], { timeoutMs: 30_000 });
      assert.equal(certs.status, 0, certs.stderr);
      const found = loadCertificates(certs.stdout);
      const fingerprints = found.map((c) => c.fingerprint256);
      assert.ok(fingerprints.includes(ca.ra.certificate.fingerprint256));
      assert.ok(fingerprints.includes(ca.certificate.fingerprint256));
    } finally {
      await server.close();
    }
  });
});
