import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, sign } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OID } from '../../src/asn1/oids.ts';
import * as der from '../../src/asn1/writer.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { type Certificate, loadCertificates } from '../../src/x509/certificate.ts';
import { loadCrls } from '../../src/x509/crl.ts';
import { encodeContentInfo } from '../../src/smime/cms/content-info.ts';
import { type DecodedSignedData, decodeSignedData, signContent } from '../../src/smime/cms/signed-data.ts';
import { encodeIssuerAndSerialNumber } from '../../src/smime/cms/signer-info.ts';
import { verifySignedData } from '../../src/smime/cms/verify.ts';
import { runOk } from '../support/exec.ts';
import type { EntityName } from '../support/pki.ts';
import { getFixture } from './support.ts';

const content = Buffer.from('Content-Type: text/plain\r\n\r\nPay Bob 100 EUR.\r\n');
const signingTime = new Date('2026-05-06T07:08:09Z');

async function reasonsFor(name: EntityName, options: { senderAddress?: string; at?: Date } = {}): Promise<readonly string[]> {
  const f = await getFixture();
  const sd = decodeSignedData(signContent(content, [f.spec(name)], { detached: true }));
  return verifySignedData(sd, { trustAnchors: [f.root], detachedContent: content, ...options }).signers[0]!.reasons;
}

/** Replaces the first occurrence of `from` in `bytes` (which must occur) by `to`, same length. */
function patch(bytes: Uint8Array, from: Uint8Array, to: Uint8Array, occurrence = 'first' as 'first' | 'all'): Buffer {
  assert.equal(from.length, to.length);
  const out = Buffer.from(bytes);
  let at = out.indexOf(from);
  assert.ok(at >= 0, 'pattern to patch not found');
  do {
    out.set(to, at);
    at = occurrence === 'all' ? out.indexOf(from, at + 1) : -1;
  } while (at >= 0);
  return out;
}

test('tampered content → digest-mismatch (detached and encapsulated)', async () => {
  const f = await getFixture();
  const detached = decodeSignedData(signContent(content, [f.spec('alice')], { detached: true }));
  const changed = Buffer.from(content.toString().replace('100', '900'));
  assert.deepEqual(verifySignedData(detached, { trustAnchors: [f.root], detachedContent: changed }).signers[0]!.reasons, ['digest-mismatch']);
  const opaque = signContent(content, [f.spec('carol')], { detached: false });
  const tampered = patch(opaque, Buffer.from('100 EUR'), Buffer.from('900 EUR'));
  const result = verifySignedData(decodeSignedData(tampered), { trustAnchors: [f.root] });
  assert.deepEqual(result.signers[0]!.reasons, ['digest-mismatch']);
  assert.equal(result.valid, false);
});

test('tampered signed attribute → bad-signature', async () => {
  const f = await getFixture();
  for (const name of ['alice', 'alice-pss', 'carol', 'erin'] as const) {
    const signed = signContent(content, [f.spec(name, { signingTime, ...(name === 'alice-pss' ? { pss: true } : {}) })], { detached: true });
    const tampered = patch(signed, Buffer.from('260506070809Z'), Buffer.from('260506070810Z'));
    const sd = decodeSignedData(tampered);
    assert.deepEqual(sd.signerInfos[0]!.signedAttrs!.signingTime, new Date('2026-05-06T07:08:10Z'));
    assert.deepEqual(verifySignedData(sd, { trustAnchors: [f.root], detachedContent: content }).signers[0]!.reasons, ['bad-signature'], name);
  }
});

test('tampered signature value → bad-signature', async () => {
  const f = await getFixture();
  const sd = decodeSignedData(signContent(content, [f.spec('dave')], { detached: true }));
  const si = sd.signerInfos[0]!;
  const sig = Buffer.from(si.signature);
  sig[sig.length - 1]! ^= 0x01;
  const forged: DecodedSignedData = { ...sd, signerInfos: [{ ...si, signature: sig }] };
  assert.deepEqual(verifySignedData(forged, { trustAnchors: [f.root], detachedContent: content }).signers[0]!.reasons, ['bad-signature']);
});

