/**
 * The S/MIME message layer (src/smime/message.ts) in-process: what a mail
 * client relies on beyond the CMS — outer headers kept outside, the inner
 * entity complete with its attachments, bare-LF messages, sign-then-encrypt,
 * the cipher choice of RFC 8551 §2.7, and coded errors for what is not
 * S/MIME.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { type TestPki, createTestPki } from '../support/pki.ts';
import { type EntityName } from '../pki/pki.ts';
import { loadCertificates, type Certificate } from '../../src/x509/certificate.ts';
import { loadPrivateKey } from '../../src/smime/keys.ts';
import { OID } from '../../src/asn1/oids.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { chooseContentCipher, decryptMessage, encryptMessage, inspectMessage, senderAddress, signMessage, verifyMessage } from '../../src/smime/message.ts';
import { classifySmime, decodeBase64, encodeBase64, getHeader, parseEntity, splitMessage } from '../../src/smime/mime/index.ts';
import { toStreamedBer } from '../cms-enveloped/ber.ts';

let pki: TestPki;
const cert = (n: EntityName): Certificate => loadCertificates(readFileSync(pki.entity(n).certPath))[0]!;
const key = (n: EntityName) => loadPrivateKey(readFileSync(pki.entity(n).keyPath));
const signer = (n: EntityName) => ({ certificate: cert(n), key: key(n), chain: [cert('intermediate')] });
const trust = () => ({ trustAnchors: [cert('root')] });

const attachment = Buffer.from(Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff));
const message = Buffer.from(
  [
    'From: Alice Example <Alice@Example.com>',
    'To: Bob <bob@example.com>',
    'Subject: quarterly numbers',
    'Date: Sat, 28 Nov 2026 10:00:00 +0000',
    'Message-ID: <q4@example.com>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="outer"',
    '',
    '--outer',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'Grüße, the numbers are attached.',
    '--outer',
    'Content-Type: application/octet-stream; name="q4.bin"',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename="q4.bin"',
    '',
    attachment.toString('base64').replace(/.{76}/g, '$&\r\n'),
    '--outer--',
    '',
  ].join('\r\n'),
);

function attachmentOf(bytes: Uint8Array): Buffer {
  const part = parseEntity(bytes).parts[1]!;
  return Buffer.from(Buffer.from(part.body).toString('latin1'), 'base64') as Buffer;
}

before(async () => {
  pki = await createTestPki();
});

describe('signing', () => {
  test('multipart/signed keeps the outer header fields outside and verifies to the whole message', () => {
    const signed = signMessage(message, { signers: [signer('alice')] });
    const outer = parseEntity(signed);
    assert.equal(classifySmime(outer).kind, 'signed-multipart');
    assert.equal(getHeader(outer.headers, 'subject'), 'quarterly numbers');
    assert.equal(getHeader(outer.headers, 'message-id'), '<q4@example.com>');
    assert.match(getHeader(outer.headers, 'content-type')!, /micalg=sha-256/);
    const { result, content } = verifyMessage(signed, trust());
    assert.deepEqual(result.signers.map((s) => s.reasons), [[]]);
    assert.equal(getHeader(parseEntity(content).headers, 'from'), 'Alice Example <Alice@Example.com>');
    assert.deepEqual(attachmentOf(content), attachment);
  });

  test('an 8-bit body is made 7-bit safe before signing (RFC 8551 §3.1.2)', () => {
    const signed = signMessage(message, { signers: [signer('alice')] });
    const signedPart = parseEntity(signed).parts[0]!;
    assert.ok(signedPart.raw.every((b) => b < 128));
    assert.equal(parseEntity(signed).parts[0]!.parts[0]!.transferEncoding, 'quoted-printable');
  });

  test('opaque signed-data carries the entity inside the CMS', () => {
    const signed = signMessage(message, { signers: [signer('alice')], opaque: true });
    assert.equal(classifySmime(parseEntity(signed)).smimeType, 'signed-data');
    const { result, content } = verifyMessage(signed, trust());
    assert.equal(result.valid, true);
    assert.deepEqual(attachmentOf(content), attachment);
  });

  test('a message stored with bare LFs still verifies', () => {
    const signed = Buffer.from(signMessage(message, { signers: [signer('alice')] }));
    const lf = Buffer.from(signed.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    assert.equal(verifyMessage(lf, trust()).result.valid, true);
  });

  test('a changed body is a digest mismatch; a From: the certificate does not name is a sender mismatch', () => {
    const signed = Buffer.from(signMessage(message, { signers: [signer('alice')] })).toString('latin1');
    const tampered = Buffer.from(signed.replace('attached', 'ATTACHED'), 'latin1');
    assert.deepEqual(verifyMessage(tampered, trust()).result.signers[0]!.reasons, ['digest-mismatch']);
    const spoofed = Buffer.from(signed.replace('From: Alice Example <Alice@Example.com>', 'From: ceo@example.com'), 'latin1');
    assert.deepEqual(verifyMessage(spoofed, trust()).result.signers[0]!.reasons, ['sender-mismatch']);
  });

  test('two signers, two digests: micalg lists both', () => {
    const signed = signMessage(message, { signers: [signer('alice'), { ...signer('dave'), digest: 'sha384' }] });
    assert.match(getHeader(parseEntity(signed).headers, 'content-type')!, /micalg="?sha-256,sha-384/);
    const { result } = verifyMessage(signed, trust());
    assert.equal(result.signers.length, 2);
  });
});

describe('encryption', () => {
  test('the encrypted entity is complete and the outer fields stay outside', () => {
    const encrypted = encryptMessage(message, [{ certificate: cert('bob-3') }]);
    const outer = parseEntity(encrypted);
    assert.equal(classifySmime(outer).smimeType, 'enveloped-data');
    assert.equal(getHeader(outer.headers, 'to'), 'Bob <bob@example.com>');
    assert.ok(!Buffer.from(encrypted).includes('numbers are attached'));
    const { message: decrypted, recipient } = decryptMessage(encrypted, ['bob-1', 'bob-2', 'bob-3'].map((n) => ({ certificate: cert(n as EntityName), key: key(n as EntityName) })));
    assert.equal(recipient.certificate.serialHex, cert('bob-3').serialHex);
    assert.equal(getHeader(parseEntity(decrypted).headers, 'subject'), 'quarterly numbers');
    assert.deepEqual(attachmentOf(decrypted), attachment);
  });

  test('Content-* fields among the outer ones (not last) still go inside, the others stay outside', () => {
    const mixed = Buffer.from('From: a@example.com\r\nContent-Type: text/plain; charset=us-ascii\r\nSubject: mixed order\r\nContent-Transfer-Encoding: 7bit\r\n\r\nhello\r\n');
    const encrypted = encryptMessage(mixed, [{ certificate: cert('bob-1') }]);
    assert.equal(getHeader(parseEntity(encrypted).headers, 'subject'), 'mixed order');
    const { message: decrypted } = decryptMessage(encrypted, [{ certificate: cert('bob-1'), key: key('bob-1') }]);
    assert.equal(Buffer.from(decrypted).toString('latin1'), 'From: a@example.com\r\nSubject: mixed order\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\nhello\r\n');
  });

  test('GCM gives authEnveloped-data; sign-then-encrypt round trips', () => {
    const signed = signMessage(message, { signers: [signer('alice')] });
    const encrypted = encryptMessage(signed, [{ certificate: cert('bob-1') }, { certificate: cert('carol') }], { cipher: 'aes-256-gcm' });
    assert.equal(classifySmime(parseEntity(encrypted)).smimeType, 'authEnveloped-data');
    const { message: inner, contentCipher } = decryptMessage(encrypted, [{ certificate: cert('carol'), key: key('carol') }]);
    assert.equal(contentCipher, OID.aes256GCM);
    const { result, content } = verifyMessage(inner, trust());
    assert.equal(result.valid, true);
    assert.deepEqual(attachmentOf(content), attachment);
  });

  test('without a matching key, decryption says so and picks no key by trial', () => {
    const encrypted = encryptMessage(message, [{ certificate: cert('bob-1') }]);
    assert.throws(
      () => decryptMessage(encrypted, [{ certificate: cert('bob-2'), key: key('bob-2') }]),
      (e) => isKeyfleetError(e, 'KF_CMS_NO_MATCHING_KEY'),
    );
  });

  test('the cipher follows the recipients\' capabilities (RFC 8551 §2.7)', () => {
    const gcm = [{ capabilityID: OID.aes256GCM }, { capabilityID: OID.aes128GCM }, { capabilityID: OID.aes256CBC }];
    const cbcOnly = [{ capabilityID: OID.aes256CBC }, { capabilityID: OID.aes128CBC }];
    assert.equal(chooseContentCipher([gcm, gcm]), 'aes-256-gcm');
    assert.equal(chooseContentCipher([gcm, cbcOnly]), 'aes-256-cbc');
    assert.equal(chooseContentCipher([[{ capabilityID: OID.aes128CBC }]]), 'aes-128-cbc');
    assert.equal(chooseContentCipher([gcm, undefined]), 'aes-256-cbc');
    assert.equal(chooseContentCipher([[{ capabilityID: OID.desEde3CBC }]]), 'aes-256-cbc');
    const encrypted = encryptMessage(message, [{ certificate: cert('bob-1') }], { recipientCapabilities: [gcm] });
    assert.equal(classifySmime(parseEntity(encrypted)).smimeType, 'authEnveloped-data');
  });
});

describe('streaming decryption (large messages)', () => {
  const pair = (n: EntityName) => ({ certificate: cert(n), key: key(n) });
  /** The message with its base64 body replaced by `der`, re-encoded. */
  const withDer = (encrypted: Uint8Array, der: Uint8Array): Buffer => {
    const parsed = parseEntity(encrypted);
    return Buffer.concat([parsed.raw.subarray(0, parsed.bodyStart), encodeBase64(der)]);
  };
  const derOf = (encrypted: Uint8Array): Uint8Array => decodeBase64(parseEntity(encrypted).body);
  const codeOf = (run: () => unknown): string => {
    try {
      run();
    } catch (e) {
      return (e as { code?: string }).code ?? String(e);
    }
    return 'no error';
  };

  test('gives exactly what the whole-DER path gives, for CBC and GCM, small and large, with a key history', () => {
    const big = Buffer.concat([message.subarray(0, message.indexOf('--outer--')), Buffer.from(`--outer\r\nContent-Type: text/plain\r\n\r\n${'line of text\r\n'.repeat(200_000)}--outer--\r\n`)]);
    const history = [pair('bob-1'), pair('bob-2'), pair('bob-3')];
    for (const cipher of ['aes-256-cbc', 'aes-128-gcm'] as const) {
      for (const input of [message, big]) {
        const encrypted = encryptMessage(input, [{ certificate: cert('carol') }, { certificate: cert('bob-2') }], { cipher });
        const whole = decryptMessage(encrypted, history, { streamFrom: Infinity });
        for (const streamFrom of [0, undefined]) {
          const streamed = decryptMessage(encrypted, history, streamFrom === undefined ? {} : { streamFrom });
          assert.deepEqual(Buffer.from(streamed.message), Buffer.from(whole.message), cipher);
          assert.equal(streamed.contentCipher, whole.contentCipher);
          assert.equal(streamed.recipient, whole.recipient);
        }
        assert.equal(getHeader(parseEntity(whole.message).headers, 'subject'), 'quarterly numbers');
      }
    }
  });

  test('BER input (indefinite lengths, a constructed encryptedContent) is decrypted by the whole-DER path', () => {
    const encrypted = encryptMessage(message, [{ certificate: cert('bob-1') }], { cipher: 'aes-256-gcm' });
    const ber = withDer(encrypted, toStreamedBer(derOf(encrypted), 100));
    const expected = decryptMessage(encrypted, [pair('bob-1')]).message;
    assert.deepEqual(Buffer.from(decryptMessage(ber, [pair('bob-1')], { streamFrom: 0 }).message), Buffer.from(expected));
  });

  test('damaged, truncated and extended messages give the errors of the whole-DER path', () => {
    for (const cipher of ['aes-256-cbc', 'aes-256-gcm'] as const) {
      const encrypted = encryptMessage(message, [{ certificate: cert('bob-1') }], { cipher });
      const der = Buffer.from(derOf(encrypted));
      const flipped = Buffer.from(der);
      // GCM: the tag's last octet. CBC: the last octet of the next-to-last block, which flips the padding length.
      flipped[flipped.length - (cipher === 'aes-256-gcm' ? 1 : 17)]! ^= 1;
      const cases = [
        withDer(encrypted, flipped),
        withDer(encrypted, der.subarray(0, der.length - 7)),
        withDer(encrypted, der.subarray(0, 200)),
        withDer(encrypted, Buffer.concat([der, Buffer.from([5, 0])])),
      ];
      for (const input of cases) {
        const expected = codeOf(() => decryptMessage(input, [pair('bob-1')], { streamFrom: Infinity }));
        assert.notEqual(expected, 'no error');
        assert.equal(codeOf(() => decryptMessage(input, [pair('bob-1')], { streamFrom: 0 })), expected, cipher);
      }
      assert.equal(codeOf(() => decryptMessage(encrypted, [pair('bob-2')], { streamFrom: 0 })), 'KF_CMS_NO_MATCHING_KEY');
    }
  });
});

