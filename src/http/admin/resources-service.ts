/**
 * The admin side of issue 4's resources for one tenant and caller: apps,
 * certificate profiles, S/MIME policies, assignments, imported PFX
 * certificates and a user's effective state. Validation is src/policy's;
 * this wires it to the store. Every write is one transaction with its audit
 * entry (src/directory/audit.ts `recorded`), so a refused request leaves
 * nothing behind.
 */
import { randomUUID } from 'node:crypto';
import { recorded, type Actor } from '../../directory/audit.ts';
import { KeyfleetError } from '../../errors.ts';
import {
  ALL_DEVICES,
  ALL_USERS,
  type AssignmentTarget,
  type CertificateProfileResource,
  type EffectiveState,
  type EvaluablePolicy,
  type MobileApp,
  type SmimePolicy,
  type Stored,
  buildGroupIndex,
  compilePolicy,
  effectiveState,
  evaluablePolicy,
  parseCertificateProfileInput,
  parseMobileApp,
  parseUserPfxCertificateUpload,
  validatePolicy,
  validateScepProfile,
  type CompiledPolicy,
  type PolicyLookups,
} from '../../policy/index.ts';
import type { JsonValue } from '../../store/audit.ts';
import type { Page, PageOptions } from '../../store/directory.ts';
import type { AssignmentRecord, JsonObject, ResourceCollection, ResourceRecord, UserPfxCertificateRecord } from '../../store/resources.ts';
import type { TenantStore } from '../../store/store.ts';

/** The kind column of a policy (Graph's type for it). */
export const POLICY_KIND = 'iosMobileAppConfiguration';

