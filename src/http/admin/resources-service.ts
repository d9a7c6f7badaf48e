/**
 * The admin side of issue 4's resources for one tenant and caller: apps,
 * certificate profiles, S/MIME policies, derived-credential settings,
 * assignments, imported PFX certificates, a user's effective state, and the
 * VPP app sync. Validation is src/policy's; this wires it to the store.
 * Every write is one transaction with its audit entry (src/directory/audit.ts
 * `recorded`), so a refused request leaves nothing behind.
 */
import { randomUUID } from 'node:crypto';
import { recorded, recordedMany, type Actor } from '../../directory/audit.ts';
import { KeyfleetError } from '../../errors.ts';
import {
  ALL_DEVICES,
  ALL_USERS,
  type CompiledPolicy,
  type SmimePolicy,
  type VppSource,
  applyMergePatch,
  compilePolicy,
  parseUserPfxCertificateUpload,
  planVppSync,
} from '../../policy/index.ts';
import type { JsonValue } from '../../store/audit.ts';
import type { Page, PageOptions } from '../../store/directory.ts';
import type { AssignableCollection, AssignmentRecord, JsonObject, ResourceCollection, ResourceRecord, UserPfxCertificateRecord } from '../../store/resources.ts';
import type { TenantStore } from '../../store/store.ts';
import { NOUN, allResources, immutablesChecked, onlyDerivedCredential, referrers, stillValidReferrers, validated } from './resource-documents.ts';

export { POLICY_KIND } from './resource-documents.ts';

/** One app of a VPP sync and what the sync did to it. */
export interface VppSyncEntry {
  [key: string]: JsonValue;
  id: string;
  change: 'created' | 'updated' | 'unchanged';
  displayName: string;
  bundleId: string;
  appleId: string;
  totalLicenseCount: number;
  usedLicenseCount: number;
}

export interface AssignmentsView {
  [key: string]: JsonValue;
  include: string[];
  exclude: string[];
}

export class Resources {
  readonly #tenant: TenantStore;
  readonly #actor: Actor;
  readonly #clock: () => Date;

  constructor(tenant: TenantStore, actor: Actor, clock: () => Date = () => new Date()) {
    this.#tenant = tenant;
    this.#actor = actor;
    this.#clock = clock;
  }

  // ------------------------------------------------------------ generic

