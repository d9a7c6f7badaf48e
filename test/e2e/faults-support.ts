/**
 * Plumbing for the fault tests (faults.test.ts, issue 5 "Faults and bad
 * input"):
 *
 * - an in-process service wired as `keyfleet serve` wires it (as
 *   test/device/agent-support.ts does), but with one clock injected
 *   wherever the time of a device matters — check-in reconciliation
 *   (challenge age, recheckAt), request signatures, enrolment, the SCEP
 *   server's challenge check — so a test can put the device's past a week
 *   or an hour back without waiting for it;
 * - a real `keyfleet serve` child process that a test can kill with the
 *   signal it likes and start again on the same data and port;
 * - a gate between the connector and the service that lets the connector's
 *   first results through and holds the rest, so that a restart is certain
 *   to find requests completed, leased with their result in flight, and
 *   still queued.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { ensureOcspResponder, ensureRegistrationAuthority } from '../../src/ca/registration-authority.ts';
import { DEFAULT_TENANT, keyStoreFor, openAuthority, openContext } from '../../src/cli/context.ts';
import { challengeSecretFor, wireDelivery } from '../../src/cli/serve-delivery.ts';
import { DeliveryService, etagOf } from '../../src/delivery/service.ts';
import { LOCAL_OPERATOR, createToken } from '../../src/directory/access.ts';
import type { DeviceApiOptions } from '../../src/http/device-routes.ts';
import { createPkiServices } from '../../src/http/pki.ts';
import { buildServer } from '../../src/http/server.ts';
import { freePort } from './seed-support.ts';
import type { Json, TestService } from '../device/agent-support.ts';
import { keyfleetOk, repoRoot } from '../support/keyfleet.ts';

const node = join(repoRoot, 'node_modules/.bin/node');
const bin = join(repoRoot, 'bin/keyfleet');
const compileCache = join(tmpdir(), 'keyfleet-test-compile-cache');

export const MINUTE = 60_000;
export const DAY = 24 * 60 * MINUTE;

/**
 * The service of agent-support.ts with `clock` as the service's time: DeliveryService (challenge age,
 * recheckAt, lastSync), DeviceAuthenticator (the 5-minute signature window), enrolment, and the SCEP
 * server (challenge expiry). The CA signs with the real time.
 */
