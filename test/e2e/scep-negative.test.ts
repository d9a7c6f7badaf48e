/**
 * Issue 3, "Tests", negative: what `keyfleet serve` refuses, through HTTP,
 * and that each refusal issues nothing (`keyfleet ca list` unchanged), stores
 * nothing half-done, and leaves the server running.
 *
 * - wrong and used challenges, a subject and a SAN the challenge does not
 *   allow, RSA-1024: a CertRep FAILURE with failInfo badRequest (RFC 8894
 *   §3.3.2.2), with scepclient or our client;
 * - an expired challenge: `scep challenge --ttl` counts in minutes from now,
 *   so the challenge is issued through the store with a clock two hours
 *   back (one hour of life) and then presented to the running server over
 *   HTTP by scepclient; the server's clock is not touched;
 * - garbage, truncated, empty and oversized PKIOperation bodies: an HTTP 4xx;
 * - a replayed transactionID with a different CSR;
 * - a CertRep tampered with on the way, which our client must reject.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StoreChallengeValidator } from '../../src/scep/challenge.ts';
import { buildRenewalReq, parseCertRep } from '../../src/scep/client.ts';
import { encodeCertificationRequest } from '../../src/scep/csr.ts';
import { encodeName } from '../../src/x509/name.ts';
import { decodePkiMessage } from '../../src/scep/message.ts';
import type { Certificate } from '../../src/x509/certificate.ts';
import { describeRun, run } from '../support/exec.ts';
import { exchange, getCaCerts, newDevice, pkcsReq, pkiOperation, subjectOf } from './scep-http.ts';
import { type CaFiles, type Served, caList, initCa, keyfleetOk, scepTransactions, scepclient, startServe, tempDir, withTenant } from './support.ts';

describe('SCEP refusals through keyfleet serve', { skip: existsSync(scepclient) ? false : `missing ${scepclient}`, timeout: 120_000 }, () => {
  const tmp = tempDir('scep-neg');
  let ca: CaFiles;
  let serve: Served;
  let trusted: Certificate[];
  /** Serials in `ca list` after the last expected issuance. */
  let known: string[];

  before(async () => {
    ca = await initCa(tmp.path);
    serve = await startServe(ca.dataDir);
    trusted = await getCaCerts(serve.scepUrl());
    known = (await caList(ca.dataDir)).map((c) => c.serialHex).sort();
  });
  after(async () => {
    const exit = await serve?.stop();
    tmp.cleanup();
    assert.deepEqual(exit, { status: 0, signal: null }, serve?.output());
  });

  async function challenge(cn: string, extra: readonly string[] = []): Promise<string> {
    return (await keyfleetOk(['scep', 'challenge', '--data', ca.dataDir, '--profile', 'default', '--subject', subjectOf(cn), ...extra])).toString('utf8').trim();
  }

  /** Nothing issued since the last check (or exactly `expected` new serials), and the server still up. */
  async function assertIssued(expected: number, what: string): Promise<string[]> {
    const now = (await caList(ca.dataDir)).map((c) => c.serialHex).sort();
    const added = now.filter((s) => !known.includes(s));
    assert.equal(added.length, expected, `${what}: ${added.length} new certificate(s) in ca list`);
    assert.ok(serve.alive(), `${what}: the server died\n${serve.output()}`);
    known = now;
    return added;
  }

  async function scepclientRun(name: string, args: readonly string[]) {
    const cwd = tmp.sub(name);
    const r = await run(scepclient, ['-server-url', serve.scepUrl(), '-private-key', join(cwd, 'key.pem'), '-certificate', join(cwd, 'cert.pem'), ...args], { cwd, timeoutMs: 60_000 });
    return { r, cwd, issued: existsSync(join(cwd, 'cert.pem')) };
  }

  function assertBadRequest(result: Awaited<ReturnType<typeof scepclientRun>>, what: string): void {
    assert.notEqual(result.r.status, 0, `${what}\n${describeRun(result.r)}`);
    assert.match(result.r.stdout.toString() + result.r.stderr, /failInfo: badRequest/, `${what}\n${describeRun(result.r)}`);
    assert.equal(result.issued, false, `${what}: scepclient wrote a certificate`);
  }

  it('a wrong challenge: badRequest, nothing issued, the failure logged', async () => {
    await challenge('wrong');
    const result = await scepclientRun('wrong', ['-challenge', 'not-the-challenge', '-cn', 'wrong']);
    assertBadRequest(result, 'wrong challenge');
    await assertIssued(0, 'wrong challenge');
    const last = (await scepTransactions(ca.dataDir)).at(-1);
    assert.deepEqual(last && { outcome: last.outcome, failInfo: last.failInfo, serial: last.serialHex }, { outcome: 'failure', failInfo: 'badRequest', serial: undefined });
  });

  it('a used challenge: the first enrolment succeeds, a second device with it gets badRequest', async () => {
    const password = await challenge('once');
    const first = await scepclientRun('once-1', ['-challenge', password, '-cn', 'once']);
    assert.equal(first.r.status, 0, describeRun(first.r));
    await assertIssued(1, 'first use');
    assertBadRequest(await scepclientRun('once-2', ['-challenge', password, '-cn', 'once']), 'used challenge');
    await assertIssued(0, 'used challenge');
  });

  it('an expired challenge (issued through the store with a past clock, presented over HTTP): badRequest', async () => {
    const issueAt = async (agoMs: number, cn: string) =>
      withTenant(ca.dataDir, async (t) => (await new StoreChallengeValidator(t.scep, () => new Date(Date.now() - agoMs)).issueChallenge({ profile: 'default', subject: subjectOf(cn), ttlMs: 60 * 60_000 })).password);
    const expired = await issueAt(2 * 60 * 60_000, 'late');
    assertBadRequest(await scepclientRun('expired', ['-challenge', expired, '-cn', 'late']), 'expired challenge');
    await assertIssued(0, 'expired challenge');
    // The same path with a challenge still inside its hour works: it is the expiry that refused.
    const fresh = await issueAt(30 * 60_000, 'in-time');
    const ok = await scepclientRun('in-time', ['-challenge', fresh, '-cn', 'in-time']);
    assert.equal(ok.r.status, 0, describeRun(ok.r));
    await assertIssued(1, 'challenge within its lifetime');
  });

  it('a CSR subject other than the one the challenge allows: badRequest', async () => {
    const password = await challenge('dev-a');
    assertBadRequest(await scepclientRun('subject', ['-challenge', password, '-cn', 'dev-b']), 'other subject');
    await assertIssued(0, 'other subject');
  });

  it('a CSR SAN other than the one the challenge allows, or a SAN the challenge does not give: badRequest', async () => {
    const cases = [
      { what: 'another SAN email', challengeSan: ['--san-email', 'alice@example.com'], csrSan: ['mallory@example.com'] },
      { what: 'a SAN email the challenge does not give', challengeSan: [], csrSan: ['alice@example.com'] },
      { what: 'no SAN when the challenge requires one', challengeSan: ['--san-email', 'alice@example.com'], csrSan: [] },
    ];
    for (const [i, c] of cases.entries()) {
      const cn = `san-${i}`;
      const device = await newDevice(cn);
      const request = pkcsReq(device, trusted, { challenge: await challenge(cn, c.challengeSan), sanEmails: c.csrSan });
      const { rep } = await exchange(serve.scepUrl(), request, trusted);
      assert.deepEqual({ status: rep.status, failInfo: rep.failInfo }, { status: 'FAILURE', failInfo: 'badRequest' }, c.what);
      await assertIssued(0, c.what);
    }
    // The control: the SAN the challenge allows is issued.
    const device = await newDevice('san-ok');
    const request = pkcsReq(device, trusted, { challenge: await challenge('san-ok', ['--san-email', 'alice@example.com']), sanEmails: ['alice@example.com'] });
    const { rep } = await exchange(serve.scepUrl(), request, trusted);
    assert.equal(rep.status, 'SUCCESS');
    assert.deepEqual(rep.certificates[0]!.emailAddresses, ['alice@example.com']);
    await assertIssued(1, 'allowed SAN');
  });

  it('an RSA-1024 key (scepclient -keySize 1024): badRequest', async () => {
    const password = await challenge('small');
    assertBadRequest(await scepclientRun('rsa1024', ['-challenge', password, '-cn', 'small', '-keySize', '1024']), 'RSA-1024');
    await assertIssued(0, 'RSA-1024');
  });

  it('garbage, truncated, empty and oversized PKIOperation bodies: HTTP 4xx, no crash; the intact request then succeeds', async () => {
    const device = await newDevice('bodies');
    const good = pkcsReq(device, trusted, { challenge: await challenge('bodies') });
    const url = serve.scepUrl();
    const post = (body: Uint8Array, type = 'application/x-pki-message') => fetch(`${url}?operation=PKIOperation`, { method: 'POST', headers: { 'content-type': type }, body: Buffer.from(body) });
    const bodies: [string, () => Promise<Response>][] = [
      ['random bytes', () => post(Buffer.from(Array.from({ length: 600 }, (_, i) => (i * 151 + 7) & 0xff)))],
      ['a DER SEQUENCE claiming 4 GB', () => post(Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x00]))],
      ['the request cut in half', () => post(good.der.subarray(0, good.der.length >> 1))],
      ['the request without its last octet', () => post(good.der.subarray(0, good.der.length - 1))],
      ['the request with trailing garbage', () => post(Buffer.concat([good.der, Buffer.from([0, 0, 0])]))],
      ['an empty POST', () => post(new Uint8Array(0))],
      ['no message on GET', () => fetch(`${url}?operation=PKIOperation`)],
      ['a GET message that is not base64', () => fetch(`${url}?operation=PKIOperation&message=%%%25%3C%3E`)],
      ['a GET message cut in half', () => fetch(`${url}?operation=PKIOperation&message=${encodeURIComponent(Buffer.from(good.der.subarray(0, good.der.length >> 1)).toString('base64'))}`)],
      ['a body over the size limit', () => post(new Uint8Array(300 * 1024))],
      ['a body of another media type', () => post(good.der, 'image/png')],
    ];
    for (const [what, send] of bodies) {
      const r = await send();
      const text = await r.text();
      assert.ok(r.status >= 400 && r.status < 500, `${what}: HTTP ${r.status} ${text.slice(0, 200)}`);
      assert.doesNotMatch(text, /internal error|\bat .+:\d+:\d+/, what);
      assert.ok(serve.alive(), `${what}: the server died\n${serve.output()}`);
    }
    const health = await fetch(`${serve.origin}/healthz`);
    assert.equal(health.status, 200);
    await assertIssued(0, 'bad bodies');
    // Nothing was half-stored: the challenge the damaged copies carried is still good.
    const { rep } = await exchange(url, good, trusted);
    assert.equal(rep.status, 'SUCCESS');
    await assertIssued(1, 'the intact request');
  });

  it('a PKIOperation body of an unsupported media type is 415 (problem+json)', async () => {
    const r = await fetch(`${serve.scepUrl()}?operation=PKIOperation`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: Buffer.from([0x30, 0x00]) });
    assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(r.status, 415, await r.text());
  });

  it('a request whose signature was damaged: a CertRep FAILURE badMessageCheck, nothing issued', async () => {
    const device = await newDevice('damaged');
    const request = pkcsReq(device, trusted, { challenge: await challenge('damaged') });
    // The last octet belongs to the SignerInfo's signature value (RFC 5652 §5.3).
    const damaged = Buffer.from(request.der);
    damaged[damaged.length - 1]! ^= 0x01;
    const http = await pkiOperation(serve.scepUrl(), damaged, 'POST');
    assert.equal(http.status, 200, http.body.toString('latin1'));
    const rep = parseCertRep(http.body, request, trusted);
    assert.deepEqual({ status: rep.status, failInfo: rep.failInfo }, { status: 'FAILURE', failInfo: 'badMessageCheck' });
    await assertIssued(0, 'damaged signature');
  });

  it('a replayed transactionID: the same request gets the same certificate, a different CSR under it is refused', async () => {
    const transactionId = 'E2E-REPLAY-0001';
    const first = pkcsReq(await newDevice('replay'), trusted, { challenge: await challenge('replay') }, { transactionId });
    const one = await exchange(serve.scepUrl(), first, trusted);
    assert.equal(one.rep.status, 'SUCCESS');
    await assertIssued(1, 'first request');

    // A retry of the very same message (RFC 8894 §3.2.1.1): the same certificate, nothing new.
    const again = await exchange(serve.scepUrl(), first, trusted);
    assert.equal(again.rep.status, 'SUCCESS');
    assert.equal(again.rep.certificates[0]!.serialHex, one.rep.certificates[0]!.serialHex);
    await assertIssued(0, 'retry');

    // Another key and CSR, with a valid challenge of its own, under the completed transactionID.
    const otherPassword = await challenge('replay-other');
    const other = pkcsReq(await newDevice('replay-other'), trusted, { challenge: otherPassword }, { transactionId });
    const refused = await exchange(serve.scepUrl(), other, trusted);
    assert.deepEqual({ status: refused.rep.status, failInfo: refused.rep.failInfo }, { status: 'FAILURE', failInfo: 'badRequest' });
    await assertIssued(0, 'different CSR under a used transactionID');
    const record = (await scepTransactions(ca.dataDir)).find((t) => t.transactionId === transactionId);
    assert.deepEqual(record && { outcome: record.outcome, serial: record.serialHex }, { outcome: 'success', serial: one.rep.certificates[0]!.serialHex }, 'the original record is left as it was');
  });

  it('four devices racing with one challenge: exactly one certificate', async () => {
    const password = await challenge('race');
    const devices = await Promise.all([0, 1, 2, 3].map(() => newDevice('race')));
    const reps = await Promise.all(devices.map(async (d) => (await exchange(serve.scepUrl(), pkcsReq(d, trusted, { challenge: password }), trusted)).rep));
    assert.deepEqual(reps.map((r) => r.status).sort(), ['FAILURE', 'FAILURE', 'FAILURE', 'SUCCESS']);
    assert.ok(reps.filter((r) => r.status === 'FAILURE').every((r) => r.failInfo === 'badRequest'));
    await assertIssued(1, 'the race');
  });

  it('a renewal signed with a certificate revoked by `keyfleet ca revoke`: badCertId, nothing issued', async () => {
    const device = await newDevice('revoked');
    const { rep } = await exchange(serve.scepUrl(), pkcsReq(device, trusted, { challenge: await challenge('revoked') }), trusted);
    assert.equal(rep.status, 'SUCCESS');
    const current = rep.certificates[0]!;
    await assertIssued(1, 'the enrolment');
    await keyfleetOk(['ca', 'revoke', '--data', ca.dataDir, '--serial', current.serialHex, '--reason', 'keyCompromise']);
    const csr = encodeCertificationRequest({ subject: encodeName(device.rdns) }, device.key);
    const renewal = buildRenewalReq(csr, { certificate: current, key: device.key }, trusted.slice(0, 1));
    const refused = await exchange(serve.scepUrl(), renewal, trusted);
    assert.deepEqual({ status: refused.rep.status, failInfo: refused.rep.failInfo }, { status: 'FAILURE', failInfo: 'badCertId' });
    await assertIssued(0, 'renewal with a revoked certificate');
  });

  it('our client rejects a CertRep that was tampered with or answers another request', async () => {
    const request = pkcsReq(await newDevice('tamper'), trusted, { challenge: await challenge('tamper') });
    const http = await pkiOperation(serve.scepUrl(), request.der, 'POST');
    assert.equal(http.status, 200);
    await assertIssued(1, 'the request itself');
    assert.equal(parseCertRep(http.body, request, trusted).status, 'SUCCESS');

    const flipped = Buffer.from(http.body);
    flipped[flipped.length - 1]! ^= 0x01; // the RA's signature value
    assert.throws(() => parseCertRep(flipped, request, trusted), { name: 'KeyfleetError', message: /signature does not verify/ });

    // A byte of the encrypted certificate changed: the signature over the content no longer matches.
    const msg = decodePkiMessage(http.body);
    const at = Buffer.from(http.body).indexOf(Buffer.from(msg.envelope!).subarray(-32));
    assert.ok(at > 0);
    const inEnvelope = Buffer.from(http.body);
    inEnvelope[at + 8]! ^= 0x80;
    assert.throws(() => parseCertRep(inEnvelope, request, trusted), { name: 'KeyfleetError', message: /signature does not verify/ });

    // A genuine CertRep, but for another request (its nonce and transactionID): not this request's answer.
    const otherRequest = pkcsReq(await newDevice('tamper'), trusted, { challenge: 'unused' });
    assert.throws(() => parseCertRep(http.body, otherRequest, trusted), { name: 'KeyfleetError', message: /transactionID|recipientNonce/ });

    // Signed by someone other than the RA from GetCACert.
    assert.throws(() => parseCertRep(http.body, request, trusted.slice(1)), { name: 'KeyfleetError', message: /not signed by the RA/ });
  });
});
