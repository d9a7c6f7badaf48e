/**
 * SignedData interop with NSS's cmsutil (Debian 12's NSS), both directions,
 * over a throw-away certificate database trusting the test root.
 * This NSS refuses to import Ed25519 keys and reports a ProcessingError on
 * Ed25519 signatures, so Ed25519 is not tested here.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OID } from '../../src/asn1/oids.ts';
import { decodeSignedData, signContent } from '../../src/smime/cms/signed-data.ts';
import { verifySignedData } from '../../src/smime/cms/verify.ts';
import { signerCapabilities, signerEncryptionKeyPreference } from '../../src/smime/cms/capabilities.ts';
import { describeRun, run, runOk } from '../support/exec.ts';
import type { EntityName } from '../support/pki.ts';
import { getFixture } from './support.ts';

const dir = mkdtempSync(join(tmpdir(), 'kf-nss-'));
const db = `sql:${dir}`;
const content = Buffer.from('Content-Type: text/plain\r\n\r\nInterop with NSS.\r\n');
const contentPath = join(dir, 'content.txt');
writeFileSync(contentPath, content);
let counter = 0;

before(async () => {
  const f = await getFixture();
  await runOk('certutil', ['-N', '-d', db, '--empty-password']);
  await runOk('certutil', ['-A', '-d', db, '-n', 'root', '-t', 'C,C,C', '-i', f.pki.root.certPath]);
  await runOk('certutil', ['-A', '-d', db, '-n', 'intermediate', '-t', ',,', '-i', f.pki.intermediate.certPath]);
  // The PKCS#12 friendly name (the entity name) becomes the NSS nickname.
  for (const name of ['alice', 'carol', 'dave'] as const) {
    await runOk('pk12util', ['-i', f.signer(name).entity.p12Path!, '-d', db, '-W', f.pki.p12Password]);
  }
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** cmsutil -D's status line for signer 0. */
async function nssVerify(der: Uint8Array, detached: boolean): Promise<string> {
  const sig = join(dir, `sig${counter++}.der`);
  writeFileSync(sig, der);
  const r = await run('cmsutil', ['-D', '-i', sig, '-d', db, '-h', '1', ...(detached ? ['-c', contentPath, '-n'] : [])]);
  assert.equal(r.status, 0, describeRun(r));
  const m = /signer0\.status=(\w+)/.exec(r.stdout.toString('latin1'));
  assert.ok(m, describeRun(r));
  if (!detached) assert.ok(r.stdout.includes(content), 'cmsutil writes the encapsulated content');
  return m[1]!;
}

const ours: readonly { name: EntityName; pss?: boolean; digest: 'sha256' | 'sha384' | 'sha512'; label: string }[] = [
  { name: 'alice', digest: 'sha256', label: 'RSA PKCS#1 v1.5 sha256' },
  { name: 'alice', digest: 'sha512', label: 'RSA PKCS#1 v1.5 sha512' },
  { name: 'alice-pss', pss: true, digest: 'sha256', label: 'RSASSA-PSS sha256' },
  { name: 'alice-pss', pss: true, digest: 'sha384', label: 'RSASSA-PSS sha384' },
  { name: 'carol', digest: 'sha256', label: 'ECDSA P-256 sha256' },
  { name: 'dave', digest: 'sha384', label: 'ECDSA P-384 sha384' },
];

for (const c of ours) {
  for (const detached of [true, false]) {
    test(`ours → cmsutil -D: ${c.label} ${detached ? 'detached' : 'encapsulated'}`, async () => {
      const f = await getFixture();
      const der = signContent(content, [f.spec(c.name, { digest: c.digest, ...(c.pss ? { pss: true } : {}) })], { detached });
      assert.equal(await nssVerify(der, detached), 'GoodSignature');
    });
  }
}

test('cmsutil -D reports DigestMismatch for our signature over a changed content (the check is real)', async () => {
  const f = await getFixture();
  const der = signContent(Buffer.concat([content, Buffer.from('x')]), [f.spec('alice')], { detached: true });
  assert.equal(await nssVerify(der, true), 'DigestMismatch');
});

for (const name of ['alice', 'carol', 'dave'] as const) {
  for (const hash of ['SHA256', 'SHA384', 'SHA512']) {
    for (const detached of [true, false]) {
      test(`cmsutil -S → ours: ${name} ${hash} ${detached ? 'detached' : 'encapsulated'}`, async () => {
        const f = await getFixture();
        const out = join(dir, `nsig${counter++}.der`);
        // -G signingTime, -P SMIMECapabilities, -Y the encryption key preference (RFC 8551's and Microsoft's attributes).
        const args = ['-S', '-N', name, '-H', hash, '-G', '-P', '-Y', name, '-i', contentPath, '-o', out, '-d', db];
        if (detached) args.push('-T');
        await runOk('cmsutil', args);
        const sd = decodeSignedData(readFileSync(out));
        const result = verifySignedData(sd, { trustAnchors: [f.root], ...(detached ? { detachedContent: content } : {}), senderAddress: `${name}@example.com` });
        assert.deepEqual(result.signers.map((s) => s.reasons), [[]]);
        assert.equal(result.signers[0]!.digestAlgorithm, hash.toLowerCase());
        const si = sd.signerInfos[0]!;
        assert.equal(signerEncryptionKeyPreference(si, sd.certificates)?.fingerprint256, f.signer(name).certificate.fingerprint256);
        assert.ok(signerCapabilities(si)?.some((cap) => cap.capabilityID === OID.aes256CBC));
        assert.ok(result.signers[0]!.signingTime instanceof Date);
      });
    }
  }
}
