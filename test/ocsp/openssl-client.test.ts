/**
 * The responder judged by `openssl ocsp`: requests made by openssl (with and
 * without nonce, SHA-1 and SHA-256 CertIDs), answered by createOcspResponder,
 * and checked by openssl: signature, responder authorisation, CertID,
 * status (good / revoked with reason and time / unknown) and nonce.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createOcspResponder, type OcspResponder } from '../../src/ca/ocsp.ts';
import { decodeOcspResponse } from '../../src/x509/ocsp-client.ts';
import type { Issued } from '../x509/pki.ts';
import { type OcspPki, buildOcspPki, openssl, said } from './support.ts';

let t: OcspPki;
let caSigned: OcspResponder;
let delegated: OcspResponder;
let counter = 0;

before(() => {
  t = buildOcspPki();
  caSigned = createOcspResponder({ signer: { certificate: t.ca.certificate, key: t.caKey }, caCertificates: [t.ca.certificate], lookup: t.lookupFor(t.ca) });
  delegated = createOcspResponder({
    signer: { certificate: t.responder.certificate, key: t.responderKey },
    caCertificates: [t.ca.certificate],
    lookup: t.lookupFor(t.ca),
  });
});
after(() => t.cleanup());

interface Asked {
  readonly reqPath: string;
  readonly respPath: string;
  readonly response: Uint8Array;
}

/** `openssl ocsp -reqout`, then our responder. */
async function ask(responder: OcspResponder, leaf: Issued, issuer: Issued, flags: readonly string[] = []): Promise<Asked> {
  const n = ++counter;
  const reqPath = `${t.pki.dir}/req${n}.der`;
  const r = await openssl(['ocsp', '-issuer', issuer.certPath, ...flags, '-cert', leaf.certPath, '-reqout', reqPath]);
  assert.equal(r.status, 0, said(r));
  const response = await responder.respond(readFileSync(reqPath));
  return { reqPath, respPath: t.write(`resp${n}.der`, response), response };
}

/** `openssl ocsp -reqin -respin`: verifies the signature and the nonce against the request. */
function checkAgainstRequest(a: Asked, issuer: Issued, extra: readonly string[] = []) {
  return openssl(['ocsp', '-reqin', a.reqPath, '-respin', a.respPath, '-issuer', issuer.certPath, '-CAfile', t.root.certPath, '-resp_text', ...extra]);
}

/** `openssl ocsp -respin -cert`: openssl finds the SingleResponse by CertID and prints the summary line. */
function summary(a: Asked, leaf: Issued, issuer: Issued, flags: readonly string[] = []) {
  return openssl(['ocsp', '-respin', a.respPath, '-issuer', issuer.certPath, ...flags, '-cert', leaf.certPath, '-no_nonce', '-CAfile', t.root.certPath]);
}

describe('responses signed by the CA', () => {
  test('good, with the nonce echoed', async () => {
    const a = await ask(caSigned, t.good, t.ca);
    const r = await checkAgainstRequest(a, t.ca);
    assert.equal(r.status, 0, said(r));
    assert.match(said(r), /Response verify OK/);
    assert.match(said(r), /Cert Status: good/);
    assert.match(said(r), /OCSP Nonce:/);
    assert.doesNotMatch(said(r), /WARNING|Nonce Verify error/);
    const s = await summary(a, t.good, t.ca);
    assert.equal(s.status, 0, said(s));
    assert.match(said(s), /: good\n/);
  });

  test('revoked, with reason and time as in the CA database', async () => {
    const a = await ask(caSigned, t.revoked, t.ca);
    const s = await summary(a, t.revoked, t.ca);
    assert.equal(s.status, 0, said(s));
    assert.match(said(s), /: revoked\n/);
    assert.match(said(s), /Reason: keyCompromise/);
    const index = readFileSync(`${t.ca.caDir}/index.txt`, 'latin1');
    const line = index.split('\n').find((l) => l.toLowerCase().includes(t.revoked.certificate.serialHex.replace(/^0+/, '')))!;
    const when = line.split('\t')[2]!.split(',')[0]!; // YYMMDDHHMMSSZ
    const printed = /Revocation Time: (.*)\n/.exec(said(s))![1]!;
    const expected = new Date(Date.UTC(2000 + Number(when.slice(0, 2)), Number(when.slice(2, 4)) - 1, Number(when.slice(4, 6)), Number(when.slice(6, 8)), Number(when.slice(8, 10)), Number(when.slice(10, 12))));
    assert.equal(new Date(printed).getTime(), expected.getTime(), printed);
  });

  test('revoked as superseded', async () => {
    const a = await ask(caSigned, t.superseded, t.ca);
    const s = await summary(a, t.superseded, t.ca);
    assert.equal(s.status, 0, said(s));
    assert.match(said(s), /: revoked\n[\s\S]*Reason: superseded/);
  });

  test('a serial the CA never issued is unknown', async () => {
    const n = ++counter;
    const reqPath = `${t.pki.dir}/req${n}.der`;
    const r = await openssl(['ocsp', '-issuer', t.ca.certPath, '-serial', '0x1234567890', '-reqout', reqPath]);
    assert.equal(r.status, 0, said(r));
    const respPath = t.write(`resp${n}.der`, await caSigned.respond(readFileSync(reqPath)));
    const s = await openssl(['ocsp', '-respin', respPath, '-issuer', t.ca.certPath, '-serial', '0x1234567890', '-no_nonce', '-CAfile', t.root.certPath]);
    assert.equal(s.status, 0, said(s));
    assert.match(said(s), /0x1234567890: unknown/);
  });

  test('SHA-256 CertIDs, without a nonce', async () => {
    const a = await ask(caSigned, t.good, t.ca, ['-sha256', '-no_nonce']);
    const r = await checkAgainstRequest(a, t.ca);
    assert.equal(r.status, 0, said(r));
    assert.match(said(r), /Hash Algorithm: sha256/);
    assert.doesNotMatch(said(r), /OCSP Nonce/);
    const s = await summary(a, t.good, t.ca, ['-sha256']);
    assert.equal(s.status, 0, said(s));
    assert.match(said(s), /: good\n/);
  });

  test('several certificates in one request, answered in order', async () => {
    const n = ++counter;
    const reqPath = `${t.pki.dir}/req${n}.der`;
    const r = await openssl(['ocsp', '-issuer', t.ca.certPath, '-cert', t.good.certPath, '-cert', t.revoked.certPath, '-reqout', reqPath]);
    assert.equal(r.status, 0, said(r));
    const respPath = t.write(`resp${n}.der`, await caSigned.respond(readFileSync(reqPath)));
    const v = await openssl(['ocsp', '-reqin', reqPath, '-respin', respPath, '-issuer', t.ca.certPath, '-CAfile', t.root.certPath, '-resp_text']);
    assert.equal(v.status, 0, said(v));
    assert.match(said(v), /Cert Status: good[\s\S]*Cert Status: revoked/);
  });

  test('a response to another request fails openssl\'s nonce check', async () => {
    const a = await ask(caSigned, t.good, t.ca);
    const b = await ask(caSigned, t.good, t.ca);
    const r = await checkAgainstRequest({ ...a, respPath: b.respPath }, t.ca);
    assert.notEqual(r.status, 0);
    assert.match(said(r), /Nonce Verify error/);
  });

  test('a tampered response fails verification', async () => {
    const a = await ask(caSigned, t.good, t.ca);
    const bad = Buffer.from(a.response);
    bad[bad.length - 1]! ^= 1;
    const r = await checkAgainstRequest({ ...a, respPath: t.write(`bad${counter}.der`, bad) }, t.ca);
    assert.notEqual(r.status, 0);
    assert.match(said(r), /Response Verify Failure/);
  });
});

