/**
 * A real service for the connector tests: the store (SQLite, or PostgreSQL
 * when reachable), the server of src/http/server.ts with the admin API and
 * the connector routes (through its `routes` option: buildServer seals the
 * app with ready()), listening on loopback; an administrator token; and
 * seeding of devices, imported PFX files and queued delivery requests
 * through the store, as enrolment and check-in will.
 */
import { randomUUID, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { createToken, LOCAL_OPERATOR } from '../../src/directory/access.ts';
import type { ConnectorService } from '../../src/delivery/connectors.ts';
import { registerConnectorRoutes, type ConnectorRouteOptions } from '../../src/http/connector-routes.ts';
import { buildServer } from '../../src/http/server.ts';
import { writePkcs12 } from '../../src/pkcs12/write.ts';
import type { DeliveryRequestRecord } from '../../src/store/delivery.ts';
import type { ManagedDeviceRecord } from '../../src/store/devices.ts';
import type { UserPfxCertificateRecord } from '../../src/store/resources.ts';
import type { Store, TenantStore } from '../../src/store/store.ts';
import type { StoreBackend } from '../store/suite.ts';
import { type DeviceCa, type DeviceIdentity, importedPfx } from './support.ts';

export const TENANT = 'acme';

export interface Service {
  readonly store: Store;
  readonly tenant: TenantStore;
  readonly app: FastifyInstance;
  readonly connectors: ConnectorService;
  readonly url: string;
  /** An administrator API token (kf_…). */
  readonly adminToken: string;
  /** A new server over the same database on `port`, after this one's app was closed: a service restart. */
  restart(port: number): Promise<Service>;
  close(): Promise<void>;
}

export async function startService(backend: StoreBackend, options: Omit<ConnectorRouteOptions, 'store'> = {}): Promise<Service> {
  await backend.setUp();
  const store = await backend.open();
  await store.ensureTenant(TENANT, 'Acme');
  const { secret } = await createToken(store.forTenant(TENANT), LOCAL_OPERATOR, 'test admin', 'administrator');
  return serve(backend, store, secret, options, 0);
}

async function serve(backend: StoreBackend, store: Store, adminToken: string, options: Omit<ConnectorRouteOptions, 'store'>, port: number): Promise<Service> {
  let connectors: ConnectorService | undefined;
  const app = await buildServer({ admin: { store }, routes: [(a) => (connectors = registerConnectorRoutes(a, { store, ...options }))] });
  await app.listen({ host: '127.0.0.1', port });
  const address = app.server.address() as AddressInfo;
  return {
    store,
    tenant: store.forTenant(TENANT),
    app,
    connectors: connectors!,
    url: `http://127.0.0.1:${address.port}`,
    adminToken,
    restart: (again) => serve(backend, store, adminToken, options, again),
    async close() {
      await app.close();
      await store.close();
      await backend.tearDown();
    },
  };
}

export function deviceRecord(identity: DeviceIdentity, userId = 'user-bob'): ManagedDeviceRecord {
  const now = new Date();
  return {
    id: identity.deviceId,
    userId,
    deviceName: identity.deviceId,
    operatingSystem: 'iOS',
    osVersion: '18.1',
    model: 'iPhone',
    serialNumber: undefined,
    managementState: 'managed',
    enrolledAt: now,
    lastSyncAt: undefined,
    identityThumbprint: identity.certificate.fingerprint256,
    identityCertificate: identity.certificate.der,
    portalUrl: undefined,
    desiredStateHash: undefined, recheckAt: undefined,
    version: 1,
    createdAt: now,
    updatedAt: now,
  };
}

export function pendingRequest(deviceId: string, pfxId: string, createdAt = new Date()): DeliveryRequestRecord {
  return {
    id: randomUUID(),
    deviceId,
    pfxId,
    status: 'pending',
    claimHash: undefined,
    connectorId: undefined,
    leaseUntil: undefined,
    attempts: 0,
    payload: undefined,
    errorCode: undefined,
    errorDetail: undefined,
    createdAt,
    updatedAt: createdAt,
  };
}

export interface Seeded {
  readonly devices: DeviceIdentity[];
  readonly pfxs: UserPfxCertificateRecord[];
  readonly requests: DeliveryRequestRecord[];
}

/**
 * `devices` enrolled devices and `pfxCount` imported PFX files (P-256 S/MIME certificates, legacy profile,
 * passwords encrypted to the connector), and one queued request per (device, PFX).
 */
export async function seed(tenant: TenantStore, ca: DeviceCa, connectorKey: KeyObject, devices: number, pfxCount: number, prefix = 'd'): Promise<Seeded> {
  const identities: DeviceIdentity[] = [];
  for (let i = 0; i < devices; i++) {
    const identity = await ca.issueDevice(`${prefix}-device-${i}`);
    await tenant.devices.putDevice(deviceRecord(identity));
    identities.push(identity);
  }
  const pfxs: UserPfxCertificateRecord[] = [];
  for (let i = 0; i < pfxCount; i++) {
    const holder = await ca.issueSmime(`bob${i}@example.com`);
    const password = `pw-${prefix}-${i}`;
    const pfx = importedPfx(`${prefix}-pfx-${i}`, writePkcs12([{ key: holder.key, certificate: holder.certificate }], password, { profile: 'legacy' }), password, connectorKey, 'oaepSha256');
    await tenant.resources.putUserPfxCertificate(pfx);
    pfxs.push(pfx);
  }
  const requests: DeliveryRequestRecord[] = [];
  const t0 = Date.now();
  for (const device of identities) {
    for (const pfx of pfxs) requests.push(await tenant.delivery.ensureDeliveryRequest(pendingRequest(device.deviceId, pfx.id, new Date(t0 + requests.length))));
  }
  return { devices: identities, pfxs, requests };
}

/** A JSON request to the service; returns status, parsed body and content type. */
export async function call(url: string, method: string, path: string, options: { token?: string; version?: string; body?: unknown; raw?: string } = {}) {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers['authorization'] = `Bearer ${options.token}`;
  if (options.version !== undefined) headers['keyfleet-connector-version'] = options.version;
  const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>) };
}
