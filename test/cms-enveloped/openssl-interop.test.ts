/**
 * Interop with OpenSSL 3.0's `openssl cms`, both directions: every cipher and
 * recipient kind it supports (RSA PKCS#1 v1.5 and OAEP, ECDH P-256/P-384),
 * subjectKeyIdentifier recipients (-keyid), several recipients (-recip), its
 * streamed BER (-stream) and DES-EDE3-CBC (with RFC 3217 key wrap under ECDH),
 * and an old key out of a history.
 * OpenSSL 3.0 has no X25519 key agreement in CMS, so X25519 is covered by
 * the round-trip tests only.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { OID } from '../../src/asn1/oids.ts';
import { parse } from '../../src/asn1/reader.ts';
import { type ContentCipher, type RecipientSpec, decryptContent, describeEnvelope, encryptContent } from '../../src/smime/cms/enveloped-data.ts';
import { type Identity, type Pki, makePki } from './pki.ts';

let pki: Pki;
before(async () => {
  pki = await makePki(['rsa', 'old1', 'old2', 'rsaNoSki', 'p256', 'p384']);
});
after(() => pki?.cleanup());

const message = Buffer.from('Content-Type: text/plain; charset=utf-8\r\n\r\nInterop with OpenSSL \u2713\r\n');

function opensslDecrypt(der: Uint8Array, id: Identity): Buffer {
  const input = pki.file('in.der', der);
  return pki.openssl(['cms', '-decrypt', '-binary', '-inform', 'DER', '-in', input, '-recip', id.certPath, '-inkey', id.keyPath]);
}

/** `openssl cms -encrypt` to each of `recipients` ([identity, options after its -recip]). */
function opensslEncrypt(content: Uint8Array, cipherFlag: string, recipients: [Identity, string[]][], extra: string[] = []): Buffer {
  const input = pki.file('plain.bin', content);
  const args = ['cms', '-encrypt', '-binary', cipherFlag, ...extra, '-in', input, '-outform', 'DER'];
  for (const [id, opts] of recipients) args.push('-recip', id.certPath, ...opts);
  return pki.openssl(args);
}

const oaep256 = ['-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha256'];

describe('Keyfleet encrypts, openssl cms decrypts', () => {
  const ciphers: ContentCipher[] = ['aes-128-cbc', 'aes-192-cbc', 'aes-256-cbc', 'aes-128-gcm', 'aes-256-gcm'];
  const recipients: [string, (p: Pki) => [Identity, RecipientSpec]][] = [
    ['RSA PKCS#1 v1.5', (p) => [p.ids.rsa, { certificate: p.ids.rsa.certificate }]],
    ['RSA-OAEP SHA-256 by SKI', (p) => [p.ids.rsa, { certificate: p.ids.rsa.certificate, rsaPadding: 'oaep', identifier: 'subjectKeyIdentifier' }]],
    ['RSA-OAEP SHA-512', (p) => [p.ids.rsa, { certificate: p.ids.rsa.certificate, rsaPadding: 'oaep', oaepHash: 'sha512' }]],
    ['ECDH P-256', (p) => [p.ids.p256, { certificate: p.ids.p256.certificate }]],
    ['ECDH P-384 by SKI', (p) => [p.ids.p384, { certificate: p.ids.p384.certificate, identifier: 'subjectKeyIdentifier' }]],
  ];
  for (const [label, make] of recipients) {
    it(`${label}, every cipher`, () => {
      const [id, spec] = make(pki);
      for (const cipher of ciphers) {
        assert.deepEqual(opensslDecrypt(encryptContent(message, [spec], { cipher }), id), message, cipher);
      }
    });
  }

  it('one message to several recipients of mixed kinds opens for each', () => {
    const { rsa, rsaNoSki, p256, p384 } = pki.ids;
    for (const cipher of ['aes-256-cbc', 'aes-256-gcm'] as const) {
      const out = encryptContent(
        message,
        [
          { certificate: rsa.certificate, rsaPadding: 'oaep', identifier: 'subjectKeyIdentifier' },
          { certificate: rsaNoSki.certificate },
          { certificate: p256.certificate },
          { certificate: p384.certificate, identifier: 'subjectKeyIdentifier' },
        ],
        { cipher },
      );
      for (const id of [rsa, rsaNoSki, p256, p384]) assert.deepEqual(opensslDecrypt(out, id), message, `${cipher} ${id.name}`);
    }
  });

  it('a large message (4 MiB) opens', () => {
    const big = Buffer.alloc(4 << 20);
    for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(i * 2654435761 >>> 0, i);
    const out = encryptContent([big.subarray(0, 12345), big.subarray(12345)], [{ certificate: pki.ids.p256.certificate }], { cipher: 'aes-256-gcm' });
    assert.ok(opensslDecrypt(out, pki.ids.p256).equals(big));
  });
});

