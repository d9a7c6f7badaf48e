/**
 * SCIM 2.0 (RFC 7644) at /scim/v2: Users and Groups for identity providers
 * (Entra ID, Okta) to provision the directory. Bearer tokens as for the admin
 * API; responses are application/scim+json, errors SCIM Error messages
 * (§3.12), lists ListResponse with 1-based startIndex and count (§3.4.2.4).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Directory, allMembers } from '../../../directory/directory.ts';
import { KeyfleetError, errorCatalogue } from '../../../errors.ts';
import type { GroupFilter, UserFilter } from '../../../store/directory.ts';
import { principalOf } from '../auth.ts';
import { guard, tenantOf, type AdminContext } from '../context.ts';
import { parseEqFilter } from './filter.ts';
import { applyGroupPatch, userChanges, type PatchOperation } from './patch.ts';
import {
  ERROR_SCHEMA,
  LIST_SCHEMA,
  resolveMember,
  scimGroup,
  scimGroupBody,
  scimPatchBody,
  scimUser,
  scimUserBody,
  userFields,
  type ScimGroupInput,
  type ScimUserInput,
} from './resources.ts';

const SCIM_TYPE = 'application/scim+json; charset=utf-8';
/** SCIM group bodies carry member lists: larger than other admin bodies. */
const SCIM_BODY_LIMIT = 1024 * 1024;
const MAX_COUNT = 1000;

interface ListQuery {
  filter?: string;
  startIndex?: string;
  count?: string;
}

const listQuery = {
  type: 'object',
  properties: {
    filter: { type: 'string', maxLength: 1024 },
    startIndex: { type: 'string', pattern: '^-?[0-9]{1,9}$' },
    count: { type: 'string', pattern: '^-?[0-9]{1,9}$' },
    attributes: { type: 'string', maxLength: 1024 },
    excludedAttributes: { type: 'string', maxLength: 1024 },
  },
} as const;

const idParams = { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 128 } }, required: ['id'] } as const;

