/**
 * The admin side of `keyfleet serve`: the REST API under /api/v1, SCIM 2.0
 * under /scim/v2, and their OpenAPI 3.1 document at /openapi.json, built
 * by @fastify/swagger from the routes' own JSON schemas.
 */
import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import type { Store } from '../../store/store.ts';
import { registerAccessRoutes } from './access-routes.ts';
import { EvaluatorCache } from '../../delivery/evaluator-cache.ts';
import { deviceEvaluation, type AdminContext } from './context.ts';
import { registerDeviceRoutes } from './devices-routes.ts';
import { registerDirectoryRoutes } from './directory-routes.ts';
import { registerPfxRoutes } from './pfx-routes.ts';
import { registerResourceRoutes } from './resources-routes.ts';
import { registerScim } from './scim/routes.ts';

export interface AdminOptions {
  readonly store: Store;
  readonly clock?: () => Date;
  /** Shared with the device API when one server runs both; a new cache otherwise. */
  readonly evaluators?: EvaluatorCache;
}

/** Registers the OpenAPI generator; must run before any route it should describe is added. */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Keyfleet admin API', version: '1', description: 'Errors are RFC 9457 problem+json with a stable `code` (docs/errors.md).' },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'An admin API token (kf_…)' } } },
    },
  });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

export function registerAdmin(app: FastifyInstance, options: AdminOptions): void {
  const evaluators = options.evaluators ?? new EvaluatorCache();
  const ctx: AdminContext = { store: options.store, clock: options.clock ?? (() => new Date()), evaluators, evaluateDevice: deviceEvaluation(evaluators) };
  registerDirectoryRoutes(app, ctx);
  registerAccessRoutes(app, ctx);
  registerResourceRoutes(app, ctx);
  registerPfxRoutes(app, ctx);
  registerDeviceRoutes(app, ctx);
  registerScim(app, ctx);
}
