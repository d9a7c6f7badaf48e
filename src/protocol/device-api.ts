/**
 * The device API's JSON shapes (docs/delivery.md): what the server sends a
 * device and what the device reports. Binary values are base64 (DER
 * certificates, CMS payloads).
 */

export const DEVICE_API = '/device/v1';

export interface EnrollRequest {
  /** The one-time enrollment token (kfe_…) an admin made for the user. */
  readonly enrollmentToken: string;
  /** PKCS#10 (DER, base64) over the device's P-256 identity key; its subject is ignored. */
  readonly csr: string;
  readonly deviceName: string;
  readonly operatingSystem: 'iOS' | 'iPadOS';
  readonly osVersion: string;
  readonly model: string;
  readonly serialNumber?: string;
  /** Where the device's Company Portal landing page listens (loopback), for links in notification mail. */
  readonly portalUrl?: string;
}

export interface EnrollResponse {
  readonly deviceId: string;
  readonly userId: string;
  /** The device identity certificate (DER, base64). */
  readonly certificate: string;
  /** The issuing CA and root (DER, base64), nearest first. */
  readonly caCertificates: readonly string[];
}

export type ManagementState = 'managed' | 'retirePending' | 'retired' | 'wipePending' | 'wiped';

export interface AppConfigurationItem {
  readonly appId: string;
  readonly bundleId: string;
  readonly policyIds: readonly string[];
  readonly settings: readonly { readonly appConfigKey: string; readonly appConfigKeyType: string; readonly appConfigKeyValue: string }[];
  /** The same settings as an Apple plist (managed app configuration). */
  readonly plist: string;
}

export interface TrustedRootItem {
  readonly profileId: string;
  readonly certificate: string;
  /** SHA-1, upper-case hex. */
  readonly thumbprint: string;
}

export interface ScepItem {
  /** The device certificate state's id: reports name it. */
  readonly id: string;
  readonly profileId: string;
  readonly purpose: 'smimeSigning';
  readonly state: string;
  /** Present while a certificate is needed (none yet, or renewal due). */
  readonly request?: {
    readonly url: string;
    /** One-time, bound to this device, user, profile, subject and SAN; expires at expiresAt. */
    readonly challenge: string;
    readonly expiresAt: string;
    /** RFC 4514 subject the CSR must carry. */
    readonly subject: string;
    readonly sanEmail?: string;
    readonly sanUpn?: string;
    readonly keySize: number;
    readonly keyUsage: readonly string[];
    /** The CA certificate's SHA-256 (upper-case hex), as Apple's CAFingerprint. */
    readonly caFingerprint: string;
  };
  /** Of the installed certificate, when there is one. */
  readonly thumbprint?: string;
  readonly serialNumber?: string;
}

export interface ImportedItem {
  readonly id: string;
  readonly profileId: string;
  readonly pfxId: string;
  readonly intendedPurpose: string;
  /** SHA-1 of the certificate, upper-case hex: what the delivery must contain. */
  readonly thumbprint: string;
  readonly state: string;
  /** Set once a connector has re-wrapped the PFX for this device: GET /device/v1/deliveries/{deliveryId}. */
  readonly deliveryId?: string;
  /**
   * The delivery's payload itself (DeliveryResponse.payload), inline while the device has not installed it
   * and the check-in's inline budget (INLINE_PAYLOAD_BUDGET) lasts; otherwise fetched by deliveryId.
   */
  readonly payload?: string;
}

/** Base64 characters of delivery payloads one check-in answer carries inline at most. */
export const INLINE_PAYLOAD_BUDGET = 512 * 1024;

export interface RemoveItem {
  readonly id: string;
  /** Which report kind names it. */
  readonly kind: 'scep' | 'imported';
  readonly thumbprint: string;
  readonly reason: 'unassigned' | 'retired' | 'wiped';
}

export interface DesiredState {
  readonly deviceId: string;
  readonly managementState: ManagementState;
  /** The ETag this state was served with. */
  readonly version: string;
  readonly trustedRoots: readonly TrustedRootItem[];
  readonly appConfigurations: readonly AppConfigurationItem[];
  readonly scep: readonly ScepItem[];
  readonly imported: readonly ImportedItem[];
  readonly remove: readonly RemoveItem[];
  /** Policies assigned and what the device should report for each. */
  readonly policies: readonly { readonly id: string; readonly displayName: string; readonly notApplicable: boolean }[];
}

export interface DeliveryResponse {
  readonly id: string;
  readonly pfxId: string;
  /** CMS AuthEnvelopedData (DER, base64) to the device identity certificate around a KeyDelivery (key-delivery.ts). */
  readonly payload: string;
}

export type ReportKind = 'scep' | 'imported' | 'policy' | 'device';

export interface ReportItem {
  readonly kind: ReportKind;
  /** A ScepItem/ImportedItem/RemoveItem id, a policy id, or the device id (kind device: retired/wiped). */
  readonly id: string;
  /** A certificateIssuanceState for certificates; a PolicyStatus for policies; retired/wiped for the device. */
  readonly state: string;
  readonly thumbprint?: string;
  readonly serialNumber?: string;
  readonly errorCode?: string;
}

export interface ReportRequest {
  readonly items: readonly ReportItem[];
  /**
   * The ETag of the check-in these items answer. When every item applies and nothing else has moved the
   * device's state since that check-in, the response carries the device's new ETag, so it need not check
   * in again only to read back its own reports.
   */
  readonly basedOn?: string;
}

export interface ReportResponse {
  /** Per item, in order: applied, or why not (a replayed or impossible transition, an unknown id). */
  readonly results: readonly ({ readonly ok: true } | { readonly ok: false; readonly code: string; readonly detail: string })[];
  /**
   * Only when the request's `basedOn` was the device's ETag and every item applied: its ETag now, which
   * names the state of that check-in with these reports applied. Absent, the device checks in again.
   */
  readonly etag?: string;
}

export interface NotificationItem {
  readonly id: string;
  readonly title: string;
  readonly body: string;
  readonly createdDateTime: string;
  readonly read: boolean;
}

/** Server-sent events on GET /device/v1/events. */
export type DeviceEvent = { readonly type: 'changed'; readonly version: string } | { readonly type: 'notification'; readonly notification: NotificationItem };
