/**
 * `keyfleet device …` as a user runs it: child processes against a real
 * service (agent-support.ts) over HTTP, the state in a --state directory.
 * Enrol, check in, status, notifications, the keystore listing and exports
 * (read back by openssl), the portal process with its landing page, the
 * notification mail link that leads to it and a live push, and the usage
 * and refusal lines.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeRun, run, runOk, type RunResult } from '../support/exec.ts';
import { repoRoot } from '../support/keyfleet.ts';
import { freePort } from '../e2e/seed-support.ts';
import { type Seed, type TestService, enrollmentToken, eventually, seed, startService } from './agent-support.ts';

const node = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/keyfleet', import.meta.url));
const argvOf = (args: readonly string[]) => [bin, 'device', ...args];
const env = { NODE_COMPILE_CACHE: join(tmpdir(), 'keyfleet-test-compile-cache') };

function device(args: readonly string[], input?: string): Promise<RunResult> {
  return run(node, argvOf(args), { cwd: repoRoot, env, timeoutMs: 60_000, ...(input === undefined ? {} : { input }) });
}

async function deviceJson<T = Record<string, unknown>>(args: readonly string[]): Promise<T> {
  const r = await device([...args, '--json']);
  assert.equal(r.status, 0, describeRun(r));
  return JSON.parse(r.stdout.toString('utf8')) as T;
}

/** Exit `status` and one line on stderr naming `code`. */
function assertRefused(r: RunResult, status: number, code: RegExp): void {
  assert.equal(r.status, status, describeRun(r));
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, describeRun(r));
  assert.match(lines[0]!, code);
}

