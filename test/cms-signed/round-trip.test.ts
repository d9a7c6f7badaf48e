import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { OID } from '../../src/asn1/oids.ts';
import { children, parse, raw } from '../../src/asn1/reader.ts';
import { compareBytes } from '../../src/asn1/writer.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { decodeSignedData, signContent } from '../../src/smime/cms/signed-data.ts';
import { verifySignedData } from '../../src/smime/cms/verify.ts';
import { defaultCapabilities, signerCapabilities, signerEncryptionKeyPreference } from '../../src/smime/cms/capabilities.ts';
import type { EntityName } from '../support/pki.ts';
import { getFixture } from './support.ts';

const content = Buffer.from('Content-Type: text/plain\r\n\r\nHello, S/MIME.\r\n');
const signingTime = new Date('2026-03-01T12:34:56Z');

const algorithms: readonly { name: EntityName; pss?: boolean; label: string }[] = [
  { name: 'alice', label: 'RSA PKCS#1 v1.5' },
  { name: 'alice-pss', pss: true, label: 'RSASSA-PSS' },
  { name: 'carol', label: 'ECDSA P-256' },
  { name: 'dave', label: 'ECDSA P-384' },
  { name: 'erin', label: 'Ed25519' },
];

for (const alg of algorithms) {
  for (const digest of ['sha256', 'sha384', 'sha512'] as const) {
    for (const detached of [true, false]) {
      test(`${alg.label} ${digest} ${detached ? 'detached' : 'encapsulated'}: signs and verifies`, async () => {
        const f = await getFixture();
        const spec = f.spec(alg.name, { digest, signingTime, ...(alg.pss ? { pss: true } : {}) });
        const sd = decodeSignedData(signContent(content, [spec], { detached }));
        assert.equal(sd.version, 1);
        assert.equal(sd.contentType, OID.data);
        if (detached) assert.equal(sd.content, undefined);
        else assert.deepEqual(Buffer.concat(sd.content!), content);
        const result = verifySignedData(sd, { trustAnchors: [f.root], ...(detached ? { detachedContent: content } : {}), senderAddress: f.signer(alg.name).entity.email! });
        assert.deepEqual(result.signers[0]?.reasons, []);
        assert.equal(result.valid, true);
        const s = result.signers[0]!;
        assert.equal(s.certificate?.fingerprint256, spec.certificate.fingerprint256);
        assert.deepEqual(s.emailAddresses, f.signer(alg.name).entity.emails);
        assert.deepEqual(s.signingTime, signingTime);
        // RFC 8419 §3: Ed25519 with signed attributes always digests with SHA-512.
        assert.equal(s.digestAlgorithm, alg.name === 'erin' ? 'sha512' : digest);
        assert.deepEqual(
          s.chain.map((c) => c.certificate.fingerprint256),
          [spec.certificate, f.intermediate, f.root].map((c) => c.fingerprint256),
        );
      });
    }
  }
}

