/**
 * OCSP over HTTP (RFC 6960 Appendix A): a node:http server maps requests to
 * handleOcspHttp; `openssl ocsp -url` is the client for POST (the OpenSSL
 * 3.0 CLI has no GET option), fetch() for GET with the escapes of A.1.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createOcspResponder, type OcspResponder } from '../../src/ca/ocsp.ts';
import { handleOcspHttp, ocspRequestFromGetPath } from '../../src/ca/ocsp-http.ts';
import { buildOcspRequest, decodeOcspResponse, verifyOcspResponse } from '../../src/x509/ocsp-client.ts';
import { type OcspPki, buildOcspPki, openssl, said } from './support.ts';

let t: OcspPki;
let responder: OcspResponder;
let server: Server;
let base: string;

before(async () => {
  t = buildOcspPki();
  responder = createOcspResponder({ signer: { certificate: t.ca.certificate, key: t.caKey }, caCertificates: [t.ca.certificate], lookup: t.lookupFor(t.ca), cacheSeconds: 60 });
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void handleOcspHttp(responder, { method: req.method ?? 'GET', path: req.url ?? '/', body: Buffer.concat(chunks) }, { maxAgeSeconds: 60 }).then((r) => {
        res.writeHead(r.status, r.headers);
        res.end(r.body);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  t.cleanup();
});

test('openssl ocsp -url (POST): good and revoked, nonce checked', async () => {
  const r = await openssl(['ocsp', '-url', `${base}/ocsp`, '-issuer', t.ca.certPath, '-cert', t.good.certPath, '-cert', t.revoked.certPath, '-CAfile', t.root.certPath]);
  assert.equal(r.status, 0, said(r));
  assert.match(said(r), /Response verify OK/);
  assert.match(said(r), new RegExp(`${t.good.certPath}: good`));
  assert.match(said(r), new RegExp(`${t.revoked.certPath}: revoked[\\s\\S]*Reason: keyCompromise`));
  assert.doesNotMatch(said(r), /WARNING/);
});

test('GET with the base64 URL-encoded request, escaped or not', async () => {
  // Find a nonce whose request's base64 has '+', '/' and '=' so the escapes matter.
  let der: Uint8Array | undefined;
  let nonce: Uint8Array | undefined;
  for (let i = 0; i < 500 && der === undefined; i++) {
    const built = buildOcspRequest(t.good.certificate, t.ca.certificate);
    const b64 = Buffer.from(built.der).toString('base64');
    if (b64.includes('+') && b64.includes('/') && b64.includes('=')) ({ der, nonce } = built);
  }
  assert.ok(der && nonce);
  const b64 = Buffer.from(der).toString('base64');
  for (const path of [`/ocsp/${encodeURIComponent(b64)}`, `/ocsp/${b64}`, `/ocsp/${b64.replace(/\+/g, '%2B')}`]) {
    const res = await fetch(`${base}${path}`);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get('content-type'), 'application/ocsp-response');
    // A nonce makes the answer single-use: no HTTP caching.
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    const body = new Uint8Array(await res.arrayBuffer());
    const v = verifyOcspResponse(body, { cert: t.good.certificate, issuer: t.ca.certificate, nonce });
    assert.equal(v.status, 'good');
  }
});

test('GET without a nonce carries RFC 5019 caching headers', async () => {
  const { der } = buildOcspRequest(t.revoked.certificate, t.ca.certificate, { nonce: false });
  const res = await fetch(`${base}/ocsp/${encodeURIComponent(Buffer.from(der).toString('base64'))}`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('cache-control') ?? '', /max-age=60/);
  assert.ok(res.headers.get('expires'));
  assert.ok(res.headers.get('last-modified'));
  const v = verifyOcspResponse(new Uint8Array(await res.arrayBuffer()), { cert: t.revoked.certificate, issuer: t.ca.certificate });
  assert.equal(v.status, 'revoked');
  assert.equal(v.reason, 1);
});

test('a GET path that is not base64 gets malformedRequest; other methods and paths HTTP errors', async () => {
  const bad = await fetch(`${base}/ocsp/not*base64!`);
  assert.equal(bad.status, 200);
  assert.equal(decodeOcspResponse(new Uint8Array(await bad.arrayBuffer())).responseStatus, 1);
  const badEscape = await fetch(`${base}/ocsp/%E0%A4%A`);
  assert.equal(decodeOcspResponse(new Uint8Array(await badEscape.arrayBuffer())).responseStatus, 1);
  assert.equal((await fetch(`${base}/ocsp`, { method: 'PUT', body: 'x' })).status, 405);
  assert.equal((await fetch(`${base}/elsewhere`, { method: 'POST', body: 'x' })).status, 404);
  const garbage = await fetch(`${base}/ocsp`, { method: 'POST', body: 'garbage', headers: { 'content-type': 'application/ocsp-request' } });
  assert.equal(decodeOcspResponse(new Uint8Array(await garbage.arrayBuffer())).responseStatus, 1);
});

test('ocspRequestFromGetPath', () => {
  const der = Uint8Array.of(0x30, 0x03, 0xfb, 0xff, 0xfe);
  const b64 = Buffer.from(der).toString('base64'); // MAP7//4= : '/', '='
  assert.deepEqual(ocspRequestFromGetPath(`/ocsp/${b64}`), Buffer.from(der));
  assert.deepEqual(ocspRequestFromGetPath(`/ocsp/${b64.replace(/\//g, '%2F').replace(/=/g, '%3D')}`), Buffer.from(der));
  assert.deepEqual(ocspRequestFromGetPath(`/status/${b64}?x=1`, '/status'), Buffer.from(der));
  assert.equal(ocspRequestFromGetPath(`/other/${b64}`), undefined);
  assert.equal(ocspRequestFromGetPath('/ocsp/'), undefined);
  assert.equal(ocspRequestFromGetPath(`/ocsp/${'A'.repeat(300_000)}`), undefined);
});
