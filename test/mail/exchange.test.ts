/**
 * Mail between two devices, each with its own keystore as the agent fills
 * it: Alice (SCEP signing certificate, one encryption certificate) and Bob
 * (a three-certificate encryption history, the oldest expired). Messages
 * are composed, signed and encrypted by one device's MailClient and opened
 * by the other's; OpenSSL checks that what we send is standard S/MIME.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isKeyfleetError } from '../../src/errors.ts';
import { encryptMessage, signMessage } from '../../src/smime/message.ts';
import { getHeader, parseEntity } from '../../src/smime/mime/index.ts';
import { RecipientCertificatesMissing } from '../../src/mail/index.ts';
import { runOk } from '../support/exec.ts';
import { type Device, type MailFixture, device, mailFixture, outlookSettings, text } from './support.ts';

let f: MailFixture;
let alice: Device;
let bob: Device;

const signAndEncrypt = outlookSettings({ smimeEnabled: true, signAllMail: true, encryptAllMail: true });

before(async () => {
  f = await mailFixture();
  alice = await device(f, { name: 'alice', account: 'alice@example.com', signing: ['alice-pss'], encryption: ['alice'], settings: signAndEncrypt });
  bob = await device(f, { name: 'bob', account: 'bob@example.com', encryption: ['bob-1', 'bob-2', 'bob-3'], settings: outlookSettings({ smimeEnabled: true }) });
});
after(() => f.cleanup());

function plain(from: string, to: string, subject: string, date = new Date()): Uint8Array {
  return Buffer.from(
    [`From: ${from}`, `To: ${to}`, `Subject: ${subject}`, `Date: ${date.toUTCString()}`, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=us-ascii', '', 'numbers attached', ''].join('\r\n'),
  );
}

describe('between two keystores', () => {
  test('encrypting to an unknown recipient is refused, naming the recipient', async () => {
    const err = await alice.mail.compose({ to: ['Bob <bob@example.com>', 'carol@example.com'], subject: 'hi', text: 'x' }).catch((e: unknown) => e);
    assert.ok(err instanceof RecipientCertificatesMissing, String(err));
    assert.deepEqual(err.recipients, ['bob@example.com', 'carol@example.com']);
    assert.match(err.message, /bob@example\.com, carol@example\.com/);
  });

  test('a .cer attachment installs Bob\'s current certificate into Alice\'s contacts (its CA known from her own chain)', async () => {
    const r = await alice.mail.installAttachment(f.cert('bob-3').der, 'bob.cer');
    assert.deepEqual(r.installed.map((c) => c.thumbprint), [f.cert('bob-3').thumbprint]);
    const again = await alice.mail.installAttachment(Buffer.from(f.pki.entity('bob-3').certPem), 'bob.pem');
    assert.deepEqual(again.installed, []);
    assert.equal(again.alreadyKnown.length, 1);
    const contacts = (await alice.keystore.snapshot()).contacts;
    assert.deepEqual(contacts.map((c) => [c.certificate.thumbprint, c.source]), [[f.cert('bob-3').thumbprint, 'attachment']]);
  });

  test('an expired or untrusted certificate in an attachment is not installed', async () => {
    await assert.rejects(alice.mail.installAttachment(f.cert('bob-1').der, 'old.cer'), (e: unknown) => isKeyfleetError(e) && /expired/.test(e.message));
    await assert.rejects(alice.mail.installAttachment(f.cert('untrusted').der, 'u.crt'), (e: unknown) => isKeyfleetError(e) && /untrusted-chain/.test(e.message));
    await assert.rejects(alice.mail.installAttachment(f.cert('carol').der, 'carol.pfx'), (e: unknown) => isKeyfleetError(e, 'KF_USAGE'));
  });

  test('signed and encrypted by default (managed settings) from Alice; Bob decrypts with his newest key and verifies her', async () => {
    const sent = await alice.mail.compose({ to: ['Bob <bob@example.com>'], subject: 'Quartalszahlen für Bob', text: 'Grüße\nAlice' });
    assert.equal(sent.signed, true);
    assert.equal(sent.encrypted, true);
    assert.deepEqual(sent.encryptedTo.map((r) => [r.address, r.thumbprint]), [
      ['bob@example.com', f.cert('bob-3').thumbprint],
      ['alice@example.com', f.cert('alice').thumbprint],
    ]);
    const opened = await bob.mail.open(sent.message);
    assert.equal(opened.outcome, 'verified');
    assert.equal(opened.encrypted, true);
    assert.equal(opened.decryptedWith?.thumbprint, f.cert('bob-3').thumbprint);
    assert.equal(opened.signature?.signers[0]?.address, 'alice@example.com');
    assert.equal(opened.signature?.signers[0]?.thumbprint, f.cert('alice-pss').thumbprint);
    assert.deepEqual(opened.signature?.signers[0]?.reasons, []);
    const inner = parseEntity(opened.message);
    assert.equal(getHeader(inner.headers, 'subject'), '=?utf-8?B?UXVhcnRhbHN6YWhsZW4gZsO8ciBCb2I=?=');
    assert.match(text(opened.message), /Gr=C3=BC=C3=9Fe\r\nAlice/);
    // The sent copy stays readable on Alice's device (encrypted to herself too).
    assert.equal((await alice.mail.open(sent.message)).decryptedWith?.thumbprint, f.cert('alice').thumbprint);
  });

  test('OpenSSL decrypts what Alice sends with Bob\'s key and verifies her signature', async () => {
    const sent = await alice.mail.compose({ to: ['bob@example.com'], subject: 'interop', text: 'for openssl' });
    const file = join(f.dir, 'sent.eml');
    writeFileSync(file, sent.message);
    const decrypted = await runOk('openssl', ['cms', '-decrypt', '-in', file, '-recip', f.pki.entity('bob-3').certPath, '-inkey', f.pki.entity('bob-3').keyPath]);
    const signedFile = join(f.dir, 'signed.eml');
    writeFileSync(signedFile, decrypted.stdout);
    const verified = await runOk('openssl', ['cms', '-verify', '-in', signedFile, '-CAfile', f.pki.root.certPath, '-purpose', 'smimesign']);
    assert.match(verified.stdout.toString(), /for openssl/);
  });

  test('a message encrypted two years ago to the oldest of Bob\'s three certificates still opens', async () => {
    const twoYearsAgo = new Date(Date.now() - 2 * 365 * 86_400_000);
    const old = encryptMessage(plain('alice@example.com', 'bob@example.com', 'from the archive', twoYearsAgo), [{ certificate: f.cert('bob-1') }]);
    const opened = await bob.mail.open(old);
    assert.equal(opened.outcome, 'decrypted');
    assert.equal(opened.decryptedWith?.thumbprint, f.cert('bob-1').thumbprint);
    assert.ok(opened.decryptedWith!.notAfter < new Date(), 'bob-1 should have expired');
    assert.match(text(opened.message), /numbers attached/);
  });

  test('Bob installs Alice\'s certificates from her signed message, then can encrypt back to her', async () => {
    const bobSender = await bob.mail.compose({ to: ['alice@example.com'], subject: 'x', text: 'x' }, { encrypt: true }).catch((e: unknown) => e);
    assert.ok(bobSender instanceof RecipientCertificatesMissing);
    assert.deepEqual(bobSender.recipients, ['alice@example.com']);

    // Encrypt-all is managed on but not locked (UserChangeAllowed defaults to true): Alice may send this one signed only.
    const signedOnly = await alice.mail.compose({ to: ['bob@example.com'], subject: 'my certificate', text: 'here it is' }, { encrypt: false });
    assert.deepEqual([signedOnly.signed, signedOnly.encrypted], [true, false]);
    const installed = await bob.mail.installFromMessage(signedOnly.message);
    const thumbprints = installed.installed.map((c) => c.thumbprint).sort();
    assert.deepEqual(thumbprints, [f.cert('alice').thumbprint, f.cert('alice-pss').thumbprint, f.cert('intermediate').thumbprint].sort());
    assert.ok((await bob.keystore.snapshot()).contacts.every((c) => c.source === 'signed-message'));

    const reply = await bob.mail.compose({ to: ['alice@example.com'], subject: 'Re: my certificate', text: 'got it' }, { encrypt: true });
    assert.deepEqual(reply.encryptedTo.map((r) => r.thumbprint), [f.cert('alice').thumbprint, f.cert('bob-3').thumbprint]);
    const opened = await alice.mail.open(reply.message);
    assert.equal(opened.outcome, 'decrypted');
    assert.match(text(opened.message), /got it/);
  });
});

describe('signatures that do not verify', () => {
  test('a signer under an untrusted root is reported, and its certificates are not installed', async () => {
    const msg = signMessage(plain('untrusted@example.com', 'bob@example.com', 'trust me'), {
      signers: [{ certificate: f.cert('untrusted'), key: f.key('untrusted'), chain: [f.cert('untrusted-root')] }],
    });
    const opened = await bob.mail.open(msg);
    assert.equal(opened.outcome, 'signature-invalid');
    assert.equal(opened.signature?.valid, false);
    assert.equal(opened.signature?.signers[0]?.address, 'untrusted@example.com');
    assert.ok(opened.signature?.signers[0]?.reasons.includes('untrusted-chain'));
    await assert.rejects(bob.mail.installFromMessage(msg), (e: unknown) => isKeyfleetError(e) && e.detail === 'signature-invalid');
  });

  test('a tampered body is reported as a digest mismatch, also inside an encrypted message', async () => {
    const sent = await alice.mail.compose({ to: ['bob@example.com'], subject: 'pay 100', text: 'pay 100 EUR' }, { encrypt: false });
    const tampered = Buffer.from(text(sent.message).replace('pay 100 EUR', 'pay 900 EUR'));
    const opened = await bob.mail.open(tampered);
    assert.equal(opened.outcome, 'signature-invalid');
    assert.deepEqual(opened.signature?.signers[0]?.reasons, ['digest-mismatch']);

    const wrapped = encryptMessage(tampered, [{ certificate: f.cert('bob-2') }]);
    const both = await bob.mail.open(wrapped);
    assert.equal(both.decryptedWith?.thumbprint, f.cert('bob-2').thumbprint);
    assert.equal(both.outcome, 'signature-invalid');
  });

  test('a message for none of Bob\'s keys fails with the engine\'s KF_CMS_NO_MATCHING_KEY', async () => {
    const other = encryptMessage(plain('x@example.com', 'carol@example.com', 'not for bob'), [{ certificate: f.cert('carol') }]);
    await assert.rejects(bob.mail.open(other), (e: unknown) => isKeyfleetError(e, 'KF_CMS_NO_MATCHING_KEY'));
  });
});
