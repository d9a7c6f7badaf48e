/**
 * Telling a device that its re-wrapped PFXs are ready (docs/delivery.md
 * "Imported certificates: the connector"). Each completed request moves
 * the device's ETag at once; the "changed" push waits until none of the
 * device's other requests is still with a connector, so one check-in
 * fetches the whole history rather than one check-in per PFX. A request
 * that stays pending (no connector running, a lease that has to run out)
 * holds the push back at most `maxDelayMs`.
 */
import type { DeliveryRequestRecord } from '../store/delivery.ts';
import type { Store } from '../store/store.ts';
import type { DeviceEventHub } from './events.ts';
import { etagOf } from './service.ts';

export const DEFAULT_READY_PUSH_DELAY_MS = 5000;

export interface ReadyPushOptions {
  readonly store: Store;
  readonly events: DeviceEventHub;
  readonly maxDelayMs?: number;
  /** A push that failed to be sent (the store went away): logged, never thrown at the connector. */
  readonly log?: (message: string, fields: Record<string, string>) => void;
}

export class ReadyPush {
  readonly #o: ReadyPushOptions;
  readonly #maxDelayMs: number;
  /** Devices whose push waits for their other requests, with the timer that sends it anyway. */
  readonly #held = new Map<string, NodeJS.Timeout>();

  constructor(options: ReadyPushOptions) {
    this.#o = options;
    this.#maxDelayMs = options.maxDelayMs ?? DEFAULT_READY_PUSH_DELAY_MS;
  }

  /** A connector completed `request` (delivered or failed): move the device's ETag, and push when nothing else is on its way. */
  async completed(tenantId: string, request: DeliveryRequestRecord): Promise<void> {
    const tenant = this.#o.store.forTenant(tenantId);
    const device = await tenant.devices.updateDevice(request.deviceId, {}, new Date());
    if (device === undefined) return;
    const key = `${tenantId}\u0000${device.id}`;
    if (!(await tenant.delivery.hasOpenDeliveryRequests(device.id, request.id))) {
      this.#release(key);
      this.#o.events.publish(tenantId, device.id, { type: 'changed', version: etagOf(device) });
      return;
    }
    if (this.#held.has(key)) return;
    const timer = setTimeout(() => {
      this.#held.delete(key);
      void this.#announce(tenantId, device.id);
    }, this.#maxDelayMs);
    timer.unref();
    this.#held.set(key, timer);
  }

  /** Pushes still held back. */
  get held(): number {
    return this.#held.size;
  }

  /** Drops every held push (server shutdown): the devices' next check-in finds what is ready. */
  close(): void {
    for (const timer of this.#held.values()) clearTimeout(timer);
    this.#held.clear();
  }

  #release(key: string): void {
    const timer = this.#held.get(key);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#held.delete(key);
  }

  async #announce(tenantId: string, deviceId: string): Promise<void> {
    try {
      const device = await this.#o.store.forTenant(tenantId).devices.getDevice(deviceId);
      if (device !== undefined) this.#o.events.publish(tenantId, deviceId, { type: 'changed', version: etagOf(device) });
    } catch (e) {
      this.#o.log?.('a delivery-ready push failed', { tenantId, deviceId, error: e instanceof Error ? e.message : String(e) });
    }
  }
}
