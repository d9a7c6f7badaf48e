import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  isOutlookForIos,
  parseCertificateProfileInput,
  parseImportedPfxProfile,
  parseMobileApp,
  parseScepProfile,
  parseTrustedRootProfile,
  scepProfileToCertificateProfile,
  trustedRootCertificateOf,
  validateScepProfile,
} from '../../src/policy/resources.ts';
import { vppAssetToApp } from '../../src/policy/vpp.ts';
import { policyFixtures } from './fixtures.ts';
import { profilesFor, refusal, scepInput } from './helpers.ts';

test('Outlook for iOS from the App Store, and from a VPP token', () => {
  const store = parseMobileApp({ kind: 'iosStoreApp', displayName: 'Microsoft Outlook', bundleId: 'com.microsoft.Office.Outlook', appStoreUrl: 'https://apps.apple.com/app/id951937596' });
  assert.ok(isOutlookForIos(store));
  const vpp = vppAssetToApp({ adamId: '951937596', bundleId: 'com.microsoft.Office.Outlook', name: 'Microsoft Outlook', deviceAssignable: true, totalCount: 500, assignedCount: 12 }, 'vpp-1');
  assert.deepEqual(parseMobileApp(vpp), vpp);
  assert.equal(vpp.kind, 'iosVppApp');
  assert.ok(isOutlookForIos(vpp));
  assert.ok(!isOutlookForIos(parseMobileApp({ kind: 'iosStoreApp', displayName: 'Teams', bundleId: 'com.microsoft.skype.teams' })));
});

test('mobile apps: bad bundle ids, store URLs, kinds and unknown fields are refused', () => {
  for (const bundleId of ['outlook', 'com..x', 'com.x;DROP TABLE apps', 'com.micro soft.x', '']) {
    assert.throws(() => parseMobileApp({ kind: 'iosStoreApp', displayName: 'X', bundleId }), refusal('schema-violation'), bundleId);
  }
  assert.throws(() => parseMobileApp({ kind: 'iosStoreApp', displayName: 'X', bundleId: 'a.b', appStoreUrl: 'http://apps.apple.com/x' }), refusal('schema-violation'));
  assert.throws(() => parseMobileApp({ kind: 'androidStoreApp', displayName: 'X', bundleId: 'a.b' }), refusal('schema-violation'));
  assert.throws(() => parseMobileApp(null), refusal('schema-violation'));
  assert.throws(() => parseMobileApp({ kind: 'iosVppApp', displayName: 'X', bundleId: 'a.b' }), /vppTokenId is required/);
});

test('trusted-root profile: a CA certificate is accepted, a leaf and garbage are not', async () => {
  const f = await policyFixtures();
  const b64 = Buffer.from(f.ca.cert.der).toString('base64');
  const p = parseTrustedRootProfile({ kind: 'iosTrustedRootCertificate', displayName: 'Contoso Root', certFileName: 'root.cer', trustedRootCertificate: b64 });
  assert.equal(trustedRootCertificateOf(p).thumbprint, f.ca.cert.thumbprint);
  const leaf = Buffer.from(f.encryption.cert.der).toString('base64');
  assert.throws(() => parseTrustedRootProfile({ kind: 'iosTrustedRootCertificate', displayName: 'Leaf', certFileName: 'leaf.cer', trustedRootCertificate: leaf }), refusal('trusted-root-not-ca'));
  assert.throws(
    () => parseTrustedRootProfile({ kind: 'iosTrustedRootCertificate', displayName: 'PEM', certFileName: 'r.pem', trustedRootCertificate: `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----` }),
    refusal('trusted-root-not-base64'),
  );
  assert.throws(
    () => parseTrustedRootProfile({ kind: 'iosTrustedRootCertificate', displayName: 'Junk', certFileName: 'j.cer', trustedRootCertificate: Buffer.from('not a certificate at all').toString('base64') }),
    refusal('trusted-root-not-certificate', 'KF_CERT_INVALID'),
  );
  assert.throws(() => parseTrustedRootProfile({ kind: 'iosTrustedRootCertificate', displayName: 'R', certFileName: '../etc/passwd', trustedRootCertificate: b64 }), refusal('schema-violation'));
});

