/**
 * The resource commands against a server started in-process (buildServer,
 * listen on 127.0.0.1:0): connector keygen, the seed's setup, updates, the
 * derived-credential issuer, the VPP sync, and `keyfleet pfx import` of an
 * openssl-made PKCS#12, singly and by manifest (in batches, and one by one
 * when a batch is refused).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createPrivateKey, privateDecrypt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { createToken, LOCAL_OPERATOR } from '../../src/directory/access.ts';
import { buildServer } from '../../src/http/server.ts';
import { FileVppSource } from '../../src/policy/vpp.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';
import { describeRun, run, type RunResult } from '../support/exec.ts';
import { policyFixtures, type PolicyFixtures } from '../policy/fixtures.ts';
import { OUTLOOK_VPP, TEAMS_VPP, vppAnswer } from '../policy/helpers.ts';
import { opensslPfx, scepProfile, seedPolicy } from './support.ts';

const node = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/keyfleet', import.meta.url));
const compileCache = join(tmpdir(), 'keyfleet-test-compile-cache');

describe('keyfleet apps|profiles|policies|assignments|connector|pfx', () => {
  let dir: string;
  let store: Store;
  let app: FastifyInstance;
  let url: string;
  let token: string;
  let f: PolicyFixtures;

  const keyfleet = (args: string[]): Promise<RunResult> =>
    run(node, [bin, ...args], { env: { NODE_COMPILE_CACHE: compileCache, KEYFLEET_DATABASE_URL: '', KEYFLEET_URL: url, KEYFLEET_TOKEN: token }, timeoutMs: 60_000 });
  const ok = async (args: string[]): Promise<string> => {
    const r = await keyfleet(args);
    assert.equal(r.status, 0, describeRun(r));
    return r.stdout.toString('utf8');
  };
  const okJson = async (args: string[]) => JSON.parse(await ok([...args, '--json']));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyfleet-cli-resources-'));
    store = await openStore({ dataDir: join(dir, 'data'), env: {} });
    await store.ensureTenant('default', 'Default');
    token = (await createToken(store.forTenant('default'), LOCAL_OPERATOR, 'cli', 'policyManager')).secret;
    writeFileSync(join(dir, 'vpp.json'), JSON.stringify(vppAnswer()));
    app = await buildServer({ admin: { store }, vpp: (tenantId) => (tenantId === 'default' ? new FileVppSource(join(dir, 'vpp.json'), 'vpp-default') : undefined) });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
    f = await policyFixtures();
  });
  after(async () => {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('setup through the commands: app, profiles, policy, settings as plist, assignment', async () => {
    const outlook = await okJson(['apps', 'add-outlook']);
    assert.match(await ok(['apps', 'list']), /^id\s+kind\s+displayName\s+bundleId\n.*com\.microsoft\.Office\.Outlook$/m);
    writeFileSync(join(dir, 'root.pem'), `-----BEGIN CERTIFICATE-----\n${Buffer.from(f.ca.cert.der).toString('base64')}\n-----END CERTIFICATE-----\n`);
    const root = await okJson(['profiles', 'create-trusted-root', '--cert', join(dir, 'root.pem')]);
    const { kind: _kind, ...scepFields } = scepProfile(root.id);
    writeFileSync(join(dir, 'scep.json'), JSON.stringify(scepFields));
    const scep = await okJson(['profiles', 'create-scep', '--file', join(dir, 'scep.json')]);
    const pkcs = await okJson(['profiles', 'create-pkcs', '--purpose', 'smimeEncryption']);
    writeFileSync(join(dir, 'policy.json'), JSON.stringify(seedPolicy(outlook.id, scep.id, pkcs.id)));
    const policy = await okJson(['policies', 'create', '--file', join(dir, 'policy.json')]);
    assert.match(await ok(['policies', 'settings', policy.id, '--plist']), /^<\?xml[\s\S]*<key>com\.microsoft\.outlook\.Mail\.SMIMEEnabled<\/key>\n\t<true\/>/);
    assert.match(await ok(['policies', 'settings', policy.id]), /com\.microsoft\.outlook\.Mail\.SMIMEEnabled\s+booleanType\s+true/);
    assert.deepEqual(await okJson(['assignments', 'add', '--policy', policy.id, '--include', 'allUsers']), { include: ['allUsers'], exclude: [] });
    assert.equal((await okJson(['profiles', 'list'])).length, 3);

    writeFileSync(join(dir, 'bad-policy.json'), JSON.stringify(seedPolicy(outlook.id, scep.id, pkcs.id, { platform: 'android' })));
    const r = await keyfleet(['policies', 'create', '--file', join(dir, 'bad-policy.json')]);
    assert.equal(r.status, 2, 'KF_USAGE exits 2');
    assert.match(r.stderr.toString(), /^keyfleet: KF_USAGE: S\/MIME policy: platform must be iOS\/iPadOS[^\n]*\n$/);
  });

  test('update verbs, the derived-credential issuer, and apps sync-vpp', async () => {
    const [outlook] = await okJson(['apps', 'list']);
    const [pkcs] = await okJson(['profiles', 'list', '--kind', 'iosImportedPfxCertificateProfile']);
    const [policy] = await okJson(['policies', 'list']);

    assert.equal((await okJson(['apps', 'update', outlook.id, '--name', 'Outlook (App Store)'])).displayName, 'Outlook (App Store)');
    writeFileSync(join(dir, 'pkcs-patch.json'), JSON.stringify({ description: 'Old CA history' }));
    assert.equal((await okJson(['profiles', 'update', pkcs.id, '--file', join(dir, 'pkcs-patch.json')])).description, 'Old CA history');
    writeFileSync(join(dir, 'policy-patch.json'), JSON.stringify({ signAllMail: true, description: null }));
    const patched = await okJson(['policies', 'update', policy.id, '--file', join(dir, 'policy-patch.json'), '--name', 'Outlook S/MIME v2']);
    assert.equal(patched.displayName, 'Outlook S/MIME v2');
    assert.equal(patched.signAllMail, true);
    assert.equal(patched.description, undefined);
    const bad = await keyfleet(['policies', 'update', policy.id, '--file', join(dir, 'bad-policy.json')]);
    assert.equal(bad.status, 2, describeRun(bad));
    assert.match(bad.stderr.toString(), /^keyfleet: KF_USAGE: S\/MIME policy: platform must be iOS\/iPadOS/);
    const nothing = await keyfleet(['apps', 'update', outlook.id]);
    assert.equal(nothing.status, 2);
    assert.match(nothing.stderr.toString(), /nothing to change/);

    // Derived credentials: none yet, so a policy choosing them is refused; then one issuer, and it sticks.
    writeFileSync(join(dir, 'derived.json'), JSON.stringify({ signingCertificateProfileType: 'derivedCredential', signingCertificateProfileId: null }));
    const refused = await keyfleet(['policies', 'update', policy.id, '--file', join(dir, 'derived.json')]);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr.toString(), /no derived-credential issuer is configured/);
    const issuer = await okJson(['profiles', 'derived-credential', 'create', '--issuer', 'purebred', '--help-url', 'https://help.contoso.com/dc', '--notification', 'companyPortal,email', '--renewal-threshold', '25']);
    assert.deepEqual([issuer.issuer, issuer.notificationType, issuer.renewalThresholdPercentage, issuer.displayName], ['purebred', ['companyPortal', 'email'], 25, 'Derived credentials (purebred)']);
    assert.match(await ok(['profiles', 'derived-credential', 'list']), /^id\s+displayName\s+issuer\s+notificationType.*\n.*purebred\s+\["companyPortal","email"\]\s+25/);
    const second = await keyfleet(['profiles', 'derived-credential', 'create', '--issuer', 'intercede']);
    assert.equal(second.status, 1);
    assert.match(second.stderr.toString(), /^keyfleet: KF_CONFLICT: a derived-credential issuer is already configured/);
    assert.equal((await okJson(['policies', 'update', policy.id, '--file', join(dir, 'derived.json')])).signingCertificateProfileType, 'derivedCredential');
    assert.equal((await okJson(['profiles', 'derived-credential', 'update', issuer.id, '--issuer', 'entrustDatacard'])).issuer, 'entrustDatacard');
    const inUse = await keyfleet(['profiles', 'derived-credential', 'delete', issuer.id]);
    assert.equal(inUse.status, 1);
    assert.match(inUse.stderr.toString(), new RegExp(`KF_CONFLICT: .*used by policy "${policy.id}"`));

    // VPP: the server's file gives Outlook and Teams; a second sync changes nothing.
    const synced = await okJson(['apps', 'sync-vpp']);
    assert.deepEqual(synced.map((a: { change: string; bundleId: string }) => [a.change, a.bundleId]), [['created', OUTLOOK_VPP.bundleId], ['created', TEAMS_VPP.bundleId]]);
    assert.match(await ok(['apps', 'sync-vpp']), /^id\s+change\s+displayName\s+bundleId\s+usedLicenseCount\s+totalLicenseCount\n.*unchanged\s+Microsoft Outlook\s+com\.microsoft\.Office\.Outlook\s+12\s+500\n/);
    writeFileSync(join(dir, 'vpp.json'), '{"assets": "not a list", "results": {}}');
    const broken = await keyfleet(['apps', 'sync-vpp']);
    assert.equal(broken.status, 1);
    assert.match(broken.stderr.toString(), /^keyfleet: KF_VPP_SOURCE_INVALID: VPP file: assets must be of type array\n$/);
    assert.equal((await okJson(['apps', 'list'])).length, 3);
  });

  test('connector keygen, then pfx import of an openssl PKCS#12 (single and manifest), list, delete', async () => {
    const keys = join(dir, 'connector');
    await ok(['connector', 'keygen', '--out-dir', keys, '--bits', '3072']);
    assert.equal(statSync(join(keys, 'connector.key')).mode & 0o777, 0o600);
    assert.equal((await keyfleet(['connector', 'keygen', '--out-dir', keys])).status, 1, 'refuses to overwrite');

    const password = 'pfx-secret-Ω-42';
    writeFileSync(join(dir, 'alice.p12'), await opensslPfx(f.encryption, password));
    writeFileSync(join(dir, 'alice.pw'), `${password}\n`);
    const created = await okJson([
      'pfx', 'import', '--connector-key', join(keys, 'connector.pub.pem'), '--user', 'alice@contoso.com', '--purpose', 'smimeEncryption', '--password-file', join(dir, 'alice.pw'), join(dir, 'alice.p12'),
    ]);
    assert.equal(created.thumbprint, f.encryption.cert.thumbprint);
    assert.equal(created.paddingScheme, 'oaepSha512');
    assert.equal(created.keyName, 'connector');

    // The connector, and only it, recovers the password.
    const stored = await store.forTenant('default').resources.getUserPfxCertificate(created.id);
    const connectorKey = createPrivateKey(readFileSync(join(keys, 'connector.key')));
    assert.equal(privateDecrypt({ key: connectorKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha512' }, stored!.encryptedPfxPassword).toString('utf8'), password);

    // Bulk: one good line (the signing certificate for bob), one wrong password, one that is not PKCS#12.
    writeFileSync(join(dir, 'bob.p12'), await opensslPfx(f.signing, 'bob-pw'));
    writeFileSync(join(dir, 'bob.pw'), 'bob-pw');
    writeFileSync(join(dir, 'not.p12'), 'this is not a PFX');
    writeFileSync(
      join(dir, 'manifest.csv'),
      'path,upn,password-file,purpose\nbob.p12,bob@contoso.com,bob.pw,smimeSigning\nalice.p12,carol@contoso.com,bob.pw,smimeEncryption\nnot.p12,dave@contoso.com,bob.pw,smimeEncryption\n',
    );
    const r = await keyfleet(['pfx', 'import', '--connector-key', join(keys, 'connector.pub.pem'), '--manifest', join(dir, 'manifest.csv'), '--json']);
    assert.equal(r.status, 1, describeRun(r));
    const report = JSON.parse(r.stdout.toString()) as { path: string; status: string; error?: string }[];
    assert.deepEqual(report.map((x) => [x.path, x.status]), [['bob.p12', 'imported'], ['alice.p12', 'failed'], ['not.p12', 'failed']]);
    assert.match(report[1]!.error!, /^KF_PKCS12_BAD_PASSWORD|^KF_/);
    assert.match(r.stderr.toString(), /1 imported, 2 failed/);

    assert.equal((await okJson(['pfx', 'list', '--user', 'BOB@contoso.com'])).length, 1);
    assert.match(await ok(['pfx', 'list']), /alice@contoso\.com/);
    await ok(['pfx', 'delete', created.id]);
    assert.deepEqual(await okJson(['pfx', 'list', '--user', 'alice@contoso.com']), []);
    const gone = await keyfleet(['pfx', 'delete', created.id]);
    assert.equal(gone.status, 1);
    assert.match(gone.stderr.toString(), /^keyfleet: KF_NOT_FOUND: /);
  });
  test('pfx import --manifest sends batches of up to 100; a refused batch falls back to one upload per file', async (t) => {
    const keys = join(dir, 'connector-batch');
    await ok(['connector', 'keygen', '--out-dir', keys, '--bits', '3072']);
    // The command talks to the server through a proxy that notes every PFX upload: its URL and the answer's status.
    const pfxPosts: string[] = [];
    const target = new URL(url);
    const proxy = createServer((req, res) => {
      const upstream = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
        if (req.method === 'POST' && req.url?.startsWith('/api/v1/userPfxCertificates')) pfxPosts.push(`${req.url} ${answer.statusCode}`);
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxied = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    t.after(() => proxy.close());
    const importManifest = (name: string, lines: string[]) => {
      writeFileSync(join(dir, name), `${lines.join('\n')}\n`);
      return run(node, [bin, 'pfx', 'import', '--connector-key', join(keys, 'connector.pub.pem'), '--manifest', join(dir, name), '--json'], {
        env: { NODE_COMPILE_CACHE: compileCache, KEYFLEET_DATABASE_URL: '', KEYFLEET_URL: proxied, KEYFLEET_TOKEN: token },
        timeoutMs: 120_000,
      });
    };
    writeFileSync(join(dir, 'shared.p12'), await opensslPfx(f.signing, 'shared-pw'));
    writeFileSync(join(dir, 'shared.pw'), 'shared-pw');
    const line = (i: number) => `shared.p12,m${i}@contoso.com,shared.pw,smimeSigning`;

    // 101 files and one that cannot be read: two batches (100 + 1), every file reported in manifest order.
    const lines = Array.from({ length: 101 }, (_, i) => line(i));
    lines.splice(50, 0, 'missing.p12,x@contoso.com,shared.pw,smimeSigning');
    const r = await importManifest('many.csv', lines);
    assert.equal(r.status, 1, describeRun(r));
    const report = JSON.parse(r.stdout.toString()) as { line: number; status: string; userPrincipalName: string; id?: string }[];
    assert.equal(report.length, 102);
    assert.deepEqual(report.map((x) => x.line), Array.from({ length: 102 }, (_, i) => i + 1));
    assert.equal(report[50]!.status, 'failed');
    assert.equal(report.filter((x) => x.status === 'imported' && typeof x.id === 'string').length, 101);
    assert.equal(report[101]!.userPrincipalName, 'm100@contoso.com');
    assert.deepEqual(pfxPosts, ['/api/v1/userPfxCertificates/import 201', '/api/v1/userPfxCertificates/import 201']);
    assert.match(r.stderr.toString(), /101 imported, 1 failed/);

    // m7 already has this certificate: the service refuses the batch whole, so each file goes on its own.
    pfxPosts.length = 0;
    const again = await importManifest('again.csv', ['shared.p12,n1@contoso.com,shared.pw,smimeSigning', line(7), 'shared.p12,n2@contoso.com,shared.pw,smimeSigning']);
    assert.equal(again.status, 1, describeRun(again));
    const second = JSON.parse(again.stdout.toString()) as { userPrincipalName: string; status: string; error?: string }[];
    assert.deepEqual(second.map((x) => [x.userPrincipalName, x.status]), [['n1@contoso.com', 'imported'], ['m7@contoso.com', 'failed'], ['n2@contoso.com', 'imported']]);
    assert.match(second[1]!.error!, /^KF_CONFLICT: certificate [0-9A-F]{40} is already imported for m7@contoso\.com$/);
    assert.deepEqual(pfxPosts, ['/api/v1/userPfxCertificates/import 409', '/api/v1/userPfxCertificates 201', '/api/v1/userPfxCertificates 409', '/api/v1/userPfxCertificates 201']);
    assert.equal((await okJson(['pfx', 'list', '--user', 'n2@contoso.com'])).length, 1);
  });
});
