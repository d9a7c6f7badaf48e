import assert from 'node:assert/strict';
import { constants, createPrivateKey, createPublicKey, generateKeyPairSync, privateDecrypt, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isKeyfleetError } from '../../src/errors.ts';
import { readPkcs12, writePkcs12 } from '../../src/pkcs12/index.ts';
import { MAX_PFX_BYTES, readPfxMetadata } from '../../src/pkcs12/pfx-metadata.ts';
import { type PaddingScheme, type PfxImportInput, connectorKeygen, parseUserPfxCertificateUpload, preparePfxImport } from '../../src/policy/pfx-import.ts';
import { runOk } from '../support/exec.ts';
import { policyFixtures } from './fixtures.ts';
import { refusal } from './helpers.ts';

const PASSWORD = 'correct horse battery staple ✓';
const connector = generateKeyPairSync('rsa', { modulusLength: 2048 });
const otherConnector = generateKeyPairSync('rsa', { modulusLength: 2048 });
const hashOf: Record<PaddingScheme, string> = { oaepSha256: 'sha256', oaepSha384: 'sha384', oaepSha512: 'sha512' };

/** What the connector does with its private key. */
function connectorDecrypt(encryptedPfxPassword: string, privateKey = connector.privateKey, scheme: PaddingScheme = 'oaepSha512'): string {
  return privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hashOf[scheme] }, Buffer.from(encryptedPfxPassword, 'base64')).toString('utf8');
}

async function pfxOf(which: 'encryption' | 'signing' | 'clientAuth', options: { password?: string; profile?: 'modern' | 'legacy' } = {}): Promise<Uint8Array> {
  const f = await policyFixtures();
  const id = f[which];
  return writePkcs12([{ key: id.key, certificate: id.cert, chain: [f.ca.cert] }], options.password ?? PASSWORD, { profile: options.profile ?? 'modern' });
}

async function input(overrides: Partial<PfxImportInput> = {}): Promise<PfxImportInput> {
  return {
    pfx: await pfxOf('encryption'),
    password: PASSWORD,
    connectorPublicKey: connector.publicKey,
    userPrincipalName: 'alice@contoso.com',
    intendedPurpose: 'smimeEncryption',
    keyName: 'keyfleet-connector-1',
    ...overrides,
  };
}

test('readPfxMetadata: thumbprint, subject, addresses, validity and key type, from modern and legacy PFX', async () => {
  const f = await policyFixtures();
  for (const profile of ['modern', 'legacy'] as const) {
    const m = readPfxMetadata(await pfxOf('encryption', { profile }), PASSWORD);
    assert.equal(m.thumbprint, f.encryption.cert.thumbprint);
    assert.match(m.thumbprint, /^[0-9A-F]{40}$/);
    assert.equal(m.subject, 'CN=alice@example.com');
    assert.deepEqual(m.emailAddresses, ['alice@example.com']);
    assert.deepEqual([m.notBefore, m.notAfter], [f.encryption.cert.notBefore, f.encryption.cert.notAfter]);
    assert.equal(m.keyType, 'rsa-2048');
    assert.deepEqual(m.keyUsage, ['keyEncipherment']);
    assert.deepEqual(m.extKeyUsage, ['1.3.6.1.5.5.7.3.4']);
  }
});