  async get(collection: ResourceCollection, id: string): Promise<ResourceRecord> {
    const r = await this.#tenant.resources.getResource(collection, id);
    if (r === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no ${NOUN[collection]} with id "${id}"`);
    return r;
  }

  list(collection: ResourceCollection, options: PageOptions & { readonly kind?: string } = {}): Promise<Page<ResourceRecord>> {
    return this.#tenant.resources.listResources(collection, options);
  }

  /**
   * Refused (KF_CONFLICT) while another resource relies on it: a policy on its app or profiles or on the
   * derived-credential issuer, a SCEP profile on its trusted root.
   */
  delete(collection: ResourceCollection, id: string): Promise<void> {
    return recorded(this.#tenant, this.#actor, this.#now(), async (tx) => {
      const before = await tx.resources.getResource(collection, id);
      if (before === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no ${NOUN[collection]} with id "${id}"`);
      const [user] = await referrers(tx, collection, id);
      if (user !== undefined) throw new KeyfleetError('KF_CONFLICT', `${NOUN[collection]} "${id}" is used by ${NOUN[user.collection]} "${user.id}"; delete or change that first`);
      await tx.resources.deleteResource(collection, id);
      return { result: undefined, action: `${collection}.delete`, resourceType: collection, resourceId: id, before: resourceView(before), after: null };
    });
  }

  // ------------------------------------------------------------ creation and update

  /** Creates a resource from its document, checked as its collection requires (resource-documents.ts `validated`). */
  create(collection: ResourceCollection, json: unknown): Promise<ResourceRecord> {
    const now = this.#now();
    // Validated inside the transaction, so what the document names cannot vanish before it lands.
    return recorded(this.#tenant, this.#actor, now, async (tx) => {
      const { kind, displayName, body } = await validated(tx, collection, json);
      if (collection === 'derivedCredential') await onlyDerivedCredential(tx);
      const record: ResourceRecord = { collection, id: randomUUID(), kind, displayName, body, createdAt: now, updatedAt: now };
      await tx.resources.putResource(record);
      return { result: record, action: `${collection}.create`, resourceType: collection, resourceId: record.id, before: null, after: resourceView(record) };
    });
  }

  /**
   * Applies a JSON merge patch (RFC 7396) to the stored document and validates the result exactly as
   * creation does; `id` and `kind` cannot change. Policies that use the resource are validated again
   * against the change, so an app or profile cannot be patched out from under one (KF_CONFLICT).
   */
  update(collection: ResourceCollection, id: string, patch: unknown): Promise<ResourceRecord> {
    const now = this.#now();
    return recorded(this.#tenant, this.#actor, now, async (tx) => {
      const before = await tx.resources.getResource(collection, id);
      if (before === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no ${NOUN[collection]} with id "${id}"`);
      const { kind, displayName, body } = await validated(tx, collection, applyMergePatch(before.body, immutablesChecked(before, patch)));
      const after: ResourceRecord = { ...before, kind, displayName, body, updatedAt: later(now, before.updatedAt) };
      await tx.resources.updateResource(after, before.updatedAt);
      await stillValidReferrers(tx, collection, id);
      return { result: after, action: `${collection}.update`, resourceType: collection, resourceId: id, before: resourceView(before), after: resourceView(after) };
    });
  }

  /**
   * Creates or updates the iosVppApp of each app the token lists (src/policy/vpp.ts planVppSync), all in
   * one transaction, one audit entry per change; an unchanged answer writes nothing.
   */
  async syncVpp(source: VppSource): Promise<VppSyncEntry[]> {
    // Read before the transaction: a slow source must not hold the database's write lock.
    const assets = await source.listAssets();
    return this.#tenant.transaction(async (tx) => {
      const stored = await allResources(tx, 'app', 'iosVppApp');
      const plan = planVppSync(stored, assets, source.tokenId);
      const unchanged = new Set(plan.unchanged);
      const entries: VppSyncEntry[] = stored.filter((r) => unchanged.has(r.id)).map((r) => vppEntry(r, 'unchanged'));
      const at = this.#now();
      for (const app of plan.create) {
        const record: ResourceRecord = { collection: 'app', id: randomUUID(), kind: app.kind, displayName: app.displayName, body: app as unknown as JsonObject, createdAt: at, updatedAt: at };
        await tx.resources.putResource(record);
        await this.#audit(tx, at, 'app.create', record.id, null, resourceView(record));
        entries.push(vppEntry(record, 'created'));
      }
      for (const { id, app } of plan.update) {
        const before = stored.find((r) => r.id === id)!;
        const after: ResourceRecord = { ...before, displayName: app.displayName, body: app as unknown as JsonObject, updatedAt: later(at, before.updatedAt) };
        await tx.resources.updateResource(after, before.updatedAt);
        await stillValidReferrers(tx, 'app', id);
        await this.#audit(tx, at, 'app.update', id, resourceView(before), resourceView(after));
        entries.push(vppEntry(after, 'updated'));
      }
      // In the source's order, whatever happened to each.
      const order = new Map(assets.map((a, i) => [a.adamId, i]));
      return entries.sort((x, y) => (order.get(x.appleId) ?? 0) - (order.get(y.appleId) ?? 0));
    });
  }

  async #audit(tx: TenantStore, at: Date, action: string, resourceId: string, before: JsonValue, after: JsonValue): Promise<void> {
    await tx.audit.append({ actorId: this.#actor.id, actorName: this.#actor.name, action, resourceType: 'app', resourceId, before, after, at });
  }

  /** The policy as Outlook's managed app configuration: typed key/values and the same as a plist. */
  async policySettings(id: string): Promise<CompiledPolicy> {
    return compilePolicy((await this.get('policy', id)).body as unknown as SmimePolicy);
  }

  // ------------------------------------------------------------ assignments

  async assignments(collection: AssignableCollection, id: string): Promise<AssignmentsView> {
    await this.get(collection, id);
    return assignmentsView(await this.#tenant.resources.listAssignments(collection, id));
  }

  /** Replaces the resource's assignments (Graph's `assign` action). Every group must exist, or be allUsers / allDevices. */
  assign(collection: AssignableCollection, id: string, include: readonly string[], exclude: readonly string[]): Promise<AssignmentsView> {
    return recorded(this.#tenant, this.#actor, this.#now(), async (tx) => {
      if ((await tx.resources.getResource(collection, id)) === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no ${NOUN[collection]} with id "${id}"`);
      for (const g of new Set([...include, ...exclude])) {
        if (g === ALL_USERS || g === ALL_DEVICES) continue;
        if ((await tx.directory.getGroup(g)) === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no group with id "${g}"`);
      }
      const before = assignmentsView(await tx.resources.listAssignments(collection, id));
      await tx.resources.replaceAssignments(collection, id, include, exclude);
      const after = assignmentsView(await tx.resources.listAssignments(collection, id));
      return { result: after, action: `${collection}.assign`, resourceType: collection, resourceId: id, before, after };
    });
  }

  // ------------------------------------------------------------ imported PFX certificates

  /** Stores the upload preparePfxImport made; the service holds no key for the PFX or its password. */
  importPfx(json: unknown): Promise<UserPfxCertificateRecord> {
    const record = pfxRecord(json, this.#now());
    return recorded(this.#tenant, this.#actor, record.createdAt, async (tx) => {
      await tx.resources.putUserPfxCertificate(record);
      return { result: record, action: 'userPfxCertificate.create', resourceType: 'userPfxCertificate', resourceId: record.id, before: null, after: pfxView(record) };
    });
  }

  /**
   * Stores up to PFX_BATCH_MAX uploads, in order, in one transaction with their audit entries (the same
   * entries one importPfx each would make): all of them, or none. Every record is checked before anything
   * is written; a refusal names the first bad record by its index ("record 3: …").
   */
  async importPfxBatch(uploads: readonly unknown[]): Promise<UserPfxCertificateRecord[]> {
    if (uploads.length === 0 || uploads.length > PFX_BATCH_MAX) throw new KeyfleetError('KF_USAGE', `PFX import: a batch holds 1 to ${PFX_BATCH_MAX} records, not ${uploads.length}`);
    const now = this.#now();
    const records = uploads.map((json, i) => {
      try {
        return pfxRecord(json, now);
      } catch (e) {
        if (e instanceof KeyfleetError) throw new KeyfleetError(e.code, `record ${i}: ${e.message}`, { cause: e, ...(e.detail === undefined ? {} : { detail: e.detail }) });
        throw e;
      }
    });
    return recordedMany(this.#tenant, this.#actor, now, async (tx) => {
      await tx.resources.putUserPfxCertificates(records);
      const changes = records.map((r) => ({ action: 'userPfxCertificate.create', resourceType: 'userPfxCertificate', resourceId: r.id, before: null, after: pfxView(r) }));
      return { result: records, changes };
    });
  }

  async getPfx(id: string): Promise<UserPfxCertificateRecord> {
    const r = await this.#tenant.resources.getUserPfxCertificate(id);
    if (r === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no imported PFX certificate with id "${id}"`);
    return r;
  }

  listPfx(options: PageOptions & { readonly userPrincipalName?: string }): Promise<Page<UserPfxCertificateRecord>> {
    return this.#tenant.resources.listUserPfxCertificates(options);
  }

  deletePfx(id: string): Promise<void> {
    return recorded(this.#tenant, this.#actor, this.#now(), async (tx) => {
      const before = await tx.resources.getUserPfxCertificate(id);
      if (before === undefined || !(await tx.resources.deleteUserPfxCertificate(id))) {
        throw new KeyfleetError('KF_NOT_FOUND', `no imported PFX certificate with id "${id}"`);
      }
      return { result: undefined, action: 'userPfxCertificate.delete', resourceType: 'userPfxCertificate', resourceId: id, before: pfxView(before), after: null };
    });
  }

  // ------------------------------------------------------------ effective state

  #now(): Date {
    return new Date(Math.floor(this.#clock().getTime()));
  }
}

/** The most records one PFX import batch takes: a bounded transaction, and a body of a few MiB. */
export const PFX_BATCH_MAX = 100;

/** The record of one upload, checked: its schema, and dates that are dates in order. */
function pfxRecord(json: unknown, createdAt: Date): UserPfxCertificateRecord {
  const upload = parseUserPfxCertificateUpload(json);
  const record: UserPfxCertificateRecord = {
    id: randomUUID(),
    userPrincipalName: upload.userPrincipalName,
    thumbprint: upload.thumbprint,
    intendedPurpose: upload.intendedPurpose,
    startDateTime: new Date(upload.startDateTime),
    expirationDateTime: new Date(upload.expirationDateTime),
    providerName: upload.providerName,
    keyName: upload.keyName,
    paddingScheme: upload.paddingScheme,
    encryptedPfxBlob: new Uint8Array(Buffer.from(upload.encryptedPfxBlob, 'base64')),
    encryptedPfxPassword: new Uint8Array(Buffer.from(upload.encryptedPfxPassword, 'base64')),
    createdAt,
  };
  if (Number.isNaN(record.startDateTime.getTime()) || Number.isNaN(record.expirationDateTime.getTime())) {
    throw new KeyfleetError('KF_USAGE', 'PFX import: startDateTime and expirationDateTime must be valid dates');
  }
  if (record.expirationDateTime <= record.startDateTime) throw new KeyfleetError('KF_USAGE', 'PFX import: expirationDateTime must be after startDateTime');
  return record;
}

/** A time after `previous`, so every update advances updatedAt (and the store's compare-and-set sees it). */
function later(now: Date, previous: Date): Date {
  return new Date(Math.max(now.getTime(), previous.getTime() + 1));
}

function vppEntry(r: ResourceRecord, change: VppSyncEntry['change']): VppSyncEntry {
  const b = r.body;
  return {
    id: r.id,
    change,
    displayName: r.displayName,
    bundleId: b['bundleId'] as string,
    appleId: b['appleId'] as string,
    totalLicenseCount: b['totalLicenseCount'] as number,
    usedLicenseCount: b['usedLicenseCount'] as number,
  };
}

/** A resource as the API returns it: its id, its document, Graph's timestamps. */
export function resourceView(r: ResourceRecord): JsonObject {
  return { id: r.id, ...r.body, createdDateTime: r.createdAt.toISOString(), lastModifiedDateTime: r.updatedAt.toISOString() };
}

export function assignmentsView(records: readonly AssignmentRecord[]): AssignmentsView {
  return {
    include: records.filter((a) => a.intent === 'include').map((a) => a.groupId),
    exclude: records.filter((a) => a.intent === 'exclude').map((a) => a.groupId),
  };
}

/**
 * An imported PFX certificate's metadata. The encrypted PFX and password are
 * left out: only the connector has use for them (the delivery issue gives it
 * its own read), and an admin listing should not carry them around.
 */
export function pfxView(r: UserPfxCertificateRecord): JsonObject {
  return {
    id: r.id,
    userPrincipalName: r.userPrincipalName,
    thumbprint: r.thumbprint,
    intendedPurpose: r.intendedPurpose,
    startDateTime: r.startDateTime.toISOString(),
    expirationDateTime: r.expirationDateTime.toISOString(),
    providerName: r.providerName,
    keyName: r.keyName,
    paddingScheme: r.paddingScheme,
    createdDateTime: r.createdAt.toISOString(),
  };
}
