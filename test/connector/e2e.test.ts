/**
 * The connector end to end: real `bin/keyfleet connector …` processes
 * against the service over loopback HTTP, on SQLite and (when reachable)
 * PostgreSQL, with devices, imported PFX files and queued requests seeded
 * through the store as enrolment and check-in will. The faults:
 * requests made while no connector runs wait and are delivered when one
 * starts; two connectors share 200 requests, each completed exactly once;
 * a connector killed holding leases has its requests re-leased and done by
 * another; a connector below the minimum version does nothing; a revoked
 * credential stops its connector; the service going down and coming back
 * loses nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeKeyDelivery } from '../../src/protocol/key-delivery.ts';
import { decryptContent } from '../../src/smime/cms/enveloped-data.ts';
import type { DeliveryRequestRecord } from '../../src/store/delivery.ts';
import { postgresBackend, sqliteBackend } from '../store/backends.ts';
import type { StoreBackend } from '../store/suite.ts';
import { describeRun, run } from '../support/exec.ts';
import { repoRoot } from '../support/keyfleet.ts';
import { TENANT, type Seeded, seed, startService, type Service } from './harness.ts';
import { type DeviceCa, createDeviceCa } from './support.ts';

const node = join(repoRoot, 'node_modules/.bin/node');
const bin = join(repoRoot, 'bin/keyfleet');
const compileCache = join(tmpdir(), 'keyfleet-test-compile-cache');

let dir: string;
let ca: DeviceCa;
let keyPath: string;
let connectorPublicKey: KeyObject;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keyfleet-connector-e2e-'));
  ca = await createDeviceCa();
  const keygen = await run(node, [bin, 'connector', 'keygen', '--out-dir', join(dir, 'keys'), '--bits', '3072'], { env: { NODE_COMPILE_CACHE: compileCache } });
  assert.equal(keygen.status, 0, describeRun(keygen));
  keyPath = join(dir, 'keys', 'connector.key');
  connectorPublicKey = createPublicKey(readFileSync(join(dir, 'keys', 'connector.pub.pem')));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** `keyfleet connector register|list|revoke …` against the service's admin API. */
function cli(svc: Service, args: readonly string[]) {
  return run(node, [bin, 'connector', ...args], { env: { NODE_COMPILE_CACHE: compileCache, KEYFLEET_URL: svc.url, KEYFLEET_TOKEN: svc.adminToken } });
}

let credentials = 0;
/** Registers a connector with the CLI; returns its id and a 0600 credential file. */
async function register(svc: Service, name: string): Promise<{ id: string; credentialFile: string }> {
  const r = await cli(svc, ['register', '--name', name, '--json']);
  assert.equal(r.status, 0, describeRun(r));
  const created = JSON.parse(r.stdout.toString('utf8')) as { id: string; secret: string };
  const credentialFile = join(dir, `credential-${++credentials}`);
  writeFileSync(credentialFile, `${created.secret}\n`, { mode: 0o600 });
  return { id: created.id, credentialFile };
}

