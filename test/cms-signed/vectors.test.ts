/**
 * Published example messages signed with the RFC 9216 keys
 * (draft-ireland-examples-cms). They are another project's data, so they
 * are not committed here: the suite reads them from the steering repo's
 * shared/vectors/rfc9216/ (or $KEYFLEET_VECTORS/rfc9216) and says it
 * skipped when they are absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { decodePemAll } from '../../src/asn1/pem.ts';
import { loadCertificates } from '../../src/x509/certificate.ts';
import { decodeSignedData } from '../../src/smime/cms/signed-data.ts';
import { verifySignedData } from '../../src/smime/cms/verify.ts';

const dir = process.env.KEYFLEET_VECTORS
  ? new URL(`file://${process.env.KEYFLEET_VECTORS.replace(/\/?$/, '/')}rfc9216/`)
  : new URL('../../../shared/vectors/rfc9216/', import.meta.url);
const present = existsSync(new URL('lamps-alice.crt', dir));
const vector = (name: string) => readFileSync(new URL(name, dir));
const message = (name: string) => decodePemAll(vector(name).toString('latin1'))[0]!.der;
const content = Buffer.from('This is some sample content.');

// The RFC 9216 CAs are not at hand: every signer is otherwise sound.
const onlyUntrusted = ['untrusted-chain'];

const cases: readonly { file: string; detached?: boolean; signers: readonly { digest: string; signature: string }[]; noCerts?: boolean }[] = [
  { file: 'signedByAliceRSA.pem', signers: [{ digest: 'sha256', signature: 'rsaEncryption' }] },
  { file: 'signedByAliceRSAPSS.pem', signers: [{ digest: 'sha256', signature: 'rsassaPss' }] },
  { file: 'signedByCarlosEd25519.pem', signers: [{ digest: 'sha512', signature: 'ed25519' }] },
  { file: 'signedByCarlosDetached.pem', detached: true, signers: [{ digest: 'sha512', signature: 'ed25519' }] },
  { file: 'signedByAliceAndCarlosNoCerts.pem', noCerts: true, signers: [{ digest: 'sha512', signature: 'ed25519' }, { digest: 'sha256', signature: 'rsaEncryption' }] },
];

for (const c of cases) {
  test(`RFC 9216 example ${c.file}`, { skip: present ? false : `RFC 9216 vectors not found in ${dir.pathname}` }, () => {
    const alice = loadCertificates(vector('lamps-alice.crt'))[0]!;
    const carlos = loadCertificates(vector('lamps-carlos.crt'))[0]!;
    const sd = decodeSignedData(message(c.file));
    if (c.detached) assert.equal(sd.content, undefined);
    else assert.deepEqual(Buffer.concat(sd.content!), content);
    const result = verifySignedData(sd, {
      trustAnchors: [],
      ...(c.detached ? { detachedContent: content } : {}),
      ...(c.noCerts ? { extraCertificates: [alice, carlos] } : {}),
    });
    assert.deepEqual(
      result.signers.map((s) => ({ digest: s.digestAlgorithm, signature: s.signatureAlgorithm, reasons: s.reasons })),
      c.signers.map((s) => ({ ...s, reasons: onlyUntrusted })),
    );
    if (c.noCerts) {
      const alone = verifySignedData(sd, { trustAnchors: [] });
      assert.ok(alone.signers.every((s) => s.reasons.includes('signer-certificate-missing')));
    }
    if (c.detached) {
      // This one has no signed attributes: pure Ed25519 over the content, so a change shows as a bad signature.
      assert.equal(sd.signerInfos[0]!.signedAttrs, undefined);
      const changed = Buffer.from('This is some sample content!');
      assert.deepEqual(verifySignedData(sd, { trustAnchors: [], detachedContent: changed }).signers[0]!.reasons, ['bad-signature', 'untrusted-chain']);
    }
  });
}
