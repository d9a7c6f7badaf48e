import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { OID } from '../../src/asn1/oids.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { resolveNames } from '../../src/ca/issuance.ts';
import { buildSubject, buildSubjectAltNames, parseSubjectFormat, subjectFormatString } from '../../src/ca/subject-name.ts';
import { addValidity, checkKeyAllowed, defaultProfile, parseCertificateProfile, templates } from '../../src/ca/templates.ts';

const user = {
  userName: 'Alice Example',
  userPrincipalName: 'alice@corp.example.test',
  emailAddress: 'alice@example.test',
  displayName: 'Alice E.',
  deviceId: '0f1e2d3c-aaaa-bbbb-cccc-1234567890ab',
  deviceName: "Alice's iPhone",
};

const usage = (e: unknown) => isKeyfleetError(e, 'KF_USAGE');

describe('subject name formats', () => {
  test('the Intune formats give the expected subjects', () => {
    const text = (format: Parameters<typeof subjectFormatString>[0], custom?: string) => buildSubject(subjectFormatString(format, custom), user).text;
    assert.equal(text('commonName'), 'CN=Alice Example');
    assert.equal(text('commonNameAsEmail'), 'CN=alice@example.test');
    // RFC 4514 order in the format (CN first) → encoded most significant first (E, then CN).
    assert.equal(text('commonNameIncludingEmail'), 'emailAddress=alice@example.test, CN=Alice Example');
    assert.equal(text('custom', 'CN={{AAD_Device_ID}},OU={{DeviceName}},O=Contoso,C=DE'), "C=DE, O=Contoso, OU=Alice's iPhone, CN=0f1e2d3c-aaaa-bbbb-cccc-1234567890ab");
    assert.equal(text('custom', 'CN={{UserName}} ({{UserPrincipalName}}),E={{EmailAddress}}'), 'emailAddress=alice@example.test, CN=Alice Example (alice@corp.example.test)');
    assert.equal(text('custom', 'CN={{displayname}}'), 'CN=Alice E.', 'variables are case-insensitive');
    assert.equal(text('custom', 'CN=Smith\\, John'), 'CN=Smith\\, John', 'escaped comma is literal');
  });

  test('values with commas come from attributes, not from the format, so they cannot add RDNs', () => {
    const s = buildSubject('CN={{UserName}}', { userName: 'Doe, Jane,O=Evil' });
    assert.equal(s.name.rdns.length, 1);
    assert.equal(s.name.rdns[0]![0]!.value, 'Doe, Jane,O=Evil');
  });

  test('emailAddress is an IA5String and the rest UTF8String', () => {
    const s = buildSubject('CN={{UserName}},E={{EmailAddress}}', { userName: 'Zoë', emailAddress: 'zoe@example.test' });
    const der = Buffer.from(s.der);
    assert.ok(der.includes(Buffer.from([0x16, 16, ...Buffer.from('zoe@example.test')])));
    assert.ok(der.includes(Buffer.concat([Buffer.from([0x0c, 4]), Buffer.from('Zoë')])));
  });

  test('unknown variables, types and malformed formats are coded errors when the profile is checked', () => {
    assert.throws(() => parseSubjectFormat('CN={{Department}}'), (e) => usage(e) && /\{\{Department\}\}/.test((e as Error).message));
    assert.throws(() => parseSubjectFormat('XYZ=foo'), usage);
    assert.throws(() => parseSubjectFormat('CN={{EmailAddress'), usage);
    assert.throws(() => parseSubjectFormat('CN=a}}'), usage);
    assert.throws(() => parseSubjectFormat('CN'), usage);
    assert.throws(() => parseSubjectFormat('CN=a+OU=b'), usage);
    assert.throws(() => subjectFormatString('custom'), usage);
    assert.throws(() => defaultProfile('smimeSigning', { subjectNameFormat: 'custom', subjectNameFormatString: 'CN={{Nope}}' }), usage);
  });

  test('a variable the user has no value for is a coded error at issuance', () => {
    assert.throws(() => buildSubject('CN={{DeviceName}}', { emailAddress: 'a@b.test' }), (e) => usage(e) && /DeviceName/.test((e as Error).message));
    assert.throws(() => buildSubject('C={{UserName}}', user), usage, 'country must be two letters');
    assert.throws(() => buildSubject('E={{UserName}}', user), usage, 'email attribute must be an address');
  });

  test('SAN email and UPN from attributes; missing or non-ASCII values refused', () => {
    assert.deepEqual(buildSubjectAltNames(['emailAddress', 'userPrincipalName'], user), { emails: ['alice@example.test'], upns: ['alice@corp.example.test'] });
    assert.deepEqual(buildSubjectAltNames([], user), { emails: [], upns: [] });
    assert.throws(() => buildSubjectAltNames(['emailAddress'], { userName: 'x' }), usage);
    assert.throws(() => buildSubjectAltNames(['userPrincipalName'], { emailAddress: 'a@b.test' }), usage);
    assert.throws(() => buildSubjectAltNames(['emailAddress'], { emailAddress: 'jürgen@example.test' }), usage);
    const names = resolveNames(defaultProfile('smimeSigning', { subjectNameFormat: 'commonName' }), user);
    assert.equal(names.subjectText, 'CN=Alice Example');
    assert.deepEqual(names.emails, ['alice@example.test']);
  });
});

