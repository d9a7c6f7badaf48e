/**
 * A real Keyfleet service for the device agent's tests, wired in-process as
 * `keyfleet serve` wires it (src/cli/serve.ts runServer, serve-delivery.ts
 * wireDelivery, with the connector API), listening on a loopback port
 * over plain HTTP: the agent, SCEP and the connector reach it only over
 * HTTP. The CA is made by the real `keyfleet ca init` (a child process) with
 * the port in its base URL. The delivery watcher is not started: tests call
 * `tick()` after admin changes, so each step is deterministic.
 *
 * Also the seed's resources through the admin API, and an admin fetch
 * helper.
 */
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CertificateAuthority } from '../../src/ca/authority.ts';
import { defaultProfile } from '../../src/ca/templates.ts';
import { ensureOcspResponder, ensureRegistrationAuthority } from '../../src/ca/registration-authority.ts';
import { keyStoreFor, openAuthority, openContext, type Context } from '../../src/cli/context.ts';
import { wireDelivery, type DeliveryWiring } from '../../src/cli/serve-delivery.ts';
import { LOCAL_OPERATOR, createToken } from '../../src/directory/access.ts';
import { createPkiServices } from '../../src/http/pki.ts';
import { buildServer } from '../../src/http/server.ts';
import { readPfxMetadata } from '../../src/pkcs12/pfx-metadata.ts';
import { writePkcs12 } from '../../src/pkcs12/write.ts';
import { preparePfxImport } from '../../src/policy/index.ts';
import type { Certificate } from '../../src/x509/certificate.ts';
import { freePort } from '../e2e/seed-support.ts';
import { OUTLOOK, PKCS_ENCRYPTION, seedPolicy, trustedRoot } from '../resources/support.ts';
import { scepInput } from '../policy/helpers.ts';
import { keyfleetOk } from '../support/keyfleet.ts';

export type Json = Record<string, unknown>;