/** A running `keyfleet connector run`, its stderr kept. */
class ConnectorProcess {
  readonly child: ChildProcess;
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(url: string, credentialFile: string, extra: readonly string[] = []) {
    this.child = spawn(node, [bin, 'connector', 'run', '--url', url, '--credential-file', credentialFile, '--key', keyPath, '--concurrency', '4', ...extra], {
      cwd: repoRoot,
      env: { ...process.env, NODE_COMPILE_CACHE: compileCache },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child.stderr!.on('data', (b: Buffer) => (this.stderr += b.toString('utf8')));
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Request ids this process reported as delivered. */
  delivered(): string[] {
    return [...this.stderr.matchAll(/: delivered (\S+)/g)].map((m) => m[1]!);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM') {
    this.child.kill(signal);
    return this.exited;
  }
}

async function waitFor(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 60_000, processes: readonly ConnectorProcess[] = []): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}\n${processes.map((p) => p.stderr).join('\n---\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function requestsOf(svc: Service, ids: readonly string[]): Promise<DeliveryRequestRecord[]> {
  return Promise.all(ids.map(async (id) => (await svc.tenant.delivery.getDeliveryRequest(id))!));
}

const countReady = async (svc: Service, ids: readonly string[]) => (await requestsOf(svc, ids)).filter((r) => r.status === 'ready').length;

/** Every request is ready and its payload opens on its own device to the PFX it was for. */
async function assertDelivered(svc: Service, seeded: Seeded): Promise<DeliveryRequestRecord[]> {
  const records = await requestsOf(svc, seeded.requests.map((r) => r.id));
  const devices = new Map(seeded.devices.map((d) => [d.deviceId, d]));
  const pfxs = new Map(seeded.pfxs.map((p) => [p.id, p]));
  for (const r of records) {
    assert.equal(r.status, 'ready', `${r.id}: ${r.status} ${r.errorCode ?? ''} ${r.errorDetail ?? ''}`);
    const device = devices.get(r.deviceId)!;
    const pfx = pfxs.get(r.pfxId)!;
    const opened = decryptContent(r.payload!, [{ certificate: device.certificate, key: device.key }]);
    decodeKeyDelivery(opened.content, { pfxId: pfx.id, thumbprint: pfx.thumbprint });
  }
  return records;
}

for (const backend of [sqliteBackend(), await postgresBackend()]) {
  describe(`connector processes on ${backend.name}`, { skip: backend.skip }, () => e2eSuite(backend));
}

function e2eSuite(backend: StoreBackend): void {
  test('requests queued while no connector runs are delivered when one starts; SIGTERM stops it cleanly', async () => {
    const svc = await startService(backend, { pollMs: 200 });
    try {
      const c = await register(svc, 'late starter');
      const seeded = await seed(svc.tenant, ca, connectorPublicKey, 2, 3, 'late');
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await countReady(svc, seeded.requests.map((r) => r.id)), 0);
      assert.equal((await svc.tenant.delivery.listDeliveryRequests({ status: 'pending' })).items.length, 6);
      const p = new ConnectorProcess(svc.url, c.credentialFile);
      await waitFor('6 deliveries', async () => (await countReady(svc, seeded.requests.map((r) => r.id))) === 6, 60_000, [p]);
      await assertDelivered(svc, seeded);
      const exit = await p.stop('SIGTERM');
      assert.equal(exit.code, 0, p.stderr);
      assert.match(p.stderr, /stopped \(6 delivered, 0 failed, 0 not posted\)/);
      const list = await cli(svc, ['list', '--json']);
      const listed = JSON.parse(list.stdout.toString('utf8')) as { id: string; state: string; version: string }[];
      assert.equal(listed.find((x) => x.id === c.id)?.state, 'active');
    } finally {
      await svc.close();
    }
  });

  test('two connector processes share 200 requests: every one completed exactly once, none lost', async () => {
    const svc = await startService(backend, { pollMs: 200 });
    const processes: ConnectorProcess[] = [];
    try {
      const [a, b] = [await register(svc, 'connector A'), await register(svc, 'connector B')];
      processes.push(new ConnectorProcess(svc.url, a!.credentialFile), new ConnectorProcess(svc.url, b!.credentialFile));
      // Queued while both wait in their long-polls; the signal wakes them.
      const seeded = await seed(svc.tenant, ca, connectorPublicKey, 10, 20, 'pair');
      svc.connectors.queue.notify(TENANT);
      const ids = seeded.requests.map((r) => r.id);
      assert.equal(new Set(ids).size, 200);
      await waitFor('200 deliveries', async () => (await countReady(svc, ids)) === 200, 180_000, processes);
      const records = await assertDelivered(svc, seeded);
      for (const p of processes) assert.equal((await p.stop()).code, 0, p.stderr);
      const reported = processes.flatMap((p) => p.delivered());
      assert.equal(reported.length, 200, 'results accepted: exactly one per request');
      assert.deepEqual(new Set(reported), new Set(ids));
      const byConnector = new Map<string, number>();
      for (const r of records) byConnector.set(r.connectorId!, (byConnector.get(r.connectorId!) ?? 0) + 1);
      assert.deepEqual([...byConnector.keys()].sort(), [a!.id, b!.id].sort(), 'both connectors did some of the work');
      assert.equal((await svc.tenant.delivery.listDeliveryRequests({ status: 'pending' })).items.length, 0);
    } finally {
      for (const p of processes) if (p.child.exitCode === null) p.child.kill('SIGKILL');
      await svc.close();
    }
  });

  test('a connector killed while holding leases: its requests are re-leased after expiry and completed by the other', async () => {
    const svc = await startService(backend, { leaseSeconds: 3, pollMs: 200 });
    // The first connector reaches the service through a proxy that passes claims and swallows results,
    // so it is certain to die holding its leases.
    const proxy = await blackholeResults(svc.url);
    const processes: ConnectorProcess[] = [];
    try {
      const [a, b] = [await register(svc, 'doomed'), await register(svc, 'survivor')];
      const seeded = await seed(svc.tenant, ca, connectorPublicKey, 2, 4, 'kill');
      const doomed = new ConnectorProcess(proxy.url, a!.credentialFile);
      processes.push(doomed);
      await waitFor('the first claim', () => /claimed 4 request/.test(doomed.stderr), 30_000, processes);
      const held = (await svc.tenant.delivery.listDeliveryRequests({ status: 'claimed' })).items.filter((r) => r.connectorId === a!.id);
      assert.equal(held.length, 4);
      const killed = await doomed.stop('SIGKILL');
      assert.equal(killed.signal, 'SIGKILL');
      const killedAt = Date.now();

      const survivor = new ConnectorProcess(svc.url, b!.credentialFile);
      processes.push(survivor);
      const ids = seeded.requests.map((r) => r.id);
      await waitFor('the 4 free requests', async () => (await countReady(svc, ids)) === 4, 30_000, processes);
      const whileLeased = await requestsOf(svc, held.map((r) => r.id));
      if (Date.now() - killedAt < 2_500) assert.ok(whileLeased.every((r) => r.status === 'claimed'), 'not given out while the lease lasts');
      await waitFor('all 8', async () => (await countReady(svc, ids)) === 8, 60_000, processes);
      await assertDelivered(svc, seeded);
      for (const r of await requestsOf(svc, held.map((h) => h.id))) {
        assert.equal(r.connectorId, b!.id);
        assert.equal(r.attempts, 2);
      }
      assert.equal((await survivor.stop()).code, 0, survivor.stderr);
      assert.equal(survivor.delivered().length, 8);
    } finally {
      for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await proxy.close();
      await svc.close();
    }
  });

  test('a connector below the minimum version is refused with KF_CONNECTOR_OUTDATED and does nothing', async () => {
    const svc = await startService(backend, { pollMs: 200 });
    try {
      const c = await register(svc, 'old');
      const seeded = await seed(svc.tenant, ca, connectorPublicKey, 1, 2, 'old');
      const p = new ConnectorProcess(svc.url, c.credentialFile, ['--version-override', '6.1911.10.0']);
      const exit = await p.exited;
      assert.equal(exit.code, 1, p.stderr);
      assert.match(p.stderr, /KF_CONNECTOR_OUTDATED/);
      for (const r of await requestsOf(svc, seeded.requests.map((x) => x.id))) {
        assert.equal(r.status, 'pending');
        assert.equal(r.attempts, 0);
      }
      const listed = JSON.parse((await cli(svc, ['list', '--json'])).stdout.toString('utf8')) as { id: string; state: string; version: string }[];
      assert.deepEqual(
        listed.filter((x) => x.id === c.id).map((x) => [x.version, x.state]),
        [['6.1911.10.0', 'outdated']],
      );
    } finally {
      await svc.close();
    }
  });

  test('a revoked credential stops working: the running connector exits, later requests wait for another', async () => {
    const svc = await startService(backend, { pollMs: 200 });
    try {
      const c = await register(svc, 'to be revoked');
      const first = await seed(svc.tenant, ca, connectorPublicKey, 1, 2, 'before');
      const p = new ConnectorProcess(svc.url, c.credentialFile);
      await waitFor('the first deliveries', async () => (await countReady(svc, first.requests.map((r) => r.id))) === 2, 60_000, [p]);
      const revoke = await cli(svc, ['revoke', c.id]);
      assert.equal(revoke.status, 0, describeRun(revoke));
      const later = await seed(svc.tenant, ca, connectorPublicKey, 1, 1, 'after');
      svc.connectors.queue.notify(TENANT);
      const exit = await p.exited;
      assert.equal(exit.code, 1, p.stderr);
      assert.match(p.stderr, /KF_UNAUTHENTICATED/);
      const [r] = await requestsOf(svc, [later.requests[0]!.id]);
      assert.equal(r!.status, 'pending');
      const again = new ConnectorProcess(svc.url, c.credentialFile);
      assert.equal((await again.exited).code, 1);
      assert.match(again.stderr, /KF_UNAUTHENTICATED/);
    } finally {
      await svc.close();
    }
  });

  test('the service down for a while: the connector backs off and delivers once it is back, nothing lost', async () => {
    const svc = await startService(backend, { pollMs: 200 });
    const port = Number(new URL(svc.url).port);
    let restarted: Service | undefined;
    try {
      const c = await register(svc, 'patient');
      const p = new ConnectorProcess(svc.url, c.credentialFile);
      await waitFor('the connector to start', () => /working for/.test(p.stderr), 30_000, [p]);
      await svc.app.close();
      await waitFor('a back-off', () => /service unavailable/.test(p.stderr), 30_000, [p]);
      const seeded = await seed(svc.tenant, ca, connectorPublicKey, 2, 2, 'down');
      // The same database, a new server on the same port: a restart.
      restarted = await svc.restart(port);
      await waitFor('4 deliveries', async () => (await countReady(restarted!, seeded.requests.map((r) => r.id))) === 4, 90_000, [p]);
      await assertDelivered(restarted, seeded);
      assert.equal((await p.stop('SIGINT')).code, 0, p.stderr);
    } finally {
      await (restarted ?? svc).close();
    }
  });

  test('`connector run` refuses a key file others can read, as ssh does', async () => {
    const loose = join(dir, 'loose.key');
    writeFileSync(loose, readFileSync(keyPath));
    chmodSync(loose, 0o644);
    const r = await run(node, [bin, 'connector', 'run', '--url', 'http://127.0.0.1:9', '--credential-file', loose, '--key', loose], { env: { NODE_COMPILE_CACHE: compileCache } });
    assert.equal(r.status, 1, describeRun(r));
    assert.match(r.stderr, /KF_KEY_INVALID: permissions 0644 .* too open/);
  });
}

/** An HTTP proxy to `target` that forwards claims and never answers anything else. */
async function blackholeResults(target: string): Promise<{ url: string; close(): Promise<void> }> {
  const held = new Set<ServerResponse>();
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (!req.url?.endsWith('/claim')) {
      held.add(res);
      return;
    }
    const headers: Record<string, string> = {};
    for (const h of ['authorization', 'keyfleet-connector-version', 'content-type']) if (typeof req.headers[h] === 'string') headers[h] = req.headers[h];
    try {
      const answer = await fetch(`${target}${req.url}`, { method: 'POST', headers, body: Buffer.concat(chunks) });
      const body = Buffer.from(await answer.arrayBuffer());
      res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json', date: answer.headers.get('date') ?? new Date().toUTCString() });
      res.end(body);
    } catch {
      res.writeHead(502).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of held) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