test('SCEP profile: the seed-style profile is accepted and maps to a CA profile', () => {
  const p = parseScepProfile(scepInput());
  assert.deepEqual(scepProfileToCertificateProfile(p), {
    name: 'S/MIME signing (SCEP)',
    template: 'smimeSigning',
    subjectNameFormat: 'commonNameAsEmail',
    subjectAlternativeNameTypes: ['emailAddress'],
    validity: { value: 1, scale: 'years' },
    keyTypes: ['rsa-2048'],
  });
  const dual = parseScepProfile(scepInput({ keyUsage: ['digitalSignature', 'keyEncipherment'], keySize: 4096, subjectNameFormat: 'custom', subjectNameFormatString: 'CN={{UserName}},E={{EmailAddress}},O=Contoso' }));
  assert.equal(scepProfileToCertificateProfile(dual).template, 'smimeDual');
  assert.deepEqual(scepProfileToCertificateProfile(dual).keyTypes, ['rsa-4096']);
});

test('SCEP profile: subject formats, URLs, ranges and validity are checked', () => {
  assert.throws(() => parseScepProfile(scepInput({ subjectNameFormat: 'custom' })), refusal('scep-subject-format-invalid'));
  assert.throws(() => parseScepProfile(scepInput({ subjectNameFormat: 'custom', subjectNameFormatString: 'CN={{Nickname}}' })), refusal('scep-subject-format-invalid'));
  assert.throws(() => parseScepProfile(scepInput({ subjectNameFormatString: 'CN={{EmailAddress}}' })), refusal('scep-subject-format-invalid'));
  assert.throws(() => parseScepProfile(scepInput({ scepServerUrls: ['https://user:pw@scep.example.test/'] })), refusal('scep-url-invalid'));
  assert.throws(() => parseScepProfile(scepInput({ scepServerUrls: ['https://[::1/'] })), refusal('scep-url-invalid'));
  assert.throws(() => parseScepProfile(scepInput({ scepServerUrls: ['ldap://x/'] })), refusal('schema-violation'));
  assert.throws(() => parseScepProfile(scepInput({ scepServerUrls: [] })), refusal('schema-violation'));
  for (const renewalThresholdPercentage of [0, 100, 20.5]) assert.throws(() => parseScepProfile(scepInput({ renewalThresholdPercentage })), refusal('schema-violation'));
  assert.throws(() => parseScepProfile(scepInput({ keySize: 1024 as 2048 })), refusal('schema-violation'));
  assert.throws(() => parseScepProfile(scepInput({ keyUsage: [] })), refusal('schema-violation'));
  assert.throws(() => parseScepProfile(scepInput({ extendedKeyUsages: [{ name: 'x', objectIdentifier: '1.2.x' }] })), refusal('schema-violation'));
  assert.throws(() => parseScepProfile(scepInput({ certificateValidityPeriodValue: 20, certificateValidityPeriodScale: 'years' })), refusal('scep-validity-invalid'));
});

test('a SCEP profile without a trusted root is refused', async () => {
  const f = await policyFixtures();
  const profiles = profilesFor(f.ca.cert.der);
  const lookup = (id: string) => profiles.get(id);
  await validateScepProfile(scepInput(), lookup);
  await assert.rejects(validateScepProfile(scepInput({ rootCertificateId: 'gone' }), lookup), refusal('scep-profile-without-trusted-root'));
  await assert.rejects(validateScepProfile(scepInput({ rootCertificateId: 'pfx-enc' }), lookup), refusal('scep-profile-without-trusted-root'));
});

test('PKCS-imported profile and the profile dispatcher', () => {
  assert.equal(parseImportedPfxProfile({ kind: 'iosImportedPfxCertificateProfile', displayName: 'Enc', intendedPurpose: 'smimeEncryption' }).intendedPurpose, 'smimeEncryption');
  assert.throws(() => parseImportedPfxProfile({ kind: 'iosImportedPfxCertificateProfile', displayName: 'Enc', intendedPurpose: 'smime' }), refusal('schema-violation'));
  assert.equal(parseCertificateProfileInput(scepInput()).kind, 'iosScepCertificateProfile');
  assert.throws(() => parseCertificateProfileInput({ kind: 'windows81SCEPCertificateProfile' }), refusal('schema-violation'));
});