describe('templates and profiles', () => {
  test('key usages per template and key family; emailProtection for S/MIME', () => {
    assert.deepEqual(templates.smimeSigning.keyUsage('ec'), ['digitalSignature', 'nonRepudiation']);
    assert.deepEqual(templates.smimeEncryption.keyUsage('rsa'), ['keyEncipherment']);
    assert.deepEqual(templates.smimeEncryption.keyUsage('ec'), ['keyAgreement']);
    assert.deepEqual(templates.smimeDual.keyUsage('rsa'), ['digitalSignature', 'nonRepudiation', 'keyEncipherment']);
    for (const t of ['smimeSigning', 'smimeEncryption', 'smimeDual'] as const) assert.deepEqual(templates[t].extKeyUsage, [OID.emailProtection]);
    assert.deepEqual(templates.deviceIdentity.extKeyUsage, [OID.clientAuth]);
    assert.deepEqual(templates.ocspSigning.extKeyUsage, [OID.ocspSigning]);
  });

  test('key policy: RSA 2048/3072/4096 and P-256/P-384 only, as the profile allows', () => {
    const all = defaultProfile('smimeSigning', { name: 'p' });
    assert.equal(checkKeyAllowed(all, generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey), 'rsa-2048');
    assert.equal(checkKeyAllowed(all, generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey), 'p-384');
    const refuse = (k: Parameters<typeof checkKeyAllowed>[1], what: RegExp) =>
      assert.throws(() => checkKeyAllowed(all, k), (e) => isKeyfleetError(e, 'KF_KEY_INVALID') && /profile "p"/.test((e as Error).message) && what.test((e as Error).message));
    refuse(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey, /RSA-1024/);
    refuse(generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey, /secp256k1/);
    refuse(generateKeyPairSync('ed25519').publicKey, /ed25519/);
  });

  test('parseCertificateProfile checks stored JSON field by field', () => {
    const ok = parseCertificateProfile({
      name: 'default',
      template: 'smimeSigning',
      subjectNameFormat: 'custom',
      subjectNameFormatString: 'CN={{EmailAddress}}',
      subjectAlternativeNameTypes: ['emailAddress'],
      validity: { value: 2, scale: 'years' },
      keyTypes: ['rsa-2048', 'p-256'],
    });
    assert.equal(ok.template, 'smimeSigning');
    const base = { name: 'x', template: 'smimeSigning', subjectNameFormat: 'commonNameAsEmail', subjectAlternativeNameTypes: [], validity: { value: 1, scale: 'years' }, keyTypes: ['p-256'] };
    for (const bad of [
      null,
      [],
      { ...base, template: 'codeSigning' },
      { ...base, validity: { value: 0, scale: 'days' } },
      { ...base, validity: { value: 11, scale: 'years' } },
      { ...base, validity: { value: 1.5, scale: 'years' } },
      { ...base, keyTypes: ['rsa-1024'] },
      { ...base, keyTypes: [] },
      { ...base, subjectAlternativeNameTypes: ['dns'] },
      { ...base, surprise: true },
      { ...base, subjectNameFormat: 'custom' },
      { ...base, certificatePolicies: ['not an oid'] },
    ]) {
      assert.throws(() => parseCertificateProfile(bad), usage, JSON.stringify(bad));
    }
  });

  test('validity in days, months and years; month ends clamp', () => {
    const start = new Date(Date.UTC(2025, 0, 31, 12));
    assert.equal(addValidity(start, { value: 10, scale: 'days' }).toISOString(), '2025-02-10T12:00:00.000Z');
    assert.equal(addValidity(start, { value: 1, scale: 'months' }).toISOString(), '2025-02-28T12:00:00.000Z');
    assert.equal(addValidity(start, { value: 13, scale: 'months' }).toISOString(), '2026-02-28T12:00:00.000Z');
    assert.equal(addValidity(new Date(Date.UTC(2024, 1, 29)), { value: 1, scale: 'years' }).toISOString(), '2025-02-28T00:00:00.000Z');
  });
});
