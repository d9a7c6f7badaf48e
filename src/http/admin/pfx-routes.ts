/**
 * /api/v1/userPfxCertificates (Graph's userPFXCertificate): imported PFX
 * certificates under Intune's custody model. The upload is what
 * src/policy/pfx-import.ts `preparePfxImport` makes on the admin's machine:
 * the PFX still locked by its password, and that password RSA-OAEP
 * encrypted to the PFX connector's key. The service can open neither, so it
 * cannot tell a password encrypted to the wrong key; the connector finds out
 * when it delivers, and the stored paddingScheme says how it should try.
 *
 * POST …/import, an action on the collection in Graph's manner (its
 * importedWindowsAutopilotDeviceIdentities/import), takes a batch
 * ({"value": [uploads]}) and stores it in one transaction: one commit, one
 * wait for the disk, per batch rather than per record.
 */
import type { FastifyInstance, FastifySchemaValidationError } from 'fastify';
import { KeyfleetError } from '../../errors.ts';
import { userPfxCertificateUploadSchema } from '../../policy/index.ts';
import { bearer, pageOptions, type AdminContext } from './context.ts';
import { resourceHooks, resourcesOf } from './resources-routes.ts';
import { PFX_BATCH_MAX, pfxView } from './resources-service.ts';
import { idParams, listOf, pageQuery, problems } from './schemas.ts';

/** One PFX of at most 256 KiB (src/pkcs12/pfx-metadata.ts) in base64, with room for the other fields. */
const PFX_BODY_LIMIT = 512 * 1024;
/**
 * A batch: `keyfleet pfx import --manifest` packs at most PFX_BATCH_MAX records and 8 MiB into one (typical
 * PFX files are 3–5 KiB); twice that leaves room without letting one request make us parse PFX_BATCH_MAX
 * times the largest PFX.
 */
const PFX_BATCH_BODY_LIMIT = 16 * 1024 * 1024;

const pfxSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    userPrincipalName: { type: 'string' },
    thumbprint: { type: 'string' },
    intendedPurpose: { type: 'string' },
    startDateTime: { type: 'string' },
    expirationDateTime: { type: 'string' },
    providerName: { type: 'string' },
    keyName: { type: 'string' },
    paddingScheme: { type: 'string' },
    createdDateTime: { type: 'string' },
  },
} as const;

const listQuery = { ...pageQuery, properties: { ...pageQuery.properties, userPrincipalName: { type: 'string', maxLength: 256 } } } as const;

export function registerPfxRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { read, write } = resourceHooks(ctx);
  const { $id: _id, ...uploadBody } = userPfxCertificateUploadSchema;

  app.get<{ Querystring: { cursor?: string; limit?: string; userPrincipalName?: string } }>(
    '/api/v1/userPfxCertificates',
    { ...read, schema: { tags: ['userPfxCertificates'], summary: "Imported PFX certificates (a user's with ?userPrincipalName=)", security: bearer, querystring: listQuery, response: { 200: listOf(pfxSchema), ...problems } } },
    async (request) => {
      const { userPrincipalName } = request.query;
      const page = await resourcesOf(ctx, request).listPfx({ ...pageOptions(request.query), ...(userPrincipalName === undefined ? {} : { userPrincipalName }) });
      return { value: page.items.map(pfxView), ...(page.nextCursor === undefined ? {} : { nextCursor: page.nextCursor }) };
    },
  );

  app.post(
    '/api/v1/userPfxCertificates',
    {
      ...write,
      bodyLimit: PFX_BODY_LIMIT,
      schema: {
        tags: ['userPfxCertificates'],
        summary: 'Upload a PFX prepared by `keyfleet pfx import` (password-locked PFX, password encrypted to the connector key)',
        security: bearer,
        body: uploadBody,
        response: { 201: pfxSchema, ...problems, 409: problems[400], 413: problems[400] },
      },
    },
    async (request, reply) => reply.code(201).send(pfxView(await resourcesOf(ctx, request).importPfx(request.body))),
  );

  app.post<{ Body: { value: unknown[] } }>(
    '/api/v1/userPfxCertificates/import',
    {
      ...write,
      bodyLimit: PFX_BATCH_BODY_LIMIT,
      schema: {
        tags: ['userPfxCertificates'],
        summary: `Upload up to ${PFX_BATCH_MAX} PFX files prepared by \`keyfleet pfx import\` in one transaction: all stored (201, in order) or none`,
        description: 'A refusal names the first bad record by its index in value ("record 3: …"): 400 for one that is malformed, 409 for a thumbprint already imported for its user or repeated in the batch.',
        security: bearer,
        body: {
          type: 'object',
          properties: { value: { type: 'array', minItems: 1, maxItems: PFX_BATCH_MAX, items: uploadBody } },
          required: ['value'],
          additionalProperties: false,
        },
        response: { 201: listOf(pfxSchema), ...problems, 409: problems[400], 413: problems[400] },
      },
      schemaErrorFormatter: batchSchemaError,
    },
    async (request, reply) => reply.code(201).send({ value: (await resourcesOf(ctx, request).importPfxBatch(request.body.value)).map(pfxView) }),
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/userPfxCertificates/:id',
    { ...read, schema: { tags: ['userPfxCertificates'], summary: 'Get an imported PFX certificate (metadata)', security: bearer, params: idParams, response: { 200: pfxSchema, ...problems } } },
    async (request) => pfxView(await resourcesOf(ctx, request).getPfx(request.params.id)),
  );

  app.delete<{ Params: { id: string } }>(
    '/api/v1/userPfxCertificates/:id',
    { ...write, schema: { tags: ['userPfxCertificates'], summary: 'Delete an imported PFX certificate', security: bearer, params: idParams, response: problems } },
    async (request, reply) => {
      await resourcesOf(ctx, request).deletePfx(request.params.id);
      return reply.code(204).send();
    },
  );
}

/** The schema's first complaint about a batch, naming the record as the service's own checks do. */
function batchSchemaError(errors: FastifySchemaValidationError[], dataVar: string): Error {
  const e = errors[0];
  if (e === undefined) return new KeyfleetError('KF_USAGE', `PFX import: the ${dataVar} is not valid`);
  if (e.instancePath === '/value' && (e.keyword === 'minItems' || e.keyword === 'maxItems')) return new KeyfleetError('KF_USAGE', `PFX import: a batch holds 1 to ${PFX_BATCH_MAX} records`);
  const extra = typeof e.params['additionalProperty'] === 'string' ? ` (${e.params['additionalProperty']})` : '';
  const m = /^\/value\/(\d+)(?:\/(.*))?$/.exec(e.instancePath);
  if (m === null) return new KeyfleetError('KF_USAGE', `PFX import: ${dataVar}${e.instancePath.replaceAll('/', '.')} ${e.message ?? 'is not valid'}${extra}`);
  const field = m[2] === undefined ? '' : `${m[2].replaceAll('/', '.')} `;
  return new KeyfleetError('KF_USAGE', `record ${m[1]}: PFX import: ${field}${e.message ?? 'is not valid'}${extra}`);
}
