/**
 * What follows an admin change (docs/delivery.md "Parts"): every admin
 * change appends to the audit log, so the watcher polls each tenant's audit
 * head; when it moved, it re-evaluates every device (reevaluate.ts), and
 * tells each device whose desired state changed: a "changed" push on its
 * event stream, and — when it now has certificates to collect — a Company
 * Portal notification, sent by mail too when a policy asks for Email.
 *
 * One watcher per deployment (serve's primary process): pushes reach the
 * streams of this process; devices connected to other workers see the
 * change at their next timed check-in.
 */
import type { Store, TenantStore } from '../store/store.ts';
import type { EvaluatorCache } from './evaluator-cache.ts';
import type { DeviceEventHub } from './events.ts';
import type { NotificationMailer } from './mailer.ts';
import { Notifier } from './notify.ts';
import { reevaluateAllDevices } from './reevaluate.ts';
import { AWAITING_ENROLMENT, scepStorePrefix } from './scep-enrolment.ts';
import { etagOf } from './service.ts';

export interface WatcherOptions {
  readonly store: Store;
  readonly evaluators: EvaluatorCache;
  readonly events: DeviceEventHub;
  /** Email notifications; without it, policies asking for Email notify in the Company Portal only. */
  readonly mailer?: NotificationMailer;
  /** Where mail links point: `${publicUrl}/portal/open/{id}`. */
  readonly publicUrl: string;
  readonly intervalMs?: number;
  readonly clock?: () => Date;
  readonly log?: (message: string, fields: Record<string, string>) => void;
}

export class DeliveryWatcher {
  readonly #o: WatcherOptions;
  readonly #notifier: Notifier;
  readonly #seen = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(options: WatcherOptions) {
    this.#o = options;
    this.#notifier = new Notifier(options);
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.tick().catch((e: unknown) => this.#o.log?.('re-evaluation failed', { error: e instanceof Error ? e.message : String(e) })), this.#o.intervalMs ?? 1000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** One pass over every tenant; a pass already running is waited for, not doubled. */
  tick(): Promise<void> {
    this.#running ??= this.#pass().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #pass(): Promise<void> {
    for (const t of await this.#o.store.listTenants()) {
      const tenant = this.#o.store.forTenant(t.id);
      const seq = (await tenant.audit.head())?.seq ?? 0;
      if (this.#seen.get(t.id) === seq) continue;
      const evaluator = await this.#o.evaluators.forTenant(tenant);
      const result = await reevaluateAllDevices(tenant, evaluator, { at: this.#now() });
      this.#seen.set(t.id, evaluator.seq);
      for (const id of result.changed) await this.#tell(tenant, id);
    }
  }

  async #tell(tenant: TenantStore, deviceId: string): Promise<void> {
    const device = await tenant.devices.getDevice(deviceId);
    if (device === undefined) return;
    this.#o.events.publish(tenant.tenantId, deviceId, { type: 'changed', version: etagOf(device) });
    const evaluator = await this.#o.evaluators.forTenant(tenant, { allowStale: true });
    const evaluation = evaluator.evaluateDevice(device);
    // A challenge for a SCEP profile the device no longer has must not enrol, even if it never checks in again.
    const wanted = new Set(evaluation.desired.certificates.filter((c) => c.kind === 'scep').map((c) => c.profileId));
    for (const row of (await tenant.devices.listCertificateStates({ deviceId }, { limit: 1000 })).items) {
      if (row.source === 'scep' && AWAITING_ENROLMENT.has(row.state) && !wanted.has(row.profileId)) await tenant.scep.withdrawChallenges(deviceId, scepStorePrefix(row.profileId), this.#now());
    }
    await this.#notifier.notify(tenant, device, evaluation);
  }

  #now(): Date {
    return new Date(Math.floor((this.#o.clock ?? (() => new Date()))().getTime()));
  }
}
