/**
 * The server's side of the PFX connector (docs/delivery.md "Imported
 * certificates: the connector"): connector credentials (an admin action,
 * audited; the kfc_ secret shown once, its SHA-256 stored), authentication
 * by credential and version, and the queue of re-wrap requests: a long-poll
 * claim that leases requests, and the result that completes a lease once.
 *
 * The store makes a lease exclusive (two claims never get the same request,
 * a result needs the lease's claim token and is taken once); this module
 * adds the waiting, what a connector is sent, and the check that a payload
 * is an AES-256-GCM AuthEnvelopedData to the device the request is for.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { OID } from '../asn1/oids.ts';
import { recorded, type Actor } from '../directory/audit.ts';
import { KeyfleetError } from '../errors.ts';
import { type ClaimedRequest, MAX_RESULT_PAYLOAD, type ResultRequest } from '../protocol/connector-api.ts';
import { describeEnvelope } from '../smime/cms/enveloped-data.ts';
import type { JsonValue } from '../store/audit.ts';
import type { ConnectorRecord, DeliveryRequestRecord } from '../store/delivery.ts';
import type { Store, TenantStore } from '../store/store.ts';
import { type Certificate, decodeCertificate } from '../x509/certificate.ts';
import { namesEqual } from '../x509/name.ts';
export const CONNECTOR_SECRET_PREFIX = 'kfc_';
const SECRET_SHAPE = /^kfc_[A-Za-z0-9_-]{43}$/;
/** The seed's rule: "PFX Certificate Connector for Microsoft Intune version 6.1911.11.0 or later". */
export const DEFAULT_MIN_CONNECTOR_VERSION = '6.1911.11.0';
export const DEFAULT_LEASE_SECONDS = 60;
export const MAX_CLAIM_WAIT_SECONDS = 30;
export const MAX_CLAIM = 100;
/** How often a waiting claim looks at the store for work queued by other processes. */
const DEFAULT_POLL_MS = 500;
/** last-seen is kept to the minute, as API tokens' lastUsed: a write per request would serialise SQLite. */
const TOUCH_GRANULARITY_MS = 60_000;
const VERSION_SHAPE = /^\d{1,9}(\.\d{1,9}){0,5}$/;

export interface ConnectorServiceOptions {
  readonly store: Store;
  readonly clock?: () => Date;
  /** Connectors reporting a lower version are refused with KF_CONNECTOR_OUTDATED. */
  readonly minConnectorVersion?: string;
  readonly leaseSeconds?: number;
  /** Wakes waiting claims when this process queues work; a new one when not shared with the check-in code. */
  readonly queueSignal?: DeliveryQueueSignal;
  readonly pollMs?: number;
  /**
   * Told after a request is completed (delivered or failed), e.g. to move the device's ETag. The completion
   * is stored before it runs: if it throws, the connector gets a 500 and its retry a KF_CONFLICT.
   */
  readonly onCompleted?: (tenantId: string, request: DeliveryRequestRecord) => void | Promise<void>;
}

export interface AuthenticatedConnector {
  readonly tenantId: string;
  readonly connector: ConnectorRecord;
  readonly version: string;
}

export interface RegisteredConnector {
  readonly connector: ConnectorRecord;
  /** Shown once; only its SHA-256 is stored. */
  readonly secret: string;
}

export type ConnectorState = 'neverSeen' | 'active' | 'outdated' | 'revoked';

export interface ConnectorView {
  [key: string]: JsonValue;
  id: string;
  name: string;
  version: string | null;
  lastSeenDateTime: string | null;
  createdDateTime: string;
  revokedDateTime: string | null;
  state: ConnectorState;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const base64 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');

/** Dotted numeric versions compared part by part; a missing part is 0 (6.2 = 6.2.0.0). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

export function connectorView(c: ConnectorRecord, minVersion: string = DEFAULT_MIN_CONNECTOR_VERSION): ConnectorView {
  const state: ConnectorState =
    c.revokedAt !== undefined ? 'revoked' : c.version === undefined ? 'neverSeen' : compareVersions(c.version, minVersion) < 0 ? 'outdated' : 'active';
  return {
    id: c.id,
    name: c.name,
    version: c.version ?? null,
    lastSeenDateTime: c.lastSeenAt?.toISOString() ?? null,
    createdDateTime: c.createdAt.toISOString(),
    revokedDateTime: c.revokedAt?.toISOString() ?? null,
    state,
  };
}

/**
 * Wakes claims waiting for work in this process. The check-in code calls
 * notify(tenantId) after it queues a delivery request; a claim waiting for
 * that tenant then looks at the store at once instead of at its next poll.
 * Other processes' work is found by the poll (ConnectorService pollMs).
 */
export class DeliveryQueueSignal {
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #epochs = new Map<string, number>();

