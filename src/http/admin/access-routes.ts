/** /api/v1/tokens (administrators only) and /api/v1/auditEvents. */
import type { FastifyInstance } from 'fastify';
import { createToken, revokeToken, type Principal } from '../../directory/access.ts';
import { verifyAuditChain } from '../../directory/audit.ts';
import { tokenView } from '../../directory/views.ts';
import type { AdminRole } from '../../store/access.ts';
import type { AuditRecord } from '../../store/audit.ts';
import { principalOf } from './auth.ts';
import { ADMIN_BODY_LIMIT, bearer, guard, pageOptions, tenantOf, type AdminContext } from './context.ts';
import { auditQuery, auditSchema, createTokenBody, idParams, listOf, problems, tokenSchema } from './schemas.ts';

export function registerAccessRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const manage = { onRequest: guard(ctx, 'tokens:manage'), bodyLimit: ADMIN_BODY_LIMIT };
  const audit = { onRequest: guard(ctx, 'audit:read') };

  app.get(
    '/api/v1/tokens',
    { ...manage, schema: { tags: ['tokens'], summary: 'List API tokens (never their secrets)', security: bearer, response: { 200: listOf(tokenSchema), ...problems } } },
    async (request) => ({ value: (await tenantOf(ctx, request).access.listTokens()).map(tokenView) }),
  );

  app.post<{ Body: { name: string; role: AdminRole } }>(
    '/api/v1/tokens',
    {
      ...manage,
      schema: { tags: ['tokens'], summary: 'Create an API token; its secret is in this response only', security: bearer, body: createTokenBody, response: { 201: tokenSchema, ...problems } },
    },
    async (request, reply) => {
      const actor: Principal = principalOf(request);
      const created = await createToken(tenantOf(ctx, request), actor, request.body.name, request.body.role, ctx.clock());
      return reply.code(201).send({ ...tokenView(created.token), secret: created.secret });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/api/v1/tokens/:id',
    { ...manage, schema: { tags: ['tokens'], summary: 'Revoke an API token', security: bearer, params: idParams, response: { ...problems, 409: problems[400] } } },
    async (request, reply) => {
      await revokeToken(tenantOf(ctx, request), principalOf(request), request.params.id, ctx.clock());
      return reply.code(204).send();
    },
  );

  app.get<{ Querystring: { cursor?: string; limit?: string; resourceType?: string; resourceId?: string } }>(
    '/api/v1/auditEvents',
    { ...audit, schema: { tags: ['audit'], summary: 'The audit log, oldest first', security: bearer, querystring: auditQuery, response: { 200: listOf(auditSchema), ...problems } } },
    async (request) => {
      const { resourceType, resourceId } = request.query;
      const page = await tenantOf(ctx, request).audit.list({
        ...pageOptions(request.query),
        ...(resourceType === undefined ? {} : { resourceType }),
        ...(resourceId === undefined ? {} : { resourceId }),
      });
      return { value: page.items.map(auditView), ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }) };
    },
  );

  app.get(
    '/api/v1/auditEvents/verification',
    {
      ...audit,
      schema: {
        tags: ['audit'],
        summary: "Re-computes the tenant's hash chain and reports the first broken link",
        security: bearer,
        response: {
          200: {
            type: 'object',
            properties: { ok: { type: 'boolean' }, entries: { type: 'integer' }, headHash: { type: 'string' }, brokenAt: { type: 'integer' }, reason: { type: 'string' } },
          },
          ...problems,
        },
      },
    },
    async (request) => verifyAuditChain(tenantOf(ctx, request)),
  );
}

export function auditView(r: AuditRecord) {
  return {
    id: r.seq,
    actor: { id: r.actorId, name: r.actorName },
    action: r.action,
    resourceType: r.resourceType,
    resourceId: r.resourceId,
    before: r.before,
    after: r.after,
    activityDateTime: r.at.toISOString(),
    prevHash: r.prevHash,
    hash: r.hash,
  };
}
