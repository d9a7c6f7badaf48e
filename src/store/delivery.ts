/**
 * What delivery (src/delivery, docs/delivery.md) needs from storage beyond
 * the devices themselves: enrollment tokens, PFX connectors, the queue of
 * re-wrap requests the connectors work through, and device notifications.
 * Tenant-scoped like every store interface; the lookups by secret and by
 * device id come before a tenant is known and live on DeliveryLookup.
 */
import type { ManagedDeviceRecord } from './devices.ts';
import type { Page, PageOptions } from './directory.ts';

export interface EnrollmentTokenRecord {
  readonly id: string;
  readonly userId: string;
  /** SHA-256 of the secret, lower-case hex (the secret is 32 random bytes; see ApiTokenRecord). */
  readonly secretHash: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  readonly usedAt: Date | undefined;
  /** The device it enrolled. */
  readonly deviceId: string | undefined;
}

export type EnrollmentTokenUse =
  | { readonly outcome: 'ok'; readonly token: EnrollmentTokenRecord }
  | { readonly outcome: 'unknown' | 'used' | 'expired' };

export interface ConnectorRecord {
  readonly id: string;
  readonly name: string;
  readonly secretHash: string;
  /** The version it last reported (dotted, e.g. 6.2105.1.0). */
  readonly version: string | undefined;
  readonly lastSeenAt: Date | undefined;
  readonly createdAt: Date;
  readonly revokedAt: Date | undefined;
}

export const DELIVERY_REQUEST_STATUSES = ['pending', 'claimed', 'ready', 'failed', 'cancelled'] as const;
export type DeliveryRequestStatus = (typeof DELIVERY_REQUEST_STATUSES)[number];

/** Leases a request may run out before it is failed rather than handed out again. */
export const MAX_DELIVERY_ATTEMPTS = 5;

/** One imported PFX to be re-wrapped for one device, handled by exactly one connector. */
export interface DeliveryRequestRecord {
  readonly id: string;
  readonly deviceId: string;
  readonly pfxId: string;
  readonly status: DeliveryRequestStatus;
  /** SHA-256 of the current lease's claim token. */
  readonly claimHash: string | undefined;
  readonly connectorId: string | undefined;
  readonly leaseUntil: Date | undefined;
  /** Claims so far (a lease that expired counts). */
  readonly attempts: number;
  /** The AuthEnvelopedData for the device, once ready. */
  readonly payload: Uint8Array | undefined;
  readonly errorCode: string | undefined;
  readonly errorDetail: string | undefined;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface NotificationRecord {
  readonly id: string;
  readonly deviceId: string;
  readonly channel: 'companyPortal' | 'email';
  readonly title: string;
  readonly body: string;
  readonly createdAt: Date;
  readonly readAt: Date | undefined;
  /** For email: when the message was accepted by the SMTP server, or why not. */
  readonly sentAt: Date | undefined;
  readonly sendError: string | undefined;
}

export interface DeliveryStore {
  putEnrollmentToken(record: EnrollmentTokenRecord): Promise<void>;
  /** Atomically marks the token used by `deviceId`; a token enrols once. */
  useEnrollmentToken(secretHash: string, deviceId: string, at: Date): Promise<EnrollmentTokenUse>;
  listEnrollmentTokens(userId: string): Promise<EnrollmentTokenRecord[]>;

  putConnector(record: ConnectorRecord): Promise<void>;
  getConnector(id: string): Promise<ConnectorRecord | undefined>;
  listConnectors(): Promise<ConnectorRecord[]>;
  /** Records the version and time of a connector's request (at most once a minute is enough). */
  touchConnector(id: string, version: string, at: Date): Promise<void>;
  revokeConnector(id: string, at: Date): Promise<boolean>;

  /** Queues a request unless one exists for (device, PFX); returns the existing or new one. */
  ensureDeliveryRequest(record: DeliveryRequestRecord): Promise<DeliveryRequestRecord>;
  getDeliveryRequest(id: string): Promise<DeliveryRequestRecord | undefined>;
  listDeliveryRequests(filter: { readonly deviceId?: string; readonly status?: DeliveryRequestStatus }, options?: PageOptions): Promise<Page<DeliveryRequestRecord>>;
  /**
   * Leases up to `max` requests that are pending, or claimed with an expired lease, oldest first, to the
   * connector; each gets `claimHash` and `leaseUntil` and one more attempt. Two concurrent claims never get
   * the same request. A request whose lease ran out MAX_DELIVERY_ATTEMPTS times (a PFX that stops every
   * connector that takes it, say) is failed instead, with errorCode `attempts-exhausted`.
   */
  claimDeliveryRequests(connectorId: string, max: number, claimHashes: readonly string[], leaseUntil: Date, at: Date): Promise<DeliveryRequestRecord[]>;
  /**
   * Completes a claimed request whose claimHash matches and whose lease has not been taken over: ready with
   * the payload, or failed with the error. False when the claim is no longer this one's (late, or done).
   */
  completeDeliveryRequest(id: string, claimHash: string, outcome: { readonly payload: Uint8Array } | { readonly errorCode: string; readonly errorDetail: string }, at: Date): Promise<boolean>;
  /** Cancels (device retired, PFX unassigned or deleted) every open request of the device, or only for these PFX. */
  cancelDeliveryRequests(deviceId: string, pfxIds: readonly string[] | undefined, at: Date): Promise<number>;
  /** Returns failed requests of the device to pending (a retry the admin or device asks for). */
  retryDeliveryRequest(id: string, at: Date): Promise<boolean>;
  countDeliveryRequests(status: DeliveryRequestStatus): Promise<number>;
  /** Whether any of the device's requests other than `exceptId` is still open (pending or claimed). */
  hasOpenDeliveryRequests(deviceId: string, exceptId?: string): Promise<boolean>;

  putNotification(record: NotificationRecord): Promise<void>;
  getNotification(id: string): Promise<NotificationRecord | undefined>;
  /** Newest first. */
  listNotifications(deviceId: string, options?: PageOptions): Promise<Page<NotificationRecord>>;
  markNotificationRead(id: string, at: Date): Promise<boolean>;
  recordNotificationSend(id: string, outcome: { readonly sentAt: Date } | { readonly error: string }): Promise<void>;
}

/** Lookups made before the tenant is known: the secret or the device id names it. */
export interface DeliveryLookup {
  findEnrollmentToken(secretHash: string): Promise<{ readonly tenantId: string; readonly token: EnrollmentTokenRecord } | undefined>;
  findConnector(secretHash: string): Promise<{ readonly tenantId: string; readonly connector: ConnectorRecord } | undefined>;
  /**
   * The device with its tenant — without its identity certificate (identityCertificate undefined): every
   * signed request makes this lookup, and the signature check keeps the keys it has already parsed.
   */
  findDevice(deviceId: string): Promise<{ readonly tenantId: string; readonly device: ManagedDeviceRecord } | undefined>;
  /** The device's identity certificate (DER), for a signature check that has not parsed its key yet. */
  findIdentityCertificate(tenantId: string, deviceId: string): Promise<Uint8Array | undefined>;
  /** A notification by its id (an unguessable UUID), for the mail link that leads to a device's portal. */
  findNotification(notificationId: string): Promise<{ readonly tenantId: string; readonly notification: NotificationRecord } | undefined>;
}
