/**
 * The `keyfleet serve` HTTP server: Fastify with problem+json errors, the
 * PKI routes, the admin API with SCIM and its OpenAPI document, the device
 * API and the PFX connector API.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { VppSourceFor } from '../policy/vpp.ts';
import { registerAdmin, registerOpenApi, type AdminOptions } from './admin/index.ts';
import { registerVppSync } from './admin/resources-routes.ts';
import { installProblemHandlers } from './problem.ts';
import { registerDeviceRoutes, type DeviceApiOptions } from './device-routes.ts';
import { registerPkiRoutes } from './pki-routes.ts';
import type { PkiServices } from './pki.ts';

export interface ServerOptions {
  /** SCEP, OCSP, the CRL and the CA certificate; left out when the server runs without a CA (admin API tests). */
  readonly pki?: PkiServices;
  /** The admin API, SCIM and /openapi.json; left out, the server offers only the PKI routes. */
  readonly admin?: AdminOptions;
  /** Each tenant's Apple VPP token for POST /api/v1/apps/syncVpp: server configuration, never named by a client. */
  readonly vpp?: VppSourceFor;
  /** PEM certificate chain and key for HTTPS; plain HTTP without them. */
  readonly tls?: { readonly cert: Uint8Array; readonly key: Uint8Array };
  /** The device API (enrolment, check-in, reports, deliveries, notifications) and /portal/open. */
  readonly device?: DeviceApiOptions;
  /** More route registrations (the connector API), run before the server is sealed. */
  readonly routes?: readonly ((app: FastifyInstance) => void)[];
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
  if (options.admin) {
    registerAdmin(app, options.admin);
    registerVppSync(app, options.admin, options.vpp);
  }
  if (options.device) registerDeviceRoutes(app, options.device);
  for (const register of options.routes ?? []) register(app);
  await app.ready();
  return app;
}