export interface TestService {
  readonly origin: string;
  readonly dir: string;
  readonly ctx: Context;
  readonly ca: CertificateAuthority;
  readonly delivery: DeliveryWiring;
  /** Security events the service logged (a device asking for another's delivery …). */
  readonly logs: { message: string; fields: Record<string, string> }[];
  admin(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; body: Json }>;
  /** admin() that requires a 2xx. */
  ok(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<Json>;
  /** One watcher pass: re-evaluates after admin changes, pushes "changed" and notifications. */
  tick(): Promise<void>;
  close(): Promise<void>;
}

export async function startService(): Promise<TestService> {
  // A fresh SQLite file under --data: a PostgreSQL URL in the environment must not send this to a shared database.
  delete process.env['KEYFLEET_DATABASE_URL'];
  const dir = mkdtempSync(join(tmpdir(), 'kf-device-agent-'));
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  await keyfleetOk(['ca', 'init', '--data', dataDir, '--base-url', origin]);
  const ctx = await openContext(dataDir);
  const ca = await openAuthority(ctx);
  const keyStore = keyStoreFor(dataDir);
  const ra = await ensureRegistrationAuthority(ca, ctx.tenant.ca, keyStore);
  const ocspResponder = await ensureOcspResponder(ca, ctx.tenant.ca, keyStore);
  const pki = createPkiServices({ tenant: ctx.tenant, ca, ra, ocspResponder });
  const logs: { message: string; fields: Record<string, string> }[] = [];
  const log = (message: string, fields: Record<string, string>) => logs.push({ message, fields });
  const delivery = wireDelivery({ dataDir, store: ctx.store, ca, publicUrl: origin, smtpUrl: undefined, smtpFrom: undefined, minConnectorVersion: undefined, log });
  const app = await buildServer({
    pki,
    admin: { store: ctx.store, evaluators: delivery.evaluators },
    device: delivery.device,
    routes: [delivery.connectorRoutes],
    logger: false,
  });
  await app.listen({ port, host: '127.0.0.1' });
  const token = (await createToken(ctx.tenant, LOCAL_OPERATOR, 'device tests', 'administrator')).secret;
  const admin: TestService['admin'] = async (method, path, body) => {
    const r = await fetch(`${origin}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await r.text();
    return { status: r.status, body: text === '' ? {} : (JSON.parse(text) as Json) };
  };
  return {
    origin,
    dir,
    ctx,
    ca,
    delivery,
    logs,
    admin,
    async ok(method, path, body) {
      const r = await admin(method, path, body);
      assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    tick: () => delivery.watcher.tick(),
    async close() {
      await delivery.close();
      await app.close();
      await ctx.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Seed {
  readonly users: Record<'alice' | 'bob' | 'carol', string>;
  readonly sales: string;
  readonly app: string;
  readonly root: string;
  readonly scep: string;
  readonly pkcs: string;
  readonly policy: string;
  /** The issuing CA's root, as the trusted-root profile holds it. */
  readonly rootCertificate: Certificate;
}

/** The seed's resources through the admin API, the policy and its certificates assigned to Sales (Alice and Bob; not Carol). */
export async function seed(s: TestService): Promise<Seed> {
  const user = async (name: string) =>
    (await s.ok('POST', '/api/v1/users', { userPrincipalName: `${name}@contoso.com`, displayName: name, mail: `${name}@contoso.com`, isExchangeOnline: true }))['id'] as string;
  const users = { alice: await user('alice'), bob: await user('bob'), carol: await user('carol') };
  const sales = (await s.ok('POST', '/api/v1/groups', { displayName: 'Sales' }))['id'] as string;
  for (const id of [users.alice, users.bob]) await s.ok('POST', `/api/v1/groups/${sales}/members`, { type: 'user', id });
  const rootCertificate = s.ca.chain.at(-1) ?? s.ca.certificate;
  const app = (await s.ok('POST', '/api/v1/apps', OUTLOOK))['id'] as string;
  const root = (await s.ok('POST', '/api/v1/profiles', trustedRoot(rootCertificate.der)))['id'] as string;
  const scep = (await s.ok('POST', '/api/v1/profiles', scepInput({ rootCertificateId: root, scepServerUrls: [`${s.origin}/scep`] })))['id'] as string;
  const pkcs = (await s.ok('POST', '/api/v1/profiles', PKCS_ENCRYPTION))['id'] as string;
  const policy = (await s.ok('POST', '/api/v1/policies', seedPolicy(app, scep, pkcs)))['id'] as string;
  for (const [path, id] of [['policies', policy], ['apps', app], ['profiles', root], ['profiles', scep], ['profiles', pkcs]] as const) {
    await s.ok('POST', `/api/v1/${path}/${id}/assignments`, { include: [sales] });
  }
  return { users, sales, app, root, scep, pkcs, policy, rootCertificate };
}

export async function enrollmentToken(s: TestService, userId: string): Promise<string> {
  return (await s.ok('POST', `/api/v1/users/${userId}/enrollmentTokens`, {}))['token'] as string;
}

/** The connector's RSA key (what `keyfleet connector keygen` makes). */
export function connectorKey(): KeyObject {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
}

/** Uploads a PFX of (key, certificate) for the user as `keyfleet pfx import` does: the password encrypted to the connector. */
export async function importPfx(s: TestService, upn: string, identity: { key: KeyObject; certificate: Certificate }, connector: KeyObject): Promise<Json> {
  const password = 'pfx-password';
  const pfx = writePkcs12([{ key: identity.key, certificate: identity.certificate }], password, { profile: 'modern' });
  const upload = preparePfxImport({ pfx, password, connectorPublicKey: connector, userPrincipalName: upn, intendedPurpose: 'smimeEncryption', keyName: 'connector' }, readPfxMetadata);
  return s.ok('POST', '/api/v1/userPfxCertificates', upload);
}

/** An S/MIME encryption certificate from the service's own CA, with its key: one certificate of a user's history. */
export async function encryptionCertificate(s: TestService, email: string): Promise<{ key: KeyObject; certificate: Certificate }> {
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const issued = await s.ca.issue({ publicKey: createPublicKey(key), profile: defaultProfile('smimeEncryption'), attributes: { emailAddress: email, userPrincipalName: email }, requester: 'device tests' });
  return { key, certificate: issued.certificate };
}

/** Waits until `check` holds (polling), or fails with `what`. */
export async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
