/**
 * Outlook's managed S/MIME settings as the mail side applies them: the
 * managed values are the defaults of a new message, the user may change
 * them only where UserChangeAllowed is true, and a change that is not
 * allowed is refused with a clear error (never silently ignored).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isKeyfleetError } from '../../src/errors.ts';
import { SETTING_LOCKED, applyPreferences, decideProtection, readOutlookSettings } from '../../src/mail/index.ts';
import { type MailFixture, device, mailFixture, outlookSettings } from './support.ts';

const locked = (detail: RegExp) => (e: unknown) => isKeyfleetError(e) && e.code === SETTING_LOCKED && detail.test(e.detail ?? '');

describe('reading the managed keys', () => {
  test('absent keys take Outlook\'s defaults: S/MIME off, nothing by default, every change allowed', () => {
    const s = readOutlookSettings([]);
    assert.deepEqual(
      [s.smimeEnabled, s.signAllMail, s.encryptAllMail].map((v) => [v.value, v.userChangeAllowed, v.managed]),
      [[false, true, false], [false, true, false], [false, true, false]],
    );
    assert.equal(s.ldapHostName, undefined);
    assert.deepEqual(decideProtection(s), { sign: false, encrypt: false });
  });

  test('managed values and flags are read; wrong types and bad LDAP hosts are ignored and reported', () => {
    const s = readOutlookSettings([
      ...outlookSettings({ smimeEnabled: true, smimeEnabledUserChangeAllowed: false, signAllMail: true, encryptAllMailUserChangeAllowed: false, ldapHostName: 'ldaps://ldap.example.com:636' }),
      { appConfigKey: 'com.microsoft.outlook.Mail.SMIMEEnabled.EncryptAllMail', appConfigKeyType: 'stringType', appConfigKeyValue: 'yes' },
    ]);
    assert.deepEqual([s.smimeEnabled.value, s.smimeEnabled.userChangeAllowed, s.smimeEnabled.managed], [true, false, true]);
    assert.deepEqual([s.signAllMail.value, s.signAllMail.userChangeAllowed], [true, true]);
    assert.deepEqual([s.encryptAllMail.value, s.encryptAllMail.userChangeAllowed, s.encryptAllMail.managed], [false, false, false]);
    assert.equal(s.ldapHostName, 'ldaps://ldap.example.com:636');
    assert.deepEqual(s.ignored, ['com.microsoft.outlook.Mail.SMIMEEnabled.EncryptAllMail']);
    const bad = readOutlookSettings(outlookSettings({ ldapHostName: 'ldap://user:secret@host/dc=x' }));
    assert.equal(bad.ldapHostName, undefined);
    assert.deepEqual(bad.ignored, ['com.microsoft.outlook.Mail.SMIMEEnabled.LDAPHostName']);
  });
});

describe('applying them', () => {
  test('managed sign-all and encrypt-all are the defaults of a new message', () => {
    const s = readOutlookSettings(outlookSettings({ smimeEnabled: true, signAllMail: true, encryptAllMail: true }));
    assert.deepEqual(decideProtection(s), { sign: true, encrypt: true });
  });

  test('an allowed override applies; a locked one is refused in either direction', () => {
    const s = readOutlookSettings(outlookSettings({ smimeEnabled: true, signAllMail: true, signAllMailUserChangeAllowed: false, encryptAllMail: false }));
    assert.deepEqual(decideProtection(s, { encrypt: true }), { sign: true, encrypt: true });
    assert.throws(() => decideProtection(s, { sign: false }), locked(/signAllMail/));
    assert.deepEqual(decideProtection(s, { sign: true }), { sign: true, encrypt: false });
    const off = readOutlookSettings(outlookSettings({ smimeEnabled: true, encryptAllMail: false, encryptAllMailUserChangeAllowed: false }));
    assert.throws(() => decideProtection(off, { encrypt: true }), (e: unknown) => locked(/encryptAllMail/)(e) && /turned encrypting all messages off/.test((e as Error).message));
  });

  test('S/MIME off: asking to sign or encrypt is refused; the user may turn it on only where allowed', () => {
    const s = readOutlookSettings([]);
    assert.throws(() => decideProtection(s, { sign: true }), (e: unknown) => locked(/smime-disabled/)(e) && /turn it on/.test((e as Error).message));
    assert.deepEqual(decideProtection(applyPreferences(s, { smimeEnabled: true }), { sign: true }), { sign: true, encrypt: false });
    const forcedOff = readOutlookSettings(outlookSettings({ smimeEnabled: false, smimeEnabledUserChangeAllowed: false }));
    assert.throws(() => applyPreferences(forcedOff, { smimeEnabled: true }), locked(/smimeEnabled/));
    const forcedOn = readOutlookSettings(outlookSettings({ smimeEnabled: true, smimeEnabledUserChangeAllowed: false, encryptAllMail: true, encryptAllMailUserChangeAllowed: false }));
    assert.throws(() => applyPreferences(forcedOn, { smimeEnabled: false }), locked(/smimeEnabled/));
    assert.throws(() => applyPreferences(forcedOn, { encryptAllMail: false }), locked(/encryptAllMail/));
  });
});

describe('through the mail client and the keystore', () => {
  let f: MailFixture;
  before(async () => {
    f = await mailFixture();
  });
  after(() => f.cleanup());

  test('the configuration the agent stored decides, and a locked per-message change is refused before anything is built', async () => {
    const alice = await device(f, {
      name: 'alice',
      account: 'alice@example.com',
      signing: ['alice-pss'],
      encryption: ['alice'],
      settings: outlookSettings({ smimeEnabled: true, signAllMail: true, signAllMailUserChangeAllowed: false }),
    });
    const sent = await alice.mail.compose({ to: ['bob@example.com'], subject: 's', text: 't' });
    assert.deepEqual([sent.signed, sent.encrypted], [true, false]);
    await assert.rejects(alice.mail.compose({ to: ['bob@example.com'], subject: 's', text: 't' }, { sign: false }), locked(/signAllMail/));
    assert.equal((await alice.mail.settings()).signAllMail.managed, true);

    // The agent receives a new configuration: the next message follows it.
    await alice.keystore.update((d) =>
      d.setAppConfiguration({ bundleId: 'com.microsoft.Office.Outlook', settings: outlookSettings({ smimeEnabled: false, smimeEnabledUserChangeAllowed: false }) }),
    );
    const after = await alice.mail.compose({ to: ['bob@example.com'], subject: 's', text: 't' });
    assert.deepEqual([after.signed, after.encrypted], [false, false]);
    await assert.rejects(alice.mail.compose({ to: ['bob@example.com'], subject: 's', text: 't' }, { sign: true }), locked(/smime-disabled/));
  });

  test('a user preference the managed flags forbid is refused by settings() and compose()', async () => {
    const dev = await device(f, {
      name: 'pref',
      account: 'alice@example.com',
      signing: ['alice-pss'],
      settings: outlookSettings({ smimeEnabled: true, encryptAllMail: true, encryptAllMailUserChangeAllowed: false }),
      preferences: { encryptAllMail: false },
    });
    await assert.rejects(dev.mail.settings(), locked(/encryptAllMail/));
    await assert.rejects(dev.mail.compose({ to: ['bob@example.com'], subject: 's', text: 't' }), locked(/encryptAllMail/));
  });
});