const NOUN: Record<ResourceCollection, string> = { app: 'app', certificateProfile: 'certificate profile', policy: 'policy' };

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

  /** Refused (KF_CONFLICT) while another resource refers to it: a policy to its app or profiles, a SCEP profile to its trusted root. */
  delete(collection: ResourceCollection, id: string): Promise<void> {
    return recorded(this.#tenant, this.#actor, this.#now(), async (tx) => {
      const before = await tx.resources.getResource(collection, id);
      if (before === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no ${NOUN[collection]} with id "${id}"`);
      const user = await referrer(tx, collection, id);
      if (user !== undefined) throw new KeyfleetError('KF_CONFLICT', `${NOUN[collection]} "${id}" is used by ${NOUN[user.collection]} "${user.id}"; delete or change that first`);
      await tx.resources.deleteResource(collection, id);
      return { result: undefined, action: `${collection}.delete`, resourceType: collection, resourceId: id, before: resourceView(before), after: null };
    });
  }

  // ------------------------------------------------------------ creation

  createApp(json: unknown): Promise<ResourceRecord> {
    const app = parseMobileApp(json);
    return this.#create('app', app.kind, app.displayName, app, async () => {});
  }

  createProfile(json: unknown): Promise<ResourceRecord> {
    const profile = parseCertificateProfileInput(json);
    return this.#create('certificateProfile', profile.kind, profile.displayName, profile, async (tx) => {
      if (profile.kind === 'iosScepCertificateProfile') await validateScepProfile(profile, lookups(tx).profile);
    });
  }

  async createPolicy(json: unknown): Promise<ResourceRecord> {
    // Validated inside the transaction, so the app and profiles it names cannot vanish before it lands.
    return recorded(this.#tenant, this.#actor, this.#now(), async (tx) => {
      const policy = await validatePolicy(json, lookups(tx));
      const record = this.#record('policy', POLICY_KIND, policy.displayName, policy);
      await tx.resources.putResource(record);
      return { result: record, action: 'policy.create', resourceType: 'policy', resourceId: record.id, before: null, after: resourceView(record) };
    });
  }

  async #create(collection: ResourceCollection, kind: string, displayName: string, body: object, check: (tx: TenantStore) => Promise<void>): Promise<ResourceRecord> {
    return recorded(this.#tenant, this.#actor, this.#now(), async (tx) => {
      await check(tx);
      const record = this.#record(collection, kind, displayName, body);
      await tx.resources.putResource(record);
      return { result: record, action: `${collection}.create`, resourceType: collection, resourceId: record.id, before: null, after: resourceView(record) };
    });
  }

  #record(collection: ResourceCollection, kind: string, displayName: string, body: object): ResourceRecord {
    const now = this.#now();
    return { collection, id: randomUUID(), kind, displayName, body: body as JsonObject, createdAt: now, updatedAt: now };
  }

  /** The policy as Outlook's managed app configuration: typed key/values and the same as a plist. */
  async policySettings(id: string): Promise<CompiledPolicy> {
    return compilePolicy((await this.get('policy', id)).body as unknown as SmimePolicy);
  }

  // ------------------------------------------------------------ assignments

  async assignments(collection: ResourceCollection, id: string): Promise<AssignmentsView> {
    await this.get(collection, id);
    return assignmentsView(await this.#tenant.resources.listAssignments(collection, id));
  }

  /** Replaces the resource's assignments (Graph's `assign` action). Every group must exist, or be allUsers / allDevices. */
  assign(collection: ResourceCollection, id: string, include: readonly string[], exclude: readonly string[]): Promise<AssignmentsView> {
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
      createdAt: this.#now(),
    };
    if (Number.isNaN(record.startDateTime.getTime()) || Number.isNaN(record.expirationDateTime.getTime())) {
      throw new KeyfleetError('KF_USAGE', 'PFX import: startDateTime and expirationDateTime must be valid dates');
    }
    if (record.expirationDateTime <= record.startDateTime) throw new KeyfleetError('KF_USAGE', 'PFX import: expirationDateTime must be after startDateTime');
    return recorded(this.#tenant, this.#actor, record.createdAt, async (tx) => {
      await tx.resources.putUserPfxCertificate(record);
      return { result: record, action: 'userPfxCertificate.create', resourceType: 'userPfxCertificate', resourceId: record.id, before: null, after: pfxView(record) };
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

  /**
   * What reaches the user: assigned policies, profiles and apps, each app's merged configuration, conflicts.
   * The group index is built per request from the whole directory; fine at today's sizes, and the place to
   * put a cached, invalidated-on-change index when the benchmark's 2,000 nested groups demand it.
   */
  async effectiveStateOf(userId: string): Promise<EffectiveState> {
    const t = this.#tenant;
    if ((await t.directory.getUser(userId)) === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no user with id "${userId}"`);
    const snapshot = await t.resources.directorySnapshot();
    const index = buildGroupIndex(snapshot.groupIds.map((id) => ({ id })), snapshot.memberships);
    const byTarget = new Map<string, { kind: ResourceCollection; id: string; include: string[]; exclude: string[] }>();
    for (const a of await t.resources.listAssignments()) {
      const key = `${a.collection}:${a.resourceId}`;
      let target = byTarget.get(key);
      if (target === undefined) byTarget.set(key, (target = { kind: a.collection, id: a.resourceId, include: [], exclude: [] }));
      target[a.intent].push(a.groupId);
    }
    const policies = new Map<string, EvaluablePolicy>();
    for (const p of await allResources(t, 'policy')) policies.set(p.id, evaluablePolicy(p.id, p.body as unknown as SmimePolicy));
    const targets: AssignmentTarget[] = [...byTarget.values()];
    return effectiveState({ userId }, index, targets, policies);
  }

  #now(): Date {
    return new Date(Math.floor(this.#clock().getTime()));
  }
}

/** The store as validatePolicy's lookups; derived credentials have no issuer configured yet. */
function lookups(tx: TenantStore): PolicyLookups {
  return {
    app: async (id) => {
      const r = await tx.resources.getResource('app', id);
      return r === undefined ? undefined : ({ ...r.body, id: r.id } as unknown as Stored<MobileApp>);
    },
    profile: async (id) => {
      const r = await tx.resources.getResource('certificateProfile', id);
      return r === undefined ? undefined : ({ ...r.body, id: r.id } as unknown as CertificateProfileResource);
    },
    derivedCredentialIssuer: undefined,
  };
}

async function allResources(t: TenantStore, collection: ResourceCollection): Promise<ResourceRecord[]> {
  const out: ResourceRecord[] = [];
  let cursor: string | undefined;
  do {
    const p = await t.resources.listResources(collection, { limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    out.push(...p.items);
    cursor = p.nextCursor;
  } while (cursor !== undefined);
  return out;
}

/** A resource that names `id`, if any (scans: there are tens of profiles and policies, not thousands). */
async function referrer(t: TenantStore, collection: ResourceCollection, id: string): Promise<ResourceRecord | undefined> {
  if (collection === 'policy') return undefined;
  if (collection === 'certificateProfile') {
    const scep = (await allResources(t, 'certificateProfile')).find((p) => p.body['rootCertificateId'] === id);
    if (scep !== undefined) return scep;
  }
  return (await allResources(t, 'policy')).find((p) => {
    const b = p.body;
    return collection === 'app'
      ? Array.isArray(b['targetedMobileApps']) && b['targetedMobileApps'].includes(id)
      : b['signingCertificateProfileId'] === id || b['encryptionCertificateProfileId'] === id;
  });
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
