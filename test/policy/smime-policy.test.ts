import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkLdapHostName, validatePolicy } from '../../src/policy/smime-policy.ts';
import { policyFixtures } from './fixtures.ts';
import { lookups, refusal, seedPolicy, without } from './helpers.ts';

async function setup() {
  const f = await policyFixtures();
  return { plain: lookups(f.ca.cert.der), derived: lookups(f.ca.cert.der, 'purebred') };
}

test("the seed's policy (steps 2–12) is accepted as is", async () => {
  const { plain } = await setup();
  const policy = seedPolicy({ signAllMail: true, signAllMailUserChangeAllowed: false, ldapHostName: 'ldaps://ldap.contoso.com:636' });
  assert.deepEqual(await validatePolicy(policy, plain), policy);
  // Every signing and encryption choice the seed offers.
  await validatePolicy(seedPolicy({ signingCertificateProfileType: 'pkcsImported', signingCertificateProfileId: 'pfx-sign' }), plain);
  await validatePolicy(seedPolicy({ endUserNotification: 'email' }), plain);
  await validatePolicy(without(seedPolicy(), 'encryptionCertificateProfileType', 'encryptionCertificateProfileId'), plain);
  await validatePolicy(without(seedPolicy(), 'endUserNotification'), plain);
  // S/MIME on, certificates delivered by other means (users mail them to themselves).
  await validatePolicy(without(seedPolicy({ deploySmimeCertificates: false }), 'signingCertificateProfileType', 'signingCertificateProfileId', 'encryptionCertificateProfileType', 'encryptionCertificateProfileId', 'endUserNotification'), plain);
});

test('derived credentials need a configured issuer', async () => {
  const { plain, derived } = await setup();
  const signing = without(seedPolicy({ signingCertificateProfileType: 'derivedCredential' }), 'signingCertificateProfileId');
  const encryption = without(seedPolicy({ encryptionCertificateProfileType: 'derivedCredential' }), 'encryptionCertificateProfileId');
  await assert.rejects(validatePolicy(signing, plain), refusal('derived-credential-issuer-not-configured'));
  await assert.rejects(validatePolicy(encryption, plain), refusal('derived-credential-issuer-not-configured'));
  await validatePolicy(signing, derived);
  await validatePolicy(encryption, derived);
  await assert.rejects(validatePolicy(seedPolicy({ signingCertificateProfileType: 'derivedCredential' }), derived), refusal('profile-id-not-applicable'));
});

