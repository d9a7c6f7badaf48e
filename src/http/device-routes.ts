/**
 * The device API under /device/v1 (docs/delivery.md): enrolment with a
 * one-time token, then requests signed by the device identity key —
 * check-in (ETag / 304), reports, delivery payloads, notifications and the
 * push channel (server-sent events). Also /portal/open/{id}, where a
 * notification mail's link leads: it sends the browser on to the portal
 * page of the device the notification was for.
 *
 * Signatures cover the body as sent, so this scope reads JSON bodies itself
 * and keeps the bytes.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DeviceAuthenticator, type AuthenticatedDevice } from '../delivery/device-auth.ts';
import { enrollDevice, type EnrollmentOptions } from '../delivery/enrollment.ts';
import { streamDeviceEvents, type DeviceEventHub } from '../delivery/events.ts';
import type { DeliveryService } from '../delivery/service.ts';
import { KeyfleetError } from '../errors.ts';
import { DEVICE_API, type EnrollRequest, type ReportRequest } from '../protocol/device-api.ts';
import { DEVICE_AUTH_HEADER } from '../protocol/request-signing.ts';
import type { Store } from '../store/store.ts';

export interface DeviceApiOptions {
  readonly store: Store;
  readonly service: DeliveryService;
  readonly enrollment: EnrollmentOptions;
  readonly events: DeviceEventHub;
  readonly clock?: () => number;
}

const ENROLL_BODY_LIMIT = 16 * 1024;
const REPORT_BODY_LIMIT = 64 * 1024;

const rawBodies = new WeakMap<FastifyRequest, Buffer>();

export function registerDeviceRoutes(app: FastifyInstance, options: DeviceApiOptions): void {
  const authenticator = new DeviceAuthenticator(options.store.deliveryLookup, options.clock);
  const authenticate = (request: FastifyRequest): Promise<AuthenticatedDevice> => {
    const header = request.headers[DEVICE_AUTH_HEADER];
    return authenticator.authenticate({ header: typeof header === 'string' ? header : undefined, method: request.method, url: request.url, body: rawBodies.get(request) });
  };

  app.register(async (scope) => {
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
      const bytes = body as Buffer;
      rawBodies.set(request, bytes);
      try {
        done(null, bytes.length === 0 ? undefined : JSON.parse(bytes.toString('utf8')));
      } catch {
        done(new KeyfleetError('KF_USAGE', 'the request body is not valid JSON'), undefined);
      }
    });
    const tags = ['device'];
    const hide = { tags, hide: true };

    scope.post<{ Body: EnrollRequest }>(`${DEVICE_API}/enroll`, { bodyLimit: ENROLL_BODY_LIMIT, schema: hide }, async (request, reply) => {
      if (typeof request.body !== 'object' || request.body === null) throw new KeyfleetError('KF_USAGE', 'enrolment needs a JSON body');
      return reply.code(201).send(await enrollDevice(options.enrollment, request.body));
    });

    scope.get(`${DEVICE_API}/checkin`, { schema: hide, logLevel: 'warn' }, async (request, reply) => {
      const auth = await authenticate(request);
      const ifNoneMatch = request.headers['if-none-match'];
      const result = await options.service.checkin(auth, typeof ifNoneMatch === 'string' ? ifNoneMatch : undefined);
      reply.header('etag', result.etag).header('cache-control', 'no-store');
      if (result.status === 304) return reply.code(304).send();
      return result.state;
    });

    scope.post<{ Body: ReportRequest }>(`${DEVICE_API}/reports`, { bodyLimit: REPORT_BODY_LIMIT, schema: hide }, async (request) => {
      const auth = await authenticate(request);
      if (typeof request.body !== 'object' || request.body === null) throw new KeyfleetError('KF_USAGE', 'a report needs a JSON body');
      return options.service.report(auth, request.body);
    });

    scope.get<{ Params: { id: string } }>(`${DEVICE_API}/deliveries/:id`, { schema: hide }, async (request, reply) => {
      const auth = await authenticate(request);
      reply.header('cache-control', 'no-store');
      return options.service.delivery(auth, request.params.id);
    });

    scope.get(`${DEVICE_API}/notifications`, { schema: hide }, async (request) => ({ value: await options.service.notifications(await authenticate(request)) }));

    scope.post<{ Params: { id: string } }>(`${DEVICE_API}/notifications/:id/read`, { schema: hide }, async (request, reply) => {
      await options.service.markRead(await authenticate(request), request.params.id);
      return reply.code(204).send();
    });

    scope.get(`${DEVICE_API}/events`, { schema: hide }, async (request, reply) => {
      const auth = await authenticate(request);
      reply.hijack();
      await streamDeviceEvents(reply.raw, options.events.subscribe(auth.tenantId, auth.device.id));
    });
  });

  app.get<{ Params: { id: string } }>('/portal/open/:id', { schema: { hide: true } }, async (request, reply) => {
    const id = request.params.id;
    const found = /^[0-9a-f-]{36}$/.test(id) ? await options.store.deliveryLookup.findNotification(id) : undefined;
    const device = found === undefined ? undefined : await options.store.forTenant(found.tenantId).devices.getDevice(found.notification.deviceId);
    if (device?.portalUrl === undefined) throw new KeyfleetError('KF_NOT_FOUND', 'this notification is no longer available; open the Company Portal on your device');
    return reply.redirect(`${device.portalUrl.replace(/\/+$/, '')}/open/${encodeURIComponent(id)}`, 302);
  });
}
