/**
 * Issue 5's whole story, as one test per database: an admin drives a running
 * `keyfleet serve` through the `keyfleet` command (the seed's set-up: CA,
 * trusted roots, SCEP signing, Bob's three and Alice's one imported
 * encryption certificates, Outlook, the S/MIME policy, assigned to Sales); a
 * `keyfleet connector run` process re-wraps the PFX files; five devices
 * (`keyfleet device …`: Alice ×2, Bob ×2, Carol ×1) enrol and check in. Then
 * mail goes from Alice to Bob, Bob leaves Sales, Alice's second device is
 * retired — and every state is visible to the admin.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';
import { DeviceKeystore, defaultKeyFilePath } from '../../src/device/keystore.ts';
import { keystoreContactBook, keystoreMailKeys } from '../../src/device/mail-keys.ts';
import { MailClient } from '../../src/mail/index.ts';
import { encryptMessage } from '../../src/smime/message.ts';
import { decodeCertificate } from '../../src/x509/certificate.ts';
import { reachablePostgres } from '../store/backends.ts';
import { createTestPki, type TestPki } from '../support/pki.ts';
import { describeRun, run } from '../support/exec.ts';
import { startServe, tempDir, type Served } from './support.ts';
import { adminCli, freePort, pfxOf, scepProfileFields, type AdminCli } from './seed-support.ts';

type Json = Record<string, unknown>;
const node = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/keyfleet', import.meta.url));

interface Listing {
  items: { kind: string; thumbprint: string; serialNumber: string; emailAddresses: string[]; pfxId?: string }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function story(database: 'SQLite' | 'PostgreSQL', databaseUrl: () => Promise<string | undefined>, skip: () => string | false) {
  describe(`the whole story on ${database}: set-up by command, a connector, five devices, mail, unassignment, retirement`, { skip: skip() }, () => {
    const tmp = tempDir(`story-${database}`);
    const dataDir = join(tmp.path, 'data');
    const file = (name: string, content: string | Uint8Array) => {
      writeFileSync(join(tmp.path, name), content);
      return join(tmp.path, name);
    };
    let env: Record<string, string> = {};
    let served: Served;
    let kf: AdminCli;
    let pki: TestPki;
    let connector: ChildProcess | undefined;
    let portal: ChildProcess | undefined;
    // A real SMTP server on loopback receives the Email notifications.
    const mails: string[] = [];
    const smtp = new SMTPServer({
      logger: false,
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      closeTimeout: 500,
      onData(stream, _session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          mails.push(Buffer.concat(chunks).toString('utf8'));
          callback();
        });
      },
    });
    const ids: Record<string, string> = {};
    const devices: Record<string, { state: string; id: string }> = {};

    const device = (args: string[]) => kf.run(['device', ...args], env);
    const deviceJson = async <T = Json>(args: string[]): Promise<T> => {
      const r = await device([...args, '--json']);
      assert.equal(r.status, 0, describeRun(r));
      return JSON.parse(r.stdout.toString('utf8')) as T;
    };
    const listing = (name: string) => deviceJson<Listing>(['keystore', 'list', '--state', devices[name]!.state]);
    /** Checks in until nothing is pending (imported certificates wait for the connector). */
    const settle = async (name: string): Promise<Json> => {
      let last: Json = {};
      for (let i = 0; i < 40; i++) {
        last = await deviceJson(['checkin', '--state', devices[name]!.state]);
        if ((last['pending'] as unknown[]).length === 0 && (last['failed'] as unknown[]).length === 0) return last;
        await sleep(500);
      }
      assert.fail(`${name} did not settle: ${JSON.stringify(last)}`);
    };

    before(async () => {
      const url = await databaseUrl();
      env = url === undefined ? { KEYFLEET_DATABASE_URL: '' } : { KEYFLEET_DATABASE_URL: url };
      const [port, testPki] = await Promise.all([freePort(), createTestPki()]);
      pki = testPki;
      await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', () => resolve()));
      const smtpPort = (smtp.server.address() as AddressInfo).port;
      served = await startServe(dataDir, ['--init', '--port', String(port), '--smtp-url', `smtp://127.0.0.1:${smtpPort}`, '--smtp-from', 'portal@example.com'], env);
      const token = /^(kf_[A-Za-z0-9_-]{43})$/m.exec(served.output())?.[1];
      assert.ok(token, served.output());
      const cli = adminCli(served.origin, token, tmp.path);
      kf = { ...cli, run: (args, extra = {}) => cli.run(args, { ...env, ...extra }), ok: cli.ok, json: cli.json };
      // ok/json go through run with env too.
      kf.ok = async (args) => {
        const r = await kf.run(args);
        assert.equal(r.status, 0, describeRun(r));
        return r.stdout.toString('utf8');
      };
      kf.json = async <T>(args: readonly string[]) => JSON.parse(await kf.ok([...args, '--json'])) as T;
    });
    after(async () => {
      connector?.kill('SIGTERM');
      portal?.kill('SIGTERM');
      await served?.stop();
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
      tmp.cleanup();
    });

    test('the admin sets up the seed through the command: users, Sales, Outlook, roots, SCEP, imported history, policy, assignments, a connector', async () => {
      for (const name of ['alice', 'bob', 'carol']) {
        ids[name] = String((await kf.json(['users', 'create', '--upn', `${name}@example.com`, '--display-name', name, '--mail', `${name}@example.com`, '--exchange-online']))['id']);
      }
      ids['sales'] = String((await kf.json(['groups', 'create', '--name', 'Sales']))['id']);
      for (const name of ['alice', 'bob']) await kf.ok(['groups', 'add-member', ids['sales']!, '--user', `${name}@example.com`]);
      const outlook = await kf.json(['apps', 'add-outlook']);
      const pem = await kf.ok(['ca', 'show', '--data', dataDir, '--pem']);
      const root = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/g)!.at(-1)!;
      const keyfleetRoot = await kf.json(['profiles', 'create-trusted-root', '--cert', file('root.pem', root), '--name', 'Keyfleet Root CA']);
      // The CA that issued the users' imported encryption certificates: recipients' certificates must chain somewhere trusted.
      const mailRoot = await kf.json(['profiles', 'create-trusted-root', '--cert', pki.root.certPath, '--name', 'Mail encryption root']);
      const scep = await kf.json(['profiles', 'create-scep', '--file', file('scep.json', JSON.stringify(scepProfileFields(`${served.origin}/scep`, String(keyfleetRoot['id']))))]);
      const pkcs = await kf.json(['profiles', 'create-pkcs', '--purpose', 'smimeEncryption', '--name', 'Encryption history']);
      await kf.ok(['connector', 'keygen', '--out-dir', join(tmp.path, 'connector')]);
      const history: [string, string][] = [['bob', 'bob-1'], ['bob', 'bob-2'], ['bob', 'bob-3'], ['alice', 'alice']];
      for (const [user, entity] of history) {
        const password = randomBytes(9).toString('base64url');
        file(`${entity}.pw`, password);
        file(`${entity}.pfx`, pfxOf(pki.entity(entity as 'alice'), password, entity === 'bob-1' ? 'legacy' : 'modern'));
        await kf.ok(['pfx', 'import', '--connector-key', join(tmp.path, 'connector', 'connector.pub.pem'), '--user', `${user}@example.com`, '--purpose', 'smimeEncryption', '--password-file', join(tmp.path, `${entity}.pw`), join(tmp.path, `${entity}.pfx`)]);
      }
      const policy = await kf.json(['policies', 'create', '--file', file('policy.json', JSON.stringify({
        displayName: 'Outlook S/MIME', description: 'SCEP signing, imported encryption history', deviceEnrollmentType: 'managedDevices', platform: 'iOS/iPadOS',
        targetedMobileApps: [outlook['id']], enableSmime: true, deploySmimeCertificates: true,
        signingCertificateProfileType: 'scep', signingCertificateProfileId: scep['id'],
        encryptionCertificateProfileType: 'pkcsImported', encryptionCertificateProfileId: pkcs['id'], endUserNotification: 'companyPortal',
      }))]);
      ids['policy'] = String(policy['id']);
      ids['scep'] = String(scep['id']);
      await kf.ok(['assignments', 'add', '--policy', ids['policy'], '--include', ids['sales']]);
      await kf.ok(['assignments', 'add', '--app', String(outlook['id']), '--include', ids['sales']]);
      for (const p of [keyfleetRoot, mailRoot, scep, pkcs]) await kf.ok(['assignments', 'add', '--profile', String(p['id']), '--include', ids['sales']]);

      const registered = await kf.json(['connector', 'register', '--name', 'connector-1']);
      const credential = file('connector.credential', String(registered['secret']));
      connector = spawn(node, [bin, 'connector', 'run', '--url', served.origin, '--credential-file', credential, '--key', join(tmp.path, 'connector', 'connector.key')], { env: { ...process.env, ...env }, stdio: 'ignore' });
    });

    test('five devices enrol; the four in Sales get the root, a signing certificate each, and their user’s whole encryption history; Carol’s gets nothing', async () => {
      for (const [name, user] of [['alice-1', 'alice'], ['alice-2', 'alice'], ['bob-1', 'bob'], ['bob-2', 'bob'], ['carol-1', 'carol']] as const) {
        const token = (await kf.ok(['devices', 'enrollment-token', '--user', `${user}@example.com`])).trim();
        const state = join(tmp.path, 'devices', name);
        const enrolled = await deviceJson(['enroll', '--server', served.origin, '--token', token, '--state', state, '--name', `${name} iPhone`]);
        devices[name] = { state, id: String(enrolled['deviceId']) };
        // The token enrols once.
        assert.notEqual((await device(['enroll', '--server', served.origin, '--token', token, '--state', join(tmp.path, 'devices', `${name}-again`)])).status, 0);
      }
      const serials = new Set<string>();
      for (const name of ['alice-1', 'alice-2', 'bob-1', 'bob-2']) {
        await settle(name);
        const items = (await listing(name)).items;
        const signing = items.filter((i) => i.kind === 'signing');
        assert.equal(signing.length, 1, name);
        serials.add(signing[0]!.serialNumber);
        assert.equal(items.filter((i) => i.kind === 'trusted-root').length, 2, name);
        assert.equal(items.filter((i) => i.kind === 'encryption').length, name.startsWith('bob') ? 3 : 1, name);
      }
      assert.equal(serials.size, 4, 'four different signing certificates');
      await settle('carol-1');
      assert.deepEqual((await listing('carol-1')).items.filter((i) => i.kind !== 'device-identity'), []);
      const status = await kf.json<Json>(['devices', 'status', devices['bob-2']!.id]);
      assert.ok((status['managedDeviceCertificateStates'] as Json[]).every((c) => c['certificateIssuanceState'] === 'installed'), JSON.stringify(status));
      assert.equal((status['policyStatuses'] as Json[])[0]!['status'], 'compliant');
    });

    test('Alice signs and encrypts to Bob on her first device; Bob’s second device decrypts and verifies, and opens mail sent two years ago to his oldest certificate', async () => {
      const open = async (name: string, account: string) => {
        const state = devices[name]!.state;
        const keystore = await DeviceKeystore.open(join(state, 'keystore'), { kind: 'key-file', path: defaultKeyFilePath(join(state, 'keystore')) });
        return new MailClient({ account, keys: keystoreMailKeys(keystore), contactBook: keystoreContactBook(keystore) });
      };
      const alice = await open('alice-1', 'alice@example.com');
      const bob = await open('bob-2', 'bob@example.com');
      // Bob's current encryption certificate reaches Alice as an attachment she installs.
      await alice.installAttachment(Buffer.from(pki.entity('bob-3').certPem + pki.intermediate.certPem), 'bob.pem');
      const sent = await alice.compose({ to: ['bob@example.com'], subject: 'Quarterly numbers', text: 'Signed and sealed.\r\n' }, { sign: true, encrypt: true });
      const opened = await bob.open(sent.message);
      assert.equal(opened.outcome, 'verified');
      assert.equal(opened.encrypted, true);
      assert.match(Buffer.from(opened.message).toString('utf8'), /Signed and sealed\./);
      const old = encryptMessage(Buffer.from('From: alice@example.com\r\nTo: bob@example.com\r\nSubject: 2024\r\n\r\nOld news.\r\n'), [{ certificate: decodeCertificate(pki.entity('bob-1').certDer) }]);
      const oldOpened = await bob.open(old);
      assert.equal(oldOpened.decryptedWith?.thumbprint, decodeCertificate(pki.entity('bob-1').certDer).thumbprint);
    });

    test('Bob leaves Sales: at their next check-in his devices lose the certificates; Alice’s second device is retired: its signing certificate is revoked and OCSP says so', async () => {
      const before = (await listing('alice-2')).items.find((i) => i.kind === 'signing')!;
      const cert = await device(['keystore', 'export', '--state', devices['alice-2']!.state, '--thumbprint', before.thumbprint, '--kind', 'signing', '--format', 'pem', '--out', join(tmp.path, 'alice-2-signing.pem')]);
      assert.equal(cert.status, 0, describeRun(cert));
      await kf.ok(['groups', 'remove-member', ids['sales']!, '--user', 'bob@example.com']);
      await kf.ok(['devices', 'retire', devices['alice-2']!.id]);
      for (let i = 0; i < 20; i++) {
        await deviceJson(['checkin', '--state', devices['bob-1']!.state, '--full']);
        if ((await listing('bob-1')).items.every((x) => x.kind === 'device-identity' || x.kind === 'contact')) break;
        await sleep(500);
      }
      for (const name of ['bob-1', 'bob-2']) {
        await deviceJson(['checkin', '--state', devices[name]!.state, '--full']);
        const left = (await listing(name)).items.filter((i) => i.kind === 'signing' || i.kind === 'encryption');
        assert.deepEqual(left, [], `${name} keeps nothing`);
      }
      const retired = await deviceJson(['checkin', '--state', devices['alice-2']!.state]);
      assert.equal(retired['result'], 'retired');
      const shown = await kf.json<Json>(['devices', 'show', devices['alice-2']!.id]);
      assert.equal(shown['managementState'], 'retired');
      // OCSP, asked by OpenSSL: the retired device's signing certificate is revoked.
      const issuing = (await kf.ok(['ca', 'show', '--data', dataDir, '--pem'])).match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/g)![0]!;
      const ocsp = await run('openssl', ['ocsp', '-issuer', file('issuing.pem', issuing), '-cert', join(tmp.path, 'alice-2-signing.pem'), '-url', `${served.origin}/ocsp`, '-noverify']);
      assert.equal(ocsp.status, 0, describeRun(ocsp));
      assert.match(ocsp.stdout.toString('utf8'), /: revoked/);
      const status = await kf.json<Json[]>(['devices', 'status', '--user', 'bob@example.com']);
      for (const s of status) {
        for (const c of s['managedDeviceCertificateStates'] as Json[]) assert.ok(['revoked', 'removedFromCollection', 'deleted'].includes(String(c['certificateIssuanceState'])), JSON.stringify(c));
      }
    });

    test('with Email notifications: a new device of Alice’s is told by mail, and the link leads to its landing page, which shows the retrieval finish', async () => {
      await kf.ok(['policies', 'update', ids['policy']!, '--file', file('email.json', JSON.stringify({ endUserNotification: 'email' }))]);
      const portalPort = await freePort();
      const token = (await kf.ok(['devices', 'enrollment-token', '--user', 'alice@example.com'])).trim();
      const state = join(tmp.path, 'devices', 'alice-3');
      await deviceJson(['enroll', '--server', served.origin, '--token', token, '--state', state, '--name', 'alice-3 iPad', '--os', 'iPadOS', '--portal-port', String(portalPort)]);
      portal = spawn(node, [bin, 'device', 'portal', '--state', state, '--port', String(portalPort), '--quiet'], { env: { ...process.env, ...env }, stdio: 'ignore' });
      let mail: string | undefined;
      for (let i = 0; i < 60 && mail === undefined; i++) {
        // The policy change also told Alice's first device (by mail too); this is the new iPad's.
        mail = mails.find((m) => /^To: .*alice@example\.com/im.test(m) && m.replace(/=\r?\n/g, '').includes('alice-3 iPad'));
        if (mail === undefined) await sleep(250);
      }
      assert.ok(mail, `no notification mail arrived (${mails.length} mails)`);
      const link = /(https?:\/\/[^\s"<>]+\/portal\/open\/[0-9a-f-]{36})/.exec(mail.replace(/=\r?\n/g, ''))?.[1];
      assert.ok(link, mail);
      let page = '';
      for (let i = 0; i < 40; i++) {
        const r = await fetch(link).catch(() => undefined);
        if (r?.ok) {
          page = await r.text();
          break;
        }
        await sleep(250);
      }
      const hop = await fetch(link, { redirect: 'manual' });
      assert.match(page, /Company Portal|S\/MIME/i, `the landing page (the link answers ${hop.status} ${hop.headers.get('location') ?? ''} ${hop.status >= 400 ? await hop.text() : ''})`);
      let ready = false;
      for (let i = 0; i < 80 && !ready; i++) {
        const st = (await fetch(`http://127.0.0.1:${portalPort}/state`).then((r) => r.json()).catch(() => undefined)) as { summary?: { ready: boolean } } | undefined;
        ready = st?.summary?.ready === true;
        if (!ready) await sleep(250);
      }
      assert.ok(ready, 'the landing page reached "Ready to use in Outlook"');
    });
  });
}

story('SQLite', async () => undefined, () => false);

const postgres = await reachablePostgres();
story(
  'PostgreSQL',
  async () => {
    if ('reason' in postgres) return undefined;
    const schema = `kf_story_${process.pid}_${randomBytes(4).toString('hex')}`;
    const client = new pg.Client({ connectionString: postgres.url });
    await client.connect();
    await client.query(`create schema ${schema}`);
    await client.end();
    const url = new URL(postgres.url);
    url.searchParams.set('options', `-c search_path=${schema}`);
    return url.toString();
  },
  () => ('reason' in postgres ? `PostgreSQL is not reachable (${postgres.reason})` : false),
);
