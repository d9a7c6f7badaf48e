/**
 * The device side of the service (docs/delivery.md): check-in with its
 * cheap unchanged path, the reports devices send back, delivery payloads,
 * and the in-app notification list. Every method takes the device the
 * request signature proved (device-auth.ts); none takes a device id from
 * the caller, so a device only ever reaches its own rows.
 */
import type { CertificateAuthority } from '../ca/authority.ts';
import { KeyfleetError } from '../errors.ts';
import type { DeliveryResponse, DesiredState, NotificationItem, ReportRequest, ReportResponse } from '../protocol/device-api.ts';
import type { ManagedDeviceRecord } from '../store/devices.ts';
import type { NotificationRecord } from '../store/delivery.ts';
import type { Store, TenantStore } from '../store/store.ts';
import type { AuthenticatedDevice } from './device-auth.ts';
import type { EvaluatorCache } from './evaluator-cache.ts';
import { reconcileDevice } from './reconcile.ts';
import { applyReport } from './reports.ts';

/** lastSyncDateTime is kept to the minute: a write per idle check-in would cost more than the check-in. */
const SYNC_GRANULARITY_MS = 60_000;
export const MAX_REPORT_ITEMS = 200;

export interface DeliveryServiceOptions {
  readonly store: Store;
  readonly evaluators: EvaluatorCache;
  readonly authority: (tenantId: string) => Promise<CertificateAuthority | undefined>;
  /** Key of the derived SCEP challenges (scep-enrolment.ts); 32 bytes, kept by the service. */
  readonly challengeSecret: Uint8Array;
  /** Told when delivery requests were queued (wakes waiting connectors). */
  readonly onQueued?: (tenantId: string) => void;
  /** Told when a device's state moved (pushes "changed" to it). */
  readonly onChanged?: (tenantId: string, device: ManagedDeviceRecord) => void;
  readonly clock?: () => Date;
  /** Security events (a device asking for what is not its own); never secrets. */
  readonly log?: (message: string, fields: Record<string, string>) => void;
}

export type CheckinResult = { readonly status: 304; readonly etag: string } | { readonly status: 200; readonly etag: string; readonly state: DesiredState };

export function etagOf(device: ManagedDeviceRecord): string {
  return `"${device.desiredStateHash ?? 'new'}.${device.version}"`;
}

export class DeliveryService {
  readonly #o: DeliveryServiceOptions;

  constructor(options: DeliveryServiceOptions) {
    this.#o = options;
  }

