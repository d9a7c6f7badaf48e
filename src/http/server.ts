/**
 * The `keyfleet serve` HTTP server: Fastify with problem+json errors, the
 * PKI routes, and the admin API with SCIM and its OpenAPI document. Later
 * issues add the device APIs here.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { registerAdmin, registerOpenApi, type AdminOptions } from './admin/index.ts';
import { installProblemHandlers } from './problem.ts';
import { registerPkiRoutes } from './pki-routes.ts';
import type { PkiServices } from './pki.ts';

export interface ServerOptions {
  /** SCEP, OCSP, the CRL and the CA certificate; left out when the server runs without a CA (admin API tests). */
  readonly pki?: PkiServices;
  /** The admin API, SCIM and /openapi.json; left out, the server offers only the PKI routes. */
  readonly admin?: AdminOptions;
  /** PEM certificate chain and key for HTTPS; plain HTTP without them. */
  readonly tls?: { readonly cert: Uint8Array; readonly key: Uint8Array };
  readonly logger?: boolean;
}

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ? { level: 'info', redact: ['req.headers.authorization'] } : false,
    // JSON bodies of the admin API stay small (routes set 64 KiB); binary routes set their own limits.
    bodyLimit: 1024 * 1024,
    // Schemas mean what they say: unknown properties are refused (not silently dropped) and bodies are not
    // coerced ("true" is not a boolean). Query strings are declared as strings and converted by the routes.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allowUnionTypes: true } },
    ...(options.tls ? { https: { cert: Buffer.from(options.tls.cert), key: Buffer.from(options.tls.key) } } : {}),
  });
  installProblemHandlers(app);
  if (options.admin) await registerOpenApi(app);
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  if (options.pki) registerPkiRoutes(app, options.pki);
  if (options.admin) registerAdmin(app, options.admin);
  await app.ready();
  return app;
}
