/**
 * /api/v1/apps, /profiles, /policies, /derivedCredentials (Graph's
 * mobileApps, deviceConfigurations, mobileAppConfigurations and
 * deviceManagement/derivedCredentials): create, read, JSON-merge-patch
 * update, delete; the /assignments of the first three; a policy's
 * /settings; a user's /effectiveState; and the VPP app sync. Bodies are
 * checked by the schemas of src/policy (here for Fastify and the OpenAPI
 * document, again by src/policy's parse functions, which also check what a
 * schema cannot). Reading needs resources:read, every change
 * resources:write (src/directory/access.ts).
 */
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { Permission } from '../../directory/access.ts';
import { KeyfleetError } from '../../errors.ts';
import {
  type VppSourceFor,
  derivedCredentialSettingsSchema,
  importedPfxProfileSchema,
  iosStoreAppSchema,
  scepProfileSchema,
  smimePolicySchema,
  trustedRootProfileSchema,
} from '../../policy/index.ts';
import { isAssignable, type ResourceCollection } from '../../store/resources.ts';
import { principalOf, requirePermission } from './auth.ts';
import { ADMIN_BODY_LIMIT, bearer, pageOptions, type AdminContext } from './context.ts';
import type { AdminOptions } from './index.ts';
import { Resources, resourceView } from './resources-service.ts';
import { idParams, listOf, pageQuery, problems } from './schemas.ts';

interface IdParams {
  id: string;
}
interface PageQuery {
  cursor?: string;
  limit?: string;
}

/** What these routes use of the admin context. */
export type ResourceContext = Pick<AdminContext, 'store' | 'clock'>;
/** What the resource routes need: the user's effective state reads the tenant's cached evaluator. */
export type ResourceRoutesContext = ResourceContext & Pick<AdminContext, 'evaluators'>;

/** The hooks of reading and writing routes: authentication and resources:read or resources:write. */
export function resourceHooks(ctx: ResourceContext): { read: { onRequest: onRequestHookHandler }; write: { onRequest: onRequestHookHandler; bodyLimit: number } } {
  const hook = (permission: Permission) => requirePermission(ctx.store, permission, ctx.clock);
  return { read: { onRequest: hook('resources:read') }, write: { onRequest: hook('resources:write'), bodyLimit: ADMIN_BODY_LIMIT } };
}

export function resourcesOf(ctx: ResourceContext, request: FastifyRequest): Resources {
  const principal = principalOf(request);
  return new Resources(ctx.store.forTenant(principal.tenantId), principal, ctx.clock);
}

/** src/policy's schemas without $id: Fastify would register each id once, and we use them inside oneOf too. */
function bodySchema<T extends { $id?: string }>(schema: T): Omit<T, '$id'> {
  const { $id: _id, ...rest } = schema;
  return rest;
}

const anyObject = { type: 'object', additionalProperties: true } as const;
const conflict = { 409: problems[400] };
const assignmentsSchema = {
  type: 'object',
  properties: { include: { type: 'array', items: { type: 'string' } }, exclude: { type: 'array', items: { type: 'string' } } },
} as const;
const groupIds = { type: 'array', maxItems: 100, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 128 } } as const;
const assignBody = {
  type: 'object',
  description: 'Group ids (or allUsers / allDevices); replaces the assignments. A group both included and excluded is excluded.',
  properties: { include: groupIds, exclude: groupIds },
  required: ['include'],
  additionalProperties: false,
} as const;
/** Checked as a whole after merging (src/policy), so here only: an object that changes something. */
const mergePatchBody = {
  type: 'object',
  minProperties: 1,
  description: 'A JSON merge patch (RFC 7396; application/merge-patch+json or application/json): members replace, null removes. id and kind cannot change.',
} as const;
const profileListQuery = {
  ...pageQuery,
  properties: { ...pageQuery.properties, kind: { type: 'string', enum: ['iosTrustedRootCertificate', 'iosScepCertificateProfile', 'iosImportedPfxCertificateProfile'] } },
} as const;

interface Collection {
  readonly path: string;
  readonly collection: ResourceCollection;
  readonly tag: string;
  readonly noun: string;
  readonly body: object;
}