  #now(): Date {
    return new Date(Math.floor((this.#o.clock ?? (() => new Date()))().getTime()));
  }

  /**
   * The device's desired state, or 304 when `ifNoneMatch` is its current ETag: one primary-key read (done
   * by authentication) and, at most once a minute, a lastSync write.
   */
  async checkin(auth: AuthenticatedDevice, ifNoneMatch: string | undefined): Promise<CheckinResult> {
    const tenant = this.#o.store.forTenant(auth.tenantId);
    const now = this.#now();
    const device = auth.device;
    if (device.lastSyncAt === undefined || now.getTime() - device.lastSyncAt.getTime() >= SYNC_GRANULARITY_MS) await tenant.devices.touchDevice(device.id, now);
    // Unchanged, unless a renewal or a challenge expiry fell due since the last full answer.
    const due = device.recheckAt !== undefined && now >= device.recheckAt;
    if (!due && ifNoneMatch !== undefined && device.desiredStateHash !== undefined && ifNoneMatch === etagOf(device)) return { status: 304, etag: etagOf(device) };
    return this.#full(tenant, auth.tenantId, device.id, now);
  }

  async #full(tenant: TenantStore, tenantId: string, deviceId: string, now: Date): Promise<CheckinResult> {
    // A check-in may see the tenant as it was up to a second ago: the watcher tells the device again once
    // re-evaluation has the newer state, and a large tenant's rebuild must not hold every check-in.
    const [evaluator, ca] = await Promise.all([this.#o.evaluators.forTenant(tenant, { allowStale: true, maxHeadAgeMs: 1000 }), this.#o.authority(tenantId)]);
    let queued = 0;
    const result = await tenant.transaction(async (tx) => {
      let device = await tx.devices.getDevice(deviceId);
      if (device === undefined) throw new KeyfleetError('KF_NOT_FOUND', 'this device is no longer enrolled');
      const evaluation = evaluator.evaluateDevice(device);
      const r = await reconcileDevice({ tx, tenantId, device, evaluation, ca, challengeSecret: this.#o.challengeSecret, now, resource: (c, id) => evaluator.resource(c, id) });
      queued = r.queued;
      const recheckMoved = (r.recheckAt?.getTime() ?? null) !== (device.recheckAt?.getTime() ?? null);
      if (r.changed || recheckMoved || device.desiredStateHash !== evaluation.desiredStateHash) {
        device = (await tx.devices.updateDevice(deviceId, { desiredStateHash: evaluation.desiredStateHash, recheckAt: r.recheckAt ?? null }, now)) ?? device;
      }
      const etag = etagOf(device);
      return { status: 200 as const, etag, state: { ...r.state, version: etag } };
    });
    if (queued > 0) this.#o.onQueued?.(tenantId);
    return result;
  }

  /**
   * Applies each item on its own: one refused (a replay, an impossible transition) does not stop the
   * others. The device's version moves once for the whole report. When the device said which check-in it
   * answers (`basedOn`) and that is still its state, with every item applied, the answer carries its new
   * ETag: its copy of the state plus its own reports is the state, and it need not check in to read it.
   */
  async report(auth: AuthenticatedDevice, request: ReportRequest): Promise<ReportResponse> {
    if (!Array.isArray(request.items) || request.items.length === 0 || request.items.length > MAX_REPORT_ITEMS) {
      throw new KeyfleetError('KF_USAGE', `a report carries 1–${MAX_REPORT_ITEMS} items`);
    }
    const basedOn = request.basedOn;
    if (basedOn !== undefined && (typeof basedOn !== 'string' || basedOn.length > 200)) throw new KeyfleetError('KF_USAGE', 'basedOn must be the ETag of a check-in');
    const tenant = this.#o.store.forTenant(auth.tenantId);
    const now = this.#now();
    const ca = await this.#o.authority(auth.tenantId);
    const results: ReportResponse['results'][number][] = [];
    // One transaction for the report, each item under its own savepoint: one commit however many items.
    const moved = await tenant.transaction(async (tx) => {
      let applied = 0;
      let recheckAt: Date | undefined;
      for (const item of request.items) {
        try {
          const effect = await tx.attempt((sp) => applyReport({ tx: sp, device: auth.device, ca, now }, item));
          if (effect.recheckAt !== undefined && (recheckAt === undefined || effect.recheckAt < recheckAt)) recheckAt = effect.recheckAt;
          results.push({ ok: true });
          applied++;
        } catch (e) {
          if (!(e instanceof KeyfleetError)) throw e;
          if (e.code === 'KF_NOT_FOUND') this.#o.log?.('device reported on something not its own', { tenantId: auth.tenantId, deviceId: auth.device.id, item: String(item.id).slice(0, 64) });
          results.push({ ok: false, code: e.code, detail: e.message });
        }
      }
      if (applied === 0) return undefined;
      const before = await tx.devices.getDevice(auth.device.id);
      if (before === undefined) return undefined;
      // A renewal due before the device's next planned recheck brings that recheck forward.
      const earlier = recheckAt !== undefined && (before.recheckAt === undefined || recheckAt < before.recheckAt) ? recheckAt : undefined;
      const device = await tx.devices.updateDevice(auth.device.id, earlier === undefined ? {} : { recheckAt: earlier }, now);
      return device === undefined ? undefined : { device, current: basedOn !== undefined && applied === request.items.length && etagOf(before) === basedOn };
    });
    if (moved === undefined) return { results };
    if (moved.current) return { results, etag: etagOf(moved.device) };
    // Something else moved the device's state meanwhile: it checks in again, and so do its other streams.
    this.#o.onChanged?.(auth.tenantId, moved.device);
    return { results };
  }

  /** A re-wrapped PFX for this device; another device's delivery is not found (and logged). */
  async delivery(auth: AuthenticatedDevice, id: string): Promise<DeliveryResponse> {
    const request = await this.#o.store.forTenant(auth.tenantId).delivery.getDeliveryRequest(id);
    if (request === undefined || request.deviceId !== auth.device.id) {
      if (request !== undefined) this.#o.log?.('device asked for another device’s delivery', { tenantId: auth.tenantId, deviceId: auth.device.id, deliveryId: id.slice(0, 64) });
      throw new KeyfleetError('KF_NOT_FOUND', `no delivery "${id.slice(0, 64)}" for this device`);
    }
    if (request.status !== 'ready' || request.payload === undefined) throw new KeyfleetError('KF_CONFLICT', `delivery "${id}" is ${request.status}, not ready`);
    return { id, pfxId: request.pfxId, payload: Buffer.from(request.payload).toString('base64') };
  }

  async notifications(auth: AuthenticatedDevice): Promise<NotificationItem[]> {
    const page = await this.#o.store.forTenant(auth.tenantId).delivery.listNotifications(auth.device.id, { limit: 100 });
    return page.items.map(notificationItem);
  }

  async markRead(auth: AuthenticatedDevice, id: string): Promise<void> {
    const tenant = this.#o.store.forTenant(auth.tenantId);
    const n = await tenant.delivery.getNotification(id);
    if (n === undefined || n.deviceId !== auth.device.id) throw new KeyfleetError('KF_NOT_FOUND', `no notification "${id.slice(0, 64)}" for this device`);
    await tenant.delivery.markNotificationRead(id, this.#now());
  }
}

export function notificationItem(n: NotificationRecord): NotificationItem {
  return { id: n.id, title: n.title, body: n.body, createdDateTime: n.createdAt.toISOString(), read: n.readAt !== undefined };
}
