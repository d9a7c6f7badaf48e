/**
 * /api/v1/apps, /profiles, /policies (Graph's mobileApps, deviceConfigurations
 * and mobileAppConfigurations), their /assignments, and a user's
 * /effectiveState. Bodies are checked by the schemas of src/policy (here
 * for Fastify and the OpenAPI document, again by src/policy's parse
 * functions, which also check what a schema cannot).
 */
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import { KeyfleetError } from '../../errors.ts';
import { importedPfxProfileSchema, iosStoreAppSchema, scepProfileSchema, smimePolicySchema, trustedRootProfileSchema } from '../../policy/index.ts';
import type { AdminRole } from '../../store/access.ts';
import type { ResourceCollection } from '../../store/resources.ts';
import { principalOf } from './auth.ts';
import { ADMIN_BODY_LIMIT, bearer, guard, pageOptions, type AdminContext } from './context.ts';
import { Resources, resourceView } from './resources-service.ts';
import { idParams, listOf, pageQuery, problems } from './schemas.ts';

interface IdParams {
  id: string;
}
interface PageQuery {
  cursor?: string;
  limit?: string;
}

/**
 * Who may change apps, profiles, policies, assignments and imported certificates: the administrator and
 * the policy manager (Intune's Policy and Profile Manager); the help desk reads. Checked after the read
 * permission every role has. (src/directory/access.ts has no resource permissions yet; this is that rule.)
 */
const RESOURCE_WRITERS: ReadonlySet<AdminRole> = new Set(['administrator', 'policyManager']);

export function resourceHooks(ctx: AdminContext): { read: { onRequest: onRequestHookHandler }; write: { onRequest: onRequestHookHandler[]; bodyLimit: number } } {
  const writerOnly: onRequestHookHandler = async (request) => {
    const { role } = principalOf(request);
    if (!RESOURCE_WRITERS.has(role)) throw new KeyfleetError('KF_FORBIDDEN', `the ${role} role may not change apps, profiles, policies, assignments or imported certificates`);
  };
  const read = guard(ctx, 'directory:read');
  return { read: { onRequest: read }, write: { onRequest: [read, writerOnly], bodyLimit: ADMIN_BODY_LIMIT } };
}

export function resourcesOf(ctx: AdminContext, request: FastifyRequest): Resources {
  const principal = principalOf(request);
  return new Resources(ctx.store.forTenant(principal.tenantId), principal, ctx.clock);
}

/** src/policy's schemas without $id: Fastify would register each id once, and we use them inside oneOf too. */
function bodySchema<T extends { $id?: string }>(schema: T): Omit<T, '$id'> {
  const { $id: _id, ...rest } = schema;
  return rest;
}

const anyObject = { type: 'object', additionalProperties: true } as const;
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
  readonly create: (r: Resources, body: unknown) => ReturnType<Resources['createApp']>;
}

const COLLECTIONS: readonly Collection[] = [
  { path: 'apps', collection: 'app', tag: 'apps', noun: 'a mobile app (Graph iosStoreApp)', body: bodySchema(iosStoreAppSchema), create: (r, b) => r.createApp(b) },
  {
    path: 'profiles',
    collection: 'certificateProfile',
    tag: 'profiles',
    noun: 'a certificate profile (trusted root, SCEP or PKCS imported)',
    body: { oneOf: [bodySchema(trustedRootProfileSchema), bodySchema(scepProfileSchema), bodySchema(importedPfxProfileSchema)] },
    create: (r, b) => r.createProfile(b),
  },
  {
    path: 'policies',
    collection: 'policy',
    tag: 'policies',
    noun: 'an S/MIME app configuration policy for Outlook for iOS (Graph mobileAppConfigurations)',
    body: bodySchema(smimePolicySchema),
    create: (r, b) => r.createPolicy(b),
  },
];

export function registerResourceRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { read, write } = resourceHooks(ctx);

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
      { ...write, schema: { tags: [c.tag], summary: `Create ${c.noun}`, security: bearer, body: c.body, response: { 201: anyObject, ...problems, 409: problems[400] } } },
      async (request, reply) => reply.code(201).send(resourceView(await c.create(resourcesOf(ctx, request), request.body))),
    );
    app.get<{ Params: IdParams }>(
      `${base}/:id`,
      { ...read, schema: { tags: [c.tag], summary: `Get ${c.noun}`, security: bearer, params: idParams, response: { 200: anyObject, ...problems } } },
      async (request) => resourceView(await resourcesOf(ctx, request).get(c.collection, request.params.id)),
    );
    app.delete<{ Params: IdParams }>(
      `${base}/:id`,
      { ...write, schema: { tags: [c.tag], summary: `Delete ${c.noun} (refused while another resource uses it)`, security: bearer, params: idParams, response: { ...problems, 409: problems[400] } } },
      async (request, reply) => {
        await resourcesOf(ctx, request).delete(c.collection, request.params.id);
        return reply.code(204).send();
      },
    );
    app.get<{ Params: IdParams }>(
      `${base}/:id/assignments`,
      { ...read, schema: { tags: [c.tag], summary: 'Included and excluded groups', security: bearer, params: idParams, response: { 200: assignmentsSchema, ...problems } } },
      async (request) => resourcesOf(ctx, request).assignments(c.collection, request.params.id),
    );
    app.post<{ Params: IdParams; Body: { include: string[]; exclude?: string[] } }>(
      `${base}/:id/assignments`,
      { ...write, schema: { tags: [c.tag], summary: 'Assign to groups (replaces the assignments)', security: bearer, params: idParams, body: assignBody, response: { 200: assignmentsSchema, ...problems } } },
      async (request) => resourcesOf(ctx, request).assign(c.collection, request.params.id, request.body.include, request.body.exclude ?? []),
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
    async (request) => resourcesOf(ctx, request).effectiveStateOf(request.params.id),
  );
}


