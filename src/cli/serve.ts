/**
 * `keyfleet serve [--port N] [--host H] [--data DIR] [--tls-cert F --tls-key F]`:
 * SCEP, CRL and OCSP for the CA under --data (the service issue extends it).
 */
import cluster from 'node:cluster';
import { resolve } from 'node:path';
import { availableParallelism } from 'node:os';
import { createSecureContext } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { KeyfleetError } from '../errors.ts';
import { ensureOcspResponder, ensureRegistrationAuthority } from '../ca/registration-authority.ts';
import { createPkiServices } from '../http/pki.ts';
import { buildServer } from '../http/server.ts';
import { FileVppSource, type VppSourceFor } from '../policy/vpp.ts';
import { DEFAULT_TENANT, keyStoreFor, openAuthority, openContext, readSettings } from './context.ts';
import { mailerFrom, wireDelivery } from './serve-delivery.ts';
import { caCommand } from './ca.ts';
import { announceFirstAdmin } from './admin.ts';
import { ISSUING_CA_ID } from '../ca/authority.ts';
import { parseOptions, readBoundedFile } from './io.ts';

const USAGE = 'Usage: keyfleet serve [--port N] [--host H] [--data DIR] [--init [--base-url URL]] [--workers N|auto] [--tls-cert CHAIN.pem --tls-key KEY.pem]\n  [--vpp-file ASSETS.json [--vpp-token-id ID]]\n  [--smtp-url smtp://HOST:PORT [--smtp-from ADDRESS]] [--min-connector-version V] [--quiet]';

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
      workers: { type: 'string' },
      'vpp-file': { type: 'string' },
      'vpp-token-id': { type: 'string' },
      'smtp-url': { type: 'string' },
      'smtp-from': { type: 'string' },
      'min-connector-version': { type: 'string' },
    },
    USAGE,
  );
  const port = Number(values.port ?? process.env['PORT'] ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new KeyfleetError('KF_USAGE', `--port must be 0–65535\n${USAGE}`);
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new KeyfleetError('KF_USAGE', `--tls-cert and --tls-key go together\n${USAGE}`);
  const dataDir = values.data ?? './data';
  const host = values.host ?? '127.0.0.1';
  const tls = values['tls-cert'] !== undefined ? loadTls(values['tls-cert'], values['tls-key']!) : undefined;
  if (values.init && !cluster.isWorker && !(await isInitialised(dataDir))) {
    // First start (`npm start`): set up the CA and the default SCEP profile, as `ca init` would.
    // The base URL goes into every certificate (CRL, OCSP), so it must be where clients reach us.
    let baseUrl = values['base-url'];
    if (baseUrl === undefined) {
      if (port === 0 || host === '0.0.0.0' || host === '::') throw new KeyfleetError('KF_USAGE', `with --port 0 or a wildcard --host, give --base-url (where clients reach this server)\n${USAGE}`);
      baseUrl = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
    }
    await caCommand(['init', '--data', dataDir, '--base-url', baseUrl]);
  }
  const workers = workerCount(values.workers);
  if (values['vpp-token-id'] !== undefined && values['vpp-file'] === undefined) throw new KeyfleetError('KF_USAGE', `--vpp-token-id goes with --vpp-file\n${USAGE}`);
  // Apple's VPP service cannot be reached from here: the default tenant's token is a file of its answers.
  const vppSource = values['vpp-file'] === undefined ? undefined : new FileVppSource(resolve(values['vpp-file']), values['vpp-token-id'] ?? 'default');
  const vpp: VppSourceFor | undefined = vppSource === undefined ? undefined : (tenantId) => (tenantId === DEFAULT_TENANT ? vppSource : undefined);
  const smtp = { url: values['smtp-url'], from: values['smtp-from'] };
  mailerFrom(smtp.url, smtp.from)?.close(); // refuse a malformed --smtp-url before anything starts
  const minConnectorVersion = values['min-connector-version'];
  if (minConnectorVersion !== undefined && !/^\d{1,9}(\.\d{1,9}){0,3}$/.test(minConnectorVersion)) throw new KeyfleetError('KF_USAGE', `--min-connector-version must be a dotted version such as 6.1911.11.0\n${USAGE}`);
  const common = { dataDir, port, host, tls, quiet: values.quiet === true, vpp, smtp, minConnectorVersion };
  if (cluster.isWorker) return runServer({ ...common, primary: false });
  if (workers === 1) return runServer({ ...common, primary: true });
  // Several processes share the port (node:cluster) and the SQLite file (WAL, busy timeout):
  // SCEP and OCSP sign on the event loop's thread, so one process uses one core (bench:pki).
  const ctx = await openContext(dataDir);
  try {
    await announceFirstAdmin(ctx.store);
    // Create the RA and OCSP responder once here, not in each worker at the same moment.
    const ca = await openAuthority(ctx);
    const keyStore = keyStoreFor(dataDir);
    await ensureRegistrationAuthority(ca, ctx.tenant.ca, keyStore);
    await ensureOcspResponder(ca, ctx.tenant.ca, keyStore);
  } finally {
    await ctx.close();
  }
  return runPrimary(workers, dataDir);
}