  notify(tenantId: string): void {
    this.#epochs.set(tenantId, this.epoch(tenantId) + 1);
    const waiters = this.#waiters.get(tenantId);
    if (waiters === undefined) return;
    this.#waiters.delete(tenantId);
    for (const wake of waiters) wake();
  }

  /** Counts notifications: read before looking at the store, compared before waiting, so none is missed. */
  epoch(tenantId: string): number {
    return this.#epochs.get(tenantId) ?? 0;
  }

  /** Resolves on the tenant's next notify, after `ms`, or when `abort` fires, whichever comes first. */
  wait(tenantId: string, ms: number, abort?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (abort?.aborted) return resolve();
      let waiters = this.#waiters.get(tenantId);
      if (waiters === undefined) this.#waiters.set(tenantId, (waiters = new Set()));
      const set = waiters;
      const done = () => {
        clearTimeout(timer);
        abort?.removeEventListener('abort', done);
        set.delete(done);
        if (set.size === 0 && this.#waiters.get(tenantId) === set) this.#waiters.delete(tenantId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
      abort?.addEventListener('abort', done, { once: true });
    });
  }
}

export class ConnectorService {
  readonly #store: Store;
  readonly #clock: () => Date;
  readonly minVersion: string;
  readonly #leaseMs: number;
  readonly queue: DeliveryQueueSignal;
  readonly #pollMs: number;
  readonly #onCompleted: ConnectorServiceOptions['onCompleted'];

  constructor(options: ConnectorServiceOptions) {
    const min = options.minConnectorVersion ?? DEFAULT_MIN_CONNECTOR_VERSION;
    if (!VERSION_SHAPE.test(min)) throw new KeyfleetError('KF_USAGE', `the minimum connector version "${min}" is not a dotted number such as ${DEFAULT_MIN_CONNECTOR_VERSION}`);
    const lease = options.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
    if (!(lease >= 1 && lease <= 3600)) throw new KeyfleetError('KF_USAGE', 'the connector lease must be 1–3600 seconds');
    this.#store = options.store;
    this.#clock = options.clock ?? (() => new Date());
    this.minVersion = min;
    this.#leaseMs = lease * 1000;
    this.queue = options.queueSignal ?? new DeliveryQueueSignal();
    this.#pollMs = options.pollMs ?? DEFAULT_POLL_MS;
    this.#onCompleted = options.onCompleted;
  }

  view(c: ConnectorRecord): ConnectorView {
    return connectorView(c, this.minVersion);
  }