describe('keyfleet device', { timeout: 300_000 }, () => {
  let s: TestService;
  let seeded: Seed;
  const tmp = mkdtempSync(join(tmpdir(), 'kf-device-cli-'));
  const state = join(tmp, 'bob-iphone');
  let portalPort: number;
  let deviceId: string;

  before(async () => {
    s = await startService();
    seeded = await seed(s);
    portalPort = await freePort();
  });
  after(async () => {
    await s.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('enroll: the token from stdin, a portal port for mail links; the token then refused', async () => {
    const token = await enrollmentToken(s, seeded.users.bob);
    const r = await device(['enroll', '--server', s.origin, '--token', '-', '--state', state, '--name', 'Bob’s iPhone', '--os', 'iOS', '--os-version', '18.2', '--serial', 'F2LX', '--portal-port', String(portalPort), '--json'], `${token}\n`);
    assert.equal(r.status, 0, describeRun(r));
    const enrolled = JSON.parse(r.stdout.toString('utf8')) as { deviceId: string; userId: string };
    deviceId = enrolled.deviceId;
    assert.equal(enrolled.userId, seeded.users.bob);
    const stored = await s.ok('GET', `/api/v1/managedDevices/${deviceId}`);
    assert.equal(stored['deviceName'], 'Bob’s iPhone');
    assert.equal(stored['serialNumber'], 'F2LX');
    for (const f of ['keystore', 'keystore.key', 'agent.json']) assert.equal(statSync(join(state, f)).mode & 0o077, 0, `${f} is private`);
    assert.doesNotMatch(readFileSync(join(state, 'agent.json'), 'utf8'), /PRIVATE|kfe_/, 'no secret in the agent state');

    assertRefused(await device(['enroll', '--server', s.origin, '--token', token, '--state', join(tmp, 'replay')]), 1, /^keyfleet: KF_ENROLLMENT_REFUSED: .*already used/);
    assertRefused(await device(['enroll', '--server', s.origin, '--token', token, '--state', state]), 1, /^keyfleet: KF_CONFLICT: .*already holds enrolled device/);
  });

  test('checkin applies the desired state; the next one is idle; status says so', async () => {
    const first = await deviceJson<{ result: string; installed: { kind: string }[]; failed: unknown[]; reports: { ok: boolean }[] }>(['checkin', '--state', state]);
    assert.equal(first.result, 'applied');
    assert.deepEqual(first.failed, []);
    assert.ok(first.reports.every((r) => r.ok), JSON.stringify(first.reports));
    assert.deepEqual(new Set(first.installed.map((i) => i.kind)), new Set(['trustedRoot', 'signing', 'configuration', 'policy']));
    const idle = await device(['checkin', '--state', state]);
    assert.equal(idle.status, 0, describeRun(idle));
    assert.equal(idle.stdout.toString('utf8'), 'nothing changed since the last check-in\n');

    const st = await deviceJson<{ state: { managementState: string; outbox: unknown[] }; keystore: { signing: number; trustedRoots: number; appConfigurations: string[] } }>(['status', '--state', state]);
    assert.equal(st.state.managementState, 'managed');
    assert.deepEqual(st.state.outbox, []);
    assert.deepEqual([st.keystore.signing, st.keystore.trustedRoots, st.keystore.appConfigurations], [1, 1, ['com.microsoft.Office.Outlook']]);
    const text = (await device(['status', '--state', state])).stdout.toString('utf8');
    assert.match(text, new RegExp(`^device {8}${deviceId} \\(Bob’s iPhone\\)$`, 'm'));
    assert.match(text, /^keystore {6}1 signing, 0 encryption, 1 trusted roots/m);
  });

  test('keystore list and export: PEM for anyone, PKCS#12 with the key that openssl opens, written 0600', async () => {
    const listing = await deviceJson<{ items: { kind: string; thumbprint: string; hasPrivateKey: boolean }[] }>(['keystore', 'list', '--state', state]);
    assert.deepEqual(listing.items.map((i) => i.kind).sort(), ['device-identity', 'signing', 'trusted-root']);
    const signing = listing.items.find((i) => i.kind === 'signing')!;
    assert.equal(signing.hasPrivateKey, true);
    assert.doesNotMatch(JSON.stringify(listing), /PRIVATE KEY/);

    const pem = await device(['keystore', 'export', '--state', state, '--thumbprint', signing.thumbprint, '--format', 'pem']);
    assert.equal(pem.status, 0, describeRun(pem));
    assert.match(pem.stdout.toString('utf8'), /^-----BEGIN CERTIFICATE-----/);
    assert.doesNotMatch(pem.stdout.toString('utf8'), /PRIVATE KEY/);

    const passwordFile = join(tmp, 'password');
    writeFileSync(passwordFile, 'export-pw\n');
    const p12 = join(tmp, 'signing.p12');
    const exported = await device(['keystore', 'export', '--state', state, '--thumbprint', signing.thumbprint, '--kind', 'signing', '--format', 'pkcs12', '--password-file', passwordFile, '--out', p12]);
    assert.equal(exported.status, 0, describeRun(exported));
    assert.equal(statSync(p12).mode & 0o077, 0, 'a file with a private key is private');
    const opened = await runOk('openssl', ['pkcs12', '-in', p12, '-passin', 'pass:export-pw', '-nodes', '-info']);
    assert.match(opened.stdout.toString('utf8'), /BEGIN PRIVATE KEY/);
    assert.match(opened.stdout.toString('utf8'), /subject=.*bob@contoso\.com/i);

    assertRefused(await device(['keystore', 'export', '--state', state, '--thumbprint', '00'.repeat(20), '--format', 'pem']), 1, /^keyfleet: KF_NOT_FOUND: /);
    assertRefused(await device(['keystore', 'export', '--state', state, '--thumbprint', signing.thumbprint, '--format', 'der']), 2, /^keyfleet: KF_USAGE: --format must be pkcs12 or pem/);
  });

  test('portal: the landing page, the mail link that leads to it, and a live push; SIGINT stops it', async () => {
    // Notifications exist before the portal starts (one at enrolment, one for an admin change).
    await s.ok('PATCH', `/api/v1/policies/${seeded.policy}`, { signAllMail: true });
    await s.tick();
    const listed = await deviceJson<{ id: string; title: string; read: boolean }[]>(['notifications', '--state', state]);
    assert.ok(listed.length >= 1, 'at enrolment and after the change');
    assert.equal((await device(['notifications', '--state', state])).stdout.toString('utf8').includes(listed[0]!.title), true);

    const child = spawn(node, [...argvOf(['portal', '--state', state, '--interval', '3600'])], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = collect(child);
    try {
      await eventually('the portal to listen', () => /Company Portal for .* at http:\/\/127\.0\.0\.1:\d+/.test(output.stdout()), 30_000);
      const portal = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(output.stdout())![1]!;
      assert.equal(portal, `http://127.0.0.1:${portalPort}`, 'on the port given at enrolment');
      type Snapshot = { version: number; items: { kind: string; state: string }[]; notifications: { id: string }[]; summary: { ready: boolean } };
      const snapshot = async () => (await (await fetch(`${portal}/state`)).json()) as Snapshot;
      await eventually('the page to show everything installed', async () => (await snapshot()).summary.ready, 30_000);
      assert.ok((await snapshot()).notifications.some((n) => n.id === listed[0]!.id));

      // The link in notification mail: the service redirects to this device's portal, which shows the notification.
      const link = await fetch(`${s.origin}/portal/open/${listed[0]!.id}`, { redirect: 'manual' });
      assert.equal(link.status, 302);
      assert.equal(link.headers.get('location'), `${portal}/open/${listed[0]!.id}`);
      const page = await fetch(link.headers.get('location')!);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type') ?? '', /^text\/html/);

      // A change while the portal runs arrives by push, with its notification.
      await eventually('the push channel', () => /push channel connected/.test(output.stderr()), 30_000);
      await s.ok('PATCH', `/api/v1/policies/${seeded.policy}`, { signAllMail: false });
      await s.tick();
      await eventually('the pushed notification on the page', async () => (await snapshot()).notifications.length > listed.length, 30_000);
      await eventually('a check-in on the push', () => /check-in \(changed\)/.test(output.stderr()), 30_000);
    } finally {
      child.kill('SIGINT');
    }
    const exit = await output.exited;
    assert.equal(exit, 0, output.stderr());
  });

  test('usage and refusals: one line, exit 2 for usage', async () => {
    assertRefused(await device(['enroll', '--token', 'kfe_x', '--state', join(tmp, 'x')]), 2, /^keyfleet: KF_USAGE: --server is required/);
    assertRefused(await device(['enroll', '--server', s.origin, '--token', 'kfe_x', '--state', join(tmp, 'x'), '--os', 'Android']), 2, /^keyfleet: KF_USAGE: --os must be iOS or iPadOS/);
    assertRefused(await device(['checkin', '--state', join(tmp, 'nothing-here')]), 1, /^keyfleet: KF_NOT_FOUND: no enrolled device in /);
    assertRefused(await device(['frobnicate']), 2, /^keyfleet: KF_USAGE: unknown device command "frobnicate"/);
    const help = await device(['--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout.toString('utf8'), /keyfleet device enroll --server URL/);
  });

  test('a retired device: the check-in says so, it cannot check in again, and it may enrol anew', async () => {
    await s.ok('POST', `/api/v1/managedDevices/${deviceId}/retire`);
    const r = await device(['checkin', '--state', state]);
    assert.equal(r.status, 0, describeRun(r));
    assert.match(r.stdout.toString('utf8'), /^the device was retired/);
    assertRefused(await device(['checkin', '--state', state]), 1, /^keyfleet: KF_CONFLICT: device .* was retired; enrol it again/);
    const listing = await deviceJson<{ items: { kind: string }[] }>(['keystore', 'list', '--state', state]);
    assert.deepEqual(listing.items, []);

    // The same device may be enrolled again, as a new device.
    const again = await deviceJson<{ deviceId: string }>(['enroll', '--server', s.origin, '--token', await enrollmentToken(s, seeded.users.bob), '--state', state, '--name', 'Bob’s iPhone']);
    assert.notEqual(again.deviceId, deviceId);
    const checked = await deviceJson<{ result: string; failed: unknown[] }>(['checkin', '--state', state]);
    assert.deepEqual([checked.result, checked.failed], ['applied', []]);
  });
});

function collect(child: ChildProcess): { stdout(): string; stderr(): string; readonly exited: Promise<number | null> } {
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    process.off('exit', reap);
    resolve(code);
  }));
  return { stdout: () => out, stderr: () => err, exited };
}