test('eContentType that the contentType attribute does not name → bad-signature', async () => {
  const f = await getFixture();
  const signed = signContent(content, [f.spec('alice')], { detached: false });
  // The first id-data OID in the message is eContentType (the attribute's comes later, inside SignerInfo).
  const tampered = patch(signed, der.oid(OID.data), der.oid('1.2.840.113549.1.7.5'));
  const sd = decodeSignedData(tampered);
  assert.equal(sd.contentType, OID.digestedData);
  assert.deepEqual(verifySignedData(sd, { trustAnchors: [f.root] }).signers[0]!.reasons, ['bad-signature']);
});

/**
 * Builds ContentInfo(SignedData) by hand around signed attributes encoded
 * exactly as given (`attrsAsSet` is the SET that is signed; it is stored
 * with its tag changed to [0]), as another producer might.
 */
async function handMade(attrsAsSet: Uint8Array, signer: EntityName = 'alice'): Promise<{ der: Uint8Array; root: Certificate }> {
  const f = await getFixture();
  const s = f.signer(signer);
  const signature = sign('sha256', attrsAsSet, s.key);
  const stored = Buffer.from(attrsAsSet);
  stored[0] = 0xa0;
  const signerInfo = der.sequence(
    der.integer(1),
    encodeIssuerAndSerialNumber(s.certificate),
    der.sequence(der.oid(OID.sha256)),
    stored,
    der.sequence(der.oid(OID.sha256WithRSAEncryption), der.nullValue()),
    der.octetString(signature),
  );
  const signedData = der.sequence(
    der.integer(1),
    der.set(der.sequence(der.oid(OID.sha256))),
    der.sequence(der.oid(OID.data)),
    der.retag(der.set(s.certificate.der, ...s.chain.map((c) => c.der)), 0),
    der.set(signerInfo),
  );
  return { der: encodeContentInfo(OID.signedData, signedData), root: f.root };
}

function attribute(type: string, value: Uint8Array): Uint8Array {
  return der.sequence(der.oid(type), der.set(value));
}

test('unsorted signed attributes from another producer verify over the bytes as received (pitfall 4)', async () => {
  const digest = createHash('sha256').update(content).digest();
  // Deliberately not in DER order: messageDigest (longest) first, contentType last.
  const attrs = [attribute(OID.messageDigest, der.octetString(digest)), attribute(OID.signingTime, der.time(signingTime)), attribute(OID.contentType, der.oid(OID.data))];
  const unsorted = der.set(...attrs);
  assert.notDeepEqual(Buffer.from(unsorted), Buffer.from(der.setOf(...attrs)), 'the SET really is unsorted');
  const { der: message, root } = await handMade(unsorted);
  const sd = decodeSignedData(message);
  const result = verifySignedData(sd, { trustAnchors: [root], detachedContent: content });
  assert.deepEqual(result.signers[0]!.reasons, []);
  assert.deepEqual(result.signers[0]!.signingTime, signingTime);
});

test('BER signed attributes (indefinite length) verify over the bytes as received', async () => {
  const digest = createHash('sha256').update(content).digest();
  const body = Buffer.concat([attribute(OID.contentType, der.oid(OID.data)), attribute(OID.messageDigest, der.octetString(digest))]);
  const ber = Buffer.concat([Uint8Array.of(0x31, 0x80), body, Uint8Array.of(0, 0)]);
  const { der: message, root } = await handMade(ber);
  const result = verifySignedData(decodeSignedData(message), { trustAnchors: [root], detachedContent: content });
  assert.deepEqual(result.signers[0]!.reasons, []);
});