describe('what is not S/MIME', () => {
  test('verify and decrypt refuse plain and mismatched messages with coded errors', () => {
    assert.throws(() => verifyMessage(message, trust()), (e) => isKeyfleetError(e, 'KF_MIME_NOT_SMIME'));
    assert.throws(() => decryptMessage(message, []), (e) => isKeyfleetError(e, 'KF_MIME_NOT_SMIME'));
    const encrypted = encryptMessage(message, [{ certificate: cert('bob-1') }]);
    assert.throws(() => verifyMessage(encrypted, trust()), (e) => isKeyfleetError(e, 'KF_MIME_NOT_SMIME') && /decrypt it first/.test(e.message));
    assert.throws(() => verifyMessage(Buffer.from('\x00\x01garbage'), trust()), (e) => isKeyfleetError(e));
  });

  test('inspect names the kind, signers and recipients without keys', () => {
    const signed = signMessage(message, { signers: [signer('alice')] });
    const info = inspectMessage(signed);
    assert.equal(info.kind, 'signed-multipart');
    assert.equal(info.cms, 'signed-data');
    const encrypted = inspectMessage(encryptMessage(message, [{ certificate: cert('bob-1') }, { certificate: cert('carol') }]));
    assert.equal(encrypted.cms, 'enveloped-data');
    assert.deepEqual((encrypted.recipients as { kind: string }[]).map((r) => r.kind), ['ktri', 'kari']);
  });

  test('the From: address is read from display-name forms', () => {
    const headers = (from: string) => splitMessage(parseEntity(Buffer.from(`From: ${from}\r\n\r\nx`))).outerHeaders;
    assert.equal(senderAddress(headers('"Doe, Jane" <Jane.Doe@Example.org>')), 'jane.doe@example.org');
    assert.equal(senderAddress(headers('jane@example.org (Jane)')), 'jane@example.org');
  });
});