test('signed attributes: DER-sorted SET with contentType, messageDigest, signingTime, capabilities and both key preferences', async () => {
  const f = await getFixture();
  const sd = decodeSignedData(signContent(content, [f.spec('alice', { signingTime })], { detached: true }));
  const si = sd.signerInfos[0]!;
  assert.equal(si.version, 1);
  assert.ok(si.sid.issuerAndSerialNumber);
  const attrs = si.signedAttrs!;
  assert.equal(raw(attrs.tlv)[0], 0xa0, 'stored as [0] IMPLICIT');
  const encodings = children(attrs.tlv).map(raw);
  assert.deepEqual(encodings, [...encodings].sort(compareBytes), 'SET OF in DER order (X.690 §11.6)');
  assert.deepEqual(new Set(attrs.attributes.map((a) => a.attrType)), new Set([OID.contentType, OID.messageDigest, OID.signingTime, OID.smimeCapabilities, OID.smimeEncryptionKeyPreference, OID.msOutlookEncryptionKeyPreference]));
  assert.equal(attrs.contentType, OID.data);
  assert.deepEqual(attrs.signingTime, signingTime);
  assert.deepEqual(signerCapabilities(si), defaultCapabilities);
  assert.deepEqual(
    signerCapabilities(si)!.map((c) => c.capabilityID),
    [OID.aes256GCM, OID.aes128GCM, OID.aes256CBC, OID.aes192CBC, OID.aes128CBC],
  );
  assert.equal(signerEncryptionKeyPreference(si, sd.certificates)?.fingerprint256, f.signer('alice').certificate.fingerprint256);
  // Microsoft's attribute carries the same IssuerAndSerialNumber, RFC 8551's the [0] IMPLICIT form of it.
  const rfc = attrs.attributes.find((a) => a.attrType === OID.smimeEncryptionKeyPreference)!.attrValues[0]!;
  const ms = attrs.attributes.find((a) => a.attrType === OID.msOutlookEncryptionKeyPreference)!.attrValues[0]!;
  assert.equal(raw(rfc)[0], 0xa0);
  assert.deepEqual(raw(rfc).subarray(1), raw(ms).subarray(1));
});

test('the encryption certificate announced can differ from the signing certificate', async () => {
  const f = await getFixture();
  const bob = f.signer('bob-3').certificate;
  const sd = decodeSignedData(signContent(content, [f.spec('alice', { encryptionCertificate: bob, capabilities: [{ capabilityID: OID.aes128CBC }] })], { detached: true }));
  const si = sd.signerInfos[0]!;
  assert.ok(sd.certificates.some((c) => c.fingerprint256 === bob.fingerprint256), 'the announced certificate travels with the message');
  assert.equal(signerEncryptionKeyPreference(si, sd.certificates)?.fingerprint256, bob.fingerprint256);
  assert.equal(signerEncryptionKeyPreference(si, [f.signer('alice').certificate]), undefined, 'not at hand: undefined');
  assert.deepEqual(signerCapabilities(si), [{ capabilityID: OID.aes128CBC }]);
});

test('several signers: one digest per algorithm, certificates once each, every signer verified', async () => {
  const f = await getFixture();
  const specs = [f.spec('alice', { digest: 'sha256' }), f.spec('carol', { digest: 'sha384' }), f.spec('erin'), f.spec('alice-pss', { pss: true, digest: 'sha256' })];
  const sd = decodeSignedData(signContent(content, specs, { detached: false }));
  assert.deepEqual(new Set(sd.digestAlgorithms), new Set([OID.sha256, OID.sha384, OID.sha512]));
  assert.equal(sd.digestAlgorithms.length, 3);
  assert.equal(sd.certificates.length, 5, 'four signers and one shared intermediate');
  assert.equal(new Set(sd.certificates.map((c) => c.fingerprint256)).size, 5);
  const result = verifySignedData(sd, { trustAnchors: [f.root] });
  assert.equal(result.signers.length, 4);
  assert.deepEqual(result.signers.map((s) => s.reasons), [[], [], [], []]);
  assert.equal(result.valid, true);
});

test('subjectKeyIdentifier signer: SignerInfo and SignedData version 3 (RFC 5652 §5.1, §5.3)', async () => {
  const f = await getFixture();
  const sd = decodeSignedData(signContent(content, [f.spec('carol', { identifier: 'subjectKeyIdentifier' })], { detached: true }));
  assert.equal(sd.version, 3);
  assert.equal(sd.signerInfos[0]!.version, 3);
  assert.deepEqual(Buffer.from(sd.signerInfos[0]!.sid.subjectKeyIdentifier!), Buffer.from(f.signer('carol').certificate.subjectKeyIdentifier!));
  assert.equal(verifySignedData(sd, { trustAnchors: [f.root], detachedContent: content }).valid, true);
});

