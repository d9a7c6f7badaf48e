import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { type AppConfigSetting, compilePolicy, encodedSettingXml, isKeyfleetKey, outlookSmimeKeys, settingsToPlist } from '../../src/policy/compile.ts';
import { refusal, seedPolicy, without } from './helpers.ts';

const hasPlistlib = spawnSync('python3', ['-c', 'import plistlib'], { stdio: 'ignore' }).status === 0;

/** Parses a plist with Python's plistlib (a real plist reader) and returns its root as JSON. */
function plistlib(xml: string): unknown {
  const r = spawnSync('python3', ['-c', 'import sys, json, plistlib; print(json.dumps(plistlib.loads(sys.stdin.buffer.read())))'], { input: xml });
  assert.equal(r.status, 0, r.stderr.toString());
  return JSON.parse(r.stdout.toString());
}

/** A small structural check that needs no peer: header, one root dict, key/value pairs in order. */
function tinyPlistRead(xml: string): [string, string][] {
  assert.match(xml, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<!DOCTYPE plist PUBLIC "-\/\/Apple\/\/DTD PLIST 1\.0\/\/EN" "http:\/\/www\.apple\.com\/DTDs\/PropertyList-1\.0\.dtd">\n<plist version="1\.0">\n<dict>\n/);
  assert.ok(xml.endsWith('</dict>\n</plist>\n'));
  const body = xml.slice(xml.indexOf('<dict>') + 7, xml.lastIndexOf('</dict>'));
  const pairs: [string, string][] = [];
  const re = /\t<key>([^<]*)<\/key>\n\t(<true\/>|<false\/>|<string>[^<]*<\/string>|<integer>[^<]*<\/integer>)\n/gy;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(body)) !== null) {
    pairs.push([m[1]!, m[2]!]);
    end = re.lastIndex;
  }
  assert.equal(end, body.length, 'nothing but key/value pairs in the dict');
  return pairs;
}

test("the seed's policy compiles to Outlook's keys plus Keyfleet's own", () => {
  const { settings, plist } = compilePolicy(seedPolicy({ signAllMail: true, signAllMailUserChangeAllowed: false, ldapHostName: 'ldaps://ldap.contoso.com:636' }));
  assert.deepEqual(settings, [
    { appConfigKey: 'com.microsoft.outlook.Mail.SMIMEEnabled', appConfigKeyType: 'booleanType', appConfigKeyValue: 'true' },
    { appConfigKey: 'com.microsoft.outlook.Mail.SMIMEEnabled.SignAllMail', appConfigKeyType: 'booleanType', appConfigKeyValue: 'true' },
    { appConfigKey: 'com.microsoft.outlook.Mail.SMIMEEnabled.SignAllMail.UserChangeAllowed', appConfigKeyType: 'booleanType', appConfigKeyValue: 'false' },
    { appConfigKey: 'com.microsoft.outlook.Mail.SMIMEEnabled.LDAPHostName', appConfigKeyType: 'stringType', appConfigKeyValue: 'ldaps://ldap.contoso.com:636' },
    { appConfigKey: 'com.keyfleet.smime.DeployCertificates', appConfigKeyType: 'booleanType', appConfigKeyValue: 'true' },
    { appConfigKey: 'com.keyfleet.smime.SigningCertificateProfileType', appConfigKeyType: 'stringType', appConfigKeyValue: 'scep' },
    { appConfigKey: 'com.keyfleet.smime.SigningCertificateProfileId', appConfigKeyType: 'stringType', appConfigKeyValue: 'scep-sign' },
    { appConfigKey: 'com.keyfleet.smime.EncryptionCertificateProfileType', appConfigKeyType: 'stringType', appConfigKeyValue: 'pkcsImported' },
    { appConfigKey: 'com.keyfleet.smime.EncryptionCertificateProfileId', appConfigKeyType: 'stringType', appConfigKeyValue: 'pfx-enc' },
    { appConfigKey: 'com.keyfleet.smime.EndUserNotification', appConfigKeyType: 'stringType', appConfigKeyValue: 'companyPortal' },
  ]);
  assert.deepEqual(
    tinyPlistRead(plist).map(([k]) => k),
    settings.map((s) => s.appConfigKey),
  );
  assert.equal(tinyPlistRead(plist)[2]![1], '<false/>');
  assert.ok(settings.filter((s) => isKeyfleetKey(s.appConfigKey)).every((s) => !s.appConfigKey.startsWith('com.microsoft.')));
  assert.equal(Buffer.from(encodedSettingXml(plist), 'base64').toString('utf8'), plist);
});

