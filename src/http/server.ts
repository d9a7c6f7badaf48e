/**
 * The `keyfleet serve` HTTP server: Fastify with problem+json errors and
 * the PKI routes. Later issues add the admin and device APIs here.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { installProblemHandlers } from './problem.ts';
import { registerPkiRoutes } from './pki-routes.ts';
import type { PkiServices } from './pki.ts';

export interface ServerOptions {
  readonly pki: PkiServices;
  /** PEM certificate chain and key for HTTPS; plain HTTP without them. */
  readonly tls?: { readonly cert: Uint8Array; readonly key: Uint8Array };
  readonly logger?: boolean;
}

export async function buildServer(options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ? { level: 'info', redact: ['req.headers.authorization'] } : false,
    // JSON bodies of the admin API (later) stay small; binary routes set their own limits.
    bodyLimit: 1024 * 1024,
    ...(options.tls ? { https: { cert: Buffer.from(options.tls.cert), key: Buffer.from(options.tls.key) } } : {}),
  });
  installProblemHandlers(app);
  app.get('/healthz', async () => ({ status: 'ok' }));
  registerPkiRoutes(app, options.pki);
  await app.ready();
  return app;
}
