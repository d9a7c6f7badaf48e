/**
 * SignedData interop with the OpenSSL 3.0 CLI, both directions. OpenSSL 3.0
 * cannot sign or verify Ed25519 CMS ("no default digest" / "invalid digest"),
 * so Ed25519 interop is covered by the RFC 9216 vectors (vectors.test.ts).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OID } from '../../src/asn1/oids.ts';
import { decodeSignedData, signContent } from '../../src/smime/cms/signed-data.ts';
import { verifySignedData } from '../../src/smime/cms/verify.ts';
import { describeRun, run, runOk } from '../support/exec.ts';
import type { EntityName } from '../support/pki.ts';
import { getFixture } from './support.ts';

const dir = mkdtempSync(join(tmpdir(), 'kf-cms-openssl-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
function file(data: Uint8Array): string {
  const p = join(dir, `f${counter++}`);
  writeFileSync(p, data);
  return p;
}

const content = Buffer.from('Content-Type: text/plain; charset=utf-8\r\n\r\nInterop with OpenSSL.\r\n');
const signers: readonly { name: EntityName; pss?: boolean; label: string }[] = [
  { name: 'alice', label: 'RSA PKCS#1 v1.5' },
  { name: 'alice-pss', pss: true, label: 'RSASSA-PSS' },
  { name: 'carol', label: 'ECDSA P-256' },
  { name: 'dave', label: 'ECDSA P-384' },
];

async function opensslVerify(der: Uint8Array, detachedContent?: Uint8Array): Promise<Buffer> {
  const f = await getFixture();
  const args = ['cms', '-verify', '-binary', '-inform', 'DER', '-in', file(der), '-CAfile', f.pki.root.certPath, '-purpose', 'smimesign'];
  if (detachedContent) args.push('-content', file(detachedContent));
  const r = await run('openssl', args);
  assert.equal(r.status, 0, describeRun(r));
  assert.match(r.stderr, /Verification successful/);
  return r.stdout;
}

async function opensslSign(name: EntityName, options: { detached: boolean; md?: string; pss?: boolean; extra?: string[]; data?: Uint8Array }): Promise<Buffer> {
  const f = await getFixture();
  const e = f.signer(name).entity;
  const args = ['cms', '-sign', '-binary', '-outform', 'DER', '-in', file(options.data ?? content), '-signer', e.certPath, '-inkey', e.keyPath];
  if (e.chainPath) args.push('-certfile', e.chainPath);
  if (!options.detached) args.push('-nodetach');
  if (options.md) args.push('-md', options.md);
  if (options.pss) args.push('-keyopt', 'rsa_padding_mode:pss');
  args.push(...(options.extra ?? []));
  return (await runOk('openssl', args)).stdout;
}

for (const s of signers) {
  for (const digest of ['sha256', 'sha384', 'sha512'] as const) {
    for (const detached of [true, false]) {
      const mode = detached ? 'detached' : 'encapsulated';
      test(`ours → openssl: ${s.label} ${digest} ${mode}`, async () => {
        const f = await getFixture();
        const der = signContent(content, [f.spec(s.name, { digest, ...(s.pss ? { pss: true } : {}) })], { detached });
        const out = await opensslVerify(der, detached ? content : undefined);
        assert.deepEqual(out, content);
      });

      test(`openssl → ours: ${s.label} ${digest} ${mode}`, async () => {
        const f = await getFixture();
        const der = await opensslSign(s.name, { detached, md: digest, ...(s.pss ? { pss: true } : {}) });
        const sd = decodeSignedData(der);
        const si = sd.signerInfos[0]!;
        // OpenSSL names the key type, not the scheme, for PKCS#1 v1.5 and (with ecdsa-with-SHAx) for EC.
        if (s.name === 'alice') assert.equal(si.signatureAlgorithm.algorithm, OID.rsaEncryption);
        if (s.pss) assert.equal(si.signatureAlgorithm.algorithm, OID.rsassaPss);
        const result = verifySignedData(sd, { trustAnchors: [f.root], ...(detached ? { detachedContent: content } : {}), senderAddress: f.signer(s.name).entity.email! });
        assert.deepEqual(result.signers[0]?.reasons, []);
        assert.equal(result.valid, true);
        assert.equal(result.signers[0]!.digestAlgorithm, digest);
        assert.ok(result.signers[0]!.signingTime instanceof Date);
      });
    }
  }
}

test('ours → openssl: several signers and a subjectKeyIdentifier signer', async () => {
  const f = await getFixture();
  const der = signContent(content, [f.spec('alice'), f.spec('carol', { identifier: 'subjectKeyIdentifier', digest: 'sha384' }), f.spec('alice-pss', { pss: true })], { detached: false });
  assert.deepEqual(await opensslVerify(der), content);
});

test('ours → openssl: openssl reads our signed attributes (capabilities, key preferences, signing time)', async () => {
  const f = await getFixture();
  const der = signContent(content, [f.spec('alice', { signingTime: new Date('2030-01-02T03:04:05Z') })], { detached: true });
  const printed = (await runOk('openssl', ['cms', '-cmsout', '-print', '-inform', 'DER', '-in', file(der)])).stdout.toString('latin1');
  assert.match(printed, /S\/MIME Capabilities/);
  assert.match(printed, /aes-256-gcm/i);
  assert.match(printed, /UTCTIME:Jan  2 03:04:05 2030 GMT/);
  assert.match(printed, /1\.2\.840\.113549\.1\.9\.16\.2\.11|Encryption Key Preference/i);
  assert.match(printed, /1\.3\.6\.1\.4\.1\.311\.16\.4/);
});

test('openssl → ours: -stream -indef BER (indefinite lengths, constructed OCTET STRING eContent)', async () => {
  const f = await getFixture();
  const data = randomBytes(10_000);
  const der = await opensslSign('alice', { detached: false, data, extra: ['-stream', '-indef'] });
  const sd = decodeSignedData(der);
  assert.ok(sd.content!.length > 1, 'content arrives in several segments');
  assert.deepEqual(Buffer.concat(sd.content!), data);
  assert.equal(verifySignedData(sd, { trustAnchors: [f.root] }).valid, true);
  // And a tampered segment is noticed.
  const tampered = Buffer.from(der);
  const at = tampered.indexOf(data.subarray(5000, 5016));
  tampered[at]! ^= 1;
  assert.deepEqual(verifySignedData(decodeSignedData(tampered), { trustAnchors: [f.root] }).signers[0]!.reasons, ['digest-mismatch']);
});

test('openssl → ours: several signers', async () => {
  const f = await getFixture();
  const [a, c] = [f.signer('alice').entity, f.signer('dave').entity];
  const args = ['cms', '-sign', '-binary', '-outform', 'DER', '-in', file(content), '-signer', a.certPath, '-inkey', a.keyPath, '-signer', c.certPath, '-inkey', c.keyPath, '-certfile', f.pki.intermediate.certPath];
  const sd = decodeSignedData((await runOk('openssl', args)).stdout);
  const result = verifySignedData(sd, { trustAnchors: [f.root], detachedContent: content });
  assert.equal(result.signers.length, 2);
  assert.equal(result.valid, true);
});

test('openssl → ours: -keyid (subjectKeyIdentifier signer)', async () => {
  const f = await getFixture();
  const sd = decodeSignedData(await opensslSign('alice', { detached: true, extra: ['-keyid'] }));
  assert.ok(sd.signerInfos[0]!.sid.subjectKeyIdentifier);
  assert.equal(verifySignedData(sd, { trustAnchors: [f.root], detachedContent: content }).valid, true);
});

test('openssl → ours: -noattr (signature directly over the content, RFC 5652 §5.4)', async () => {
  const f = await getFixture();
  const encapsulated = decodeSignedData(await opensslSign('alice', { detached: false, extra: ['-noattr'] }));
  assert.equal(encapsulated.signerInfos[0]!.signedAttrs, undefined);
  assert.equal(verifySignedData(encapsulated, { trustAnchors: [f.root] }).valid, true);
  const detached = decodeSignedData(await opensslSign('carol', { detached: true, extra: ['-noattr'] }));
  assert.equal(verifySignedData(detached, { trustAnchors: [f.root], detachedContent: content }).valid, true);
  const wrong = Buffer.from(content);
  wrong[0]! ^= 1;
  // Without a messageDigest attribute a changed content can only show as a bad signature.
  assert.deepEqual(verifySignedData(detached, { trustAnchors: [f.root], detachedContent: wrong }).signers[0]!.reasons, ['bad-signature']);
});

test('openssl → ours: -nocerts verifies with the signer certificate supplied, else signer-certificate-missing', async () => {
  const f = await getFixture();
  const sd = decodeSignedData(await opensslSign('carol', { detached: true, extra: ['-nocerts'] }));
  assert.ok(!sd.certificates.some((c) => c.fingerprint256 === f.signer('carol').certificate.fingerprint256));
  const missing = verifySignedData(sd, { trustAnchors: [f.root], detachedContent: content });
  assert.deepEqual(missing.signers[0]!.reasons, ['signer-certificate-missing']);
  assert.equal(missing.valid, false);
  const supplied = verifySignedData(sd, { trustAnchors: [f.root], detachedContent: content, extraCertificates: [f.signer('carol').certificate, f.intermediate] });
  assert.equal(supplied.valid, true);
});

test('openssl → ours: SHA-1 is weak-algorithm, and the signature is still checked', async () => {
  const f = await getFixture();
  const sd = decodeSignedData(await opensslSign('alice', { detached: true, md: 'sha1' }));
  assert.deepEqual(verifySignedData(sd, { trustAnchors: [f.root], detachedContent: content }).signers[0]!.reasons, ['weak-algorithm']);
  const wrong = Buffer.concat([content, Buffer.from('x')]);
  assert.deepEqual(new Set(verifySignedData(sd, { trustAnchors: [f.root], detachedContent: wrong }).signers[0]!.reasons), new Set(['weak-algorithm', 'digest-mismatch']));
});

test('openssl → ours: capabilities announced by OpenSSL are readable', async () => {
  const { signerCapabilities } = await import('../../src/smime/cms/capabilities.ts');
  const sd = decodeSignedData(await opensslSign('alice', { detached: true }));
  const caps = signerCapabilities(sd.signerInfos[0]!)!;
  assert.equal(caps[0]!.capabilityID, OID.aes256CBC);
  const rc2 = caps.find((c) => c.capabilityID === OID.rc2CBC && c.parameters !== undefined);
  assert.ok(rc2, 'RC2 with its key-size parameter');
});

test('ours → openssl: a 1 MB content, detached and encapsulated', async () => {
  const f = await getFixture();
  const data = randomBytes(1 << 20);
  await opensslVerify(signContent(data, [f.spec('dave')], { detached: true }), data);
  assert.deepEqual(await opensslVerify(signContent([data.subarray(0, 1000), data.subarray(1000)], [f.spec('alice')], { detached: false })), data);
});