test('invalid combinations are refused, each with its own detail', async () => {
  const { plain } = await setup();
  const cases: [string, unknown, Parameters<typeof refusal>[0]][] = [
    ['certificate deployment without S/MIME', seedPolicy({ enableSmime: false }), 'certificate-deployment-without-smime'],
    ['sign all without S/MIME', { ...without(seedPolicy({ enableSmime: false, deploySmimeCertificates: false }), 'signingCertificateProfileType', 'signingCertificateProfileId', 'encryptionCertificateProfileType', 'encryptionCertificateProfileId', 'endUserNotification'), signAllMail: true }, 'smime-setting-without-smime'],
    ['profile types without deployment', seedPolicy({ deploySmimeCertificates: false }), 'certificate-settings-without-deployment'],
    ['deployment without profile types', without(seedPolicy(), 'signingCertificateProfileType', 'signingCertificateProfileId', 'encryptionCertificateProfileType', 'encryptionCertificateProfileId'), 'deployment-without-certificate-profiles'],
    ['a non-iOS platform', seedPolicy({ platform: 'android' }), 'platform-not-ios'],
    ['app protection (managed apps) enrollment', seedPolicy({ deviceEnrollmentType: 'managedApps' }), 'enrollment-type-not-managed-devices'],
    ['a non-Outlook app', seedPolicy({ targetedMobileApps: ['app-teams'] }), 'app-not-outlook'],
    ['a missing app', seedPolicy({ targetedMobileApps: ['app-gone'] }), 'app-missing'],
    ['two apps', seedPolicy({ targetedMobileApps: ['app-outlook', 'app-teams'] }), 'schema-violation'],
    ['a SCEP type without its profile', without(seedPolicy(), 'signingCertificateProfileId'), 'profile-id-required'],
    ['a profile id without a type', without(seedPolicy(), 'encryptionCertificateProfileType'), 'profile-id-not-applicable'],
    ['a missing signing profile', seedPolicy({ signingCertificateProfileId: 'gone' }), 'profile-missing'],
    ['a missing encryption profile', seedPolicy({ encryptionCertificateProfileId: 'gone' }), 'profile-missing'],
    ['a PFX profile given as SCEP', seedPolicy({ signingCertificateProfileId: 'pfx-sign' }), 'profile-wrong-kind'],
    ['a SCEP profile given as imported', seedPolicy({ encryptionCertificateProfileId: 'scep-sign' }), 'profile-wrong-kind'],
    ['a trusted root given as SCEP', seedPolicy({ signingCertificateProfileId: 'root' }), 'profile-wrong-kind'],
    ['an encryption-only SCEP profile for signing', seedPolicy({ signingCertificateProfileId: 'scep-encrypt-only' }), 'profile-wrong-purpose'],
    ['a signing PFX profile for encryption', seedPolicy({ encryptionCertificateProfileId: 'pfx-sign' }), 'profile-wrong-purpose'],
    ['an encryption PFX profile for signing', seedPolicy({ signingCertificateProfileType: 'pkcsImported', signingCertificateProfileId: 'pfx-enc' }), 'profile-wrong-purpose'],
    ['a SCEP profile whose trusted root is gone', seedPolicy({ signingCertificateProfileId: 'scep-no-root' }), 'scep-profile-without-trusted-root'],
    ['a SCEP profile whose root is not a trusted-root profile', seedPolicy({ signingCertificateProfileId: 'scep-root-is-pfx' }), 'scep-profile-without-trusted-root'],
    ['SCEP for encryption', seedPolicy({ encryptionCertificateProfileType: 'scep' }), 'schema-violation'],
    ['a bad LDAP host', seedPolicy({ ldapHostName: 'ldap://user:pw@ldap.contoso.com' }), 'ldap-host-invalid'],
    ['an unknown field', seedPolicy({ SMIMEEnabled: true }), 'schema-violation'],
    ['SQL in a name', seedPolicy({ displayName: "x'); DROP TABLE policies;--\u0000" }), 'schema-violation'],
    ['not an object', 'policy', 'schema-violation'],
  ];
  for (const [what, policy, detail] of cases) await assert.rejects(validatePolicy(policy, plain), refusal(detail), what);
});

test('SQL metacharacters in free text are just text', async () => {
  const { plain } = await setup();
  const name = "Robert'); DROP TABLE policies;-- \"%_\\";
  assert.equal((await validatePolicy(seedPolicy({ displayName: name, description: name }), plain)).displayName, name);
});

test('ldapHostName: ldap://, ldaps:// or a host, optional port, nothing else', () => {
  for (const ok of ['ldap.contoso.com', 'ldap.contoso.com:389', 'ldap://ldap.contoso.com', 'ldaps://ldap.contoso.com:636', 'ldaps://ldap.contoso.com/', '10.0.0.5:3268', 'ldap://[2001:db8::1]:389', 'dc01']) {
    assert.doesNotThrow(() => checkLdapHostName(ok), ok);
  }
  for (const bad of ['http://ldap.contoso.com', 'ldap://', 'ldap.contoso.com:0', 'ldap.contoso.com:65536', 'ldap://ldap.contoso.com/dc=contoso,dc=com', 'ldap://u@ldap.contoso.com', 'ldap://[zz::1]', '-ldap.contoso.com', 'ldap contoso', `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}`]) {
    assert.throws(() => checkLdapHostName(bad), refusal('ldap-host-invalid'), bad);
  }
});