export function registerScim(app: FastifyInstance, ctx: AdminContext): void {
  void app.register(
    async (scim) => {
      scim.addContentTypeParser(['application/scim+json'], { parseAs: 'string', bodyLimit: SCIM_BODY_LIMIT }, scim.getDefaultJsonParser('error', 'error'));
      scim.setErrorHandler((error: FastifyError | KeyfleetError, request, reply) => sendScimError(reply, request, error));
      scim.setNotFoundHandler((request, reply) => sendScimError(reply, request, new KeyfleetError('KF_NOT_FOUND', `no SCIM endpoint ${request.method} ${request.url.split('?')[0]}`)));

      const read = { onRequest: guard(ctx, 'directory:read') };
      const write = { onRequest: guard(ctx, 'directory:write'), bodyLimit: SCIM_BODY_LIMIT };
      const base = (request: FastifyRequest) => `${request.protocol}://${request.host}/scim/v2`;
      const directory = (request: FastifyRequest, tx = tenantOf(ctx, request)) => new Directory(tx, principalOf(request), { clock: ctx.clock });
      const send = (reply: FastifyReply, status: number, body: unknown) => reply.code(status).header('content-type', SCIM_TYPE).send(JSON.stringify(body));

      scim.get('/ServiceProviderConfig', { schema: { tags: ['scim'] } }, async (_request, reply) =>
        send(reply, 200, {
          schemas: ['urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig'],
          patch: { supported: true },
          bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
          filter: { supported: true, maxResults: MAX_COUNT },
          changePassword: { supported: false },
          sort: { supported: false },
          etag: { supported: false },
          authenticationSchemes: [{ type: 'oauthbearertoken', name: 'Bearer token', description: 'A Keyfleet admin API token (kf_…)' }],
        }),
      );

      scim.get<{ Querystring: ListQuery }>('/Users', { ...read, schema: { tags: ['scim'], querystring: listQuery } }, async (request, reply) => {
        const { startIndex, count } = paging(request.query);
        let filter: UserFilter | undefined;
        if (request.query.filter !== undefined) {
          const f = parseEqFilter(request.query.filter, ['userName', 'externalId', 'displayName']);
          const attribute = f.attribute === 'username' ? 'userPrincipalName' : f.attribute === 'externalid' ? 'externalId' : 'displayName';
          filter = { attribute, value: f.value };
        }
        const tenant = tenantOf(ctx, request);
        const total = await tenant.directory.countUsers(filter);
        const items = count === 0 ? [] : (await tenant.directory.listUsers({ offset: startIndex - 1, limit: count, ...(filter ? { filter } : {}) })).items;
        return send(reply, 200, listResponse(items.map((u) => scimUser(u, base(request))), total, startIndex));
      });

      scim.post<{ Body: ScimUserInput }>('/Users', { ...write, schema: { tags: ['scim'], body: scimUserBody } }, async (request, reply) => {
        const user = await directory(request).createUser(userFields(request.body));
        const body = scimUser(user, base(request));
        return send(reply.header('location', body.meta.location), 201, body);
      });

      scim.get<{ Params: { id: string } }>('/Users/:id', { ...read, schema: { tags: ['scim'], params: idParams } }, async (request, reply) =>
        send(reply, 200, scimUser(await directory(request).getUser(request.params.id), base(request))),
      );

      scim.put<{ Params: { id: string }; Body: ScimUserInput }>('/Users/:id', { ...write, schema: { tags: ['scim'], params: idParams, body: scimUserBody } }, async (request, reply) => {
        const f = userFields(request.body);
        const user = await directory(request).updateUser(request.params.id, { ...f, mail: f.mail ?? null, externalId: f.externalId ?? null });
        return send(reply, 200, scimUser(user, base(request)));
      });

      scim.patch<{ Params: { id: string }; Body: { Operations: PatchOperation[] } }>(
        '/Users/:id',
        { ...write, schema: { tags: ['scim'], params: idParams, body: scimPatchBody } },
        async (request, reply) => {
          const changes = userChanges(request.body.Operations);
          const dir = directory(request);
          const user = Object.keys(changes).length === 0 ? await dir.getUser(request.params.id) : await dir.updateUser(request.params.id, changes);
          return send(reply, 200, scimUser(user, base(request)));
        },
      );

      scim.delete<{ Params: { id: string } }>('/Users/:id', { ...write, schema: { tags: ['scim'], params: idParams } }, async (request, reply) => {
        await directory(request).deleteUser(request.params.id);
        return reply.code(204).send();
      });

      scim.get<{ Querystring: ListQuery }>('/Groups', { ...read, schema: { tags: ['scim'], querystring: listQuery } }, async (request, reply) => {
        const { startIndex, count } = paging(request.query);
        let filter: GroupFilter | undefined;
        if (request.query.filter !== undefined) {
          const f = parseEqFilter(request.query.filter, ['displayName', 'externalId']);
          filter = { attribute: f.attribute === 'externalid' ? 'externalId' : 'displayName', value: f.value };
        }
        const tenant = tenantOf(ctx, request);
        const total = await tenant.directory.countGroups(filter);
        const groups = count === 0 ? [] : (await tenant.directory.listGroups({ offset: startIndex - 1, limit: count, ...(filter ? { filter } : {}) })).items;
        const withMembers = excludesMembers(request) ? groups.map((g) => scimGroup(g, [], base(request))) : await Promise.all(groups.map(async (g) => scimGroup(g, await allMembers(tenant, g.id), base(request))));
        return send(reply, 200, listResponse(withMembers, total, startIndex));
      });

      scim.post<{ Body: ScimGroupInput }>('/Groups', { ...write, schema: { tags: ['scim'], body: scimGroupBody } }, async (request, reply) => {
        const tenant = tenantOf(ctx, request);
        const group = await tenant.transaction(async (tx) => {
          const members = await Promise.all((request.body.members ?? []).map((m) => resolveMember(tx, m)));
          const created = await directory(request, tx).createGroup({ displayName: request.body.displayName, externalId: request.body.externalId }, members);
          return scimGroup(created, await allMembers(tx, created.id), base(request));
        });
        return send(reply.header('location', group.meta.location), 201, group);
      });

      scim.get<{ Params: { id: string } }>('/Groups/:id', { ...read, schema: { tags: ['scim'], params: idParams } }, async (request, reply) => {
        const tenant = tenantOf(ctx, request);
        const group = await directory(request, tenant).getGroup(request.params.id);
        return send(reply, 200, scimGroup(group, excludesMembers(request) ? [] : await allMembers(tenant, group.id), base(request)));
      });

      scim.put<{ Params: { id: string }; Body: ScimGroupInput }>('/Groups/:id', { ...write, schema: { tags: ['scim'], params: idParams, body: scimGroupBody } }, async (request, reply) => {
        const body = await tenantOf(ctx, request).transaction(async (tx) => {
          const dir = directory(request, tx);
          const group = await dir.updateGroup(request.params.id, { displayName: request.body.displayName, externalId: request.body.externalId ?? null });
          const members = await Promise.all((request.body.members ?? []).map((m) => resolveMember(tx, m)));
          await dir.replaceMembers(group.id, members);
          return scimGroup(group, await allMembers(tx, group.id), base(request));
        });
        return send(reply, 200, body);
      });

      scim.patch<{ Params: { id: string }; Body: { Operations: PatchOperation[] } }>(
        '/Groups/:id',
        { ...write, schema: { tags: ['scim'], params: idParams, body: scimPatchBody } },
        async (request, reply) => {
          const body = await tenantOf(ctx, request).transaction(async (tx) => {
            const dir = directory(request, tx);
            await dir.getGroup(request.params.id);
            await applyGroupPatch(dir, tx, request.params.id, request.body.Operations);
            return scimGroup(await dir.getGroup(request.params.id), await allMembers(tx, request.params.id), base(request));
          });
          return send(reply, 200, body);
        },
      );

      scim.delete<{ Params: { id: string } }>('/Groups/:id', { ...write, schema: { tags: ['scim'], params: idParams } }, async (request, reply) => {
        await directory(request).deleteGroup(request.params.id);
        return reply.code(204).send();
      });
    },
    { prefix: '/scim/v2' },
  );
}