test('a content type other than id-data gives SignedData version 3', async () => {
  const f = await getFixture();
  const sd = decodeSignedData(signContent(content, [f.spec('alice')], { detached: false, contentType: OID.envelopedData }));
  assert.equal(sd.version, 3);
  assert.equal(sd.contentType, OID.envelopedData);
  assert.equal(sd.signerInfos[0]!.signedAttrs!.contentType, OID.envelopedData);
  assert.equal(verifySignedData(sd, { trustAnchors: [f.root] }).valid, true);
});

test('content given as segments signs exactly as the joined bytes (RSA PKCS#1 v1.5 is deterministic)', async () => {
  const f = await getFixture();
  const spec = f.spec('alice', { signingTime });
  const whole = signContent(content, [spec], { detached: false });
  const parts = signContent([content.subarray(0, 5), content.subarray(5, 5), content.subarray(5)], [spec], { detached: false });
  assert.deepEqual(Buffer.from(parts), Buffer.from(whole));
});

test('output is DER: one definite-length element, certificates sorted', async () => {
  const f = await getFixture();
  const out = signContent(content, [f.spec('alice'), f.spec('dave')], { detached: false });
  const top = parse(out);
  assert.equal(top.indefinite, false);
  const signedData = children(children(top)[1]!)[0]!;
  const certs = children(signedData).find((c) => c.cls === 2 && c.tag === 0)!;
  const encodings = children(certs).map(raw);
  assert.deepEqual(encodings, [...encodings].sort(compareBytes));
});

test('a 10 MB content in segments signs and verifies, the decoded content is views into the message', async () => {
  const f = await getFixture();
  const chunk = randomBytes(1 << 20);
  const segments = Array.from({ length: 10 }, () => chunk);
  const der = signContent(segments, [f.spec('carol')], { detached: false });
  const sd = decodeSignedData(der);
  assert.equal(sd.content!.reduce((n, s) => n + s.length, 0), 10 << 20);
  assert.equal(sd.content![0]!.buffer, der.buffer, 'no copy');
  assert.equal(verifySignedData(sd, { trustAnchors: [f.root] }).valid, true);
  const detached = decodeSignedData(signContent(segments, [f.spec('alice')], { detached: true }));
  assert.equal(verifySignedData(detached, { trustAnchors: [f.root], detachedContent: segments }).valid, true);
});

test('signing refuses no signers, a key that is not the certificate\'s, and PSS with a non-RSA key', async () => {
  const f = await getFixture();
  const code = (c: string) => (e: unknown) => isKeyfleetError(e) && e.code === c;
  assert.throws(() => signContent(content, [], { detached: true }), code('KF_USAGE'));
  assert.throws(() => signContent(content, [{ ...f.spec('alice'), key: f.signer('mallory').key }], { detached: true }), code('KF_KEY_INVALID'));
  assert.throws(() => signContent(content, [f.spec('carol', { pss: true })], { detached: true }), code('KF_USAGE'));
});

test('a detached signature without its content is refused with a coded error', async () => {
  const f = await getFixture();
  const sd = decodeSignedData(signContent(content, [f.spec('alice')], { detached: true }));
  assert.throws(() => verifySignedData(sd, { trustAnchors: [f.root] }), (e) => isKeyfleetError(e, 'KF_CMS_MALFORMED'));
});

test('default digest: SHA-256, SHA-384 for P-384 (as the curve), SHA-512 for Ed25519', async () => {
  const f = await getFixture();
  const digestOf = (name: EntityName) => decodeSignedData(signContent(content, [f.spec(name)], { detached: true })).digestAlgorithms;
  assert.deepEqual(digestOf('alice'), [OID.sha256]);
  assert.deepEqual(digestOf('carol'), [OID.sha256]);
  assert.deepEqual(digestOf('dave'), [OID.sha384]);
  assert.deepEqual(digestOf('erin'), [OID.sha512]);
});
