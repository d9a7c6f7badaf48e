/**
 * Telling a device's user that certificates wait for them (the seed's
 * end-user notifications): a Company Portal notification, pushed to the
 * device's event stream, and — when an applicable policy says Email — the
 * same by mail with a link that opens the device's landing page. Sent when a
 * device's desired state changes to include certificates to collect: after
 * an admin change (watcher.ts), and once at enrolment.
 */
import { randomUUID } from 'node:crypto';
import type { SmimePolicy } from '../policy/index.ts';
import type { NotificationRecord } from '../store/delivery.ts';
import type { ManagedDeviceRecord } from '../store/devices.ts';
import type { TenantStore } from '../store/store.ts';
import type { DeviceEvaluation } from './evaluator.ts';
import type { DeviceEventHub } from './events.ts';
import type { NotificationMailer } from './mailer.ts';
import { notificationItem } from './service.ts';

export const NOTIFICATION_TITLE = 'Set up S/MIME in Outlook';
export const NOTIFICATION_BODY = 'Your organisation has sent certificates for signed and encrypted mail. Open the Company Portal to install them.';

export interface NotifierOptions {
  readonly events: DeviceEventHub;
  /** Without it, policies asking for Email notify in the Company Portal only (the record says why). */
  readonly mailer?: NotificationMailer;
  /** Where mail links point: `${publicUrl}/portal/open/{id}`. */
  readonly publicUrl: string;
  readonly clock?: () => Date;
  readonly log?: (message: string, fields: Record<string, string>) => void;
}

export class Notifier {
  readonly #o: NotifierOptions;

  constructor(options: NotifierOptions) {
    this.#o = options;
  }

  /** Notifies the device when its evaluation has certificates to collect; returns the notification, if any. */
  async notify(tenant: TenantStore, device: ManagedDeviceRecord, evaluation: DeviceEvaluation): Promise<NotificationRecord | undefined> {
    if (device.managementState !== 'managed') return undefined;
    if (!evaluation.desired.certificates.some((c) => c.kind !== 'trustedRoot')) return undefined;
    const channels = new Set<string>();
    for (const p of evaluation.policies) {
      if (p.status !== 'applicable') continue;
      const policy = await tenant.resources.getResource('policy', p.id);
      channels.add((policy?.body as unknown as SmimePolicy | undefined)?.endUserNotification ?? 'companyPortal');
    }
    const email = channels.has('email');
    const record: NotificationRecord = {
      id: randomUUID(),
      deviceId: device.id,
      channel: email ? 'email' : 'companyPortal',
      title: NOTIFICATION_TITLE,
      body: NOTIFICATION_BODY,
      createdAt: this.#now(),
      readAt: undefined,
      sentAt: undefined,
      sendError: undefined,
    };
    await tenant.delivery.putNotification(record);
    this.#o.events.publish(tenant.tenantId, device.id, { type: 'notification', notification: notificationItem(record) });
    if (email) await this.#mail(tenant, device, record);
    return record;
  }

  async #mail(tenant: TenantStore, device: ManagedDeviceRecord, record: NotificationRecord): Promise<void> {
    const user = await tenant.directory.getUser(device.userId);
    if (this.#o.mailer === undefined || user?.mail === undefined) {
      await tenant.delivery.recordNotificationSend(record.id, { error: this.#o.mailer === undefined ? 'no mail server configured' : 'the user has no mail address' });
      return;
    }
    try {
      await this.#o.mailer.sendPortalNotification({ to: user.mail, displayName: user.displayName, deviceName: device.deviceName, link: `${this.#o.publicUrl.replace(/\/+$/, '')}/portal/open/${record.id}` });
      await tenant.delivery.recordNotificationSend(record.id, { sentAt: this.#now() });
    } catch (e) {
      // The in-app notification stands; the failure is on the record for the admin to see.
      const code = e instanceof Error && 'code' in e ? String((e as { code: unknown }).code) : 'error';
      await tenant.delivery.recordNotificationSend(record.id, { error: code });
      this.#o.log?.('notification mail not sent', { tenantId: tenant.tenantId, deviceId: device.id, code });
    }
  }

  #now(): Date {
    return new Date(Math.floor((this.#o.clock ?? (() => new Date()))().getTime()));
  }
}
