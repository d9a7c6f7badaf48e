/**
 * EnvelopedData / AuthEnvelopedData written and read by Keyfleet itself:
 * every cipher with every recipient kind, the structure rules peers check
 * (versions, GCM parameters), many recipients, a key history, BER input, and
 * the coded errors for wrong keys, damage and unsupported algorithms.
 */
import assert from 'node:assert/strict';
import { constants, createCipheriv, publicEncrypt } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { isKeyfleetError } from '../../src/errors.ts';
import { OID } from '../../src/asn1/oids.ts';
import { children, contents, parse, raw, readOid, readSmallInt } from '../../src/asn1/reader.ts';
import * as der from '../../src/asn1/writer.ts';
import { decodeContentInfo, encodeContentInfo } from '../../src/smime/cms/content-info.ts';
import { type ContentCipher, type RecipientSpec, decryptContent, describeEnvelope, encryptContent } from '../../src/smime/cms/enveloped-data.ts';
import { toStreamedBer } from './ber.ts';
import { type Pki, makePki } from './pki.ts';

const ciphers: readonly ContentCipher[] = ['aes-128-cbc', 'aes-192-cbc', 'aes-256-cbc', 'aes-128-gcm', 'aes-192-gcm', 'aes-256-gcm'];
const cipherOid: Record<ContentCipher, string> = {
  'aes-128-cbc': OID.aes128CBC,
  'aes-192-cbc': OID.aes192CBC,
  'aes-256-cbc': OID.aes256CBC,
  'aes-128-gcm': OID.aes128GCM,
  'aes-192-gcm': OID.aes192GCM,
  'aes-256-gcm': OID.aes256GCM,
};

let pki: Pki;
before(async () => {
  pki = await makePki();
});
after(() => pki?.cleanup());

const message = Buffer.from('Content-Type: text/plain\r\n\r\nQuarterly numbers attached.\r\n');

/** The EnvelopedData/AuthEnvelopedData SEQUENCE's elements. */
function envelopeFields(bytes: Uint8Array) {
  return children(decodeContentInfo(bytes).content);
}