test('signed attributes without messageDigest or contentType do not verify', async () => {
  const digest = createHash('sha256').update(content).digest();
  const noDigest = await handMade(der.setOf(attribute(OID.contentType, der.oid(OID.data))));
  assert.deepEqual(verifySignedData(decodeSignedData(noDigest.der), { trustAnchors: [noDigest.root], detachedContent: content }).signers[0]!.reasons, ['digest-mismatch']);
  const noType = await handMade(der.setOf(attribute(OID.messageDigest, der.octetString(digest))));
  assert.deepEqual(verifySignedData(decodeSignedData(noType.der), { trustAnchors: [noType.root], detachedContent: content }).signers[0]!.reasons, ['bad-signature']);
});

test('missing signer certificate → signer-certificate-missing', async () => {
  const f = await getFixture();
  const sd = decodeSignedData(signContent(content, [f.spec('alice')], { detached: true }));
  const stripped: DecodedSignedData = { ...sd, certificates: sd.certificates.filter((c) => c.fingerprint256 !== f.signer('alice').certificate.fingerprint256) };
  const result = verifySignedData(stripped, { trustAnchors: [f.root], detachedContent: content });
  assert.deepEqual(result.signers[0]!.reasons, ['signer-certificate-missing']);
  assert.equal(result.signers[0]!.certificate, undefined);
  assert.equal(result.valid, false);
});

test('sender address: mismatch reported, match case-insensitive', async () => {
  assert.deepEqual(await reasonsFor('mallory', { senderAddress: 'alice@example.com' }), ['sender-mismatch']);
  assert.deepEqual(await reasonsFor('alice', { senderAddress: 'Alice@EXAMPLE.com' }), []);
  assert.deepEqual(await reasonsFor('alice'), [], 'no sender given: no sender check');
});

test('path validation reasons are merged into the signer result', async () => {
  assert.deepEqual(await reasonsFor('untrusted'), ['untrusted-chain']);
  assert.ok((await reasonsFor('expired')).includes('expired'));
  assert.ok((await reasonsFor('not-yet-valid')).includes('not-yet-valid'));
  assert.ok((await reasonsFor('wrong-eku')).includes('wrong-eku'));
  assert.deepEqual(await reasonsFor('no-eku'), [], 'no EKU is acceptable (RFC 8550 §4.4.4)');
  assert.ok((await reasonsFor('weak-rsa1024')).includes('weak-algorithm'));
});

test('validation time: an expired signer verifies as of a time inside its validity', async () => {
  const f = await getFixture();
  const e = f.signer('expired').entity;
  const inside = new Date((e.notBefore.getTime() + e.notAfter.getTime()) / 2);
  assert.deepEqual(await reasonsFor('expired', { at: inside }), []);
});

test('revoked signer with the CRL supplied → revoked', async () => {
  const f = await getFixture();
  const crls = loadCrls(readFileSync(f.pki.intermediate.crlPath!));
  const sd = decodeSignedData(signContent(content, [f.spec('revoked')], { detached: true }));
  const result = verifySignedData(sd, { trustAnchors: [f.root], detachedContent: content, crls });
  assert.ok(result.signers[0]!.reasons.includes('revoked'));
  const alice = decodeSignedData(signContent(content, [f.spec('alice')], { detached: true }));
  assert.deepEqual(verifySignedData(alice, { trustAnchors: [f.root], detachedContent: content, crls }).signers[0]!.reasons, []);
});

test('an unknown digest algorithm → unsupported-algorithm for that signer only', async () => {
  const f = await getFixture();
  const signed = signContent(content, [f.spec('carol', { digest: 'sha384' }), f.spec('alice', { digest: 'sha256' })], { detached: true });
  // Turn every sha384 OID (2.16.840.1.101.3.4.2.2) into an unassigned sibling.
  const tampered = patch(signed, der.oid(OID.sha384), der.oid('2.16.840.1.101.3.4.2.99'), 'all');
  const result = verifySignedData(decodeSignedData(tampered), { trustAnchors: [f.root], detachedContent: content });
  const byAlg = new Map(result.signers.map((s) => [s.digestAlgorithm, s.reasons]));
  assert.deepEqual(byAlg.get('2.16.840.1.101.3.4.2.99'), ['unsupported-algorithm']);
  assert.deepEqual(byAlg.get('sha256'), []);
  assert.equal(result.valid, false);
});