function excludesMembers(request: FastifyRequest): boolean {
  const q = request.query as { excludedAttributes?: string };
  return q.excludedAttributes?.split(',').some((a) => a.trim().toLowerCase() === 'members') ?? false;
}

/** RFC 7644 §3.4.2.4: startIndex below 1 is 1, count below 0 is 0; we cap count at MAX_COUNT. */
function paging(query: ListQuery): { startIndex: number; count: number } {
  const startIndex = Math.max(1, query.startIndex === undefined ? 1 : Number(query.startIndex));
  const count = Math.min(MAX_COUNT, Math.max(0, query.count === undefined ? 100 : Number(query.count)));
  return { startIndex, count };
}

function listResponse(resources: unknown[], total: number, startIndex: number) {
  return { schemas: [LIST_SCHEMA], totalResults: total, startIndex, itemsPerPage: resources.length, Resources: resources };
}

/** scimType for our codes (RFC 7644 §3.12, Table 9). */
function scimType(e: KeyfleetError): string | undefined {
  if (e.detail !== undefined && /^(invalidFilter|invalidValue|invalidPath|noTarget|mutability|invalidSyntax|uniqueness|tooMany)$/.test(e.detail)) return e.detail;
  if (e.code === 'KF_CONFLICT') return 'uniqueness';
  if (e.code === 'KF_GROUP_CYCLE') return 'invalidValue';
  if (e.code === 'KF_USAGE') return 'invalidValue';
  return undefined;
}

function sendScimError(reply: FastifyReply, request: FastifyRequest, error: FastifyError | KeyfleetError): FastifyReply {
  let coded: KeyfleetError | undefined;
  if (error instanceof KeyfleetError) coded = error;
  else if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') coded = new KeyfleetError('KF_INPUT_TOO_LARGE', 'request body is larger than this endpoint accepts');
  else if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
    coded = new KeyfleetError('KF_USAGE', error.message, { detail: error.validation ? 'invalidValue' : 'invalidSyntax' });
  }
  if (coded === undefined) {
    request.log.error({ err: error }, 'internal error');
    return reply.code(500).header('content-type', SCIM_TYPE).send(JSON.stringify({ schemas: [ERROR_SCHEMA], status: '500', detail: 'internal error' }));
  }
  if (coded.status >= 500) request.log.error({ err: error }, 'request failed');
  const type = scimType(coded);
  // The SCIM status follows our catalogue, except a cycle: SCIM keeps 409 for uniqueness.
  const status = coded.code === 'KF_GROUP_CYCLE' ? 400 : errorCatalogue[coded.code].status;
  return reply
    .code(status)
    .header('content-type', SCIM_TYPE)
    .send(JSON.stringify({ schemas: [ERROR_SCHEMA], status: String(status), ...(type === undefined ? {} : { scimType: type }), detail: `${coded.code}: ${coded.message}` }));
}
