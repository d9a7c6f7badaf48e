/**
 * `keyfleet devices` against a listening server, as a script uses it:
 * tables by default, --json, and one coded line with a non-zero exit for a
 * refusal. Devices are put into the store directly (enrolment is the
 * delivery issue's).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { announceFirstAdmin } from '../../src/cli/admin.ts';
import { DEFAULT_TENANT } from '../../src/cli/context.ts';
import { buildServer } from '../../src/http/server.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';
import { describeRun, run, type RunResult } from '../support/exec.ts';

const node = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/keyfleet', import.meta.url));
const compileCache = join(tmpdir(), 'keyfleet-test-compile-cache');
const T0 = new Date('2026-11-01T00:00:00.000Z');

describe('keyfleet devices', () => {
  let dir: string;
  let store: Store;
  let app: FastifyInstance;
  let url: string;
  let token: string;
  let userId: string;

  const keyfleet = (args: string[]): Promise<RunResult> =>
    run(node, [bin, 'devices', ...args], { env: { NODE_COMPILE_CACHE: compileCache, KEYFLEET_DATABASE_URL: '', KEYFLEET_URL: url, KEYFLEET_TOKEN: token }, timeoutMs: 30_000 });
  const ok = async (args: string[]): Promise<string> => {
    const r = await keyfleet(args);
    assert.equal(r.status, 0, describeRun(r));
    return r.stdout.toString('utf8');
  };
  const fails = async (args: string[], status: number, code: string): Promise<string> => {
    const r = await keyfleet(args);
    assert.equal(r.status, status, describeRun(r));
    const lines = r.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line: ${r.stderr}`);
    assert.match(lines[0]!, new RegExp(`^keyfleet: ${code}: `));
    assert.equal(r.stdout.length, 0);
    return lines[0]!;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'keyfleet-cli-devices-'));
    store = await openStore({ dataDir: join(dir, 'data'), env: {} });
    let printed = '';
    await announceFirstAdmin(store, (line) => (printed += line));
    token = /^(kf_\S+)$/m.exec(printed)![1]!;
    app = await buildServer({ admin: { store } });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
    const r = await fetch(`${url}/api/v1/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userPrincipalName: 'bob@example.com', displayName: 'Bob', isExchangeOnline: true }),
    });
    userId = ((await r.json()) as { id: string }).id;
    const t = store.forTenant(DEFAULT_TENANT);
    for (const [id, name] of [['dev-1', 'Bob’s iPhone'], ['dev-2', 'Bob’s iPad']] as const) {
      await t.devices.putDevice({
        id, userId, deviceName: name, operatingSystem: id === 'dev-2' ? 'iPadOS' : 'iOS', osVersion: '18.1', model: 'iPhone16,1', serialNumber: undefined, portalUrl: undefined, managementState: 'managed',
        enrolledAt: T0, lastSyncAt: undefined, identityThumbprint: undefined, identityCertificate: undefined, desiredStateHash: undefined, recheckAt: undefined, version: 0, createdAt: T0, updatedAt: T0,
      });
    }
  });
  after(async () => {
    await app?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('list and show: a table by default, JSON with --json, by user UPN', async () => {
    const table = await ok(['list']);
    assert.match(table, /^id\s+userId\s+deviceName/m);
    assert.match(table, /^dev-1\s+\S+\s+Bob’s iPhone\s+iOS\s+18\.1\s+managed/m);
    const mine = JSON.parse(await ok(['list', '--user', 'bob@example.com', '--json'])) as { id: string }[];
    assert.deepEqual(mine.map((d) => d.id), ['dev-1', 'dev-2']);
    assert.equal((JSON.parse(await ok(['show', 'dev-2', '--json'])) as { operatingSystem: string }).operatingSystem, 'iPadOS');
  });

  test('status of one device and of a user’s devices; a status with no target is a usage error', async () => {
    const one = JSON.parse(await ok(['status', 'dev-1', '--json'])) as { device: { id: string }; policyStatuses: unknown[]; managedDeviceCertificateStates: unknown[] };
    assert.deepEqual([one.device.id, one.policyStatuses, one.managedDeviceCertificateStates], ['dev-1', [], []]);
    const table = await ok(['status', '--user', 'bob@example.com']);
    assert.match(table, /^device dev-1 \(Bob’s iPhone, managed\)$/m);
    assert.match(table, /^device dev-2 \(Bob’s iPad, managed\)$/m);
    await fails(['status'], 2, 'KF_USAGE');
    await fails(['status', 'dev-1', '--user', 'bob@example.com'], 2, 'KF_USAGE');
  });

  test('retire, then a second retire or a wipe is refused with one line; delete waits until the device has checked in', async () => {
    const retired = JSON.parse(await ok(['retire', 'dev-2', '--json'])) as { managementState: string };
    assert.equal(retired.managementState, 'retirePending');
    assert.match(await fails(['wipe', 'dev-2'], 1, 'KF_CONFLICT'), /retirePending/);
    await fails(['delete', 'dev-2'], 1, 'KF_CONFLICT');
    await fails(['show', 'no-such-device'], 1, 'KF_NOT_FOUND');
    assert.match(await ok(['list', '--state', 'retirePending']), /^dev-2\s/m);
  });
});
