/**
 * The PFX connector's HTTP side: /connector/v1 for connector processes
 * (bearer kfc_… credential, version header; the tenant comes from the
 * credential only) and /api/v1/connectors for administrators (register,
 * list, revoke). Authentication runs in onRequest hooks, before any body is
 * read; bodies are bounded per route.
 */
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import type {} from '@fastify/swagger';
import { type AuthenticatedConnector, ConnectorService, type ConnectorServiceOptions, MAX_CLAIM, MAX_CLAIM_WAIT_SECONDS } from '../delivery/connectors.ts';
import { CONNECTOR_API, CONNECTOR_VERSION_HEADER, MAX_RESULT_PAYLOAD, type ResultRequest } from '../protocol/connector-api.ts';
import { bearerToken, principalOf, requirePermission } from './admin/auth.ts';
import { bearer, ADMIN_BODY_LIMIT } from './admin/context.ts';
import { idParams, listOf, problems } from './admin/schemas.ts';

export interface ConnectorRouteOptions extends ConnectorServiceOptions {
  /** Ends waiting claims when the server stops (they also end on app.close()). */
  readonly signal?: AbortSignal;
}

const connectors = new WeakMap<FastifyRequest, AuthenticatedConnector>();

function connectorOf(request: FastifyRequest): AuthenticatedConnector {
  const c = connectors.get(request);
  if (c === undefined) throw new Error('connector route registered without its authentication hook');
  return c;
}

const claimBody = {
  type: 'object',
  properties: { max: { type: 'integer', minimum: 1, maximum: MAX_CLAIM }, waitSeconds: { type: 'integer', minimum: 0, maximum: MAX_CLAIM_WAIT_SECONDS } },
  required: ['max'],
  additionalProperties: false,
} as const;

const claimToken = { type: 'string', minLength: 1, maxLength: 128 } as const;
const resultBody = {
  oneOf: [
    {
      type: 'object',
      properties: { claimToken, payload: { type: 'string', minLength: 4, maxLength: Math.ceil(MAX_RESULT_PAYLOAD / 3) * 4, pattern: '^[A-Za-z0-9+/]*={0,2}$' } },
      required: ['claimToken', 'payload'],
      additionalProperties: false,
    },
    {
      type: 'object',
      properties: {
        claimToken,
        error: {
          type: 'object',
          properties: { code: { type: 'string', pattern: '^[a-z0-9-]{1,64}$' }, detail: { type: 'string', maxLength: 1000 } },
          required: ['code', 'detail'],
          additionalProperties: false,
        },
      },
      required: ['claimToken', 'error'],
      additionalProperties: false,
    },
  ],
} as const;

const requestParams = { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 128 } }, required: ['id'], additionalProperties: false } as const;
const registerBody = { type: 'object', properties: { name: { type: 'string', minLength: 1, maxLength: 256 } }, required: ['name'], additionalProperties: false } as const;
const connectorObject = { type: 'object', additionalProperties: true } as const;

/**
 * Registers both route sets and returns the service (its `queue` is the DeliveryQueueSignal to share with
 * the check-in code, unless one was passed in). Call before app.ready().
 */
export function registerConnectorRoutes(app: FastifyInstance, options: ConnectorRouteOptions): ConnectorService {
  const service = new ConnectorService(options);
  const clock = options.clock ?? (() => new Date());

  // Long-polls end when the server closes, so app.close() does not wait up to 30 s for them.
  const stopping = new AbortController();
  app.addHook('preClose', async () => stopping.abort());
  const serverStop = options.signal ? AbortSignal.any([options.signal, stopping.signal]) : stopping.signal;

  const authenticate: onRequestHookHandler = async (request) => {
    const version = request.headers[CONNECTOR_VERSION_HEADER];
    connectors.set(request, await service.authenticate(bearerToken(request), typeof version === 'string' ? version : undefined));
  };

  app.post<{ Body: { max: number; waitSeconds?: number } }>(
    `${CONNECTOR_API}/claim`,
    { onRequest: authenticate, bodyLimit: 1024, schema: { hide: true, body: claimBody } },
    async (request, reply) => {
      // The client leaving ends the wait: a claim made after it left would hold requests for a whole lease.
      const gone = new AbortController();
      const onClose = () => {
        if (!reply.raw.writableFinished) gone.abort();
      };
      reply.raw.once('close', onClose);
      try {
        const requests = await service.claim(connectorOf(request), request.body.max, request.body.waitSeconds ?? 0, AbortSignal.any([gone.signal, serverStop]));
        return { requests };
      } finally {
        reply.raw.off('close', onClose);
      }
    },
  );

  app.post<{ Params: { id: string }; Body: ResultRequest }>(
    `${CONNECTOR_API}/requests/:id/result`,
    { onRequest: authenticate, bodyLimit: Math.ceil(MAX_RESULT_PAYLOAD / 3) * 4 + 4096, schema: { hide: true, params: requestParams, body: resultBody } },
    async (request, reply) => {
      await service.complete(connectorOf(request), request.params.id, request.body);
      return reply.code(204).send();
    },
  );

  const guard = (permission: 'devices:read' | 'devices:manage') => requirePermission(options.store, permission, clock);
  const tags = ['connectors'];
  const tenantOf = (request: FastifyRequest) => options.store.forTenant(principalOf(request).tenantId);

  app.post<{ Body: { name: string } }>(
    '/api/v1/connectors',
    {
      onRequest: guard('devices:manage'),
      bodyLimit: ADMIN_BODY_LIMIT,
      schema: { tags, summary: 'Register a PFX connector; its secret (kfc_…) is returned once', security: bearer, body: registerBody, response: { 201: connectorObject, ...problems } },
    },
    async (request, reply) => {
      const created = await service.register(tenantOf(request), principalOf(request), request.body.name);
      return reply.code(201).send({ ...service.view(created.connector), secret: created.secret });
    },
  );
  app.get(
    '/api/v1/connectors',
    { onRequest: guard('devices:read'), schema: { tags, summary: 'List PFX connectors with their last reported version and state', security: bearer, response: { 200: listOf(connectorObject), ...problems } } },
    async (request) => ({ value: (await service.list(tenantOf(request))).map((c) => service.view(c)) }),
  );
  app.delete<{ Params: { id: string } }>(
    '/api/v1/connectors/:id',
    { onRequest: guard('devices:manage'), schema: { tags, summary: 'Revoke a PFX connector’s credential', security: bearer, params: idParams, response: { 409: problems[400], ...problems } } },
    async (request, reply) => {
      await service.revoke(tenantOf(request), principalOf(request), request.params.id);
      return reply.code(204).send();
    },
  );
  return service;
}
