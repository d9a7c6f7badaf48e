/**
 * Managed devices and what each one reports (issue 4 "Managed devices"; the
 * delivery issue enrols them and writes their reports). Field names follow
 * Microsoft Graph's `managedDevice`, `managedDeviceMobileAppConfigurationDeviceStatus`
 * and `managedDeviceCertificateState`. Tenant-scoped like every store
 * interface: no method takes a tenant id.
 *
 * The store keeps what it is given: states are validated by src/policy
 * (certificate-state.ts) and src/delivery before they get here.
 */
import type { Page, PageOptions } from './directory.ts';

export const DEVICE_OPERATING_SYSTEMS = ['iOS', 'iPadOS'] as const;
export type DeviceOperatingSystem = (typeof DEVICE_OPERATING_SYSTEMS)[number];

/**
 * Graph's managementState, narrowed to what Keyfleet does: a device is
 * managed until an admin retires or wipes it; the action is pending until the
 * device's next check-in carries it out.
 */
export const MANAGEMENT_STATES = ['managed', 'retirePending', 'retired', 'wipePending', 'wiped'] as const;
export type ManagementState = (typeof MANAGEMENT_STATES)[number];

export interface ManagedDeviceRecord {
  /** Opaque, assigned at enrolment; unique per tenant. */
  readonly id: string;
  /** The primary user (a UserRecord id). Not a foreign key: a deleted user's devices stay until retired. */
  readonly userId: string;
  readonly deviceName: string;
  readonly operatingSystem: DeviceOperatingSystem;
  readonly osVersion: string;
  readonly model: string;
  readonly serialNumber: string | undefined;
  /** Where the device's Company Portal page listens (a loopback URL), for links in notification mail. */
  readonly portalUrl: string | undefined;
  readonly managementState: ManagementState;
  readonly enrolledAt: Date;
  /** The last check-in (Graph lastSyncDateTime). */
  readonly lastSyncAt: Date | undefined;
  /** SHA-256 of the device identity certificate, lower-case hex; unique per tenant when set. */
  readonly identityThumbprint: string | undefined;
  /** The device identity certificate (DER) our CA issued at enrolment. */
  readonly identityCertificate: Uint8Array | undefined;
  /** Digest of the device's evaluated desired state, written by re-evaluation; undefined before the first. */
  readonly desiredStateHash: string | undefined;
  /**
   * When the device's state must be reconciled again even if nothing was changed by an admin: a renewal
   * falls due, a challenge expires. An idle check-in after it gets the full state, not 304.
   */
  readonly recheckAt: Date | undefined;
  /** Incremented by every update: with desiredStateHash it makes the check-in's ETag. */
  readonly version: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** What updateDevice may change; the rest of a device is fixed at enrolment. */
export interface DevicePatch {
  readonly deviceName?: string;
  readonly osVersion?: string;
  readonly managementState?: ManagementState;
  readonly lastSyncAt?: Date;
  readonly identityThumbprint?: string;
  readonly identityCertificate?: Uint8Array;
  readonly desiredStateHash?: string;
  /** null clears it. */
  readonly recheckAt?: Date | null;
}

export interface DeviceFilter {
  readonly userId?: string;
  readonly managementState?: ManagementState;
}

/** The few columns re-evaluating every device needs, without the certificate blob. */
export interface DeviceRef {
  readonly id: string;
  readonly userId: string;
  readonly managementState: ManagementState;
  readonly desiredStateHash: string | undefined;
}

/**
 * Graph's complianceStatus as used for app-configuration device statuses:
 * `unknown` is Intune's "pending" (assigned, not yet reported).
 */
export const POLICY_STATUSES = ['unknown', 'notApplicable', 'compliant', 'remediated', 'nonCompliant', 'error', 'conflict', 'notAssigned'] as const;
export type PolicyStatus = (typeof POLICY_STATUSES)[number];

export interface DevicePolicyStateRecord {
  readonly deviceId: string;
  readonly policyId: string;
  readonly status: PolicyStatus;
  /** A short, user-safe reason for error and conflict (never a secret). */
  readonly detail: string | undefined;
  readonly reportedAt: Date;
}

export type CertificateSourceKind = 'scep' | 'pkcsImported';

/** One certificate on one device (Graph managedDeviceCertificateState). */
export interface DeviceCertificateRecord {
  /** Opaque; unique per tenant. */
  readonly id: string;
  readonly deviceId: string;
  /** The certificate profile (SCEP or PKCS-imported) it was delivered through. */
  readonly profileId: string;
  readonly source: CertificateSourceKind;
  /** The imported PFX (UserPfxCertificateRecord id) for source pkcsImported. */
  readonly pfxId: string | undefined;
  /** A certificateIssuanceState (src/policy/certificate-state.ts). */
  readonly state: string;
  /** SHA-1, upper-case hex, as Graph's certificateThumbprint. */
  readonly thumbprint: string | undefined;
  /** Lower-case hex without leading zeros stripped: as the CA stores serials. */
  readonly serialNumber: string | undefined;
  readonly issuer: string | undefined;
  readonly subject: string | undefined;
  readonly expiresAt: Date | undefined;
  /** Why the last transition failed, for …Failed states. */
  readonly errorCode: string | undefined;
  readonly stateChangedAt: Date;
  readonly createdAt: Date;
}

/** Selects certificate states; with none, every one of the tenant. */
export interface CertificateStateFilter {
  readonly deviceId?: string;
  readonly profileId?: string;
  /** Through the device's primary user. */
  readonly userId?: string;
  readonly pfxId?: string;
}

export interface DeviceStore {
  /** Inserts; an id or identity thumbprint already present is KF_CONFLICT. */
  putDevice(record: ManagedDeviceRecord): Promise<void>;
  getDevice(id: string): Promise<ManagedDeviceRecord | undefined>;
  getDeviceByIdentity(thumbprint: string): Promise<ManagedDeviceRecord | undefined>;
  /** Ordered by id. */
  listDevices(options?: PageOptions & DeviceFilter): Promise<Page<ManagedDeviceRecord>>;
  countDevices(filter?: DeviceFilter): Promise<number>;
  /** Ordered by id; `after` is the last id of the previous batch. */
  listDeviceRefs(after: string | undefined, limit: number): Promise<DeviceRef[]>;
  /**
   * Applies the patch, increments version and sets updatedAt; returns the
   * updated device, or undefined when there is none. With `expectedVersion`,
   * only when the device is still at that version (else KF_CONFLICT).
   */
  updateDevice(id: string, patch: DevicePatch, at: Date, expectedVersion?: number): Promise<ManagedDeviceRecord | undefined>;
  /**
   * Sets desiredStateHash (and increments version) for each device whose hash
   * differs; returns the ids that changed. For re-evaluation in batches.
   */
  setDesiredStateHashes(updates: readonly { readonly id: string; readonly hash: string }[], at: Date): Promise<string[]>;
  /**
   * Records a check-in (lastSyncAt) without changing version or updatedAt: an idle check-in must not move
   * the device's ETag. False when there is no such device.
   */
  touchDevice(id: string, at: Date): Promise<boolean>;
  /** Deletes the device with its policy and certificate states; false when there was none. */
  deleteDevice(id: string): Promise<boolean>;

  /** Inserts or replaces the state of one policy on one device. */
  putPolicyState(record: DevicePolicyStateRecord): Promise<void>;
  /** Ordered by device then policy. */
  listPolicyStates(filter: { readonly deviceId?: string; readonly policyId?: string; readonly userId?: string }, options?: PageOptions): Promise<Page<DevicePolicyStateRecord>>;
  deletePolicyState(deviceId: string, policyId: string): Promise<boolean>;

  /** Inserts or replaces by id. */
  putCertificateState(record: DeviceCertificateRecord): Promise<void>;
  getCertificateState(id: string): Promise<DeviceCertificateRecord | undefined>;
  /** Ordered by device then id. */
  listCertificateStates(filter: CertificateStateFilter, options?: PageOptions): Promise<Page<DeviceCertificateRecord>>;
  deleteCertificateState(id: string): Promise<boolean>;
}