describe('responses signed by a delegated responder', () => {
  test('openssl accepts the responder certificate included in the response', async () => {
    const a = await ask(delegated, t.revoked, t.ca);
    const basic = decodeOcspResponse(a.response).basic!;
    assert.deepEqual(
      basic.certs.map((c) => c.fingerprint256),
      [t.responder.certificate.fingerprint256],
    );
    const r = await checkAgainstRequest(a, t.ca);
    assert.equal(r.status, 0, said(r));
    assert.match(said(r), /Response verify OK/);
    assert.match(said(r), /Cert Status: revoked/);
    assert.match(said(r), /Revocation Reason: keyCompromise/);
  });

  test('a look-alike responder without id-kp-OCSPSigning is refused by openssl', async () => {
    const impostor = createOcspResponder({ signer: { certificate: t.impostor.certificate, key: t.impostorKey }, caCertificates: [t.ca.certificate], lookup: t.lookupFor(t.ca) });
    const a = await ask(impostor, t.good, t.ca);
    const r = await checkAgainstRequest(a, t.ca);
    assert.notEqual(r.status, 0, said(r));
    assert.match(said(r), /Response Verify Failure/);
  });
});

describe('ECDSA', () => {
  test('an EC P-256 CA signs with ecdsa-with-SHA256', async () => {
    const ec = createOcspResponder({ signer: { certificate: t.ecCa.certificate, key: t.ecCaKey }, caCertificates: [t.ecCa.certificate], lookup: t.lookupFor(t.ecCa) });
    const a = await ask(ec, t.ecLeaf, t.ecCa);
    const r = await checkAgainstRequest(a, t.ecCa);
    assert.equal(r.status, 0, said(r));
    assert.match(said(r), /Signature Algorithm: ecdsa-with-SHA256/);
    assert.match(said(r), /Cert Status: good/);
  });

  test('a sign function (key held elsewhere) instead of a KeyObject', async () => {
    const { sign } = await import('node:crypto');
    const ec = createOcspResponder({
      signer: { certificate: t.ecCa.certificate, sign: async (data) => sign('sha256', data, t.ecCaKey) },
      caCertificates: [t.ecCa.certificate],
      lookup: t.lookupFor(t.ecCa),
    });
    const a = await ask(ec, t.ecLeaf, t.ecCa);
    const r = await checkAgainstRequest(a, t.ecCa);
    assert.equal(r.status, 0, said(r));
    assert.match(said(r), /Response verify OK/);
  });
});

test('a certificate of a CA the responder does not serve is unknown', async () => {
  const a = await ask(caSigned, t.foreignLeaf, t.foreignCa);
  const basic = decodeOcspResponse(a.response).basic!;
  assert.equal(basic.responses[0]!.status, 'unknown');
  // The CA signed it, so openssl can verify it with the CA as a trusted responder (-VAfile).
  const r = await openssl(['ocsp', '-reqin', a.reqPath, '-respin', a.respPath, '-VAfile', t.ca.certPath, '-resp_text']);
  assert.equal(r.status, 0, said(r));
  assert.match(said(r), /Cert Status: unknown/);
});