test('a message with no SignerInfo is not valid', async () => {
  const f = await getFixture();
  const sd = decodeSignedData(signContent(content, [f.spec('alice')], { detached: true }));
  const result = verifySignedData({ ...sd, signerInfos: [] }, { trustAnchors: [f.root], detachedContent: content });
  assert.equal(result.valid, false);
});

test('garbage, truncated and absurd-length input → KF_CMS_MALFORMED', async () => {
  const f = await getFixture();
  const good = signContent(content, [f.spec('alice')], { detached: false });
  const malformed = (e: unknown) => isKeyfleetError(e, 'KF_CMS_MALFORMED');
  assert.throws(() => decodeSignedData(new Uint8Array(0)), malformed);
  assert.throws(() => decodeSignedData(Buffer.from('this is not CMS at all')), malformed);
  for (const cut of [1, 2, 10, 100, good.length >> 1, good.length - 1]) assert.throws(() => decodeSignedData(good.subarray(0, cut)), malformed, `cut at ${cut}`);
  assert.throws(() => decodeSignedData(Uint8Array.of(0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x06, 0x00)), malformed);
  assert.throws(() => decodeSignedData(Buffer.concat([good, Uint8Array.of(0)])), malformed, 'trailing data');
  assert.throws(() => decodeSignedData(encodeContentInfo(OID.envelopedData, der.sequence(der.integer(0)))), malformed, 'not SignedData');
  assert.throws(() => decodeSignedData(encodeContentInfo(OID.signedData, der.sequence(der.integer(1)))), malformed, 'SignedData cut short');
  // Absurd length fields: a 2^48 length is refused by the reader as over its limit.
  assert.throws(() => decodeSignedData(Uint8Array.of(0x30, 0x87, 1, 0, 0, 0, 0, 0, 0)), (e) => isKeyfleetError(e));
});

test('several certificates answer to the signer identifier: the one that checks out is used', async () => {
  const f = await getFixture();
  const alice = f.signer('alice').entity;
  // A second certificate for Alice's key (same subjectKeyIdentifier) that is not for e-mail.
  const dir = mkdtempSync(join(tmpdir(), 'kf-cms-dup-'));
  try {
    writeFileSync(join(dir, 'ext.cnf'), '[ext]\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n');
    const i = f.pki.intermediate;
    await runOk('openssl', ['x509', '-new', '-subj', '/CN=Alice TLS', '-force_pubkey', alice.publicKeyPath, '-CA', i.certPath, '-CAkey', i.keyPath, '-days', '30', '-extfile', join(dir, 'ext.cnf'), '-extensions', 'ext', '-out', join(dir, 'dup.pem')]);
    const dup = loadCertificates(readFileSync(join(dir, 'dup.pem')))[0]!;
    const sd = decodeSignedData(signContent(content, [f.spec('alice', { identifier: 'subjectKeyIdentifier' })], { detached: true }));
    const both: DecodedSignedData = { ...sd, certificates: [dup, ...sd.certificates] };
    const result = verifySignedData(both, { trustAnchors: [f.root], detachedContent: content });
    assert.deepEqual(result.signers[0]!.reasons, []);
    assert.equal(result.signers[0]!.certificate?.fingerprint256, f.signer('alice').certificate.fingerprint256);
    const onlyDup: DecodedSignedData = { ...sd, certificates: [dup, f.intermediate] };
    assert.deepEqual(verifySignedData(onlyDup, { trustAnchors: [f.root], detachedContent: content }).signers[0]!.reasons, ['wrong-eku']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