export async function startClockedService(clock: () => Date): Promise<TestService> {
  // A fresh SQLite file under --data: a PostgreSQL URL in the environment must not send this to a shared database.
  delete process.env['KEYFLEET_DATABASE_URL'];
  const dir = mkdtempSync(join(tmpdir(), 'kf-faults-'));
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  await keyfleetOk(['ca', 'init', '--data', dataDir, '--base-url', origin]);
  const ctx = await openContext(dataDir);
  const ca = await openAuthority(ctx);
  const keyStore = keyStoreFor(dataDir);
  const ra = await ensureRegistrationAuthority(ca, ctx.tenant.ca, keyStore);
  const ocspResponder = await ensureOcspResponder(ca, ctx.tenant.ca, keyStore);
  const pki = createPkiServices({ tenant: ctx.tenant, ca, ra, ocspResponder, clock });
  const logs: { message: string; fields: Record<string, string> }[] = [];
  const log = (message: string, fields: Record<string, string>) => logs.push({ message, fields });
  const delivery = wireDelivery({ dataDir, store: ctx.store, ca, publicUrl: origin, smtpUrl: undefined, smtpFrom: undefined, minConnectorVersion: undefined, log });
  // wireDelivery takes no clock: the same DeliveryService, made again with one. (Without onQueued the
  // connector finds new requests by its own poll.)
  const service = new DeliveryService({
    store: ctx.store,
    evaluators: delivery.evaluators,
    authority: async (tenantId) => (tenantId === DEFAULT_TENANT ? ca : undefined),
    challengeSecret: challengeSecretFor(dataDir),
    onChanged: (tenantId, device) => delivery.events.publish(tenantId, device.id, { type: 'changed', version: etagOf(device) }),
    clock,
    log,
  });
  const device: DeviceApiOptions = { ...delivery.device, service, clock: () => clock().getTime(), enrollment: { ...delivery.device.enrollment, clock } };
  const app = await buildServer({ pki, admin: { store: ctx.store, evaluators: delivery.evaluators }, device, routes: [delivery.connectorRoutes], logger: false });
  await app.listen({ port, host: '127.0.0.1' });
  const admin = adminClient(origin, (await createToken(ctx.tenant, LOCAL_OPERATOR, 'fault tests', 'administrator')).secret);
  return {
    origin,
    dir,
    ctx,
    ca,
    delivery,
    logs,
    admin: admin.call,
    ok: admin.ok,
    tick: () => delivery.watcher.tick(),
    async close() {
      await delivery.close();
      await app.close();
      await ctx.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** The admin API with a bearer token: `call` returns any answer, `ok` requires a 2xx. */
export function adminClient(origin: string, token: string) {
  const call = async (method: Method, path: string, body?: unknown): Promise<{ status: number; body: Json }> => {
    const r = await fetch(`${origin}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    return { status: r.status, body: text === '' ? {} : (JSON.parse(text) as Json) };
  };
  const ok = async (method: Method, path: string, body?: unknown): Promise<Json> => {
    const r = await call(method, path, body);
    assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  };
  return { call, ok };
}

/** What the admin sees of one device: GET /api/v1/managedDevices/{id}/status. */
export interface DeviceStatus {
  readonly device: Json;
  readonly policyStatuses: Json[];
  readonly managedDeviceCertificateStates: Json[];
}

export async function deviceStatus(ok: (method: Method, path: string) => Promise<Json>, deviceId: string): Promise<DeviceStatus> {
  return (await ok('GET', `/api/v1/managedDevices/${deviceId}/status`)) as unknown as DeviceStatus;
}

// --- keyfleet serve as a process that can be killed ------------------------------

export interface ServeProcess {
  readonly origin: string;
  output(): string;
  /** Sends `signal` and waits for the exit (SIGKILL after 15 s). */
  kill(signal: NodeJS.Signals): Promise<{ readonly status: number | null; readonly signal: NodeJS.Signals | null }>;
}

/** `keyfleet serve --data DIR --port PORT --quiet …`, once it says where it serves. */
export async function spawnServe(dataDir: string, port: number, extra: readonly string[] = []): Promise<ServeProcess> {
  const child: ChildProcess = spawn(node, [bin, 'serve', '--data', dataDir, '--port', String(port), '--quiet', ...extra], {
    cwd: repoRoot,
    env: { ...process.env, KEYFLEET_DATABASE_URL: '', NODE_COMPILE_CACHE: compileCache },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (status, signal) => resolve({ status, signal })));
  // A test that fails half-way must not leave a server behind.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  const origin = await new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /serving .* at (https?:\/\/\S+)/.exec(out);
      if (m) {
        clearInterval(timer);
        resolve(m[1]!);
      }
    }, 50);
    void exited.then((e) => {
      clearInterval(timer);
      reject(new Error(`keyfleet serve exited (${e.status ?? e.signal}) before serving:\n${out}`));
    });
  });
  return {
    origin,
    output: () => out,
    async kill(signal) {
      process.off('exit', reap);
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const e = await exited;
      clearTimeout(timer);
      return e;
    },
  };
}

// --- the gate between the connector and the service ------------------------------

export interface ResultGate {
  readonly url: string;
  /** The service's answers to results it was given, by request id, in order. */
  readonly answers: ReadonlyMap<string, readonly number[]>;
  /** Request ids whose results wait at the gate now, unanswered. */
  held(): string[];
  /** The request whose result reached the service but whose answer the gate threw away. */
  lostAnswer(): string | undefined;
  /** The service went away: the held connections break (as they would), and from now on everything passes. */
  open(): void;
  close(): Promise<void>;
}

const RESULT_PATH = /\/connector\/v1\/requests\/([^/]+)\/result$/;

/**
 * A proxy to `target` for the connector. Claims pass. While the gate is shut, the first `pass` results
 * pass; the next reaches the service but its answer is lost on the way back (the connector never hears
 * that it was accepted, and posts it again); every later one is held, unanswered.
 */
export async function resultGate(target: string, pass: number): Promise<ResultGate> {
  const answers = new Map<string, number[]>();
  const held = new Map<string, ServerResponse[]>();
  let shut = true;
  let results = 0;
  let lost: string | undefined;

  const forward = async (req: IncomingMessage, body: Buffer): Promise<Response | undefined> => {
    const headers: Record<string, string> = {};
    for (const h of ['authorization', 'keyfleet-connector-version', 'content-type']) if (typeof req.headers[h] === 'string') headers[h] = req.headers[h];
    try {
      return await fetch(`${target}${req.url}`, { method: req.method ?? 'GET', headers, ...(req.method === 'POST' ? { body } : {}) });
    } catch {
      return undefined; // the service is down
    }
  };
  const reply = async (res: ServerResponse, answer: Response | undefined) => {
    if (answer === undefined) {
      res.writeHead(502, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ status: 502, detail: 'the service is down' }));
      return;
    }
    const bytes = Buffer.from(await answer.arrayBuffer());
    res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json', date: answer.headers.get('date') ?? new Date().toUTCString() }).end(bytes);
  };
  const record = (id: string, answer: Response | undefined) => {
    if (answer !== undefined) answers.set(id, [...(answers.get(id) ?? []), answer.status]);
  };

  const server: Server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks);
      const id = RESULT_PATH.exec(req.url ?? '')?.[1];
      if (id === undefined) return reply(res, await forward(req, body));
      const n = shut ? results++ : -1;
      if (n === -1 || n < pass) {
        const answer = await forward(req, body);
        record(id, answer);
        return reply(res, answer);
      }
      if (n === pass) {
        const answer = await forward(req, body);
        record(id, answer);
        lost = id;
        res.destroy();
        return;
      }
      held.set(id, [...(held.get(id) ?? []), res]);
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    answers,
    held: () => [...held.keys()],
    lostAnswer: () => lost,
    open() {
      shut = false;
      for (const list of held.values()) for (const res of list) res.destroy();
      held.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const list of held.values()) for (const res of list) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
