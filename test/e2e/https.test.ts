/**
 * Issue 3: SCEP "over HTTP and HTTPS". `keyfleet serve --tls-cert --tls-key`
 * with a self-signed server certificate for 127.0.0.1 (made with `openssl
 * req -x509`; the CA's templates are for S/MIME): GetCACaps with Node's
 * https client and with curl, GetCACert with certmonger's scep-submit (-R),
 * a whole enrolment with micromdm's scepclient (Go reads SSL_CERT_FILE), and
 * OCSP over HTTPS with openssl. A client that does not trust the certificate
 * is refused at the handshake.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultCapabilities } from '../../src/scep/service.ts';
import { loadCertificates } from '../../src/x509/certificate.ts';
import { describeRun, run, runOk } from '../support/exec.ts';
import { subjectOf } from './scep-http.ts';
import { type CaFiles, type Served, assertOneLine, certificateIn, initCa, keyfleet, keyfleetOk, opensslVerify, scepSubmit, scepclient, startServe, tempDir } from './support.ts';

function httpsGet(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { ca }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (s: string) => (body += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('keyfleet serve over HTTPS', { timeout: 60_000 }, () => {
  const tmp = tempDir('https');
  let ca: CaFiles;
  let serve: Served;
  let tlsCert: string;
  let tlsKey: string;

  before(async () => {
    ca = await initCa(tmp.path, ['--key-type', 'p-256']);
    tlsCert = join(tmp.path, 'tls.pem');
    tlsKey = join(tmp.path, 'tls.key');
    await runOk('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', tlsKey, '-out', tlsCert]);
    serve = await startServe(ca.dataDir, ['--tls-cert', tlsCert, '--tls-key', tlsKey]);
  });
  after(async () => {
    const exit = await serve?.stop();
    tmp.cleanup();
    assert.deepEqual(exit, { status: 0, signal: null }, serve?.output());
  });

  it('announces an https URL; GetCACaps over HTTPS with Node and curl', async () => {
    assert.match(serve.origin, /^https:\/\/127\.0\.0\.1:\d+$/);
    const node = await httpsGet(`${serve.scepUrl()}?operation=GetCACaps`, readFileSync(tlsCert));
    assert.equal(node.status, 200);
    assert.deepEqual(node.body.trim().split('\n'), [...defaultCapabilities]);
    const curl = await run('curl', ['-sS', '--fail', '--cacert', tlsCert, `${serve.scepUrl()}/pkiclient.exe?operation=GetCACaps`]);
    assert.equal(curl.status, 0, describeRun(curl));
    assert.deepEqual(curl.stdout.toString().trim().split('\n'), [...defaultCapabilities]);
  });

  it('a client without the server certificate in its trust store is refused at the handshake', async () => {
    await assert.rejects(httpsGet(`${serve.scepUrl()}?operation=GetCACaps`, readFileSync(ca.rootPem)), /self[- ]signed|unable to verify|certificate/i);
    const curl = await run('curl', ['-sS', '--fail', `${serve.scepUrl()}?operation=GetCACaps`], { env: { CURL_CA_BUNDLE: ca.rootPem } });
    assert.notEqual(curl.status, 0);
  });

  async function getCaCertsOverTls() {
    const certs = await run(scepSubmit, ['-u', serve.scepUrl(), '-R', tlsCert, '-C'], { timeoutMs: 30_000 });
    assert.equal(certs.status, 0, describeRun(certs));
    return loadCertificates(certs.stdout);
  }

  it('certmonger scep-submit reads GetCACaps and GetCACert over HTTPS (-R)', { skip: existsSync(scepSubmit) ? false : `missing ${scepSubmit}` }, async () => {
    const caps = await run(scepSubmit, ['-u', serve.scepUrl(), '-R', tlsCert, '-c'], { timeoutMs: 30_000 });
    assert.equal(caps.status, 0, describeRun(caps));
    assert.match(caps.stdout.toString(), /^POSTPKIOperation$/m);
    const fingerprints = (await getCaCertsOverTls()).map((c) => c.fingerprint256);
    assert.ok(fingerprints.includes(certificateIn(ca.issuingPem).fingerprint256));
  });

  // The CA here is P-256. scepclient encrypts its request to every certificate GetCACert returns
  // unless -ca-fingerprint picks one, and panics on an EC recipient (go.mozilla.org/pkcs7 is
  // RSA-only): with an EC CA it must be pointed at the (always RSA) RA.
  it('scepclient enrols over HTTPS (EC CA, RA chosen with -ca-fingerprint); the certificate verifies', { skip: existsSync(scepclient) ? false : `missing ${scepclient}` }, async () => {
    const password = (await keyfleetOk(['scep', 'challenge', '--data', ca.dataDir, '--subject', subjectOf('dev-tls')])).toString().trim();
    const [ra] = await getCaCertsOverTls();
    const cwd = tmp.sub('scepclient');
    const args = ['-server-url', serve.scepUrl(), '-challenge', password, '-cn', 'dev-tls', '-private-key', join(cwd, 'key.pem'), '-certificate', join(cwd, 'cert.pem')];
    const r = await run(scepclient, [...args, '-ca-fingerprint', ra!.fingerprint256], {
      cwd,
      timeoutMs: 60_000,
      env: { SSL_CERT_FILE: tlsCert },
    });
    assert.equal(r.status, 0, describeRun(r));
    const v = await opensslVerify(ca, join(cwd, 'cert.pem'));
    assert.equal(v.status, 0, describeRun(v));
  });

  it('openssl ocsp over HTTPS', async () => {
    const leaf = join(tmp.path, 'leaf.pem');
    await keyfleetOk(['ca', 'issue', '--data', ca.dataDir, '--email', 'tls@example.com', '--key-type', 'p-256', '--key-out', join(tmp.path, 'leaf.key'), '--out', leaf]);
    // openssl ocsp has no option for the TLS trust of -url; SSL_CERT_FILE is its default store.
    const r = await run('openssl', ['ocsp', '-url', `${serve.origin}/ocsp`, '-issuer', ca.issuingPem, '-CAfile', ca.rootPem, '-cert', leaf], { env: { SSL_CERT_FILE: tlsCert } });
    assert.equal(r.status, 0, describeRun(r));
    assert.match(r.stdout.toString(), /: good$/m);
  });

  it('a TLS key that is no key or does not fit, and a port in use: one coded line each', async () => {
    const notAKey = join(tmp.path, 'not-a-key.pem');
    writeFileSync(notAKey, 'not a key\n');
    const otherKey = join(tmp.path, 'other.key');
    await runOk('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', otherKey]);
    const port = new URL(serve.origin).port;
    const failures: string[] = [];
    for (const [what, args] of [
      ['not a key', ['--port', '0', '--tls-cert', tlsCert, '--tls-key', notAKey]],
      ['a key of another certificate', ['--port', '0', '--tls-cert', tlsCert, '--tls-key', otherKey]],
      ['the port of the running server', ['--port', port]],
    ] as const) {
      try {
        assertOneLine(await keyfleet(['serve', '--data', ca.dataDir, ...args]), 1, what);
      } catch (e) {
        failures.push(`${what}: ${e instanceof Error ? e.message.split('\n').slice(0, 6).join(' | ') : String(e)}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  it('--tls-cert without --tls-key, and an unreadable certificate file: one readable line each', async () => {
    assertOneLine(await keyfleet(['serve', '--data', ca.dataDir, '--port', '0', '--tls-cert', tlsCert]), 2, 'tls-cert alone', /KF_USAGE/);
    assertOneLine(await keyfleet(['serve', '--data', ca.dataDir, '--port', '0', '--tls-cert', join(tmp.path, 'nope.pem'), '--tls-key', tlsKey]), 2, 'missing certificate file', /KF_USAGE/);
  });
});
