/**
 * Issue 4's scenario test: the seed ("Configure S/MIME with Outlook for iOS
 * in Microsoft Intune") walked end to end as an administrator would, with
 * the `keyfleet` command (KEYFLEET_URL, KEYFLEET_TOKEN) against a real
 * `keyfleet serve --init` on a fresh --data directory and a free loopback
 * port. Each test is named after the seed step or prerequisite it proves;
 * they run in order and build on one another. Then what an admin checks
 * (the compiled settings and plist, each user's effective state, the audit
 * log), and the refusals the seed implies: a non-zero exit, one readable
 * line, nothing written.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestPki, createTestPki } from '../support/pki.ts';
import { getCaCerts } from './scep-http.ts';
import {
  type AdminCli, type Compiled, type PlistValue, KEYFLEET, OUTLOOK, OUTLOOK_KEYS,
  adminApi, adminCli, assertPfxCustody, assertPlistMatches, assertRefusal, freePort, parsePlistDict, pfxOf, scepProfileFields,
} from './seed-support.ts';
import { type Served, startServe, tempDir } from './support.ts';

// A fresh SQLite file under --data: a PostgreSQL URL in the environment must not send the scenario to a shared database.
delete process.env['KEYFLEET_DATABASE_URL'];

type Json = Record<string, unknown>;
const BOB_HISTORY = ['bob-1', 'bob-2', 'bob-3'] as const;

describe('the seed, steps 1–13, through the keyfleet command against keyfleet serve', () => {
  const tmp = tempDir('seed');
  const dataDir = join(tmp.path, 'data');
  const file = (name: string, content: string | Uint8Array) => {
    writeFileSync(join(tmp.path, name), content);
    return join(tmp.path, name);
  };
  let served: Served;
  let token: string;
  let kf: AdminCli;
  let pki: TestPki;
  const api = (method: 'GET' | 'POST', path: string, body?: unknown) => adminApi(served.origin, token, method, path, body);

  // What the steps create, for the later steps.
  const users: Record<'bob' | 'alice' | 'carol', Json> = { bob: {}, alice: {}, carol: {} };
  let group: Json;
  let finance: Json;
  let outlook: Json;
  let rootCa: X509Certificate;
  let root: Json;
  let scep: Json;
  let pkcs: Json;
  const imported = new Map<string, Json>();
  const passwords = new Map<string, string>();
  let policyInput: Json;
  let policy: Json;
  let shown: Json;
  let compiled: Compiled;
  let plist: Map<string, PlistValue>;
  let everyKeyPolicyId: string;
  const setting = (key: string) => compiled.settings.find((s) => s.appConfigKey === key);

  before(async () => {
    const [port, testPki] = await Promise.all([freePort(), createTestPki()]);
    pki = testPki;
    served = await startServe(dataDir, ['--init', '--port', String(port)]);
    const printed = /^(kf_[A-Za-z0-9_-]{43})$/m.exec(served.output());
    assert.ok(printed, `serve printed no first administrator token:\n${served.output()}`);
    token = printed[1]!;
    kf = adminCli(served.origin, token, tmp.path);
  });
  after(async () => {
    try {
      // SIGTERM: serve closes its server and store and exits 0.
      assert.deepEqual(await served?.stop(), { status: 0, signal: null }, served?.output());
    } finally {
      tmp.cleanup();
    }
  });

  test('"Add the Microsoft Outlook app", step 1, "Sign in": the first start prints one administrator token, once, and the admin API answers to it alone', async () => {
    assert.equal(served.output().match(/first start: administrator API token/g)?.length, 1, served.output());
    assert.deepEqual(await kf.json(['users', 'list']), []);
    assert.match(assertRefusal(await kf.run(['users', 'list'], { KEYFLEET_TOKEN: `kf_${'x'.repeat(43)}` }), /./), /^keyfleet: KF_UNAUTHENTICATED: /);
  });

  test('Prerequisite "Outlook for iOS only supports S/MIME on Office 365 accounts": users with Exchange Online mailboxes, in a group (nested) to assign to', async () => {
    for (const [name, display] of [['bob', 'Bob Baker'], ['alice', 'Alice Adams'], ['carol', 'Carol Clark']] as const) {
      users[name] = await kf.json(['users', 'create', '--upn', `${name}@example.com`, '--display-name', display, '--mail', `${name}@example.com`, '--exchange-online']);
      assert.equal(users[name]['isExchangeOnline'], true);
      assert.equal(users[name]['accountEnabled'], true);
    }
    group = await kf.json(['groups', 'create', '--name', 'Outlook S/MIME users', '--description', 'Receive the Outlook for iOS S/MIME policy']);
    finance = await kf.json(['groups', 'create', '--name', 'Finance']);
    await kf.ok(['groups', 'add-member', String(group['id']), '--user', 'bob@example.com']);
    await kf.ok(['groups', 'add-member', String(finance['id']), '--user', 'alice@example.com']);
    await kf.ok(['groups', 'add-member', String(group['id']), '--group', String(finance['id'])]);
    const members = await kf.json<{ type: string; id: string }[]>(['groups', 'members', String(group['id']), '--transitive']);
    assert.deepEqual(new Set(members.map((m) => `${m.type}:${m.id}`)), new Set([`user:${users.bob['id']}`, `group:${finance['id']}`, `user:${users.alice['id']}`]));
  });

  test('"Add the Microsoft Outlook app", step 2: Outlook for iOS from the App Store (com.microsoft.Office.Outlook)', async () => {
    outlook = await kf.json(['apps', 'add-outlook']);
    assert.equal(outlook['kind'], 'iosStoreApp');
    assert.equal(outlook['bundleId'], 'com.microsoft.Office.Outlook');
    assert.equal(outlook['displayName'], 'Microsoft Outlook');
    assert.match(String(outlook['appStoreUrl']), /^https:\/\/apps\.apple\.com\//);
    assert.deepEqual((await kf.json<Json[]>(['apps', 'list'])).map((a) => a['id']), [outlook['id']]);
  });

  test('Prerequisites "a Certification Authority" and "deploy trusted root certificates": the root of the CA serve set up, as a trusted-root profile', async () => {
    const pem = await kf.ok(['ca', 'show', '--data', dataDir, '--pem']);
    const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/g) ?? [];
    assert.equal(blocks.length, 2, `ca show --pem: the issuing CA, then the root\n${pem}`);
    rootCa = new X509Certificate(blocks[1]!);
    assert.equal(rootCa.ca, true);
    assert.equal(rootCa.subject, rootCa.issuer, 'self-issued');
    root = await kf.json(['profiles', 'create-trusted-root', '--cert', file('keyfleet-root.pem', blocks[1]!), '--name', 'Keyfleet Root CA']);
    assert.equal(root['kind'], 'iosTrustedRootCertificate');
    assert.equal(root['certFileName'], 'keyfleet-root.cer');
    assert.equal(root['trustedRootCertificate'], rootCa.raw.toString('base64'));
  });

  test('Prerequisite "SCEP is used for signing certificates": a SCEP profile pointing at our SCEP server and the trusted root', async () => {
    const fields = scepProfileFields(served.scepUrl(), String(root['id']));
    scep = await kf.json(['profiles', 'create-scep', '--file', file('scep-profile.json', JSON.stringify(fields))]);
    const { id: _id, createdDateTime: _c, lastModifiedDateTime: _m, ...stored } = scep;
    assert.deepEqual(stored, { kind: 'iosScepCertificateProfile', ...fields });
    // The URL is a live SCEP server whose CA chains to the profile's trusted root.
    const url = (scep['scepServerUrls'] as string[])[0]!;
    const caps = await fetch(`${url}?operation=GetCACaps`);
    assert.match(await caps.text(), /^POSTPKIOperation$/m);
    const chain = (await getCaCerts(url)).map((c) => new X509Certificate(c.der));
    assert.ok(chain.some((c) => c.fingerprint256 === rootCa.fingerprint256 || (c.checkIssued(rootCa) && c.verify(rootCa.publicKey))), 'GetCACert chains to the trusted root');
  });

  test('Prerequisite "install and configure the PFX connector": `keyfleet connector keygen`', async () => {
    await kf.ok(['connector', 'keygen', '--out-dir', join(tmp.path, 'connector')]);
    assert.equal(statSync(join(tmp.path, 'connector', 'connector.key')).mode & 0o777, 0o600);
    const pub = createPublicKey(readFileSync(join(tmp.path, 'connector', 'connector.pub.pem')));
    assert.equal(pub.asymmetricKeyType, 'rsa');
    assert.equal(pub.asymmetricKeyDetails?.modulusLength, 4096);
  });

  test('Prerequisite "encryption certificates must be imported": Bob\'s encryption-certificate history with `keyfleet pfx import --connector-key`', async () => {
    const connectorKey = join(tmp.path, 'connector', 'connector.pub.pem');
    for (const [i, name] of BOB_HISTORY.entries()) {
      // The oldest as an old Windows export (3DES, SHA-1 MAC), the others PBES2/AES.
      file(`${name}.pfx`, pfxOf(pki.entity(name), `Bob's ${name} – pässwörd ${i}`, i === 0 ? 'legacy' : 'modern'));
      file(`${name}.pw`, `Bob's ${name} – pässwörd ${i}\n`);
      passwords.set(name, `Bob's ${name} – pässwörd ${i}`);
    }
    // The history by a manifest (per-file report), the current certificate on its own.
    file('bob-history.csv', 'path,upn,password-file,purpose\nbob-1.pfx,bob@example.com,bob-1.pw,smimeEncryption\nbob-2.pfx,bob@example.com,bob-2.pw,smimeEncryption\n');
    const report = await kf.json<Json[]>(['pfx', 'import', '--connector-key', connectorKey, '--manifest', join(tmp.path, 'bob-history.csv')]);
    assert.deepEqual(report.map((r) => [r['path'], r['status']]), [['bob-1.pfx', 'imported'], ['bob-2.pfx', 'imported']]);
    await kf.json(['pfx', 'import', '--connector-key', connectorKey, '--user', 'bob@example.com', '--purpose', 'smimeEncryption', '--password-file', join(tmp.path, 'bob-3.pw'), join(tmp.path, 'bob-3.pfx')]);

    const listed = await kf.json<Json[]>(['pfx', 'list', '--user', 'bob@example.com']);
    assert.equal(listed.length, 3);
    for (const name of BOB_HISTORY) {
      const cert = new X509Certificate(pki.entity(name).certDer);
      const record = listed.find((r) => r['thumbprint'] === cert.fingerprint.replace(/:/g, ''));
      assert.ok(record, `${name} is listed`);
      imported.set(name, record);
      assert.equal(record['userPrincipalName'], 'bob@example.com');
      assert.equal(record['intendedPurpose'], 'smimeEncryption');
      assert.equal(record['paddingScheme'], 'oaepSha512');
      assert.equal(record['keyName'], 'connector');
      assert.equal(record['startDateTime'], new Date(cert.validFrom).toISOString());
      assert.equal(record['expirationDateTime'], new Date(cert.validTo).toISOString());
      assert.equal('encryptedPfxPassword' in record || 'encryptedPfxBlob' in record, false, 'listings carry no custody material');
    }

    await assertPfxCustody(dataDir, join(tmp.path, 'connector', 'connector.key'), BOB_HISTORY.map((name) => ({
      id: String(imported.get(name)!['id']), pfx: readFileSync(join(tmp.path, `${name}.pfx`)), password: passwords.get(name)!, keyDer: pki.entity(name).keyDer,
    })));
  });

  test('Prerequisite "encryption certificates must be imported": a PKCS-imported certificate profile for smimeEncryption', async () => {
    pkcs = await kf.json(['profiles', 'create-pkcs', '--purpose', 'smimeEncryption', '--name', 'S/MIME encryption history']);
    assert.equal(pkcs['kind'], 'iosImportedPfxCertificateProfile');
    assert.equal(pkcs['intendedPurpose'], 'smimeEncryption');
    const kinds = (await kf.json<Json[]>(['profiles', 'list'])).map((p) => `${p['kind']}:${p['id']}`);
    assert.deepEqual(new Set(kinds), new Set([`iosTrustedRootCertificate:${root['id']}`, `iosScepCertificateProfile:${scep['id']}`, `iosImportedPfxCertificateProfile:${pkcs['id']}`]));
  });

  test('Step 1, "Apps › App configuration policies › Add": no configuration policy yet', async () => {
    assert.deepEqual(await kf.json(['policies', 'list']), []);
  });

  test('Steps 2–12: the configuration policy, filled in as the seed says, is created', async () => {
    policyInput = {
      // Step 2: Name and Description.
      displayName: 'Outlook for iOS S/MIME',
      description: 'Signing certificates by SCEP, the encryption history imported; users told through the Company Portal',
      // Step 3: Device enrollment type.
      deviceEnrollmentType: 'managedDevices',
      // Step 4: Platform.
      platform: 'iOS/iPadOS',
      // Step 5: the required app.
      targetedMobileApps: [outlook['id']],
      // Steps 6–8: configuration designer (defaults accepted), S/MIME, Enable S/MIME: Yes.
      enableSmime: true,
      // Step 9: Deploy S/MIME certificates: Yes.
      deploySmimeCertificates: true,
      // Step 10: Signing certificates.
      signingCertificateProfileType: 'scep',
      signingCertificateProfileId: scep['id'],
      // Step 11: Encryption certificates.
      encryptionCertificateProfileType: 'pkcsImported',
      encryptionCertificateProfileId: pkcs['id'],
      // Step 12: End-user notifications.
      endUserNotification: 'companyPortal',
    };
    policy = await kf.json(['policies', 'create', '--file', file('policy.json', JSON.stringify(policyInput))]);
    shown = await kf.json(['policies', 'show', String(policy['id'])]);
    assert.deepEqual(shown, policy);
    const { id: _id, createdDateTime: _c, lastModifiedDateTime: _m, ...stored } = shown;
    assert.deepEqual(stored, policyInput, 'stored as entered, nothing added or lost');
    compiled = await kf.json<Compiled>(['policies', 'settings', String(policy['id'])]);
    const printed = await kf.ok(['policies', 'settings', String(policy['id']), '--plist']);
    assert.equal(printed, compiled.plist);
    plist = parsePlistDict(printed);
  });

  test('Step 2: Name and Description', async () => {
    assert.equal(shown['displayName'], 'Outlook for iOS S/MIME');
    assert.match(String(shown['description']), /^Signing certificates by SCEP/);
    assert.match(await kf.ok(['policies', 'list']), new RegExp(`^${policy['id']}\\s+Outlook for iOS S/MIME\\s+iOS/iPadOS\\s+true\\s+true$`, 'm'));
  });

  test('Step 3: Device enrollment type "Managed devices"', () => {
    assert.equal(shown['deviceEnrollmentType'], 'managedDevices');
  });

  test('Step 4: Platform "iOS/iPadOS"', () => {
    assert.equal(shown['platform'], 'iOS/iPadOS');
  });

  test('Step 5: the required app is the Microsoft Outlook for iOS app added before', async () => {
    assert.deepEqual(shown['targetedMobileApps'], [outlook['id']]);
    assert.equal((await kf.json(['apps', 'show', String(outlook['id'])]))['bundleId'], 'com.microsoft.Office.Outlook');
  });

  test('Step 6: configuration designer with the default settings: the managed app configuration as typed key/values and the same plist', () => {
    const keys = compiled.settings.map((s) => s.appConfigKey);
    assert.equal(new Set(keys).size, keys.length, 'each key once');
    // Defaults accepted: of Outlook's keys only SMIMEEnabled is sent; Outlook applies its documented defaults to the rest.
    assert.deepEqual(keys.filter((k) => k in OUTLOOK_KEYS), [OUTLOOK]);
    assert.deepEqual(keys.filter((k) => !(k in OUTLOOK_KEYS)).sort(), [
      'DeployCertificates', 'EncryptionCertificateProfileId', 'EncryptionCertificateProfileType', 'EndUserNotification', 'SigningCertificateProfileId', 'SigningCertificateProfileType',
    ].map((k) => KEYFLEET + k));
    assertPlistMatches(plist, compiled.settings);
  });

  test('Steps 7–8: S/MIME › Enable S/MIME "Yes"', () => {
    assert.deepEqual(setting(OUTLOOK), { appConfigKey: OUTLOOK, appConfigKeyType: 'booleanType', appConfigKeyValue: 'true' });
    assert.equal(plist.get(OUTLOOK), true);
  });

  test('Step 9: Deploy S/MIME certificates from Keyfleet "Yes"', () => {
    assert.deepEqual(setting(`${KEYFLEET}DeployCertificates`), { appConfigKey: `${KEYFLEET}DeployCertificates`, appConfigKeyType: 'booleanType', appConfigKeyValue: 'true' });
    assert.equal(shown['deploySmimeCertificates'], true);
  });

  test('Step 10: Signing certificates, certificate profile type "SCEP" and the SCEP profile', () => {
    assert.equal(shown['signingCertificateProfileType'], 'scep');
    assert.equal(shown['signingCertificateProfileId'], scep['id']);
    assert.equal(setting(`${KEYFLEET}SigningCertificateProfileType`)?.appConfigKeyValue, 'scep');
    assert.equal(setting(`${KEYFLEET}SigningCertificateProfileId`)?.appConfigKeyValue, scep['id']);
  });

  test('Step 11: Encryption certificates, certificate profile type "PKCS imported certificates" and the imported profile', () => {
    assert.equal(shown['encryptionCertificateProfileType'], 'pkcsImported');
    assert.equal(shown['encryptionCertificateProfileId'], pkcs['id']);
    assert.equal(setting(`${KEYFLEET}EncryptionCertificateProfileType`)?.appConfigKeyValue, 'pkcsImported');
    assert.equal(setting(`${KEYFLEET}EncryptionCertificateProfileId`)?.appConfigKeyValue, pkcs['id']);
  });

  test('Step 12: End-user notifications "Company Portal"', () => {
    assert.equal(shown['endUserNotification'], 'companyPortal');
    assert.deepEqual(setting(`${KEYFLEET}EndUserNotification`), { appConfigKey: `${KEYFLEET}EndUserNotification`, appConfigKeyType: 'stringType', appConfigKeyValue: 'companyPortal' });
  });

  test('Step 6 beyond the defaults: every Outlook S/MIME key of REFERENCE.md, with its type and value, in the settings and the plist', async () => {
    const other = {
      displayName: 'Outlook S/MIME, every key',
      deviceEnrollmentType: 'managedDevices',
      platform: 'iOS/iPadOS',
      targetedMobileApps: [outlook['id']],
      enableSmime: true,
      enableSmimeUserChangeAllowed: false,
      encryptAllMail: true,
      encryptAllMailUserChangeAllowed: false,
      signAllMail: true,
      signAllMailUserChangeAllowed: false,
      ldapHostName: 'ldaps://ldap.example.com:636',
    };
    const created = await kf.json(['policies', 'create', '--file', file('policy-every-key.json', JSON.stringify(other))]);
    everyKeyPolicyId = String(created['id']);
    const all = await kf.json<Compiled>(['policies', 'settings', everyKeyPolicyId]);
    assert.deepEqual(all.settings.map((s) => [s.appConfigKey, s.appConfigKeyType, s.appConfigKeyValue]).sort(), [
      [OUTLOOK, 'booleanType', 'true'],
      [`${OUTLOOK}.EncryptAllMail`, 'booleanType', 'true'],
      [`${OUTLOOK}.EncryptAllMail.UserChangeAllowed`, 'booleanType', 'false'],
      [`${OUTLOOK}.LDAPHostName`, 'stringType', 'ldaps://ldap.example.com:636'],
      [`${OUTLOOK}.SignAllMail`, 'booleanType', 'true'],
      [`${OUTLOOK}.SignAllMail.UserChangeAllowed`, 'booleanType', 'false'],
      [`${OUTLOOK}.UserChangeAllowed`, 'booleanType', 'false'],
    ]);
    for (const s of all.settings) assert.equal(s.appConfigKeyType, OUTLOOK_KEYS[s.appConfigKey], s.appConfigKey);
    assertPlistMatches(parsePlistDict(await kf.ok(['policies', 'settings', everyKeyPolicyId, '--plist'])), all.settings);
    // Not part of the seed's policy: removed before the assignment, so it cannot conflict with it.
    await kf.ok(['policies', 'delete', everyKeyPolicyId]);
    assert.deepEqual((await kf.json<Json[]>(['policies', 'list'])).map((p) => p['id']), [policy['id']]);
  });

  test('Step 13: Assignments, the policy assigned to the group (and the app and certificate profiles it delivers)', async () => {
    const g = String(group['id']);
    assert.deepEqual(await kf.json(['assignments', 'add', '--policy', String(policy['id']), '--include', g]), { include: [g], exclude: [] });
    await kf.json(['assignments', 'add', '--app', String(outlook['id']), '--include', g]);
    for (const p of [root, scep, pkcs]) await kf.json(['assignments', 'add', '--profile', String(p['id']), '--include', g]);
    assert.deepEqual(await kf.json(['assignments', 'show', '--policy', String(policy['id'])]), { include: [g], exclude: [] });
    assert.match(await kf.ok(['assignments', 'show', '--profile', String(scep['id'])]), new RegExp(`^include\\s+${g}$`, 'm'));
  });

  test('Check: each user in the group (directly or nested) gets the policy, its app, its profiles and Outlook\'s configuration; a user outside gets nothing', async () => {
    for (const name of ['bob', 'alice'] as const) {
      const state = await kf.json<Json>(['users', 'effective-state', String(users[name]['userPrincipalName'])]);
      assert.deepEqual(state['policies'], [policy['id']], name);
      assert.deepEqual(state['apps'], [outlook['id']], name);
      assert.deepEqual(new Set(state['certificateProfiles'] as string[]), new Set([root['id'], scep['id'], pkcs['id']]), name);
      assert.deepEqual(state['appConfigurations'], [{ appId: outlook['id'], policyIds: [policy['id']], settings: compiled.settings }], name);
      assert.deepEqual(state['conflicts'], [], name);
      assert.deepEqual(state['warnings'], [], name);
    }
    const carol = await kf.json<Json>(['users', 'effective-state', String(users.carol['id'])]);
    assert.deepEqual([carol['policies'], carol['apps'], carol['certificateProfiles'], carol['appConfigurations']], [[], [], [], []]);
  });

  test('Check: the audit log records every step, by the first administrator, and its hash chain verifies (through the API and from the database)', async () => {
    const events = await kf.json<Json[]>(['audit', 'list', '--all']);
    const id = (o: Json) => String(o['id']);
    const pfx = (name: string) => id(imported.get(name)!);
    const g = id(group);
    assert.deepEqual(events.map((e) => [e['action'], e['resourceId']]).slice(1), [
      ['user.create', id(users.bob)], ['user.create', id(users.alice)], ['user.create', id(users.carol)],
      ['group.create', g], ['group.create', id(finance)],
      ['group.member.add', g], ['group.member.add', id(finance)], ['group.member.add', g],
      ['app.create', id(outlook)],
      ['certificateProfile.create', id(root)], ['certificateProfile.create', id(scep)],
      ['userPfxCertificate.create', pfx('bob-1')], ['userPfxCertificate.create', pfx('bob-2')], ['userPfxCertificate.create', pfx('bob-3')],
      ['certificateProfile.create', id(pkcs)],
      ['policy.create', id(policy)],
      ['policy.create', everyKeyPolicyId], ['policy.delete', everyKeyPolicyId],
      ['policy.assign', id(policy)], ['app.assign', id(outlook)], ['certificateProfile.assign', id(root)], ['certificateProfile.assign', id(scep)], ['certificateProfile.assign', id(pkcs)],
    ]);
    assert.equal(events[0]!['action'], 'token.create', 'the first administrator token, made at first start');
    const admin = events[0]!['resourceId'];
    for (const e of events.slice(1)) assert.deepEqual(e['actor'], { id: admin, name: 'first administrator' }, String(e['action']));
    // Before and after: the policy as created; its assignment from nothing to the group.
    const created = events.find((e) => e['action'] === 'policy.create' && e['resourceId'] === policy['id'])!;
    assert.deepEqual([created['before'], created['after']], [null, shown]);
    const assigned = events.find((e) => e['action'] === 'policy.assign')!;
    assert.deepEqual([assigned['before'], assigned['after']], [{ include: [], exclude: [] }, { include: [g], exclude: [] }]);
    assert.ok(!JSON.stringify(events).includes(passwords.get('bob-3')!), 'no PFX password in the audit log');

    const viaApi = await kf.json<Json>(['audit', 'verify']);
    assert.deepEqual(viaApi, { ok: true, entries: events.length, headHash: events.at(-1)!['hash'] });
    assert.deepEqual(await kf.json(['audit', 'verify', '--data', dataDir]), viaApi);
    assert.match(await kf.ok(['audit', 'verify']), /^audit chain intact: \d+ entries, head [0-9a-f]{64}$/m);
  });

  describe('the refusals the seed implies: a non-zero exit, one readable line, nothing written', () => {
    let unchanged: { policies: unknown; profiles: unknown };
    let head: Json;
    /**
     * `policies create` (or `profiles create-scep`) of `body`: refused for `why`, and the audit chain's head
     * did not move (every write is audited in its own transaction). Read over HTTP rather than with
     * `keyfleet audit verify`, to spare a process per refusal; the last test checks through the command.
     */
    const refused = async (args: string[], body: Json, why: RegExp) => {
      const r = await kf.run([...args, '--file', file('refused.json', JSON.stringify(body))]);
      assertRefusal(r, why);
      assert.deepEqual(await api('GET', 'api/v1/auditEvents/verification'), head, 'nothing written: the audit log has no new entry');
    };
    const refusedPolicy = (changes: Json, why: RegExp) => refused(['policies', 'create'], { ...policyInput, displayName: 'Refused policy', ...changes }, why);

    test('setup: an app that is not Outlook (through the admin API: `keyfleet apps` adds only Outlook)', async () => {
      const teams = await api('POST', 'api/v1/apps', { kind: 'iosStoreApp', displayName: 'Microsoft Teams', bundleId: 'com.microsoft.skype.teams' });
      assert.equal(teams['bundleId'], 'com.microsoft.skype.teams');
      unchanged = { policies: await kf.json(['policies', 'list']), profiles: await kf.json(['profiles', 'list']) };
      head = await kf.json<Json>(['audit', 'verify']);
    });

    test('Step 9 without step 8: deploying S/MIME certificates with S/MIME not enabled', async () => {
      await refusedPolicy({ enableSmime: false }, /deploySmimeCertificates needs enableSmime/);
    });

    test('Step 5: an app that is not Outlook for iOS', async () => {
      const teams = (await kf.json<Json[]>(['apps', 'list'])).find((a) => a['bundleId'] === 'com.microsoft.skype.teams')!;
      await refusedPolicy({ targetedMobileApps: [teams['id']] }, /Outlook for iOS \(com\.microsoft\.Office\.Outlook\), not com\.microsoft\.skype\.teams/);
    });

    test('Steps 10–11: derived credentials chosen with no derived-credential issuer configured', async () => {
      await refusedPolicy({ signingCertificateProfileType: 'derivedCredential', signingCertificateProfileId: undefined }, /derived credentials .*no derived-credential issuer is configured/);
      await refusedPolicy({ encryptionCertificateProfileType: 'derivedCredential', encryptionCertificateProfileId: undefined }, /no derived-credential issuer is configured/);
    });

    test('Steps 10–11: a certificate profile that does not exist', async () => {
      await refusedPolicy({ signingCertificateProfileId: 'no-such-profile' }, /signing certificate profile no-such-profile does not exist/);
      await refusedPolicy({ encryptionCertificateProfileId: 'no-such-profile' }, /encryption certificate profile no-such-profile does not exist/);
    });

    test('Step 4: a platform other than iOS/iPadOS', async () => {
      await refusedPolicy({ platform: 'android' }, /platform must be iOS\/iPadOS/);
    });

    test('Step 3: a device enrollment type other than Managed devices', async () => {
      await refusedPolicy({ deviceEnrollmentType: 'managedApps' }, /device enrollment type must be managedDevices/);
    });

    test('Prerequisite "deploy trusted root certificates": a SCEP profile whose trusted root does not exist', async () => {
      const { id: _id, kind: _kind, createdDateTime: _c, lastModifiedDateTime: _m, ...fields } = scep;
      await refused(['profiles', 'create-scep'], { ...fields, displayName: 'Refused SCEP', rootCertificateId: 'no-such-root' }, /trusted-root profile no-such-root does not exist/);
      await refused(['profiles', 'create-scep'], { ...fields, displayName: 'Refused SCEP', rootCertificateId: pkcs['id'] }, /not a trusted-root profile/);
    });

    test('nothing written by any of them: the same policies and profiles, the same intact chain', async () => {
      assert.deepEqual({ policies: await kf.json(['policies', 'list']), profiles: await kf.json(['profiles', 'list']) }, unchanged);
      assert.deepEqual(await kf.json(['audit', 'verify']), head);
      assert.equal(head['ok'], true);
    });
  });
});

