/**
 * Issue 3, "Tests": CRL and OCSP agree after revocations, with openssl as
 * the judge. Certificates are issued and revoked with the `keyfleet ca`
 * commands while `keyfleet serve` runs on the same --data; then, for every
 * certificate:
 *
 * - `openssl ocsp -url …/ocsp` (POST, with a nonce) says good or revoked
 *   with the reason, and verifies the response against the root;
 * - the same request over GET (RFC 6960 Appendix A.1) with fetch(), judged
 *   by `openssl ocsp -respin`;
 * - `openssl verify -crl_check` with the CRL served at /crl/issuing.crl;
 * - an unknown serial is "unknown".
 *
 * The CA here is P-256, so the CRL and OCSP signatures are ECDSA (the other
 * e2e files use the default RSA CA).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { describeRun, inPool, run, runOk } from '../support/exec.ts';
import { type CaFiles, type Served, assertOneLine, caList, certificateIn, initCa, keyfleet, keyfleetOk, opensslVerify, startServe, tempDir } from './support.ts';

type Reason = 'keyCompromise' | 'superseded' | 'cessationOfOperation' | 'affiliationChanged';

interface Holder {
  readonly name: string;
  readonly template: 'smimeSigning' | 'smimeEncryption' | 'smimeDual';
  readonly keyType: 'p-256' | 'rsa-2048';
  /** Revoked in the first round. */
  readonly reason?: Reason;
  certPath: string;
  serialHex: string;
}

/** OpenSSL's smimeencrypt wants keyEncipherment, so an EC encryption certificate (keyAgreement) is checked without a purpose. */
function purposeOf(h: Holder): 'smimesign' | 'smimeencrypt' | 'none' {
  if (h.template !== 'smimeEncryption') return 'smimesign';
  return h.keyType.startsWith('rsa') ? 'smimeencrypt' : 'none';
}

/** How `openssl crl -text` spells the reasons. */
const crlTextReason: Record<Reason, string> = {
  keyCompromise: 'Key Compromise',
  superseded: 'Superseded',
  cessationOfOperation: 'Cessation Of Operation',
  affiliationChanged: 'Affiliation Changed',
};

