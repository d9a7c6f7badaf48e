/**
 * Issue 5's fault "the server restarted mid-delivery (it resumes; nothing
 * delivered twice or half)", with a real `keyfleet serve` process on a data
 * directory, killed (SIGKILL, and in a second run SIGTERM) while delivery
 * requests are at once completed, leased with their result on the way, and
 * still queued; then started again on the same data and port.
 *
 * The admin sets up the seed over the API; three devices (the real agent,
 * listening on its push channel) enrol and get their signing certificates;
 * a real `keyfleet connector run` re-wraps the users' encryption history
 * through a gate (faults-support.ts) that lets two results through, loses
 * the answer to the third (it was applied, but the connector never hears
 * so and posts it again after the restart), and holds the rest until the
 * server is gone. Nobody tells the devices or the connector that the server
 * came back.
 */
import { type TestContext, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { DeviceAgent, type AgentListener, type ListenEvent } from '../../src/device/agent.ts';
import { DeviceKeystore, defaultKeyFilePath } from '../../src/device/keystore.ts';
import { readPfxMetadata } from '../../src/pkcs12/pfx-metadata.ts';
import { writePkcs12 } from '../../src/pkcs12/write.ts';
import { preparePfxImport } from '../../src/policy/index.ts';
import { loadCertificates } from '../../src/x509/certificate.ts';
import { createDeviceCa } from '../connector/support.ts';
import { eventually } from '../device/agent-support.ts';
import { scepInput } from '../policy/helpers.ts';
import { OUTLOOK, PKCS_ENCRYPTION, seedPolicy, trustedRoot } from '../resources/support.ts';
import { describeRun, run } from '../support/exec.ts';
import { repoRoot } from '../support/keyfleet.ts';
import { adminClient, deviceStatus, resultGate, type ServeProcess, spawnServe } from './faults-support.ts';
import { freePort } from './seed-support.ts';
import { tempDir, withTenant } from './support.ts';

// serve, the commands and the store read beside it all use the SQLite file under --data.
delete process.env['KEYFLEET_DATABASE_URL'];
const node = join(repoRoot, 'node_modules/.bin/node');
const bin = join(repoRoot, 'bin/keyfleet');
const env = { KEYFLEET_DATABASE_URL: '', NODE_COMPILE_CACHE: join(tmpdir(), 'keyfleet-test-compile-cache') };

/** Encryption certificates per user, and devices: 2 + 3 + 3 = 8 delivery requests. */
const HISTORY = { alice: 2, bob: 3 } as const;
const DEVICES = [['alice', 'Alice’s iPhone'], ['bob', 'Bob’s iPhone'], ['bob', 'Bob’s iPad']] as const;
type UserName = keyof typeof HISTORY;
const accepted = (status: number) => status >= 200 && status < 300;

for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
  test(`the server restarted mid-delivery (${signal}, then started again on the same data and port): every device ends with every certificate exactly once; devices and connector resume on their own`, { timeout: 240_000 }, (t) => restartMidDelivery(t, signal));
}

