/**
 * What the management service's resources need from storage (issue 4
 * "Resources"): mobile apps, certificate profiles, S/MIME app
 * configuration policies and derived-credential settings (kept as validated
 * JSON documents, one collection each), their group assignments, and
 * imported PFX certificates. Like every store interface it is
 * tenant-scoped: no method takes a tenant id.
 *
 * Validation lives in src/policy; the store keeps what it is given and
 * enforces only identity, uniqueness and references.
 */
import type { JsonValue } from './audit.ts';
import type { Page, PageOptions } from './directory.ts';

export const ResourceCollections = ['app', 'certificateProfile', 'policy', 'derivedCredential'] as const;
export type ResourceCollection = (typeof ResourceCollections)[number];

/**
 * The collections groups can be assigned to; the names are src/policy's AssignmentTargetKind.
 * Derived-credential settings are tenant-wide (Graph has no assignments for them).
 */
export const AssignableCollections = ['app', 'certificateProfile', 'policy'] as const;
export type AssignableCollection = (typeof AssignableCollections)[number];

export function isAssignable(collection: ResourceCollection): collection is AssignableCollection {
  return (AssignableCollections as readonly string[]).includes(collection);
}

export type JsonObject = { [key: string]: JsonValue };

export interface ResourceRecord {
  readonly collection: ResourceCollection;
  /** Opaque, assigned by the service; unique per tenant and collection. */
  readonly id: string;
  /** The document's Graph type: iosStoreApp, iosScepCertificateProfile, …, iosMobileAppConfiguration, deviceManagementDerivedCredentialSettings. */
  readonly kind: string;
  readonly displayName: string;
  /** The validated input, without id and timestamps. */
  readonly body: JsonObject;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export type AssignmentIntent = 'include' | 'exclude';

export interface AssignmentRecord {
  readonly collection: AssignableCollection;
  readonly resourceId: string;
  readonly groupId: string;
  readonly intent: AssignmentIntent;
}

/** Graph `userPFXCertificate` as stored: both secrets stay encrypted, the service holds no key for either. */
export interface UserPfxCertificateRecord {
  readonly id: string;
  /** Compared case-insensitively, as UPNs are. */
  readonly userPrincipalName: string;
  /** SHA-1 of the certificate, upper-case hex. */
  readonly thumbprint: string;
  readonly intendedPurpose: string;
  readonly startDateTime: Date;
  readonly expirationDateTime: Date;
  readonly providerName: string;
  readonly keyName: string;
  readonly paddingScheme: string;
  /** The PFX, still encrypted under its own password. */
  readonly encryptedPfxBlob: Uint8Array;
  /** RSA-OAEP ciphertext of the password under the connector's key. */
  readonly encryptedPfxPassword: Uint8Array;
  readonly createdAt: Date;
}

/** What evaluating effective state needs of an imported PFX certificate: no encrypted PFX or password. */
export interface UserPfxCertificateRef {
  readonly id: string;
  readonly userPrincipalName: string;
  readonly thumbprint: string;
  readonly intendedPurpose: string;
}

/** Every group and static membership of the tenant: what src/policy's buildGroupIndex takes. */
export interface DirectorySnapshot {
  readonly groupIds: readonly string[];
  readonly memberships: readonly { readonly groupId: string; readonly memberId: string; readonly memberType: 'user' | 'group' }[];
}

export interface ResourcesStore {
  /** Inserts; an id already in the collection is KF_CONFLICT. */
  putResource(record: ResourceRecord): Promise<void>;
  getResource(collection: ResourceCollection, id: string): Promise<ResourceRecord | undefined>;
  /** Ordered by id. */
  listResources(collection: ResourceCollection, options?: PageOptions & { readonly kind?: string }): Promise<Page<ResourceRecord>>;
  /**
   * Replaces the display name, document and updatedAt of the resource `record` names, provided it
   * still has `expectedUpdatedAt` and the same kind: a compare-and-set, so of two concurrent
   * updates one fails rather than silently undoing the other. KF_NOT_FOUND when there is no such
   * resource, KF_CONFLICT when it changed meanwhile. createdAt is kept.
   */
  updateResource(record: ResourceRecord, expectedUpdatedAt: Date): Promise<void>;
  /** Deletes the resource and its assignments; false when there was none. */
  deleteResource(collection: ResourceCollection, id: string): Promise<boolean>;

  /** Makes the resource's assignments exactly these groups; KF_NOT_FOUND when the resource does not exist. */
  replaceAssignments(collection: AssignableCollection, resourceId: string, include: readonly string[], exclude: readonly string[]): Promise<void>;
  /** One resource's assignments, or (without arguments) every assignment of the tenant; ordered by resource then group. */
  listAssignments(collection?: AssignableCollection, resourceId?: string): Promise<AssignmentRecord[]>;

  /** Inserts; the same thumbprint twice for one user is KF_CONFLICT. */
  putUserPfxCertificate(record: UserPfxCertificateRecord): Promise<void>;
  /**
   * Inserts every record or none (one statement per few hundred rows; inside TenantStore.transaction it
   * commits or vanishes with the rest). KF_CONFLICT names the first record, by its index in `records`,
   * whose thumbprint is already imported for its user or repeats an earlier record's.
   */
  putUserPfxCertificates(records: readonly UserPfxCertificateRecord[]): Promise<void>;
  getUserPfxCertificate(id: string): Promise<UserPfxCertificateRecord | undefined>;
  /** Ordered by id; filtered by UPN (case-insensitively) when given. */
  listUserPfxCertificates(options?: PageOptions & { readonly userPrincipalName?: string }): Promise<Page<UserPfxCertificateRecord>>;
  deleteUserPfxCertificate(id: string): Promise<boolean>;
  /** Every imported PFX certificate of the tenant without its ciphertexts, ordered by id: the evaluator's read. */
  listUserPfxCertificateRefs(): Promise<UserPfxCertificateRef[]>;

  /** The tenant's groups and memberships, for evaluating effective state. */
  directorySnapshot(): Promise<DirectorySnapshot>;
}