describe('revocation: CRL and OCSP from keyfleet serve, judged by openssl', { timeout: 90_000 }, () => {
  const tmp = tempDir('revocation');
  let ca: CaFiles;
  let serve: Served;
  const holders: Holder[] = [
    { name: 'alice', template: 'smimeSigning', keyType: 'p-256', certPath: '', serialHex: '' },
    { name: 'bob', template: 'smimeSigning', keyType: 'p-256', reason: 'keyCompromise', certPath: '', serialHex: '' },
    { name: 'carol', template: 'smimeDual', keyType: 'rsa-2048', reason: 'superseded', certPath: '', serialHex: '' },
    { name: 'dave', template: 'smimeEncryption', keyType: 'p-256', reason: 'cessationOfOperation', certPath: '', serialHex: '' },
    { name: 'erin', template: 'smimeEncryption', keyType: 'rsa-2048', certPath: '', serialHex: '' },
  ];
  /** What each certificate's status should be now. */
  const expected = new Map<string, { status: 'good' } | { status: 'revoked'; reason: Reason }>();

  before(async () => {
    ca = await initCa(tmp.path, ['--key-type', 'p-256']);
    serve = await startServe(ca.dataDir);
    await inPool(holders, 2, async (h) => {
      h.certPath = join(tmp.path, `${h.name}.pem`);
      await keyfleetOk(['ca', 'issue', '--data', ca.dataDir, '--email', `${h.name}@example.com`, '--template', h.template, '--key-type', h.keyType, '--key-out', join(tmp.path, `${h.name}.key`), '--out', h.certPath]);
      h.serialHex = certificateIn(h.certPath).serialHex;
      expected.set(h.name, { status: 'good' });
    });
  });
  after(async () => {
    const exit = await serve?.stop();
    tmp.cleanup();
    assert.deepEqual(exit, { status: 0, signal: null }, serve?.output());
  });

  /** `openssl ocsp` POSTs to the server (with a nonce) and prints each certificate's status. */
  async function ocspPost(certs: readonly Holder[]): Promise<string> {
    const r = await run('openssl', ['ocsp', '-url', `${serve.origin}/ocsp`, '-issuer', ca.issuingPem, '-CAfile', ca.rootPem, ...certs.flatMap((h) => ['-cert', h.certPath])]);
    assert.equal(r.status, 0, describeRun(r));
    assert.match(r.stderr, /Response verify OK/, describeRun(r));
    assert.doesNotMatch(r.stderr + r.stdout.toString(), /WARNING|nonce/i, describeRun(r));
    return r.stdout.toString();
  }

  /** The status block openssl prints for one certificate. */
  function statusIn(output: string, h: Holder): { status: string; reason: string | undefined } {
    const start = output.indexOf(`${h.certPath}: `);
    assert.ok(start >= 0, `${h.name} missing from:\n${output}`);
    const block = output.slice(start + h.certPath.length + 2).split(/\n(?=\S)/)[0]!;
    return { status: block.split('\n')[0]!.trim(), reason: /Reason: (\S+)/.exec(block)?.[1] };
  }

  function assertOcspAgrees(output: string, what: string, which: readonly Holder[] = holders): void {
    for (const h of which) {
      const want = expected.get(h.name)!;
      const got = statusIn(output, h);
      assert.deepEqual(got, { status: want.status, reason: want.status === 'revoked' ? want.reason : undefined }, `${what}: ${h.name}\n${output}`);
    }
  }

  async function fetchCrlPem(name: string): Promise<string> {
    const r = await fetch(`${serve.origin}/crl/issuing.crl`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/pkix-crl');
    const derPath = join(tmp.path, `${name}.crl`);
    writeFileSync(derPath, Buffer.from(await r.arrayBuffer()));
    const pemPath = join(tmp.path, `${name}.crl.pem`);
    await runOk('openssl', ['crl', '-inform', 'DER', '-in', derPath, '-out', pemPath]);
    // The CRL is signed by the issuing CA, which chains to the root.
    const v = await run('openssl', ['crl', '-in', pemPath, '-noout', '-CAfile', ca.chainPem]);
    assert.match(v.stderr + v.stdout.toString(), /verify OK/, describeRun(v));
    return pemPath;
  }

  async function assertCrlAgrees(crlPem: string, what: string): Promise<void> {
    const text = (await runOk('openssl', ['crl', '-in', crlPem, '-noout', '-text'])).stdout.toString();
    for (const h of holders) {
      const want = expected.get(h.name)!;
      const v = await opensslVerify(ca, h.certPath, purposeOf(h), ['-crl_check', '-CRLfile', crlPem]);
      const entry = new RegExp(`Serial Number: ${h.serialHex}\\s+Revocation Date: [^\\n]+\\s+CRL entry extensions:\\s+X509v3 CRL Reason Code:\\s+([^\\n]+)`, 'i').exec(text);
      if (want.status === 'good') {
        assert.equal(v.status, 0, `${what}: ${h.name} should verify\n${describeRun(v)}`);
        assert.equal(entry, null, `${what}: ${h.name} is on the CRL`);
      } else {
        assert.notEqual(v.status, 0, `${what}: ${h.name} is revoked`);
        assert.match(v.stdout.toString() + v.stderr, /certificate revoked/, `${what}: ${h.name}\n${describeRun(v)}`);
        assert.equal(entry?.[1]?.trim(), crlTextReason[want.reason], `${what}: ${h.name}'s CRL reason\n${text}`);
      }
    }
  }

  it('before any revocation every certificate verifies and OCSP says good', async () => {
    for (const h of holders) {
      const v = await opensslVerify(ca, h.certPath, purposeOf(h));
      assert.equal(v.status, 0, describeRun(v));
    }
    assertOcspAgrees(await ocspPost(holders), 'OCSP before revocation');
  });

  it('ca revoke with reasons; ca list shows them; revoking again is harmless; an unknown serial is one readable line', async () => {
    for (const h of holders) {
      if (!h.reason) continue;
      const out = (await keyfleetOk(['ca', 'revoke', '--data', ca.dataDir, '--serial', h.serialHex, '--reason', h.reason])).toString();
      assert.match(out, new RegExp(`^revoked ${h.serialHex} \\(${h.reason}\\); CRL #\\d+ published`));
      expected.set(h.name, { status: 'revoked', reason: h.reason });
    }
    const again = (await keyfleetOk(['ca', 'revoke', '--data', ca.dataDir, '--serial', holders[1]!.serialHex, '--reason', 'superseded'])).toString();
    assert.match(again, /already revoked/);
    assertOneLine(await keyfleet(['ca', 'revoke', '--data', ca.dataDir, '--serial', '0123456789abcdef', '--reason', 'keyCompromise']), 1, 'revoke an unknown serial');

    const revoked = (await caList(ca.dataDir)).filter((c) => c.status === 'revoked').map((c) => c.serialHex);
    assert.deepEqual(revoked.sort(), holders.filter((h) => h.reason).map((h) => h.serialHex).sort());
  });

  it('openssl ocsp (POST, nonce) says good or revoked with the reason, for each certificate and for all in one request', async () => {
    for (const h of holders) assertOcspAgrees(await ocspPost([h]), `OCSP for ${h.name}`, [h]);
    assertOcspAgrees(await ocspPost(holders), 'OCSP for all five');
  });

  it('openssl verify -crl_check with the served CRL agrees, reasons included', async () => {
    await assertCrlAgrees(await fetchCrlPem('round1'), 'CRL after the first revocations');
  });

  it('OCSP over GET (fetch) agrees', async () => {
    for (const h of holders) {
      const reqPath = join(tmp.path, `${h.name}.ocsp-req`);
      await runOk('openssl', ['ocsp', '-issuer', ca.issuingPem, '-cert', h.certPath, '-no_nonce', '-reqout', reqPath]);
      const b64 = readFileSync(reqPath).toString('base64');
      const r = await fetch(`${serve.origin}/ocsp/${encodeURIComponent(b64)}`);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-type'), 'application/ocsp-response');
      const respPath = join(tmp.path, `${h.name}.ocsp-resp`);
      writeFileSync(respPath, Buffer.from(await r.arrayBuffer()));
      const judged = await run('openssl', ['ocsp', '-respin', respPath, '-reqin', reqPath, '-issuer', ca.issuingPem, '-CAfile', ca.rootPem, '-cert', h.certPath]);
      assert.equal(judged.status, 0, describeRun(judged));
      assert.match(judged.stderr, /Response verify OK/, describeRun(judged));
      const want = expected.get(h.name)!;
      assert.deepEqual(statusIn(judged.stdout.toString(), h), { status: want.status, reason: want.status === 'revoked' ? want.reason : undefined }, `GET OCSP for ${h.name}`);
    }
  });

  it('an unknown serial is "unknown"', async () => {
    const r = await run('openssl', ['ocsp', '-url', `${serve.origin}/ocsp`, '-issuer', ca.issuingPem, '-CAfile', ca.rootPem, '-serial', '0x7E57ABCDEF0123456789']);
    assert.equal(r.status, 0, describeRun(r));
    assert.match(r.stderr, /Response verify OK/);
    assert.match(r.stdout.toString(), /^0x7E57ABCDEF0123456789: unknown$/m, describeRun(r));
  });

  it('a revocation while serving: the served CRL is regenerated (higher CRL number) and OCSP follows at once', async () => {
    const before = await fetchCrlPem('before');
    const crlNumber = async (p: string) => Number(/X509v3 CRL Number:\s*\n\s*(\d+)/.exec((await runOk('openssl', ['crl', '-in', p, '-noout', '-text'])).stdout.toString())?.[1]);
    const n0 = await crlNumber(before);
    const erin = holders.find((h) => h.name === 'erin')!;
    await keyfleetOk(['ca', 'revoke', '--data', ca.dataDir, '--serial', erin.serialHex, '--reason', 'affiliationChanged']);
    expected.set('erin', { status: 'revoked', reason: 'affiliationChanged' });
    const afterPem = await fetchCrlPem('after');
    assert.ok((await crlNumber(afterPem)) > n0, 'a new CRL number');
    await assertCrlAgrees(afterPem, 'CRL after erin');
    assertOcspAgrees(await ocspPost(holders), 'OCSP after erin');
  });
});
