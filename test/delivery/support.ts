/**
 * A small tenant on the real SQLite store for the evaluator tests: users,
 * nested groups and memberships through the audited Directory; apps,
 * profiles, policies and assignments put straight into the store (they are
 * documents the evaluator reads, and bypassing the audit log there is what
 * one cache test needs); imported PFX records with placeholder ciphertext.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { LOCAL_OPERATOR } from '../../src/directory/access.ts';
import { Directory } from '../../src/directory/directory.ts';
import { TenantEvaluator } from '../../src/delivery/evaluator.ts';
import { readSnapshot } from '../../src/delivery/snapshot.ts';
import type { ManagedDeviceRecord, ManagementState } from '../../src/store/devices.ts';
import type { JsonObject, ResourceCollection } from '../../src/store/resources.ts';
import type { Store, TenantStore } from '../../src/store/store.ts';
import { sqliteBackend } from '../store/backends.ts';
import { outlook, scepInput, seedPolicy, teams } from '../policy/helpers.ts';

export const TENANT = 'acme';

export interface World {
  readonly store: Store;
  readonly tenant: TenantStore;
  readonly directory: Directory;
  close(): Promise<void>;
}

export async function openWorld(): Promise<World> {
  const backend = sqliteBackend();
  await backend.setUp();
  const store = await backend.open();
  await store.ensureTenant(TENANT, 'Acme');
  const tenant = store.forTenant(TENANT);
  return {
    store,
    tenant,
    directory: new Directory(tenant, LOCAL_OPERATOR),
    async close() {
      await store.close();
      await backend.tearDown();
    },
  };
}

/** The evaluator of the tenant as it is now (no cache). */
export async function evaluatorOf(tenant: TenantStore): Promise<TenantEvaluator> {
  return new TenantEvaluator(await readSnapshot(tenant, (await tenant.audit.head())?.seq ?? 0));
}

export async function putResource(tenant: TenantStore, collection: ResourceCollection, id: string, kind: string, body: object): Promise<void> {
  const now = new Date();
  await tenant.resources.putResource({ collection, id, kind, displayName: id, body: body as JsonObject, createdAt: now, updatedAt: now });
}

/**
 * The seed's resources: Outlook and Teams; a trusted root, a SCEP signing
 * profile, PKCS-imported encryption and signing profiles and a Wi-Fi one;
 * policy "p-seed" (SCEP signing, imported encryption history) for Outlook.
 */
export async function seedResources(tenant: TenantStore): Promise<void> {
  await putResource(tenant, 'app', outlook.id, 'iosStoreApp', withoutId(outlook));
  await putResource(tenant, 'app', teams.id, 'iosStoreApp', withoutId(teams));
  await putResource(tenant, 'certificateProfile', 'root', 'iosTrustedRootCertificate', { kind: 'iosTrustedRootCertificate', displayName: 'Root', certFileName: 'root.cer', trustedRootCertificate: 'AAAA' });
  await putResource(tenant, 'certificateProfile', 'scep-sign', 'iosScepCertificateProfile', scepInput());
  for (const purpose of ['smimeEncryption', 'smimeSigning', 'wifi'] as const) {
    await putResource(tenant, 'certificateProfile', `pfx-${purpose}`, 'iosImportedPfxCertificateProfile', { kind: 'iosImportedPfxCertificateProfile', displayName: purpose, intendedPurpose: purpose });
  }
  await putPolicy(tenant, 'p-seed', { signingCertificateProfileId: 'scep-sign', encryptionCertificateProfileId: 'pfx-smimeEncryption' });
}

export function putPolicy(tenant: TenantStore, id: string, overrides: Record<string, unknown> = {}): Promise<void> {
  return putResource(tenant, 'policy', id, 'iosMobileAppConfiguration', seedPolicy({ displayName: id, ...overrides }));
}

function withoutId<T extends { id: string }>(o: T): Omit<T, 'id'> {
  const { id: _id, ...rest } = o;
  return rest;
}

export function assign(tenant: TenantStore, collection: 'app' | 'certificateProfile' | 'policy', id: string, include: readonly string[], exclude: readonly string[] = []): Promise<void> {
  return tenant.resources.replaceAssignments(collection, id, include, exclude);
}

export async function putPfx(tenant: TenantStore, userPrincipalName: string, intendedPurpose: string, id: string = randomUUID()): Promise<string> {
  await tenant.resources.putUserPfxCertificate({
    id,
    userPrincipalName,
    thumbprint: randomBytes(20).toString('hex').toUpperCase(),
    intendedPurpose,
    startDateTime: new Date('2025-01-01T00:00:00Z'),
    expirationDateTime: new Date('2027-01-01T00:00:00Z'),
    providerName: 'Keyfleet PFX Connector',
    keyName: 'connector',
    paddingScheme: 'oaepSha512',
    encryptedPfxBlob: new Uint8Array(16),
    encryptedPfxPassword: new Uint8Array(16),
    createdAt: new Date(),
  });
  return id;
}

export function device(id: string, userId: string, managementState: ManagementState = 'managed'): ManagedDeviceRecord {
  const now = new Date();
  return {
    id,
    userId,
    deviceName: id,
    operatingSystem: 'iOS',
    osVersion: '18.1',
    model: 'iPhone',
    serialNumber: undefined,
    portalUrl: undefined,
    managementState,
    enrolledAt: now,
    lastSyncAt: undefined,
    identityThumbprint: undefined,
    identityCertificate: undefined,
    desiredStateHash: undefined, recheckAt: undefined,
    version: 1,
    createdAt: now,
    updatedAt: now,
  };
}