function expectCode(code: string, detail?: string) {
  return (e: unknown) => {
    assert.ok(isKeyfleetError(e), `expected a KeyfleetError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (detail !== undefined) assert.equal(e.detail, detail);
    return true;
  };
}

/** Replaces the first occurrence of `from` (an encoded element) by `to` of the same length. */
function patch(bytes: Uint8Array, from: Uint8Array, to: Uint8Array): Buffer {
  assert.equal(from.length, to.length);
  const out = Buffer.from(bytes);
  const at = out.indexOf(Buffer.from(from));
  assert.ok(at >= 0, 'pattern to patch not found');
  out.set(to, at);
  return out;
}

describe('encryptContent / decryptContent round trips', () => {
  const kinds: { label: string; spec: (p: Pki) => RecipientSpec; name: 'rsa' | 'p256' | 'p384' | 'x25519' }[] = [
    { label: 'RSA PKCS#1 v1.5', name: 'rsa', spec: (p) => ({ certificate: p.ids.rsa.certificate }) },
    { label: 'RSA-OAEP SHA-256', name: 'rsa', spec: (p) => ({ certificate: p.ids.rsa.certificate, rsaPadding: 'oaep' }) },
    { label: 'RSA-OAEP SHA-512', name: 'rsa', spec: (p) => ({ certificate: p.ids.rsa.certificate, rsaPadding: 'oaep', oaepHash: 'sha512' }) },
    { label: 'ECDH P-256', name: 'p256', spec: (p) => ({ certificate: p.ids.p256.certificate }) },
    { label: 'ECDH P-384', name: 'p384', spec: (p) => ({ certificate: p.ids.p384.certificate }) },
    { label: 'X25519', name: 'x25519', spec: (p) => ({ certificate: p.ids.x25519.certificate }) },
  ];
  for (const kind of kinds) {
    for (const identifier of ['issuerAndSerialNumber', 'subjectKeyIdentifier'] as const) {
      it(`${kind.label}, ${identifier}, every cipher`, () => {
        for (const cipher of ciphers) {
          const id = pki.ids[kind.name];
          const out = encryptContent(message, [{ ...kind.spec(pki), identifier }], { cipher });
          const result = decryptContent(out, [id.pair]);
          assert.deepEqual(Buffer.from(result.content), message, cipher);
          assert.equal(result.contentType, OID.data);
          assert.equal(result.contentCipher, cipherOid[cipher]);
          assert.equal(result.recipient, id.pair);
          const described = describeEnvelope(out);
          assert.equal(described.contentType, cipher.endsWith('gcm') ? 'auth-enveloped-data' : 'enveloped-data');
          assert.equal(described.recipients.length, 1);
          const summary = described.recipients[0]!;
          if (identifier === 'subjectKeyIdentifier') {
            assert.equal(summary.subjectKeyIdentifierHex, Buffer.from(id.certificate.subjectKeyIdentifier!).toString('hex'));
          } else {
            assert.equal(summary.issuerAndSerial?.serialHex, id.certificate.serialHex);
            assert.deepEqual(Buffer.from(summary.issuerAndSerial.issuer.der), Buffer.from(id.certificate.issuer.der));
          }
        }
      });
    }
  }

  it('chooses the key-agreement KDF by curve strength and the wrap by CEK size', () => {
    const cases = [
      ['p256', 'aes-128-cbc', OID.dhSinglePassStdDHSha256kdfScheme, OID.aes128Wrap],
      ['p384', 'aes-256-gcm', OID.dhSinglePassStdDHSha384kdfScheme, OID.aes256Wrap],
      ['x25519', 'aes-256-cbc', OID.dhSinglePassStdDHHkdfSha256, OID.aes256Wrap],
      ['x25519', 'aes-192-gcm', OID.dhSinglePassStdDHHkdfSha256, OID.aes192Wrap],
    ] as const;
    for (const [name, cipher, kdf, wrap] of cases) {
      const [summary] = describeEnvelope(encryptContent(message, [{ certificate: pki.ids[name].certificate }], { cipher })).recipients;
      assert.equal(summary?.kind, 'kari');
      assert.equal(summary?.keyEncryptionAlgorithm, kdf, `${name} ${cipher}`);
      assert.equal(summary?.keyWrapAlgorithm, wrap, `${name} ${cipher}`);
    }
  });

  it('accepts the content as segments and empty content', () => {
    const { rsa } = pki.ids;
    const parts = [message.subarray(0, 5), new Uint8Array(0), message.subarray(5, 40), message.subarray(40)];
    for (const cipher of ['aes-256-cbc', 'aes-256-gcm'] as const) {
      assert.deepEqual(Buffer.from(decryptContent(encryptContent(parts, [{ certificate: rsa.certificate }], { cipher }), [rsa.pair]).content), message);
      assert.equal(decryptContent(encryptContent(new Uint8Array(0), [{ certificate: rsa.certificate }], { cipher }), [rsa.pair]).content.length, 0);
    }
  });

  it('keeps a non-data content type', () => {
    const { p256 } = pki.ids;
    const out = encryptContent(message, [{ certificate: p256.certificate }], { cipher: 'aes-128-gcm', contentType: OID.signedData });
    assert.equal(decryptContent(out, [p256.pair]).contentType, OID.signedData);
  });

  it('round-trips random content of any length (property)', () => {
    const { p256 } = pki.ids;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.constantFrom(...ciphers), (content, cipher) => {
        const out = encryptContent(content, [{ certificate: p256.certificate }], { cipher });
        assert.deepEqual(Buffer.from(decryptContent(out, [p256.pair]).content), Buffer.from(content));
      }),
      { numRuns: 60 },
    );
  });
});

describe('structure the peers check', () => {
  it('writes EnvelopedData version 0 only when every RecipientInfo is version 0 (RFC 5652 §6.1)', () => {
    const { rsa, rsaNoSki, p256 } = pki.ids;
    const version = (recipients: RecipientSpec[], cipher: ContentCipher) => readSmallInt(envelopeFields(encryptContent(message, recipients, { cipher }))[0]!);
    assert.equal(version([{ certificate: rsa.certificate }, { certificate: rsaNoSki.certificate, rsaPadding: 'oaep' }], 'aes-256-cbc'), 0);
    assert.equal(version([{ certificate: rsa.certificate }, { certificate: rsa.certificate, identifier: 'subjectKeyIdentifier' }], 'aes-256-cbc'), 2);
    assert.equal(version([{ certificate: p256.certificate }], 'aes-256-cbc'), 2);
    // RFC 5083 §2.1: AuthEnvelopedData is always version 0.
    assert.equal(version([{ certificate: p256.certificate }, { certificate: rsa.certificate, identifier: 'subjectKeyIdentifier' }], 'aes-256-gcm'), 0);
  });

  it('writes RecipientInfo versions 0/2 (ktri by issuerAndSerialNumber/SKI) and 3 (kari)', () => {
    const { rsa, p256 } = pki.ids;
    const out = encryptContent(message, [{ certificate: rsa.certificate }, { certificate: rsa.certificate, identifier: 'subjectKeyIdentifier' }, { certificate: p256.certificate }], { cipher: 'aes-128-cbc' });
    const versions = children(envelopeFields(out)[1]!).map((ri) => readSmallInt(children(ri)[0]!));
    assert.deepEqual(versions.sort(), [0, 2, 3]);
  });

  it('puts GCM in AuthEnvelopedData with a 12-octet nonce, an explicit 16-octet ICV and the tag as mac (RFC 5084)', () => {
    const { rsa } = pki.ids;
    let call = 0;
    const random = (n: number) => new Uint8Array(n).fill(++call);
    const out = encryptContent(message, [{ certificate: rsa.certificate }], { cipher: 'aes-256-gcm', random });
    assert.equal(decodeContentInfo(out).contentType, OID.authEnvelopedData);
    const fields = envelopeFields(out);
    assert.equal(fields.length, 4); // version, recipientInfos, authEncryptedContentInfo, mac: no authAttrs
    const [, alg, encrypted] = children(fields[2]!);
    const [oid, params] = children(alg!);
    assert.equal(readOid(oid!), OID.aes256GCM);
    const [nonce, icvLen] = children(params!);
    assert.deepEqual(Buffer.from(contents(nonce!)), Buffer.alloc(12, 2)); // second random call
    assert.equal(readSmallInt(icvLen!), 16);
    assert.equal(encrypted!.tag, 0);
    assert.equal(contents(encrypted!).length, message.length);
    assert.equal(contents(fields[3]!).length, 16);
    assert.deepEqual(Buffer.from(decryptContent(out, [rsa.pair]).content), message);
  });

  it('puts CBC in EnvelopedData with the IV as parameters and PKCS#7 padding', () => {
    const { rsa } = pki.ids;
    const out = encryptContent(message, [{ certificate: rsa.certificate }], { cipher: 'aes-128-cbc' });
    assert.equal(decodeContentInfo(out).contentType, OID.envelopedData);
    const [, alg, encrypted] = children(envelopeFields(out)[2]!);
    assert.equal(contents(children(alg!)[1]!).length, 16);
    assert.equal(contents(encrypted!).length, (Math.floor(message.length / 16) + 1) * 16);
  });

  it('reads AuthEnvelopedData with authAttrs, authenticated as the AAD (RFC 5083 §2.2)', () => {
    const { rsa } = pki.ids;
    const cek = Buffer.alloc(16, 7);
    const nonce = Buffer.alloc(12, 9);
    const random = (n: number) => (n === 16 ? cek : nonce);
    const fields = envelopeFields(encryptContent(message, [{ certificate: rsa.certificate }], { cipher: 'aes-128-gcm', random }));
    const attrs = der.setOf(der.sequence(der.oid(OID.contentType), der.setOf(der.oid(OID.data))));
    const build = (authAttrs: Uint8Array, aad: Uint8Array) => {
      const c = createCipheriv('aes-128-gcm', cek, nonce, { authTagLength: 16 });
      c.setAAD(aad);
      const ciphertext = Buffer.concat([c.update(message), c.final()]);
      const eci = der.sequence(der.oid(OID.data), der.sequence(der.oid(OID.aes128GCM), der.sequence(der.octetString(nonce), der.integer(16))), der.implicitPrimitive(0, ciphertext));
      return encodeContentInfo(OID.authEnvelopedData, der.sequence(der.integer(0), raw(fields[1]!), eci, authAttrs, der.octetString(c.getAuthTag())));
    };
    assert.deepEqual(Buffer.from(decryptContent(build(der.retag(attrs, 1), attrs), [rsa.pair]).content), message);
    // The attributes are covered by the tag: other attributes than were authenticated fail.
    const other = der.setOf(der.sequence(der.oid(OID.contentType), der.setOf(der.oid(OID.signedData))));
    assert.throws(() => decryptContent(build(der.retag(other, 1), attrs), [rsa.pair]), expectCode('KF_CMS_DECRYPT_FAILED'));
  });

  it('reads RSAES-OAEP parameters absent, NULL, empty, with NULL hash parameters and with a label (pitfall 8)', () => {
    const { rsa } = pki.ids;
    const cek = Buffer.alloc(32, 5);
    const random = (n: number) => (n === 32 ? cek : Buffer.alloc(n, 1));
    const fields = envelopeFields(encryptContent(message, [{ certificate: rsa.certificate }], { cipher: 'aes-256-cbc', random }));
    const ias = der.sequence(rsa.certificate.issuer.der, der.integerFromContents(rsa.certificate.serialNumber));
    const hashAlg = (oid: string, nullParams = false) => der.sequence(der.oid(oid), ...(nullParams ? [der.nullValue()] : []));
    const oaep = (params?: Uint8Array) => der.sequence(der.oid(OID.rsaesOaep), ...(params ? [params] : []));
    const withKtri = (alg: Uint8Array, oaepHash: string, oaepLabel?: Uint8Array) => {
      const encryptedKey = publicEncrypt({ key: rsa.certificate.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash, ...(oaepLabel ? { oaepLabel } : {}) }, cek);
      const ktri = der.sequence(der.integer(0), ias, alg, der.octetString(encryptedKey));
      return encodeContentInfo(OID.envelopedData, der.sequence(der.integer(0), der.setOf(ktri), raw(fields[2]!)));
    };
    const sha256Params = (hashNull: boolean, label?: Uint8Array) =>
      der.sequence(
        der.explicit(0, hashAlg(OID.sha256, hashNull)),
        der.explicit(1, der.sequence(der.oid(OID.mgf1), hashAlg(OID.sha256, hashNull))),
        ...(label ? [der.explicit(2, der.sequence(der.oid(OID.pSpecified), der.octetString(label)))] : []),
      );
    const label = Buffer.from('keyfleet');
    const cases: [string, Uint8Array, string, Uint8Array?][] = [
      ['absent', oaep(), 'sha1'],
      ['NULL', oaep(der.nullValue()), 'sha1'],
      ['empty SEQUENCE', oaep(der.sequence()), 'sha1'],
      ['SHA-256, hash parameters absent', oaep(sha256Params(false)), 'sha256'],
      ['SHA-256, hash parameters NULL', oaep(sha256Params(true)), 'sha256'],
      ['SHA-256 with a label', oaep(sha256Params(false, label)), 'sha256', label],
    ];
    for (const [what, alg, hash, oaepLabel] of cases) {
      assert.deepEqual(Buffer.from(decryptContent(withKtri(alg, hash, oaepLabel), [rsa.pair]).content), message, what);
    }
    const mixedMgf = oaep(der.sequence(der.explicit(0, hashAlg(OID.sha256)), der.explicit(1, der.sequence(der.oid(OID.mgf1), hashAlg(OID.sha1)))));
    assert.throws(() => decryptContent(withKtri(mixedMgf, 'sha256'), [rsa.pair]), expectCode('KF_CMS_UNSUPPORTED'));
  });

  it('writes DER: it parses as one definite-length element', () => {
    const out = encryptContent(message, [{ certificate: pki.ids.x25519.certificate }], { cipher: 'aes-128-gcm' });
    assert.equal(parse(out).indefinite, false);
    assert.equal(parse(out).end, out.length);
  });
});

describe('recipients and key history', () => {
  it('addresses many recipients of mixed kinds in one message', () => {
    const { rsa, rsaNoSki, p256, p384, x25519 } = pki.ids;
    const recipients: RecipientSpec[] = [
      { certificate: rsa.certificate, rsaPadding: 'oaep', oaepHash: 'sha384' },
      { certificate: rsaNoSki.certificate },
      { certificate: p256.certificate, identifier: 'subjectKeyIdentifier' },
      { certificate: p384.certificate },
      { certificate: x25519.certificate, identifier: 'subjectKeyIdentifier' },
    ];
    for (const cipher of ['aes-256-cbc', 'aes-256-gcm'] as const) {
      const out = encryptContent(message, recipients, { cipher });
      for (const id of [rsa, rsaNoSki, p256, p384, x25519]) {
        const result = decryptContent(out, [id.pair]);
        assert.deepEqual(Buffer.from(result.content), message);
        assert.equal(result.recipient, id.pair);
      }
      const kinds = describeEnvelope(out).recipients.map((r) => r.kind);
      assert.deepEqual(kinds.sort(), ['kari', 'kari', 'kari', 'ktri', 'ktri']);
    }
  });

  it('opens an old message with the right key out of a history of three', () => {
    const { rsa, old1, old2 } = pki.ids;
    const history = [rsa.pair, old2.pair, old1.pair];
    for (const id of [old1, old2, rsa]) {
      const out = encryptContent(message, [{ certificate: id.certificate }], { cipher: 'aes-256-cbc' });
      const result = decryptContent(out, history);
      assert.equal(result.recipient, id.pair);
      assert.deepEqual(Buffer.from(result.content), message);
    }
  });

  it('identifies by SKI even when the history holds certificates of the same issuer and subject', () => {
    const { rsa, old1, old2 } = pki.ids;
    const out = encryptContent(message, [{ certificate: old2.certificate, identifier: 'subjectKeyIdentifier' }], { cipher: 'aes-128-gcm' });
    assert.equal(decryptContent(out, [rsa.pair, old1.pair, old2.pair]).recipient, old2.pair);
  });

  it('decrypts BER: indefinite lengths and a segmented encryptedContent (property)', () => {
    const { rsa, p384 } = pki.ids;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1, max: 40 }), fc.constantFrom<ContentCipher>('aes-128-cbc', 'aes-256-gcm'), fc.boolean(), (content, segment, cipher, ec) => {
        const id = ec ? p384 : rsa;
        const ber = toStreamedBer(encryptContent(content, [{ certificate: id.certificate, identifier: 'subjectKeyIdentifier' }], { cipher }), segment);
        assert.deepEqual(Buffer.from(decryptContent(ber, [id.pair]).content), Buffer.from(content));
      }),
      { numRuns: 40 },
    );
  });
});

describe('errors', () => {
  it('no key of the history matches: KF_CMS_NO_MATCHING_KEY (no blind RSA trial, pitfall 7)', () => {
    const { rsa, old1, old2, p256 } = pki.ids;
    const out = encryptContent(message, [{ certificate: rsa.certificate }], { cipher: 'aes-256-cbc' });
    assert.throws(() => decryptContent(out, [old1.pair, old2.pair, p256.pair]), expectCode('KF_CMS_NO_MATCHING_KEY'));
    assert.throws(() => decryptContent(out, []), expectCode('KF_CMS_NO_MATCHING_KEY'));
  });

  it('a history entry whose key does not belong to its certificate: KF_KEY_INVALID, and the other keys still work', () => {
    const { rsa, old1, p256, p384 } = pki.ids;
    const out = encryptContent(message, [{ certificate: rsa.certificate }], { cipher: 'aes-256-cbc' });
    assert.throws(() => decryptContent(out, [{ certificate: rsa.certificate, key: old1.key }]), expectCode('KF_KEY_INVALID'));
    const ec = encryptContent(message, [{ certificate: p256.certificate }], { cipher: 'aes-256-gcm' });
    assert.throws(() => decryptContent(ec, [{ certificate: p256.certificate, key: p384.key }]), expectCode('KF_KEY_INVALID'));
    const both = encryptContent(message, [{ certificate: old1.certificate }, { certificate: rsa.certificate }], { cipher: 'aes-128-gcm' });
    assert.equal(decryptContent(both, [{ certificate: old1.certificate, key: p256.key }, rsa.pair]).recipient, rsa.pair);
  });

  it('tampered GCM ciphertext or tag: KF_CMS_DECRYPT_FAILED saying the message is damaged', () => {
    const { x25519, rsa } = pki.ids;
    for (const id of [x25519, rsa]) {
      const out = encryptContent(message, [{ certificate: id.certificate }], { cipher: 'aes-256-gcm' });
      const fields = envelopeFields(out);
      const ciphertextAt = children(fields[2]!)[2]!.contentStart;
      for (const at of [ciphertextAt + 3, fields[3]!.contentStart + 15]) {
        const bad = Buffer.from(out);
        bad[at]! ^= 0x01;
        assert.throws(() => decryptContent(bad, [id.pair]), (e: unknown) => expectCode('KF_CMS_DECRYPT_FAILED')(e) && /damaged/.test((e as Error).message));
      }
    }
  });

  it('tampered CBC padding or wrapped key: KF_CMS_DECRYPT_FAILED', () => {
    const { rsa, p256 } = pki.ids;
    const out = encryptContent(message, [{ certificate: rsa.certificate }], { cipher: 'aes-128-cbc' });
    const encrypted = children(envelopeFields(out)[2]!)[2]!;
    const bad = Buffer.from(out);
    bad[encrypted.contentEnd - 17]! ^= 0x01; // flips the padding-length octet of the last block
    assert.throws(() => decryptContent(bad, [rsa.pair]), expectCode('KF_CMS_DECRYPT_FAILED'));

    const ec = encryptContent(message, [{ certificate: p256.certificate }], { cipher: 'aes-128-cbc' });
    const kari = children(envelopeFields(ec)[1]!)[0]!;
    const rek = children(children(kari).at(-1)!)[0]!;
    const wrapped = children(rek)[1]!;
    const badKey = Buffer.from(ec);
    badKey[wrapped.contentStart + 2]! ^= 0x80;
    assert.throws(() => decryptContent(badKey, [p256.pair]), expectCode('KF_CMS_DECRYPT_FAILED'));
  });

  it('truncated, empty and garbage input: KF_CMS_MALFORMED', () => {
    const { rsa } = pki.ids;
    const out = encryptContent(message, [{ certificate: rsa.certificate }], { cipher: 'aes-256-gcm' });
    for (const cut of [0, 1, 10, 100, out.length - 17, out.length - 1]) {
      assert.throws(() => decryptContent(out.subarray(0, cut), [rsa.pair]), expectCode('KF_CMS_MALFORMED'), `cut at ${cut}`);
      assert.throws(() => describeEnvelope(out.subarray(0, cut)), expectCode('KF_CMS_MALFORMED'));
    }
    assert.throws(() => decryptContent(Buffer.from('MIME-Version: 1.0\r\n\r\nhello'), [rsa.pair]), expectCode('KF_CMS_MALFORMED'));
    const noRecipients = encodeContentInfo(OID.envelopedData, der.sequence(der.integer(0), der.setOf(), der.sequence(der.oid(OID.data), der.sequence(der.oid(OID.aes128CBC), der.octetString(new Uint8Array(16))))));
    assert.throws(() => decryptContent(noRecipients, [rsa.pair]), expectCode('KF_CMS_MALFORMED'));
  });

  it('unsupported algorithms: KF_CMS_UNSUPPORTED with the OID as detail', () => {
    const { rsa } = pki.ids;
    const cbc = encryptContent(message, [{ certificate: rsa.certificate }], { cipher: 'aes-256-cbc' });
    const aes128Ofb = '2.16.840.1.101.3.4.1.3';
    assert.throws(() => decryptContent(patch(cbc, der.oid(OID.aes256CBC), der.oid(aes128Ofb)), [rsa.pair]), expectCode('KF_CMS_UNSUPPORTED', aes128Ofb));
    // GCM inside EnvelopedData is refused (RFC 5083, REFERENCE.md pitfall 1).
    assert.throws(() => decryptContent(patch(cbc, der.oid(OID.aes256CBC), der.oid(OID.aes256GCM)), [rsa.pair]), expectCode('KF_CMS_UNSUPPORTED', OID.aes256GCM));
    const md2WithRsa = '1.2.840.113549.1.1.2';
    assert.throws(() => decryptContent(patch(cbc, der.oid(OID.rsaEncryption), der.oid(md2WithRsa)), [rsa.pair]), expectCode('KF_CMS_UNSUPPORTED', md2WithRsa));
    // The description still works for a message we cannot decrypt.
    assert.equal(describeEnvelope(patch(cbc, der.oid(OID.aes256CBC), der.oid(aes128Ofb))).contentCipher, aes128Ofb);
  });

  it('detached encrypted content: KF_CMS_UNSUPPORTED', () => {
    const { rsa } = pki.ids;
    const fields = envelopeFields(encryptContent(message, [{ certificate: rsa.certificate }], { cipher: 'aes-128-cbc' }));
    const [contentType, alg] = children(fields[2]!);
    const detached = encodeContentInfo(OID.envelopedData, der.sequence(raw(fields[0]!), raw(fields[1]!), der.sequence(raw(contentType!), raw(alg!))));
    assert.throws(() => decryptContent(detached, [rsa.pair]), expectCode('KF_CMS_UNSUPPORTED'));
  });

  it('other content types are refused, not misread', () => {
    const signed = encodeContentInfo(OID.signedData, der.sequence(der.integer(1)));
    assert.throws(() => decryptContent(signed, [pki.ids.rsa.pair]), expectCode('KF_CMS_UNSUPPORTED'));
  });

  it('bad encryption requests are coded errors', () => {
    const { rsaNoSki } = pki.ids;
    assert.throws(() => encryptContent(message, [], { cipher: 'aes-256-cbc' }), expectCode('KF_USAGE'));
    assert.throws(() => encryptContent(message, [{ certificate: rsaNoSki.certificate, identifier: 'subjectKeyIdentifier' }], { cipher: 'aes-256-cbc' }), expectCode('KF_CMS_UNSUPPORTED'));
    assert.throws(() => encryptContent(message, [{ certificate: rsaNoSki.certificate }], { cipher: 'aes-256-cbc', contentType: 'text/plain' }), expectCode('KF_USAGE'));
  });

  it('mutated messages give a coded error or the right content, never a crash (fuzz)', () => {
    const { rsa, p256 } = pki.ids;
    // [message, authenticated]: CBC is malleable (a changed IV octet changes a plaintext octet), so
    // only AuthEnvelopedData must either decrypt to the original or fail.
    const samples: [Uint8Array, boolean][] = [
      [encryptContent(message, [{ certificate: rsa.certificate }, { certificate: p256.certificate, identifier: 'subjectKeyIdentifier' }], { cipher: 'aes-128-gcm' }), true],
      [toStreamedBer(encryptContent(message, [{ certificate: p256.certificate }], { cipher: 'aes-256-cbc' }), 7), false],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...samples), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(), ([sample, authenticated], flips, cut) => {
        const bad = Buffer.from(sample);
        for (const [at, value] of flips) bad[at % bad.length] = value;
        const input = cut % 5 === 0 ? bad.subarray(0, cut % bad.length) : bad;
        for (const run of [() => decryptContent(input, [rsa.pair, p256.pair]), () => describeEnvelope(input)]) {
          let result: ReturnType<typeof run>;
          try {
            result = run();
          } catch (e) {
            assert.ok(isKeyfleetError(e), `uncoded error: ${e instanceof Error ? e.stack : String(e)}`);
            continue;
          }
          if (authenticated && 'content' in result) assert.deepEqual(Buffer.from(result.content), message);
        }
      }),
      { numRuns: 400 },
    );
  });
});