interface ServerRun {
  readonly dataDir: string;
  readonly port: number;
  readonly host: string;
  readonly tls: { cert: Uint8Array; key: Uint8Array } | undefined;
  readonly quiet: boolean;
  readonly vpp: VppSourceFor | undefined;
  readonly smtp: { readonly url: string | undefined; readonly from: string | undefined };
  readonly minConnectorVersion: string | undefined;
  /** The single process, or the primary's first worker: announces, refreshes the CRL. */
  readonly primary: boolean;
}

async function runServer(run: ServerRun): Promise<number> {
  const ctx = await openContext(run.dataDir);
  try {
    // First start with no API token anywhere: print the first administrator token, once.
    if (run.primary) await announceFirstAdmin(ctx.store);
    const ca = await openAuthority(ctx);
    const keyStore = keyStoreFor(run.dataDir);
    const ra = await ensureRegistrationAuthority(ca, ctx.tenant.ca, keyStore);
    const ocspResponder = await ensureOcspResponder(ca, ctx.tenant.ca, keyStore);
    const pki = createPkiServices({ tenant: ctx.tenant, ca, ra, ocspResponder });
    const settings = readSettings(run.dataDir);
    const log = (message: string, fields: Record<string, string>) => process.stderr.write(`keyfleet: ${message} ${JSON.stringify(fields)}\n`);
    const delivery = wireDelivery({ dataDir: run.dataDir, store: ctx.store, ca, publicUrl: settings?.baseUrl ?? `http://${run.host}:${run.port}`, smtpUrl: run.smtp.url, smtpFrom: run.smtp.from, minConnectorVersion: run.minConnectorVersion, log });
    const app = await buildServer({
      pki,
      admin: { store: ctx.store, evaluators: delivery.evaluators },
      device: delivery.device,
      routes: [delivery.connectorRoutes],
      logger: !run.quiet,
      ...(run.tls ? { tls: run.tls } : {}),
      ...(run.vpp ? { vpp: run.vpp } : {}),
    });
    const address = await listen(app, run.port, run.host);
    // One watcher per deployment: the single process, or the first worker (like the CRL refresh below).
    if (!cluster.isWorker || cluster.worker?.id === 1) delivery.watcher.start();
    if (cluster.isWorker) process.send?.({ keyfleet: 'listening', address });
    else process.stdout.write(`keyfleet: serving SCEP, CRL and OCSP at ${address} (data in ${run.dataDir})\n`);
    const refreshesCrl = !cluster.isWorker || cluster.worker?.id === 1;
    const crlTimer = setInterval(() => {
      if (refreshesCrl) ca.refreshCrlIfDue().catch((e: unknown) => app.log.error({ err: e }, 'CRL refresh failed'));
    }, CRL_CHECK_MS);
    crlTimer.unref();
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    clearInterval(crlTimer);
    await delivery.close();
    await app.close();
    return 0;
  } finally {
    await ctx.close();
    // A worker's IPC channel would keep it alive after its server closed.
    if (cluster.isWorker) cluster.worker?.disconnect();
  }
}

function workerCount(value: string | undefined): number {
  if (value === undefined) return 1;
  const n = value === 'auto' ? availableParallelism() : Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new KeyfleetError('KF_USAGE', `--workers must be 1–64 or "auto"\n${USAGE}`);
  return n;
}

/** Forks the workers, reports the address once all listen, and stops them on SIGINT/SIGTERM. */
async function runPrimary(workers: number, dataDir: string): Promise<number> {
  let stopping = false;
  let listening = 0;
  const fork = () => cluster.fork();
  cluster.on('message', (_worker, message: { keyfleet?: string; address?: string }) => {
    if (message.keyfleet === 'listening' && ++listening === workers) {
      process.stdout.write(`keyfleet: serving SCEP, CRL and OCSP at ${message.address} (data in ${dataDir}, ${workers} workers)\n`);
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    process.stderr.write(`keyfleet: worker ${worker.id} exited (${signal ?? code}); starting another\n`);
    fork();
  });
  for (let i = 0; i < workers; i++) fork();
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  stopping = true;
  const all = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
  await Promise.all(all.map((w) => new Promise<void>((resolve) => {
    w.once('exit', () => resolve());
    w.process.kill('SIGTERM');
  })));
  return 0;
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
