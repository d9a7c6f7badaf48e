/**
 * `keyfleet serve [--port N] [--host H] [--data DIR] [--tls-cert F --tls-key F]`:
 * SCEP, CRL and OCSP for the CA under --data (the service issue extends it).
 */
import { createSecureContext } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { KeyfleetError } from '../errors.ts';
import { ensureRegistrationAuthority } from '../ca/registration-authority.ts';
import { createPkiServices } from '../http/pki.ts';
import { buildServer } from '../http/server.ts';
import { keyStoreFor, openAuthority, openContext } from './context.ts';
import { caCommand } from './ca.ts';
import { announceFirstAdmin } from './admin.ts';
import { ISSUING_CA_ID } from '../ca/authority.ts';
import { parseOptions, readBoundedFile } from './io.ts';

const USAGE = 'Usage: keyfleet serve [--port N] [--host H] [--data DIR] [--init [--base-url URL]] [--tls-cert CHAIN.pem --tls-key KEY.pem] [--quiet]';

/** How often the CRL is checked for its scheduled regeneration. */
const CRL_CHECK_MS = 60_000;

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      port: { type: 'string' },
      host: { type: 'string' },
      data: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      quiet: { type: 'boolean' },
      init: { type: 'boolean' },
      'base-url': { type: 'string' },
    },
    USAGE,
  );
  const port = Number(values.port ?? process.env['PORT'] ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new KeyfleetError('KF_USAGE', `--port must be 0–65535\n${USAGE}`);
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new KeyfleetError('KF_USAGE', `--tls-cert and --tls-key go together\n${USAGE}`);
  const dataDir = values.data ?? './data';
  const host = values.host ?? '127.0.0.1';
  const tls = values['tls-cert'] !== undefined ? loadTls(values['tls-cert'], values['tls-key']!) : undefined;
  if (values.init && !(await isInitialised(dataDir))) {
    // First start (`npm start`): set up the CA and the default SCEP profile, as `ca init` would.
    // The base URL goes into every certificate (CRL, OCSP), so it must be where clients reach us.
    let baseUrl = values['base-url'];
    if (baseUrl === undefined) {
      if (port === 0 || host === '0.0.0.0' || host === '::') throw new KeyfleetError('KF_USAGE', `with --port 0 or a wildcard --host, give --base-url (where clients reach this server)\n${USAGE}`);
      baseUrl = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
    }
    await caCommand(['init', '--data', dataDir, '--base-url', baseUrl]);
  }
  const ctx = await openContext(dataDir);
  try {
    // First start with no API token anywhere: print the first administrator token, once.
    await announceFirstAdmin(ctx.store);
    const ca = await openAuthority(ctx);
    const ra = await ensureRegistrationAuthority(ca, ctx.tenant.ca, keyStoreFor(dataDir));
    const pki = createPkiServices({ tenant: ctx.tenant, ca, ra });
    const app = await buildServer({ pki, admin: { store: ctx.store }, logger: values.quiet !== true, ...(tls ? { tls } : {}) });
    const address = await listen(app, port, host);
    process.stdout.write(`keyfleet: serving SCEP, CRL and OCSP at ${address} (data in ${dataDir})\n`);
    const crlTimer = setInterval(() => {
      ca.refreshCrlIfDue().catch((e: unknown) => app.log.error({ err: e }, 'CRL refresh failed'));
    }, CRL_CHECK_MS);
    crlTimer.unref();
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    clearInterval(crlTimer);
    await app.close();
    return 0;
  } finally {
    await ctx.close();
  }
}

async function isInitialised(dataDir: string): Promise<boolean> {
  const ctx = await openContext(dataDir, { create: true });
  try {
    return (await ctx.tenant.ca.getCa(ISSUING_CA_ID)) !== undefined;
  } finally {
    await ctx.close();
  }
}

/** The TLS certificate and key, checked now so a bad pair is one clear line, not an OpenSSL trace. */
function loadTls(certPath: string, keyPath: string): { cert: Uint8Array; key: Uint8Array } {
  const cert = readBoundedFile(certPath, undefined, 'certificate');
  const key = readBoundedFile(keyPath, undefined, 'key');
  try {
    createSecureContext({ cert, key });
  } catch (e) {
    throw new KeyfleetError('KF_KEY_INVALID', `--tls-key is not a private key for the --tls-cert certificate (${keyPath})`, { cause: e });
  }
  return { cert, key };
}

async function listen(app: FastifyInstance, port: number, host: string): Promise<string> {
  try {
    return await app.listen({ port, host });
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'EADDRINUSE') throw new KeyfleetError('KF_LISTEN_FAILED', `port ${port} on ${host} is already in use`, { cause: e });
    if (code === 'EACCES') throw new KeyfleetError('KF_LISTEN_FAILED', `no permission to listen on port ${port} on ${host}`, { cause: e });
    if (code === 'EADDRNOTAVAIL') throw new KeyfleetError('KF_LISTEN_FAILED', `${host} is not an address of this machine`, { cause: e });
    throw e;
  }
}