const COLLECTIONS: readonly Collection[] = [
  { path: 'apps', collection: 'app', tag: 'apps', noun: 'a mobile app (Graph iosStoreApp; iosVppApp comes from apps/syncVpp)', body: bodySchema(iosStoreAppSchema) },
  {
    path: 'profiles',
    collection: 'certificateProfile',
    tag: 'profiles',
    noun: 'a certificate profile (trusted root, SCEP or PKCS imported)',
    body: { oneOf: [bodySchema(trustedRootProfileSchema), bodySchema(scepProfileSchema), bodySchema(importedPfxProfileSchema)] },
  },
  {
    path: 'policies',
    collection: 'policy',
    tag: 'policies',
    noun: 'an S/MIME app configuration policy for Outlook for iOS (Graph mobileAppConfigurations)',
    body: bodySchema(smimePolicySchema),
  },
  {
    path: 'derivedCredentials',
    collection: 'derivedCredential',
    tag: 'derivedCredentials',
    noun: "the tenant's derived-credential issuer (Graph deviceManagementDerivedCredentialSettings; one per tenant)",
    body: bodySchema(derivedCredentialSettingsSchema),
  },
];

export function registerResourceRoutes(app: FastifyInstance, ctx: ResourceRoutesContext): void {
  const { read, write } = resourceHooks(ctx);
  // RFC 7396 §4's media type; it is JSON, parsed as strictly as application/json.
  if (!app.hasContentTypeParser('application/merge-patch+json')) {
    app.addContentTypeParser('application/merge-patch+json', { parseAs: 'string', bodyLimit: ADMIN_BODY_LIMIT }, app.getDefaultJsonParser('error', 'error'));
  }

  for (const c of COLLECTIONS) {
    const base = `/api/v1/${c.path}`;
    app.get<{ Querystring: PageQuery & { kind?: string } }>(
      base,
      { ...read, schema: { tags: [c.tag], summary: `List ${c.path}`, security: bearer, querystring: c.collection === 'certificateProfile' ? profileListQuery : pageQuery, response: { 200: listOf(anyObject), ...problems } } },
      async (request) => {
        const { kind } = request.query;
        const page = await resourcesOf(ctx, request).list(c.collection, { ...pageOptions(request.query), ...(kind === undefined ? {} : { kind }) });
        return { value: page.items.map(resourceView), ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }) };
      },
    );
    app.post(
      base,
      { ...write, schema: { tags: [c.tag], summary: `Create ${c.noun}`, security: bearer, body: c.body, response: { 201: anyObject, ...problems, ...conflict } } },
      async (request, reply) => reply.code(201).send(resourceView(await resourcesOf(ctx, request).create(c.collection, request.body))),
    );
    app.get<{ Params: IdParams }>(
      `${base}/:id`,
      { ...read, schema: { tags: [c.tag], summary: `Get ${c.noun}`, security: bearer, params: idParams, response: { 200: anyObject, ...problems } } },
      async (request) => resourceView(await resourcesOf(ctx, request).get(c.collection, request.params.id)),
    );
    app.patch<{ Params: IdParams }>(
      `${base}/:id`,
      {
        ...write,
        schema: { tags: [c.tag], summary: `Update ${c.noun} (validated again as a whole, as creation is)`, security: bearer, params: idParams, body: mergePatchBody, response: { 200: anyObject, ...problems, ...conflict } },
      },
      async (request) => resourceView(await resourcesOf(ctx, request).update(c.collection, request.params.id, request.body)),
    );
    app.delete<{ Params: IdParams }>(
      `${base}/:id`,
      { ...write, schema: { tags: [c.tag], summary: `Delete ${c.noun} (refused while another resource uses it)`, security: bearer, params: idParams, response: { ...problems, ...conflict } } },
      async (request, reply) => {
        await resourcesOf(ctx, request).delete(c.collection, request.params.id);
        return reply.code(204).send();
      },
    );
    const collection = c.collection;
    if (!isAssignable(collection)) continue;
    app.get<{ Params: IdParams }>(
      `${base}/:id/assignments`,
      { ...read, schema: { tags: [c.tag], summary: 'Included and excluded groups', security: bearer, params: idParams, response: { 200: assignmentsSchema, ...problems } } },
      async (request) => resourcesOf(ctx, request).assignments(collection, request.params.id),
    );
    app.post<{ Params: IdParams; Body: { include: string[]; exclude?: string[] } }>(
      `${base}/:id/assignments`,
      { ...write, schema: { tags: [c.tag], summary: 'Assign to groups (replaces the assignments)', security: bearer, params: idParams, body: assignBody, response: { 200: assignmentsSchema, ...problems } } },
      async (request) => resourcesOf(ctx, request).assign(collection, request.params.id, request.body.include, request.body.exclude ?? []),
    );
  }

  app.get<{ Params: IdParams }>(
    '/api/v1/policies/:id/settings',
    {
      ...read,
      schema: {
        tags: ['policies'],
        summary: "The policy as Outlook's managed app configuration: typed key/values and the same as an Apple plist",
        security: bearer,
        params: idParams,
        response: {
          200: {
            type: 'object',
            properties: {
              settings: { type: 'array', items: { type: 'object', properties: { appConfigKey: { type: 'string' }, appConfigKeyType: { type: 'string' }, appConfigKeyValue: { type: 'string' } } } },
              plist: { type: 'string' },
            },
          },
          ...problems,
        },
      },
    },
    async (request) => resourcesOf(ctx, request).policySettings(request.params.id),
  );

  app.get<{ Params: IdParams }>(
    '/api/v1/users/:id/effectiveState',
    {
      ...read,
      schema: {
        tags: ['users'],
        summary: 'Policies, profiles and apps assigned to the user (nested groups, exclusion wins), merged app configurations and conflicts',
        security: bearer,
        params: idParams,
        response: { 200: anyObject, ...problems },
      },
    },
    async (request) => {
      const tenant = ctx.store.forTenant(principalOf(request).tenantId);
      if ((await tenant.directory.getUser(request.params.id)) === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no user with id "${request.params.id}"`);
      // The tenant's cached evaluator (rebuilt after audited changes), as devices get at check-in.
      const e = (await ctx.evaluators.forTenant(tenant)).evaluateUser(request.params.id);
      return { ...e.state, policyApplicability: e.policies, certificateProfileApplicability: e.certificateProfiles };
    },
  );
}

const vppSyncSchema = {
  type: 'object',
  properties: {
    value: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          change: { type: 'string', enum: ['created', 'updated', 'unchanged'] },
          displayName: { type: 'string' },
          bundleId: { type: 'string' },
          appleId: { type: 'string' },
          totalLicenseCount: { type: 'integer' },
          usedLicenseCount: { type: 'integer' },
        },
      },
    },
  },
} as const;

/**
 * POST /api/v1/apps/syncVpp: creates or updates the iosVppApp of each app the tenant's VPP token lists.
 * Which token (for FileVppSource, which file) is the server's configuration (`vpp`), never the request's:
 * a client naming a path would have the server read any file it can.
 */
export function registerVppSync(app: FastifyInstance, options: Pick<AdminOptions, 'store' | 'clock'>, vpp: VppSourceFor | undefined): void {
  const ctx: ResourceContext = { store: options.store, clock: options.clock ?? (() => new Date()) };
  app.post(
    '/api/v1/apps/syncVpp',
    {
      ...resourceHooks(ctx).write,
      schema: {
        tags: ['apps'],
        summary: "Sync iosVppApp apps from the tenant's Apple VPP token configured on the server (no body); an unchanged token writes nothing",
        security: bearer,
        response: { 200: vppSyncSchema, ...problems, ...conflict, 502: problems[400] },
      },
    },
    async (request) => {
      const body = request.body;
      if (body !== undefined && body !== null && !(typeof body === 'object' && Object.keys(body).length === 0)) {
        throw new KeyfleetError('KF_USAGE', 'syncVpp takes no body: the VPP token is configured on the server');
      }
      const { tenantId } = principalOf(request);
      const source = vpp?.(tenantId);
      if (source === undefined) throw new KeyfleetError('KF_VPP_NOT_CONFIGURED', 'no Apple VPP token is configured on this server for your tenant');
      return { value: await resourcesOf(ctx, request).syncVpp(source) };
    },
  );
}