describe('openssl cms encrypts, Keyfleet decrypts', () => {
  const flags: [string, string][] = [
    ['-aes128', OID.aes128CBC],
    ['-aes192', OID.aes192CBC],
    ['-aes256', OID.aes256CBC],
    ['-aes-128-gcm', OID.aes128GCM],
    ['-aes-256-gcm', OID.aes256GCM],
    ['-des3', OID.desEde3CBC],
  ];
  const recipients: [string, (p: Pki) => [Identity, string[]]][] = [
    ['RSA PKCS#1 v1.5', (p) => [p.ids.rsa, []]],
    ['RSA-OAEP SHA-256', (p) => [p.ids.rsa, oaep256]],
    ['RSA-OAEP with default (SHA-1) parameters', (p) => [p.ids.rsa, ['-keyopt', 'rsa_padding_mode:oaep']]],
    ['ECDH P-256 (OpenSSL default SHA-1 KDF)', (p) => [p.ids.p256, []]],
    ['ECDH P-384 with SHA-384 KDF', (p) => [p.ids.p384, ['-keyopt', 'ecdh_kdf_md:sha384']]],
  ];
  for (const [label, make] of recipients) {
    it(`${label}, every cipher`, () => {
      const [id, opts] = make(pki);
      for (const [flag, oid] of flags) {
        const result = decryptContent(opensslEncrypt(message, flag, [[id, opts]]), [id.pair]);
        assert.deepEqual(Buffer.from(result.content), message, flag);
        assert.equal(result.contentCipher, oid);
      }
    });
  }

  it('recipients identified by subjectKeyIdentifier (-keyid), several in one message', () => {
    const { rsa, p256, p384 } = pki.ids;
    const out = opensslEncrypt(message, '-aes-256-gcm', [[rsa, oaep256], [p256, []], [p384, []]], ['-keyid']);
    const summaries = describeEnvelope(out).recipients;
    assert.deepEqual(
      summaries.map((s) => s.subjectKeyIdentifierHex),
      [rsa, p256, p384].map((id) => Buffer.from(id.certificate.subjectKeyIdentifier!).toString('hex')),
    );
    for (const id of [rsa, p256, p384]) assert.deepEqual(Buffer.from(decryptContent(out, [id.pair]).content), message);
  });

  it('streamed BER (-stream): indefinite lengths and a chunked encryptedContent, decrypted without joining', () => {
    const big = Buffer.alloc(3 << 20, 'streamed line\r\n');
    for (const flag of ['-aes256', '-aes-128-gcm']) {
      const out = opensslEncrypt(big, flag, [[pki.ids.rsa, []], [pki.ids.p256, []]], ['-stream']);
      assert.equal(parse(out).indefinite, true);
      for (const id of [pki.ids.rsa, pki.ids.p256]) assert.ok(Buffer.from(decryptContent(out, [id.pair]).content).equals(big), `${flag} ${id.name}`);
    }
  });

  it('an old message opens with the right key out of a history of three', () => {
    const { rsa, old1, old2 } = pki.ids;
    const history = [rsa.pair, old2.pair, old1.pair];
    for (const id of [old1, old2]) {
      const result = decryptContent(opensslEncrypt(message, '-aes256', [[id, []]]), history);
      assert.equal(result.recipient, id.pair);
      assert.deepEqual(Buffer.from(result.content), message);
    }
  });

  it('a message for someone else: KF_CMS_NO_MATCHING_KEY', () => {
    const { rsa, old1, p256 } = pki.ids;
    const out = opensslEncrypt(message, '-aes256', [[rsa, []]]);
    assert.throws(() => decryptContent(out, [old1.pair, p256.pair]), (e: unknown) => (e as { code?: string }).code === 'KF_CMS_NO_MATCHING_KEY');
  });
});
