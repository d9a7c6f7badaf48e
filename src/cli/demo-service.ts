/**
 * The service `keyfleet demo` runs its story against: what `keyfleet serve
 * --init` starts, in this process — a new CA (as `ca init` makes it), the
 * SCEP RA and OCSP responder, the admin, device and connector APIs and the
 * watcher that follows admin changes — on a free loopback port, with the
 * first administrator token kept for the demo instead of printed.
 *
 * Always SQLite in the demo's own directory, whatever KEYFLEET_DATABASE_URL
 * says: the demo must start from nothing and must not touch a real database.
 */
import { createServer } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { CertificateAuthority } from '../ca/authority.ts';
import { ISSUING_CA_ID } from '../ca/authority.ts';
import { ensureOcspResponder, ensureRegistrationAuthority } from '../ca/registration-authority.ts';
import { initCa, openCa } from '../ca/setup.ts';
import { defaultProfile } from '../ca/templates.ts';
import { bootstrapFirstAdmin } from '../directory/access.ts';
import { KeyfleetError } from '../errors.ts';
import { createPkiServices } from '../http/pki.ts';
import { buildServer } from '../http/server.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/store.ts';
import { DEFAULT_TENANT, caUrls, keyStoreFor, writeSettings } from './context.ts';
import { DEFAULT_SCEP_PROFILE, scepProfileRecord } from './scep-profile.ts';
import { type DeliveryWiring, wireDelivery } from './serve-delivery.ts';

export interface DemoService {
  /** http://127.0.0.1:PORT: where devices, the connector and the admin reach it; also in every certificate's CRL/OCSP URLs. */
  readonly origin: string;
  /** The first administrator's API token (kf_…). */
  readonly adminToken: string;
  readonly ca: CertificateAuthority;
  close(): Promise<void>;
}

/** A port free right now. The CA writes its URL into certificates before the server can listen, so it is chosen first. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

export async function startDemoService(dataDir: string, log: (message: string, fields: Record<string, string>) => void): Promise<DemoService> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const store = await openStore({ dataDir, env: {} });
  let delivery: DeliveryWiring | undefined;
  let app: FastifyInstance | undefined;
  try {
    await store.ensureTenant(DEFAULT_TENANT, 'Default');
    const tenant = store.forTenant(DEFAULT_TENANT);
    const keyStore = keyStoreFor(dataDir, true);
    const urls = caUrls({ baseUrl: origin });
    // `ca init`, with P-256 CA keys: the demo's CA signs a few dozen certificates and should not wait for RSA.
    await tenant.transaction(async (tx) => {
      await initCa({ store: tx.ca, keyStore, urls, keyType: 'p-256', rootSubject: [['O', 'Keyfleet Demo'], ['CN', 'Keyfleet Demo Root CA']], issuingSubject: [['O', 'Keyfleet Demo'], ['CN', 'Keyfleet Demo Issuing CA']] });
      await tx.scep.putProfile(scepProfileRecord(DEFAULT_SCEP_PROFILE, ISSUING_CA_ID, defaultProfile('smimeSigning', { name: DEFAULT_SCEP_PROFILE })));
    });
    writeSettings(dataDir, { baseUrl: origin });
    const adminToken = await firstAdminToken(store);

    const ca = await openCa({ store: tenant.ca, keyStore, urls });
    const ra = await ensureRegistrationAuthority(ca, tenant.ca, keyStore);
    const ocspResponder = await ensureOcspResponder(ca, tenant.ca, keyStore);
    const pki = createPkiServices({ tenant, ca, ra, ocspResponder });
    delivery = wireDelivery({ dataDir, store, ca, publicUrl: origin, smtpUrl: undefined, smtpFrom: undefined, minConnectorVersion: undefined, log });
    app = await buildServer({ pki, admin: { store, evaluators: delivery.evaluators }, device: delivery.device, routes: [delivery.connectorRoutes], logger: false });
    try {
      await app.listen({ port, host: '127.0.0.1' });
    } catch (e) {
      throw new KeyfleetError('KF_LISTEN_FAILED', `port ${port} on 127.0.0.1 was taken before the demo could listen on it; run it again`, { cause: e });
    }
    delivery.watcher.start();
    const running = { delivery, app };
    return {
      origin,
      adminToken,
      ca,
      async close() {
        await running.delivery.close();
        await running.app.close();
        await store.close();
      },
    };
  } catch (e) {
    await delivery?.close().catch(() => {});
    await app?.close().catch(() => {});
    await store.close().catch(() => {});
    throw e;
  }
}

async function firstAdminToken(store: Store): Promise<string> {
  const created = await bootstrapFirstAdmin(store, DEFAULT_TENANT, 'Default');
  if (created === undefined) throw new KeyfleetError('KF_CONFLICT', 'the demo database already holds API tokens; the demo needs a fresh data directory');
  return created.secret;
}