  /** A new connector credential (audited without its secret). */
  register(tenant: TenantStore, actor: Actor, name: string): Promise<RegisteredConnector> {
    if (name.length === 0 || name.length > 256 || /[\u0000-\u001f\u007f]/.test(name)) throw new KeyfleetError('KF_USAGE', 'a connector name is 1–256 printable characters');
    const now = new Date(Math.floor(this.#clock().getTime()));
    const secret = CONNECTOR_SECRET_PREFIX + randomBytes(32).toString('base64url');
    const connector: ConnectorRecord = { id: randomUUID(), name, secretHash: sha256(secret), version: undefined, lastSeenAt: undefined, createdAt: now, revokedAt: undefined };
    return recorded(tenant, actor, now, async (tx) => {
      await tx.delivery.putConnector(connector);
      return { result: { connector, secret }, action: 'connector.create', resourceType: 'connector', resourceId: connector.id, before: null, after: this.view(connector) };
    });
  }

  async list(tenant: TenantStore): Promise<ConnectorRecord[]> {
    return tenant.delivery.listConnectors();
  }

  /** Revokes a credential: its next request is refused. Requests it holds return to the queue when their leases end. */
  revoke(tenant: TenantStore, actor: Actor, id: string): Promise<ConnectorRecord> {
    const at = new Date(Math.floor(this.#clock().getTime()));
    return recorded(tenant, actor, at, async (tx) => {
      const before = await tx.delivery.getConnector(id);
      if (before === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no connector with id "${id}"`);
      if (before.revokedAt !== undefined) throw new KeyfleetError('KF_CONFLICT', `connector "${id}" is already revoked`);
      await tx.delivery.revokeConnector(id, at);
      const after: ConnectorRecord = { ...before, revokedAt: at };
      return { result: after, action: 'connector.revoke', resourceType: 'connector', resourceId: id, before: this.view(before), after: this.view(after) };
    });
  }

  /**
   * The connector behind a credential and version header. Unknown, malformed and revoked credentials get
   * one answer (KF_UNAUTHENTICATED); a version below the minimum is KF_CONNECTOR_OUTDATED, after the
   * version is recorded, so the admin's list shows which connector needs updating.
   */
  async authenticate(secret: string | undefined, version: string | undefined): Promise<AuthenticatedConnector> {
    const refused = new KeyfleetError('KF_UNAUTHENTICATED', 'a valid connector credential is required (Authorization: Bearer kfc_…)');
    if (secret === undefined || !SECRET_SHAPE.test(secret)) throw refused;
    const found = await this.#store.deliveryLookup.findConnector(sha256(secret));
    if (found === undefined || found.connector.revokedAt !== undefined) throw refused;
    if (version === undefined || !VERSION_SHAPE.test(version)) throw new KeyfleetError('KF_USAGE', 'the keyfleet-connector-version header must state the connector version (e.g. 6.2101.13.0)');
    const { tenantId, connector } = found;
    const now = this.#clock();
    const last = connector.lastSeenAt?.getTime();
    if (last === undefined || now.getTime() - last >= TOUCH_GRANULARITY_MS || connector.version !== version) {
      await this.#store.forTenant(tenantId).delivery.touchConnector(connector.id, version, now);
    }
    if (compareVersions(version, this.minVersion) < 0) {
      throw new KeyfleetError('KF_CONNECTOR_OUTDATED', `connector version ${version} is older than the minimum ${this.minVersion}; update the connector`);
    }
    return { tenantId, connector, version };
  }

  /**
   * Leases up to `max` requests of the connector's tenant. With none pending it waits up to `waitSeconds`:
   * woken at once when this process queues work (DeliveryQueueSignal), and looking at the store every
   * pollMs for work other processes queued. `abort` (the client went away, the server is stopping) ends
   * the wait with an empty answer.
   */
  async claim(who: AuthenticatedConnector, max: number, waitSeconds: number, abort?: AbortSignal): Promise<ClaimedRequest[]> {
    if (!Number.isInteger(max) || max < 1 || max > MAX_CLAIM) throw new KeyfleetError('KF_USAGE', `max must be 1–${MAX_CLAIM}`);
    if (!Number.isInteger(waitSeconds) || waitSeconds < 0 || waitSeconds > MAX_CLAIM_WAIT_SECONDS) throw new KeyfleetError('KF_USAGE', `waitSeconds must be 0–${MAX_CLAIM_WAIT_SECONDS}`);
    const tenant = this.#store.forTenant(who.tenantId);
    const waitUntil = Date.now() + waitSeconds * 1000;
    for (let round = 0; ; round++) {
      if (abort?.aborted) return [];
      // A credential revoked during a long wait stops here, not at its next request.
      if (round > 0 && (await tenant.delivery.getConnector(who.connector.id))?.revokedAt !== undefined) {
        throw new KeyfleetError('KF_UNAUTHENTICATED', 'a valid connector credential is required (Authorization: Bearer kfc_…)');
      }
      // Read before looking: a notify while the store is queried is then not missed.
      const epoch = this.queue.epoch(who.tenantId);
      const tokens = new Map<string, string>();
      for (let i = 0; i < max; i++) {
        const token = randomBytes(32).toString('base64url');
        tokens.set(sha256(token), token);
      }
      const at = this.#clock();
      const leased = await tenant.delivery.claimDeliveryRequests(who.connector.id, max, [...tokens.keys()], new Date(at.getTime() + this.#leaseMs), at);
      if (leased.length > 0) {
        const out = await this.#describe(tenant, leased, tokens, at);
        if (out.length > 0) return out;
        continue;
      }
      const left = waitUntil - Date.now();
      if (left <= 0) return [];
      if (this.queue.epoch(who.tenantId) !== epoch) continue;
      await this.queue.wait(who.tenantId, Math.min(this.#pollMs, left), abort);
    }
  }

  /** What the connector needs for each leased request; requests whose device or PFX is gone are cancelled instead. */
  async #describe(tenant: TenantStore, leased: readonly DeliveryRequestRecord[], tokens: ReadonlyMap<string, string>, at: Date): Promise<ClaimedRequest[]> {
    const out: ClaimedRequest[] = [];
    for (const r of leased) {
      const token = r.claimHash === undefined ? undefined : tokens.get(r.claimHash);
      if (token === undefined || r.leaseUntil === undefined) throw new Error('the store leased a request without this claim’s hash');
      const [device, pfx] = await Promise.all([tenant.devices.getDevice(r.deviceId), tenant.resources.getUserPfxCertificate(r.pfxId)]);
      if (device === undefined || device.identityCertificate === undefined || device.managementState !== 'managed' || pfx === undefined) {
        await tenant.delivery.cancelDeliveryRequests(r.deviceId, [r.pfxId], at);
        continue;
      }
      out.push({
        requestId: r.id,
        claimToken: token,
        leaseExpiresAt: r.leaseUntil.toISOString(),
        deviceId: r.deviceId,
        deviceCertificate: base64(device.identityCertificate),
        pfx: {
          id: pfx.id,
          thumbprint: pfx.thumbprint,
          paddingScheme: pfx.paddingScheme,
          encryptedPfxBlob: base64(pfx.encryptedPfxBlob),
          encryptedPfxPassword: base64(pfx.encryptedPfxPassword),
        },
      });
    }
    return out;
  }

  /**
   * Completes a leased request with the connector's result. A payload must be an AES-256-GCM
   * AuthEnvelopedData whose one recipient is the device's identity certificate (KF_DELIVERY_INVALID
   * otherwise; the lease stays, so a fixed connector can still post). A result for a lease that is not
   * this one (late, taken over, already done) is KF_CONFLICT.
   */
  async complete(who: AuthenticatedConnector, requestId: string, result: ResultRequest): Promise<void> {
    const tenant = this.#store.forTenant(who.tenantId);
    const request = await tenant.delivery.getDeliveryRequest(requestId);
    if (request === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no delivery request with id "${requestId}"`);
    const claimHash = sha256(result.claimToken);
    const conflict = new KeyfleetError('KF_CONFLICT', `delivery request "${requestId}" is not leased to this claim (the lease ended, or a result was already posted)`);
    if (request.status !== 'claimed' || request.claimHash !== claimHash) throw conflict;
    let outcome: { readonly payload: Uint8Array } | { readonly errorCode: string; readonly errorDetail: string };
    if ('payload' in result) {
      const payload = Buffer.from(result.payload, 'base64');
      if (payload.length > MAX_RESULT_PAYLOAD) throw new KeyfleetError('KF_INPUT_TOO_LARGE', `a delivery payload is at most ${MAX_RESULT_PAYLOAD} bytes`);
      const device = await tenant.devices.getDevice(request.deviceId);
      if (device?.identityCertificate === undefined) throw conflict;
      checkPayload(payload, decodeCertificate(device.identityCertificate));
      outcome = { payload };
    } else {
      outcome = { errorCode: result.error.code, errorDetail: result.error.detail };
    }
    if (!(await tenant.delivery.completeDeliveryRequest(requestId, claimHash, outcome, this.#clock()))) throw conflict;
    await this.#onCompleted?.(who.tenantId, request);
  }
}

/** The checks the server can make without the device's key: the envelope's kind, cipher and recipient. */
export function checkPayload(payload: Uint8Array, device: Certificate): void {
  const invalid = (why: string) => new KeyfleetError('KF_DELIVERY_INVALID', `delivery payload refused: ${why}`);
  let envelope;
  try {
    envelope = describeEnvelope(payload);
  } catch {
    throw invalid('it is not a CMS EnvelopedData or AuthEnvelopedData');
  }
  if (envelope.contentType !== 'auth-enveloped-data' || envelope.contentCipher !== OID.aes256GCM) throw invalid('it is not AuthEnvelopedData with AES-256-GCM');
  const [recipient, ...others] = envelope.recipients;
  if (recipient === undefined || others.length > 0) throw invalid('it must have exactly one recipient, the device');
  const ias = recipient.issuerAndSerial;
  const byIssuerSerial = ias !== undefined && namesEqual(ias.issuer, device.issuer) && BigInt(`0x${ias.serialHex || '0'}`) === BigInt(`0x${device.serialHex || '0'}`);
  const bySki = recipient.subjectKeyIdentifierHex !== undefined && device.subjectKeyIdentifier !== undefined && recipient.subjectKeyIdentifierHex === Buffer.from(device.subjectKeyIdentifier).toString('hex');
  if (recipient.kind !== 'kari' || !(byIssuerSerial || bySki)) throw invalid('its recipient is not the device’s identity certificate');
}