test('readPfxMetadata refuses a wrong password, a file that is not PKCS#12, and a PFX that is not one identity', async () => {
  const f = await policyFixtures();
  const pfx = await pfxOf('encryption');
  assert.throws(() => readPfxMetadata(pfx, 'wrong'), (e) => isKeyfleetError(e, 'KF_PKCS12_BAD_PASSWORD'));
  for (const junk of [f.encryption.cert.der, Buffer.from('-----BEGIN PKCS12-----\n'), new Uint8Array(0), Buffer.from('3003020103', 'hex')]) {
    assert.throws(() => readPfxMetadata(junk, PASSWORD), (e) => isKeyfleetError(e) && e.detail === 'not-pkcs12' && e.status === 400);
  }
  // Random bytes may also claim an absurd length (KF_ASN1_LIMIT, 413); either way the detail says what happened.
  for (let i = 0; i < 50; i++) assert.throws(() => readPfxMetadata(randomBytes(300), PASSWORD), (e) => isKeyfleetError(e) && e.detail === 'not-pkcs12');
  assert.throws(() => readPfxMetadata(new Uint8Array(MAX_PFX_BYTES + 1), PASSWORD), (e) => isKeyfleetError(e, 'KF_INPUT_TOO_LARGE'));
  const two = writePkcs12([{ key: f.encryption.key, certificate: f.encryption.cert }, { key: f.signing.key, certificate: f.signing.cert }], PASSWORD);
  assert.throws(() => readPfxMetadata(two, PASSWORD), refusal('pfx-multiple-keys'));

  const dir = mkdtempSync(join(tmpdir(), 'kf-pfx-'));
  try {
    writeFileSync(join(dir, 'key.pem'), f.encryption.key.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(dir, 'cert.pem'), Buffer.from(`-----BEGIN CERTIFICATE-----\n${Buffer.from(f.encryption.cert.der).toString('base64')}\n-----END CERTIFICATE-----\n`));
    await runOk('openssl', ['pkcs12', '-export', '-nocerts', '-inkey', join(dir, 'key.pem'), '-passout', 'pass:pw', '-out', join(dir, 'key-only.p12')]);
    await runOk('openssl', ['pkcs12', '-export', '-nokeys', '-in', join(dir, 'cert.pem'), '-passout', 'pass:pw', '-out', join(dir, 'cert-only.p12')]);
    assert.throws(() => readPfxMetadata(readFileSync(join(dir, 'key-only.p12')), 'pw'), refusal('pfx-without-certificate'));
    assert.throws(() => readPfxMetadata(readFileSync(join(dir, 'cert-only.p12')), 'pw'), refusal('pfx-without-key'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('preparePfxImport: the record to upload; the connector recovers the password and opens the PFX', async () => {
  const f = await policyFixtures();
  for (const scheme of ['oaepSha256', 'oaepSha384', 'oaepSha512'] as const) {
    const i = await input({ paddingScheme: scheme });
    const record = preparePfxImport(i, readPfxMetadata);
    assert.deepEqual(parseUserPfxCertificateUpload(record), record);
    assert.equal(record.paddingScheme, scheme);
    assert.equal(record.thumbprint, f.encryption.cert.thumbprint);
    assert.equal(record.intendedPurpose, 'smimeEncryption');
    assert.equal(record.userPrincipalName, 'alice@contoso.com');
    assert.equal(record.startDateTime, f.encryption.cert.notBefore.toISOString());
    assert.equal(record.expirationDateTime, f.encryption.cert.notAfter.toISOString());
    assert.equal(record.keyName, 'keyfleet-connector-1');
    assert.equal(record.providerName, 'Keyfleet PFX Connector');
    // The PFX is uploaded as it is: still locked by its own password.
    assert.deepEqual(Buffer.from(record.encryptedPfxBlob, 'base64'), Buffer.from(i.pfx));
    assert.throws(() => readPkcs12(Buffer.from(record.encryptedPfxBlob, 'base64'), ''), (e) => isKeyfleetError(e, 'KF_PKCS12_BAD_PASSWORD'));
    // The password appears nowhere in the record.
    assert.ok(!JSON.stringify(record).includes(PASSWORD));
    assert.ok(!JSON.stringify(record).includes(Buffer.from(PASSWORD).toString('base64')));
    // What the connector will do: decrypt the password with its private key, then open the PFX.
    const password = connectorDecrypt(record.encryptedPfxPassword, connector.privateKey, scheme);
    assert.equal(password, PASSWORD);
    assert.equal(readPkcs12(Buffer.from(record.encryptedPfxBlob, 'base64'), password).keys[0]!.certificate!.thumbprint, record.thumbprint);
  }
  assert.equal(preparePfxImport(await input(), readPfxMetadata).paddingScheme, 'oaepSha512');
});

test('a password encrypted to another connector key, or read with another OAEP hash, does not decrypt', async () => {
  const record = preparePfxImport(await input({ connectorPublicKey: otherConnector.publicKey }), readPfxMetadata);
  assert.throws(() => connectorDecrypt(record.encryptedPfxPassword, connector.privateKey));
  assert.equal(connectorDecrypt(record.encryptedPfxPassword, otherConnector.privateKey), PASSWORD);
  assert.throws(() => connectorDecrypt(record.encryptedPfxPassword, otherConnector.privateKey, 'oaepSha256'));
});

test('connector keys must be RSA of 2048 bits or more (a private key lends its public half)', async () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ed = generateKeyPairSync('ed25519');
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
  await assert.rejects(async () => preparePfxImport(await input({ connectorPublicKey: ec.publicKey }), readPfxMetadata), refusal('connector-key-not-rsa', 'KF_KEY_INVALID'));
  await assert.rejects(async () => preparePfxImport(await input({ connectorPublicKey: ed.publicKey }), readPfxMetadata), refusal('connector-key-not-rsa', 'KF_KEY_INVALID'));
  await assert.rejects(async () => preparePfxImport(await input({ connectorPublicKey: small.publicKey }), readPfxMetadata), refusal('connector-key-too-small', 'KF_KEY_INVALID'));
  const fromPrivate = preparePfxImport(await input({ connectorPublicKey: connector.privateKey }), readPfxMetadata);
  assert.equal(connectorDecrypt(fromPrivate.encryptedPfxPassword), PASSWORD);
});

test('the intended purpose must match what the certificate may do', async () => {
  const cases: [('encryption' | 'signing' | 'clientAuth'), PfxImportInput['intendedPurpose'], boolean][] = [
    ['encryption', 'smimeEncryption', true],
    ['encryption', 'smimeSigning', false],
    ['encryption', 'vpn', false],
    ['encryption', 'unassigned', true],
    ['signing', 'smimeSigning', true],
    ['signing', 'smimeEncryption', false],
    ['clientAuth', 'smimeEncryption', false],
    ['clientAuth', 'smimeSigning', false],
    ['clientAuth', 'wifi', true],
  ];
  for (const [which, intendedPurpose, ok] of cases) {
    const i = await input({ pfx: await pfxOf(which), intendedPurpose });
    if (ok) assert.equal(preparePfxImport(i, readPfxMetadata).intendedPurpose, intendedPurpose, `${which} as ${intendedPurpose}`);
    else assert.throws(() => preparePfxImport(i, readPfxMetadata), refusal('pfx-purpose-mismatch'), `${which} as ${intendedPurpose}`);
  }
});

test('bad input: a wrong password, not PKCS#12, a password too long for the key, a bad UPN', async () => {
  await assert.rejects(async () => preparePfxImport(await input({ password: 'S3cret-typo' }), readPfxMetadata), (e) => isKeyfleetError(e, 'KF_PKCS12_BAD_PASSWORD') && !e.message.includes('S3cret'));
  await assert.rejects(async () => preparePfxImport(await input({ pfx: randomBytes(64) }), readPfxMetadata), (e) => isKeyfleetError(e) && e.detail === 'not-pkcs12');
  // RSA-2048 with OAEP-SHA512 carries at most 256 - 2·64 - 2 = 126 bytes.
  const long = 'p'.repeat(127);
  const pfx = await pfxOf('encryption', { password: long });
  await assert.rejects(async () => preparePfxImport(await input({ pfx, password: long }), readPfxMetadata), refusal('password-too-long-for-connector-key'));
  assert.equal(connectorDecrypt(preparePfxImport(await input({ pfx, password: long, paddingScheme: 'oaepSha256' }), readPfxMetadata).encryptedPfxPassword, connector.privateKey, 'oaepSha256'), long);
  await assert.rejects(async () => preparePfxImport(await input({ userPrincipalName: 'alice' }), readPfxMetadata), refusal('schema-violation'));
  await assert.rejects(async () => preparePfxImport(await input({ paddingScheme: 'pkcs1' as PaddingScheme }), readPfxMetadata), refusal('schema-violation'));
});

test('connectorKeygen makes an RSA key pair in PEM that preparePfxImport and the connector can use', async () => {
  const pair = connectorKeygen(3072);
  const pub = createPublicKey(pair.publicKeyPem);
  assert.equal(pub.asymmetricKeyDetails?.modulusLength, 3072);
  assert.match(pair.privateKeyPem, /^-----BEGIN PRIVATE KEY-----/);
  const record = preparePfxImport(await input({ connectorPublicKey: pub }), readPfxMetadata);
  assert.equal(connectorDecrypt(record.encryptedPfxPassword, createPrivateKey(pair.privateKeyPem)), PASSWORD);
  assert.throws(() => connectorKeygen(2048 as 4096), refusal('schema-violation'));
});
