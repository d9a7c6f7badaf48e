/**
 * Which certificates the mail side uses and keeps: the account's own
 * signing certificate (it must name the account's address and be valid),
 * recipients' certificates from contacts and then from directories (only
 * those that validate), certificates installed from .p7c files made by
 * OpenSSL, the expiry warning, and the plain message compose builds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isKeyfleetError } from '../../src/errors.ts';
import type { Certificate } from '../../src/x509/certificate.ts';
import { decodeBase64, getHeader, parseEntity } from '../../src/smime/mime/index.ts';
import { CERTIFICATE_UNAVAILABLE, type CertificateDirectory, MailClient, RecipientCertificatesMissing, buildMessage, certificatesOfFile } from '../../src/mail/index.ts';
import { keystoreMailKeys } from '../../src/device/mail-keys.ts';
import { runOk } from '../support/exec.ts';
import { type MailFixture, device, mailFixture, outlookSettings, text } from './support.ts';

let f: MailFixture;
before(async () => {
  f = await mailFixture();
});
after(() => f.cleanup());

const unavailable = (detail: RegExp) => (e: unknown) => isKeyfleetError(e) && e.code === CERTIFICATE_UNAVAILABLE && detail.test(e.detail ?? '');
const directory = (name: string, byAddress: Record<string, readonly Certificate[]>): CertificateDirectory => ({ name, find: async (a) => byAddress[a] ?? [] });

describe('the account\'s own certificates', () => {
  test('a signing certificate that does not name the account is "not available"', async () => {
    const d = await device(f, { name: 'wrong-account', account: 'bob@example.com', signing: ['alice-pss'], settings: outlookSettings({ smimeEnabled: true, signAllMail: true }) });
    await assert.rejects(d.mail.compose({ to: ['carol@example.com'], subject: 's', text: 't' }), unavailable(/signing-certificate-missing/));
  });

  test('an expired signing certificate is not used', async () => {
    const d = await device(f, { name: 'expired', account: 'expired@example.com', signing: ['expired'], settings: outlookSettings({ smimeEnabled: true, signAllMail: true }) });
    await assert.rejects(d.mail.compose({ to: ['carol@example.com'], subject: 's', text: 't' }), unavailable(/signing-certificate-missing/));
  });

  test('S/MIME only from the account\'s address', async () => {
    const d = await device(f, { name: 'from', account: 'alice@example.com', signing: ['alice-pss'], settings: outlookSettings({ smimeEnabled: true, signAllMail: true }) });
    await assert.rejects(d.mail.compose({ from: 'mallory@example.com', to: ['bob@example.com'], subject: 's', text: 't' }), unavailable(/sender-not-account/));
  });

  test('a signing certificate within 30 days of expiry is used with a warning', async () => {
    const d = await device(f, { name: 'soon', account: 'alice@example.com', signing: ['alice-pss'] });
    const at = new Date(f.cert('alice-pss').notAfter.getTime() - 10 * 86_400_000 + 60_000);
    const mail = new MailClient({ account: 'alice@example.com', keys: keystoreMailKeys(d.keystore), clock: () => at });
    const sent = await mail.compose({ to: ['bob@example.com'], subject: 's', text: 't' }, { sign: true });
    assert.deepEqual(sent.warnings, ['signing certificate expires in 9 days']);
  });
});

describe('recipients\' certificates', () => {
  test('contacts first, then each directory in order; only certificates that validate are used', async () => {
    const failing: CertificateDirectory = { name: 'ldap', find: async () => Promise.reject(new Error('ldap down')) };
    const d = await device(f, {
      name: 'lookup',
      account: 'alice@example.com',
      signing: ['alice-pss'],
      encryption: ['alice'],
      settings: outlookSettings({ smimeEnabled: true, encryptAllMail: true }),
      directories: [failing, directory('gal', { 'carol@example.com': [f.cert('carol')], 'untrusted@example.com': [f.cert('untrusted')] })],
    });
    await d.mail.installAttachment(f.cert('bob-3').der, 'bob.cer');
    const lookup = await d.mail.findCertificates(['Bob <BOB@example.com>', 'carol@example.com', 'untrusted@example.com']);
    assert.deepEqual([...lookup.found].map(([a, h]) => [a, h.certificate.thumbprint, h.source]), [
      ['bob@example.com', f.cert('bob-3').thumbprint, 'contacts'],
      ['carol@example.com', f.cert('carol').thumbprint, 'gal'],
    ]);
    assert.deepEqual(lookup.missing, ['untrusted@example.com']);
    assert.deepEqual(lookup.errors.map((e) => [e.directory, e.address]), [['ldap', 'carol@example.com'], ['ldap', 'untrusted@example.com']]);

    const err = await d.mail.compose({ to: ['bob@example.com'], cc: ['carol@example.com'], bcc: ['untrusted@example.com'], subject: 's', text: 't' }).catch((e: unknown) => e);
    assert.ok(err instanceof RecipientCertificatesMissing);
    assert.deepEqual(err.recipients, ['untrusted@example.com']);
    const sent = await d.mail.compose({ to: ['bob@example.com'], cc: ['carol@example.com'], subject: 's', text: 't' });
    assert.deepEqual(sent.encryptedTo.map((r) => r.source), ['contacts', 'gal', 'own']);
  });

  test('of several certificates for one address the newest valid one is chosen (bob-3 over the expired bob-1 and older bob-2)', async () => {
    const d = await device(f, { name: 'newest', account: 'alice@example.com', directories: [directory('gal', { 'bob@example.com': [f.cert('bob-1'), f.cert('bob-2'), f.cert('intermediate'), f.cert('bob-3')] })] });
    const lookup = await d.mail.findCertificates(['bob@example.com']);
    assert.equal(lookup.found.get('bob@example.com')?.certificate.thumbprint, f.cert('bob-3').thumbprint);
  });
});

describe('installing from certificate files', () => {
  for (const form of ['DER', 'PEM'] as const) {
    test(`a ${form} .p7c from openssl crl2pkcs7 installs the person's certificate and its CA`, async () => {
      const d = await device(f, { name: `p7c-${form}`, account: 'bob@example.com' });
      const out = join(f.dir, `carol-${form}.p7c`);
      await runOk('openssl', ['crl2pkcs7', '-nocrl', '-certfile', f.pki.entity('carol').certPath, '-certfile', f.pki.intermediate.certPath, '-outform', form, '-out', out]);
      const file = readFileSync(out);
      assert.equal(certificatesOfFile(file).length, 2);
      const r = await d.mail.installAttachment(file, 'carol.p7c');
      assert.deepEqual(r.installed.map((c) => c.thumbprint).sort(), [f.cert('carol').thumbprint, f.cert('intermediate').thumbprint].sort());
      assert.equal((await d.mail.findCertificates(['carol@example.com'])).found.size, 1);
    });
  }

  test('a .p7b with only CA certificates installs nothing and says so', async () => {
    const d = await device(f, { name: 'cas', account: 'bob@example.com' });
    const out = join(f.dir, 'cas.p7b');
    await runOk('openssl', ['crl2pkcs7', '-nocrl', '-certfile', f.pki.intermediate.certPath, '-outform', 'DER', '-out', out]);
    await assert.rejects(d.mail.installAttachment(readFileSync(out), 'cas.p7b'), unavailable(/untrusted/));
  });

  test('install without a contact book, and of a file that is no certificate, are refused', async () => {
    const d = await device(f, { name: 'nobook', account: 'bob@example.com' });
    const mail = new MailClient({ account: 'bob@example.com', keys: keystoreMailKeys(d.keystore) });
    await assert.rejects(mail.installAttachment(f.cert('carol').der, 'c.cer'), (e: unknown) => isKeyfleetError(e, 'KF_USAGE'));
    await assert.rejects(d.mail.installAttachment(Buffer.from('hello'), 'c.cer'), (e: unknown) => isKeyfleetError(e, 'KF_CERT_INVALID'));
  });
});

describe('the plain message', () => {
  test('headers with non-ASCII names, quoted-printable text, base64 attachments, Bcc left out', () => {
    const attachment = Buffer.from(Array.from({ length: 500 }, (_, i) => i & 0xff));
    const msg = buildMessage(
      { from: 'Zoë Example <zoe@example.com>', to: ['Bob <bob@example.com>'], bcc: ['hidden@example.com'], subject: 'Grüße', text: 'line one\nline twö', attachments: [{ fileName: 'data.bin', content: attachment }] },
      { from: 'zoe@example.com', now: new Date('2026-03-01T12:00:00Z') },
    );
    const e = parseEntity(msg);
    assert.equal(getHeader(e.headers, 'from'), '=?utf-8?B?Wm/DqyBFeGFtcGxl?= <zoe@example.com>');
    assert.equal(getHeader(e.headers, 'subject'), '=?utf-8?B?R3LDvMOfZQ==?=');
    assert.equal(getHeader(e.headers, 'date'), 'Sun, 01 Mar 2026 12:00:00 +0000');
    assert.equal(getHeader(e.headers, 'bcc'), undefined);
    assert.doesNotMatch(text(msg), /hidden@example\.com/);
    assert.equal(e.contentType.mediaType, 'multipart/mixed');
    assert.equal(e.parts[0]?.transferEncoding, 'quoted-printable');
    assert.match(text(e.parts[0]!.body), /line one\r\nline tw=C3=B6/);
    assert.deepEqual(Buffer.from(decodeBase64(e.parts[1]!.body)), attachment);
    assert.throws(() => buildMessage({ to: [], subject: 's', text: 't' }, { from: 'a@example.com', now: new Date() }), (err: unknown) => isKeyfleetError(err, 'KF_USAGE'));
    assert.throws(() => buildMessage({ to: ['not an address'], subject: 's', text: 't' }, { from: 'a@example.com', now: new Date() }), (err: unknown) => isKeyfleetError(err, 'KF_USAGE'));
  });
});
