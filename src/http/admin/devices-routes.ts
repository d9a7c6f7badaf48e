/**
 * /api/v1/managedDevices (Graph's managedDevices): the list, retire and
 * wipe (Graph's actions of those names), delete, and status; and the
 * status views of policies (deviceStatuses, userStatuses,
 * deviceStatusSummary) and certificate profiles (certificateStates).
 * Devices are enrolled by the device API (the delivery issue), not here.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DeviceAdmin, deviceStatusView } from '../../delivery/devices.ts';
import { DEFAULT_ENROLLMENT_TOKEN_HOURS, createEnrollmentToken } from '../../delivery/enrollment.ts';
import { certificateStateView, deviceView } from '../../delivery/views.ts';
import { MANAGEMENT_STATES, type ManagementState } from '../../store/devices.ts';
import { principalOf } from './auth.ts';
import { bearer, guard, pageOptions, type AdminContext } from './context.ts';
import { idParams, listOf, pageQuery, problems } from './schemas.ts';

interface IdParams {
  id: string;
}
interface PageQuery {
  cursor?: string;
  limit?: string;
}

const anyObject = { type: 'object', additionalProperties: true } as const;
const deviceListQuery = {
  ...pageQuery,
  properties: { ...pageQuery.properties, userId: { type: 'string', maxLength: 128 }, managementState: { type: 'string', enum: [...MANAGEMENT_STATES] } },
} as const;
const conflict = { 409: problems[400] };

function devicesOf(ctx: AdminContext, request: FastifyRequest): DeviceAdmin {
  const principal = principalOf(request);
  return new DeviceAdmin(ctx.store.forTenant(principal.tenantId), principal, ctx.evaluateDevice, ctx.clock);
}

function page<T>(p: { items: T[]; nextCursor: string | undefined }, view: (t: T) => object): { value: object[]; nextCursor?: string } {
  return { value: p.items.map(view), ...(p.nextCursor === undefined ? {} : { nextCursor: p.nextCursor }) };
}

export function registerDeviceRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const read = { onRequest: guard(ctx, 'devices:read') };
  const act = { onRequest: guard(ctx, 'devices:manage') };
  const tags = ['managedDevices'];

  app.get<{ Querystring: PageQuery & { userId?: string; managementState?: ManagementState } }>(
    '/api/v1/managedDevices',
    { ...read, schema: { tags, summary: 'List managed devices (a user’s with ?userId=)', security: bearer, querystring: deviceListQuery, response: { 200: listOf(anyObject), ...problems } } },
    async (request) => {
      const { userId, managementState } = request.query;
      const filter = { ...(userId === undefined ? {} : { userId }), ...(managementState === undefined ? {} : { managementState }) };
      return page(await devicesOf(ctx, request).list({ ...pageOptions(request.query), ...filter }), deviceView);
    },
  );
  app.get<{ Params: IdParams }>(
    '/api/v1/managedDevices/:id',
    { ...read, schema: { tags, summary: 'Get a managed device', security: bearer, params: idParams, response: { 200: anyObject, ...problems } } },
    async (request) => deviceView(await devicesOf(ctx, request).get(request.params.id)),
  );
  for (const action of ['retire', 'wipe'] as const) {
    app.post<{ Params: IdParams }>(
      `/api/v1/managedDevices/:id/${action}`,
      {
        ...act,
        schema: {
          tags,
          summary: action === 'retire' ? 'Retire: remove company certificates and settings at the next check-in; revoke its SCEP certificates now' : 'Wipe: erase the device at its next check-in; revoke its SCEP certificates now',
          security: bearer,
          params: idParams,
          response: { 200: anyObject, ...problems, ...conflict },
        },
      },
      async (request) => deviceView(await devicesOf(ctx, request).act(request.params.id, action)),
    );
  }
  app.delete<{ Params: IdParams }>(
    '/api/v1/managedDevices/:id',
    { ...act, schema: { tags, summary: 'Delete a retired or wiped device’s record', security: bearer, params: idParams, response: { ...problems, ...conflict } } },
    async (request, reply) => {
      await devicesOf(ctx, request).delete(request.params.id);
      return reply.code(204).send();
    },
  );
  app.get<{ Params: IdParams }>(
    '/api/v1/managedDevices/:id/status',
    { ...read, schema: { tags, summary: 'Every assigned policy’s status and every certificate’s state on the device', security: bearer, params: idParams, response: { 200: anyObject, ...problems } } },
    async (request) => deviceStatusView(await devicesOf(ctx, request).status(request.params.id)),
  );
  app.get<{ Params: IdParams; Querystring: PageQuery }>(
    '/api/v1/managedDevices/:id/managedDeviceCertificateStates',
    { ...read, schema: { tags, summary: 'The device’s certificates and their issuance states', security: bearer, params: idParams, querystring: pageQuery, response: { 200: listOf(anyObject), ...problems } } },
    async (request) => {
      return page(await devicesOf(ctx, request).certificateStates({ deviceId: request.params.id }, pageOptions(request.query)), certificateStateView);
    },
  );

  app.post<{ Params: IdParams; Body: { validityHours?: number } }>(
    '/api/v1/users/:id/enrollmentTokens',
    {
      ...act,
      bodyLimit: 1024,
      schema: {
        tags: ['users'],
        summary: 'A one-time token with which one device of the user enrols (the secret is shown once)',
        security: bearer,
        params: idParams,
        body: { type: 'object', properties: { validityHours: { type: 'integer', minimum: 1, maximum: 720 } }, additionalProperties: false },
        response: { 201: anyObject, ...problems },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const created = await createEnrollmentToken(ctx.store.forTenant(principal.tenantId), principal, request.params.id, request.body?.validityHours ?? DEFAULT_ENROLLMENT_TOKEN_HOURS, new Date(Math.floor(ctx.clock().getTime())));
      return reply.code(201).send({ id: created.token.id, userId: created.token.userId, token: created.secret, expiresDateTime: created.token.expiresAt.toISOString() });
    },
  );

  app.get<{ Params: IdParams; Querystring: PageQuery }>(
    '/api/v1/policies/:id/deviceStatuses',
    { ...read, schema: { tags: ['policies'], summary: 'Each device’s reported status for the policy', security: bearer, params: idParams, querystring: pageQuery, response: { 200: listOf(anyObject), ...problems } } },
    async (request) => {
      const p = await devicesOf(ctx, request).policyDeviceStatuses(request.params.id, pageOptions(request.query));
      return page(p, (s) => ({ deviceId: s.deviceId, status: s.status, detail: s.detail ?? null, lastReportedDateTime: s.reportedAt.toISOString() }));
    },
  );
  app.get<{ Params: IdParams }>(
    '/api/v1/policies/:id/userStatuses',
    { ...read, schema: { tags: ['policies'], summary: 'One line per user: the status needing the most attention among the user’s devices', security: bearer, params: idParams, response: { 200: listOf(anyObject), ...problems } } },
    async (request) => ({
      value: (await devicesOf(ctx, request).policyUserStatuses(request.params.id)).map((u) => ({ userId: u.userId, devicesCount: u.devicesCount, status: u.status, lastReportedDateTime: u.lastReportedAt.toISOString() })),
    }),
  );
  app.get<{ Params: IdParams }>(
    '/api/v1/policies/:id/deviceStatusSummary',
    { ...read, schema: { tags: ['policies'], summary: 'How many devices reported each status', security: bearer, params: idParams, response: { 200: anyObject, ...problems } } },
    async (request) => devicesOf(ctx, request).policySummary(request.params.id),
  );
  app.get<{ Params: IdParams; Querystring: PageQuery }>(
    '/api/v1/profiles/:id/certificateStates',
    { ...read, schema: { tags: ['profiles'], summary: 'Certificates delivered through the profile, on every device', security: bearer, params: idParams, querystring: pageQuery, response: { 200: listOf(anyObject), ...problems } } },
    async (request) => page(await devicesOf(ctx, request).certificateStates({ profileId: request.params.id }, pageOptions(request.query)), certificateStateView),
  );
}