async function restartMidDelivery(t: TestContext, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  const tmp = tempDir(`faults-restart-${signal}`);
  const dataDir = join(tmp.path, 'data');
  const port = await freePort();
  let serve: ServeProcess | undefined = await spawnServe(dataDir, port, ['--init']);
  const listeners: AgentListener[] = [];
  let connector: ChildProcess | undefined;
  let gate: Awaited<ReturnType<typeof resultGate>> | undefined;
  try {
    const token = /^(kf_[A-Za-z0-9_-]{43})$/m.exec(serve.output())?.[1];
    assert.ok(token, serve.output());
    const origin = serve.origin;
    const { ok } = adminClient(origin, token);

    // The seed: Alice and Bob in Sales; root, SCEP signing, imported encryption history, Outlook, the policy.
    const users = {} as Record<UserName, string>;
    for (const name of Object.keys(HISTORY) as UserName[]) {
      users[name] = (await ok('POST', '/api/v1/users', { userPrincipalName: `${name}@contoso.com`, displayName: name, mail: `${name}@contoso.com`, isExchangeOnline: true }))['id'] as string;
    }
    const sales = (await ok('POST', '/api/v1/groups', { displayName: 'Sales' }))['id'] as string;
    for (const id of Object.values(users)) await ok('POST', `/api/v1/groups/${sales}/members`, { type: 'user', id });
    const shown = await run(node, [bin, 'ca', 'show', '--data', dataDir, '--pem'], { env });
    assert.equal(shown.status, 0, describeRun(shown));
    const root = loadCertificates(shown.stdout).at(-1)!;
    const app = (await ok('POST', '/api/v1/apps', OUTLOOK))['id'] as string;
    const rootProfile = (await ok('POST', '/api/v1/profiles', trustedRoot(root.der)))['id'] as string;
    const scep = (await ok('POST', '/api/v1/profiles', scepInput({ rootCertificateId: rootProfile, scepServerUrls: [`${origin}/scep`] })))['id'] as string;
    const pkcs = (await ok('POST', '/api/v1/profiles', PKCS_ENCRYPTION))['id'] as string;
    const policy = (await ok('POST', '/api/v1/policies', seedPolicy(app, scep, pkcs)))['id'] as string;
    for (const [kind, id] of [['policies', policy], ['apps', app], ['profiles', rootProfile], ['profiles', scep], ['profiles', pkcs]] as const) {
      await ok('POST', `/api/v1/${kind}/${id}/assignments`, { include: [sales] });
    }
    const keygen = await run(node, [bin, 'connector', 'keygen', '--out-dir', join(tmp.path, 'connector'), '--bits', '3072'], { env });
    assert.equal(keygen.status, 0, describeRun(keygen));
    const connectorPublicKey = createPublicKey(readFileSync(join(tmp.path, 'connector', 'connector.pub.pem')));
    const mailCa = await createDeviceCa();
    const history: Record<UserName, string[]> = { alice: [], bob: [] };
    for (const name of Object.keys(HISTORY) as UserName[]) {
      for (let i = 0; i < HISTORY[name]; i++) {
        const holder = await mailCa.issueSmime(`${name}@contoso.com`);
        const password = randomBytes(9).toString('base64url');
        const pfx = writePkcs12([{ key: holder.key, certificate: holder.certificate }], password, { profile: 'modern' });
        const upload = preparePfxImport({ pfx, password, connectorPublicKey, userPrincipalName: `${name}@contoso.com`, intendedPurpose: 'smimeEncryption', keyName: 'connector' }, readPfxMetadata);
        await ok('POST', '/api/v1/userPfxCertificates', upload);
        history[name].push(holder.certificate.thumbprint);
      }
    }

    // The devices enrol and get their signing certificates; their encryption history waits for a connector.
    const devices: { name: string; user: UserName; agent: DeviceAgent; deviceId: string; events: ListenEvent[] }[] = [];
    for (const [user, name] of DEVICES) {
      const agent = new DeviceAgent({ stateDir: tmp.sub(`device-${devices.length}`) });
      const enrollmentToken = (await ok('POST', `/api/v1/users/${users[user]}/enrollmentTokens`, {}))['token'] as string;
      const { deviceId } = await agent.enroll(origin, enrollmentToken, { deviceName: name, model: 'iPhone15,2', operatingSystem: 'iOS', osVersion: '18.1' });
      const first = await agent.checkin();
      assert.deepEqual(first.failed, []);
      assert.ok(first.installed.some((i) => i.kind === 'signing'), JSON.stringify(first.installed));
      assert.equal(first.pending.filter((p) => p.kind === 'encryption').length, HISTORY[user], JSON.stringify(first.pending));
      devices.push({ name, user, agent, deviceId, events: [] });
    }
    const requests = () => withTenant(dataDir, async (t) => (await t.delivery.listDeliveryRequests({}, { limit: 100 })).items);
    assert.deepEqual((await requests()).map((r) => r.status), Array(8).fill('pending'));
    for (const d of devices) listeners.push(d.agent.listen({ intervalMs: 3_600_000, backoff: { initialMs: 100, maxMs: 1_000 }, onEvent: (e) => d.events.push(e) }));

    // The connector, through the gate.
    const registered = await ok('POST', '/api/v1/connectors', { name: 'connector-1' });
    const credentialFile = join(tmp.path, 'connector.credential');
    writeFileSync(credentialFile, `${String(registered['secret'])}\n`, { mode: 0o600 });
    gate = await resultGate(origin, 2);
    const g = gate;
    connector = spawn(node, [bin, 'connector', 'run', '--url', g.url, '--credential-file', credentialFile, '--key', join(tmp.path, 'connector', 'connector.key'), '--concurrency', '4'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let connectorLog = '';
    connector.stderr!.setEncoding('utf8').on('data', (s: string) => (connectorLog += s));
    const lost = () => g.lostAnswer() ?? '';
    const state = () => `gate answers ${JSON.stringify([...g.answers])}, held ${JSON.stringify(g.held())}\n${connectorLog}`;
    await eventually('two results through, one answer lost, two more held', () => [...g.answers.values()].filter((a) => a.some(accepted)).length === 3 && g.held().filter((id) => id !== lost()).length >= 2, 60_000).catch((e: unknown) => assert.fail(`${String(e)}\n${state()}`));

    // Mid-delivery: some completed, some leased with the result on its way, some still queued.
    const before = await requests();
    const count = (status: string) => before.filter((r) => r.status === status).length;
    assert.equal(count('ready'), 3, JSON.stringify(before.map((r) => r.status)));
    assert.ok(count('claimed') >= 2 && count('pending') >= 1, JSON.stringify(before.map((r) => r.status)));
    const exit = await serve.kill(signal);
    serve = undefined;
    assert.deepEqual(signal === 'SIGKILL' ? exit.signal : exit.status, signal === 'SIGKILL' ? 'SIGKILL' : 0);
    g.open();
    // (The connector, its four slots busy with results to post, retries them quietly.)
    await eventually('the devices to notice', () => devices.every((d) => d.events.some((e) => e.type === 'disconnected')), 30_000).catch((e: unknown) => assert.fail(`${String(e)}\n${JSON.stringify(devices.map((d) => d.events.map((x) => x.type)))}`));

    serve = await spawnServe(dataDir, port);
    assert.equal(serve.origin, origin);
    const expected = (d: (typeof devices)[number]) => [...history[d.user]].sort();
    const held = async (d: (typeof devices)[number]) => (await (await d.agent.keystore()).snapshot()).encryption.map((e) => e.certificate.thumbprint).sort();
    await eventually('every device to hold its whole history', async () => {
      for (const d of devices) if (JSON.stringify(await held(d)) !== JSON.stringify(expected(d))) return false;
      return true;
    }, 120_000);
    // A device that already held everything when the server went down reconnects on its back-off, maybe after the others are done.
    await eventually('every device to reconnect to the restarted server', () => devices.every((d) => d.events.filter((e) => e.type === 'connected').length >= 2), 60_000);
    // Stopping waits for a check-in under way, so every summary is in.
    await Promise.all(listeners.splice(0).map((l) => l.stop()));

    // Each request completed once: one accepted result each. The connector posts the result whose answer was
    // lost again (after its back-off) until the service refuses it, or until its lease is over.
    await eventually('the lost answer’s result to be posted again, or given up', () => (g.answers.get(lost())?.length ?? 0) >= 2 || new RegExp(`result for ${lost()} not posted`).test(connectorLog), 60_000);
    const after = await requests();
    assert.deepEqual(after.map((r) => r.status), Array(8).fill('ready'));
    assert.equal(new Set(after.map((r) => `${r.deviceId} ${r.pfxId}`)).size, 8, 'one request per (device, certificate)');
    assert.deepEqual([...g.answers.keys()].sort(), after.map((r) => r.id).sort());
    for (const [id, answers] of g.answers) assert.equal(answers.filter(accepted).length, 1, `${id}: ${answers.join(', ')}`);
    const again = g.answers.get(lost())!.slice(1);
    t.diagnostic(`before the kill: ${before.map((r) => r.status).sort().join(' ')}; the result whose answer was lost, posted again: ${again.length === 0 ? 'given up at the end of its lease' : again.join(', ')}`);
    assert.ok(again.every((status) => status === 409), `the repeated result of a completed request is refused: ${again.join(', ')}`);

    for (const d of devices) {
      // Nothing half-written: the keystore, opened afresh from disk, holds each certificate once.
      const fresh = await (await DeviceKeystore.open(d.agent.keystorePath, { kind: 'key-file', path: defaultKeyFilePath(d.agent.keystorePath) })).snapshot();
      assert.deepEqual(fresh.encryption.map((e) => e.certificate.thumbprint).sort(), expected(d), d.name);
      assert.deepEqual([fresh.signing.length, fresh.trustedRoots.length, fresh.identity?.deviceId], [1, 1, d.deviceId], d.name);
      // Never installed twice over the check-ins the device made on its own (a check-in cut short by the
      // restart installs without a summary; its reports wait in the outbox and go out after it).
      const installs = d.events.flatMap((e) => (e.type === 'checkin' ? e.summary.installed.filter((i) => i.kind === 'encryption').map((i) => i.thumbprint!) : []));
      assert.equal(new Set(installs).size, installs.length, `${d.name} installed a certificate twice: ${installs.join(', ')}`);
      assert.deepEqual(d.agent.state().outbox, [], `${d.name}: every report delivered`);
      assert.ok(d.events.filter((e) => e.type === 'connected').length >= 2, `${d.name} reconnected`);
      const view = await deviceStatus(ok, d.deviceId);
      const imported = view.managedDeviceCertificateStates.filter((c) => c['source'] === 'pkcsImported');
      assert.deepEqual(imported.map((c) => String(c['certificateThumbprint']).toUpperCase()).sort(), expected(d), d.name);
      assert.ok(imported.every((c) => c['certificateIssuanceState'] === 'installed'), JSON.stringify(imported));
      assert.deepEqual(view.managedDeviceCertificateStates.filter((c) => c['source'] === 'scep').map((c) => c['certificateIssuanceState']), ['installed']);
      assert.deepEqual(view.policyStatuses.map((p) => [p['policyId'], p['status']]), [[policy, 'compliant']]);
    }

    // The connector carried on by itself; it stops cleanly, having delivered no request twice.
    assert.equal(connector.exitCode, null, connectorLog);
    connector.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => connector!.once('exit', resolve));
    assert.equal(code, 0, connectorLog);
    const delivered = [...connectorLog.matchAll(/: delivered (\S+)/g)].map((m) => m[1]!);
    assert.equal(new Set(delivered).size, delivered.length, connectorLog);
    assert.match(connectorLog, new RegExp(`result for ${lost()} not posted: (KF_CONFLICT|lease ended)`));
  } finally {
    await Promise.all(listeners.map((l) => l.stop()));
    if (connector !== undefined && connector.exitCode === null && connector.signalCode === null) connector.kill('SIGKILL');
    await serve?.kill('SIGTERM');
    await gate?.close();
    tmp.cleanup();
  }
}