test('only the keys the administrator set are emitted', () => {
  const minimal = without(seedPolicy({ deploySmimeCertificates: undefined }), 'deploySmimeCertificates', 'signingCertificateProfileType', 'signingCertificateProfileId', 'encryptionCertificateProfileType', 'encryptionCertificateProfileId', 'endUserNotification');
  assert.deepEqual(compilePolicy(minimal).settings, [{ appConfigKey: 'com.microsoft.outlook.Mail.SMIMEEnabled', appConfigKeyType: 'booleanType', appConfigKeyValue: 'true' }]);
  const off = compilePolicy({ ...minimal, enableSmime: false, encryptAllMail: false });
  assert.deepEqual(off.settings.map((s) => [s.appConfigKey, s.appConfigKeyValue]), [
    ['com.microsoft.outlook.Mail.SMIMEEnabled', 'false'],
    ['com.microsoft.outlook.Mail.SMIMEEnabled.EncryptAllMail', 'false'],
  ]);
  // The defaults table is REFERENCE.md's.
  assert.deepEqual(outlookSmimeKeys.map((k) => [k.key.replace('com.microsoft.outlook.Mail.', ''), k.default]), [
    ['SMIMEEnabled', false], ['SMIMEEnabled.UserChangeAllowed', true], ['SMIMEEnabled.EncryptAllMail', false], ['SMIMEEnabled.EncryptAllMail.UserChangeAllowed', true],
    ['SMIMEEnabled.SignAllMail', false], ['SMIMEEnabled.SignAllMail.UserChangeAllowed', true], ['SMIMEEnabled.LDAPHostName', undefined],
  ]);
});

test('the plist is one a real plist reader parses to the same values', { skip: !hasPlistlib && 'python3 plistlib is not available' }, () => {
  const policy = seedPolicy({ encryptAllMail: true, encryptAllMailUserChangeAllowed: true, enableSmimeUserChangeAllowed: false, ldapHostName: 'ldap.contoso.com' });
  const { settings, plist } = compilePolicy(policy);
  const expected = Object.fromEntries(settings.map((s) => [s.appConfigKey, s.appConfigKeyType === 'booleanType' ? s.appConfigKeyValue === 'true' : s.appConfigKeyValue]));
  assert.deepEqual(plistlib(plist), expected);
});

test('strings are XML-escaped; characters XML cannot carry are refused', { skip: !hasPlistlib && 'python3 plistlib is not available' }, () => {
  const nasty = `a & b < c > d " e ' f ]]> <!-- x --> <![CDATA[ y ]]> é 𝄞 \t\n`;
  const settings: AppConfigSetting[] = [
    { appConfigKey: 'com.example.<key>&', appConfigKeyType: 'stringType', appConfigKeyValue: nasty },
    { appConfigKey: 'com.example.token', appConfigKeyType: 'tokenType', appConfigKeyValue: '{{mail}}' },
    { appConfigKey: 'com.example.count', appConfigKeyType: 'integerType', appConfigKeyValue: '-42' },
  ];
  assert.deepEqual(plistlib(settingsToPlist(settings)), { 'com.example.<key>&': nasty, 'com.example.token': '{{mail}}', 'com.example.count': -42 });
  assert.throws(() => settingsToPlist([{ appConfigKey: 'k', appConfigKeyType: 'stringType', appConfigKeyValue: 'bell\u0007' }]), refusal('schema-violation'));
  assert.throws(() => settingsToPlist([{ appConfigKey: 'k', appConfigKeyType: 'stringType', appConfigKeyValue: 'lone \ud800 surrogate' }]), refusal('schema-violation'));
  assert.throws(() => settingsToPlist([{ appConfigKey: 'k', appConfigKeyType: 'booleanType', appConfigKeyValue: 'yes' }]), refusal('schema-violation'));
  assert.throws(() => settingsToPlist([{ appConfigKey: 'k', appConfigKeyType: 'integerType', appConfigKeyValue: '1e3' }]), refusal('schema-violation'));
});
