/**
 * The delivery side of `keyfleet serve`: the device API, the event hub for
 * push, the watcher that re-evaluates devices after admin changes and
 * notifies them, and the notification mailer — wired from the data
 * directory and serve's options.
 */
import { hkdfSync } from 'node:crypto';
import type { CertificateAuthority } from '../ca/authority.ts';
import { resolveMasterKey } from '../ca/master-key.ts';
import { EvaluatorCache } from '../delivery/evaluator-cache.ts';
import { DeviceEventHub } from '../delivery/events.ts';
import { SmtpMailer, type NotificationMailer, type SmtpSecurity } from '../delivery/mailer.ts';
import { DeliveryQueueSignal } from '../delivery/connectors.ts';
import { DeliveryService, etagOf } from '../delivery/service.ts';
import { registerConnectorRoutes } from '../http/connector-routes.ts';
import type { FastifyInstance } from 'fastify';
import { DeliveryWatcher } from '../delivery/watcher.ts';
import { KeyfleetError } from '../errors.ts';
import type { DeviceApiOptions } from '../http/device-routes.ts';
import { Notifier } from '../delivery/notify.ts';
import { ReadyPush } from '../delivery/ready-push.ts';
import type { ManagedDeviceRecord } from '../store/devices.ts';
import type { Store, TenantStore } from '../store/store.ts';
import { DEFAULT_TENANT } from './context.ts';

export interface DeliveryWiring {
  readonly evaluators: EvaluatorCache;
  readonly events: DeviceEventHub;
  readonly device: DeviceApiOptions;
  /** The connector API's registration, for buildServer's `routes`. */
  readonly connectorRoutes: (app: FastifyInstance) => void;
  readonly watcher: DeliveryWatcher;
  close(): Promise<void>;
}

export interface DeliveryConfig {
  readonly dataDir: string;
  readonly store: Store;
  readonly ca: CertificateAuthority;
  /** Where devices and mail links reach this service. */
  readonly publicUrl: string;
  /** smtp://host:port or smtps://host:port, for Email notifications. */
  readonly smtpUrl: string | undefined;
  readonly smtpFrom: string | undefined;
  /** Connectors below this version are refused (the seed's "6.1911.11.0 or later"). */
  readonly minConnectorVersion: string | undefined;
  readonly log: (message: string, fields: Record<string, string>) => void;
}

/** The SCEP challenge key: derived from the master key, so it survives restarts and is the same in every worker. */
export function challengeSecretFor(dataDir: string): Uint8Array {
  const master = resolveMasterKey({ dataDir, create: false }).key;
  return new Uint8Array(hkdfSync('sha256', master, new Uint8Array(0), 'keyfleet scep challenges v1', 32));
}

export function mailerFrom(smtpUrl: string | undefined, from: string | undefined): NotificationMailer | undefined {
  if (smtpUrl === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(smtpUrl);
  } catch {
    throw new KeyfleetError('KF_USAGE', '--smtp-url must look like smtp://host:port or smtps://host:port');
  }
  const security: SmtpSecurity | undefined = url.protocol === 'smtps:' ? 'tls' : url.protocol === 'smtp:' ? 'opportunistic' : undefined;
  if (security === undefined || url.hostname === '') throw new KeyfleetError('KF_USAGE', '--smtp-url must look like smtp://host:port or smtps://host:port');
  const port = url.port === '' ? (security === 'tls' ? 465 : 25) : Number(url.port);
  const user = decodeURIComponent(url.username);
  return new SmtpMailer({
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port,
    security,
    from: from ?? `keyfleet@${url.hostname}`,
    ...(user === '' ? {} : { auth: { user, pass: decodeURIComponent(url.password) } }),
  });
}

export function wireDelivery(config: DeliveryConfig): DeliveryWiring {
  const evaluators = new EvaluatorCache();
  const events = new DeviceEventHub();
  // Check-ins that queue re-wrap requests wake the connectors waiting in this process.
  const queueSignal = new DeliveryQueueSignal();
  const shutdown = new AbortController();
  const authority = async (tenantId: string) => (tenantId === DEFAULT_TENANT ? config.ca : undefined);
  const service = new DeliveryService({
    store: config.store,
    evaluators,
    authority,
    challengeSecret: challengeSecretFor(config.dataDir),
    onQueued: (tenantId) => queueSignal.notify(tenantId),
    onChanged: (tenantId, device) => events.publish(tenantId, device.id, { type: 'changed', version: etagOf(device) }),
    log: config.log,
  });
  const mailer = mailerFrom(config.smtpUrl, config.smtpFrom);
  const notifying = { events, ...(mailer ? { mailer } : {}), publicUrl: config.publicUrl, log: config.log };
  const watcher = new DeliveryWatcher({ store: config.store, evaluators, ...notifying });
  const notifier = new Notifier(notifying);
  const readyPush = new ReadyPush({ store: config.store, events, log: config.log });
  // A new device learns at once what waits for it: its first desired state, and the notification.
  const enrolled = async (tenant: TenantStore, device: ManagedDeviceRecord) => {
    const evaluation = (await evaluators.forTenant(tenant)).evaluateDevice(device);
    const updated = await tenant.devices.updateDevice(device.id, { desiredStateHash: evaluation.desiredStateHash }, new Date());
    // Not awaited: a slow mail server must not hold up the device's enrolment.
    void notifier.notify(tenant, updated ?? device, evaluation).catch((e: unknown) => config.log('enrolment notification failed', { deviceId: device.id, error: e instanceof Error ? e.message : String(e) }));
  };
  return {
    evaluators,
    events,
    watcher,
    device: { store: config.store, service, events, enrollment: { store: config.store, authority, enrolled } },
    connectorRoutes: (app) => {
      registerConnectorRoutes(app, {
        store: config.store,
        queueSignal,
        signal: shutdown.signal,
        ...(config.minConnectorVersion === undefined ? {} : { minConnectorVersion: config.minConnectorVersion }),
        // A re-wrapped PFX is ready: the device's ETag moves, and it is told to check in once the rest is too.
        onCompleted: (tenantId, request) => readyPush.completed(tenantId, request),
      });
    },
    async close() {
      shutdown.abort();
      await watcher.stop();
      readyPush.close();
      events.close();
      mailer?.close();
    },
  };
}
