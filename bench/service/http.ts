/**
 * bench:service's HTTP measurements against server-child.ts on loopback:
 *
 * - bulk PFX import through the real API path: batches of 100 through
 *   POST /api/v1/userPfxCertificates/import (bearer token, JSON schema, the
 *   records and their audit entries in one transaction), as `keyfleet pfx
 *   import --manifest` sends them, and one record a request through
 *   POST /api/v1/userPfxCertificates; uploads prepared beforehand the way `keyfleet pfx
 *   import` prepares them (src/policy/pfx-import.ts preparePfxImport: the
 *   PFX still locked by its password, the password RSA-OAEP encrypted to the
 *   connector key). One real PKCS#12, made by openssl, is re-used under a
 *   different thumbprint and user per record: the service validates the
 *   upload's shape and the (user, thumbprint) uniqueness, and cannot open
 *   the PFX to compare.
 * - read latency under 64 concurrent clients (autocannon).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { readPfxMetadata } from '../../src/pkcs12/pfx-metadata.ts';
import { preparePfxImport } from '../../src/policy/pfx-import.ts';
import { trackChild } from '../pki/cleanup.ts';
import { processCpuSeconds } from '../pki/servers.ts';
import { upnOf } from './seed.ts';

const CHILD = fileURLToPath(new URL('./server-child.ts', import.meta.url));

export interface RunningServer {
  readonly baseUrl: string;
  readonly child: ChildProcess;
}

/** Starts server-child.ts (under --cpu-prof when `profileDir` is given); resolves with its address. */
export async function startServer(location: { readonly dataDir?: string; readonly url?: string }, profileDir?: string): Promise<RunningServer> {
  const where = location.url === undefined ? ['--data', location.dataDir!] : ['--url', location.url];
  const nodeArgs = profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir];
  const child = spawn(process.execPath, [...nodeArgs, CHILD, ...where], { stdio: ['ignore', 'pipe', 'pipe'] });
  trackChild(child);
  let output = '';
  const baseUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the bench server did not start in 60 s: ${output.slice(-500)}`)), 60_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const m = /listening (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the bench server exited (${code}): ${output.slice(-500)}`));
    });
  });
  return { baseUrl, child };
}

/** The uploads: one real PKCS#12, prepared once, then `count` copies with their own thumbprint and user. */
export function preparePfxUploads(dir: string, count: number, users: number, salt: string): string[] {
  const p = (n: string) => join(dir, n);
  const email = 'pfx-bench@bench.keyfleet.example';
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('pfx.key'), '-out', p('pfx.pem'), '-subj', `/CN=${email}`, '-days', '365',
    '-addext', 'keyUsage=critical,keyEncipherment', '-addext', 'extendedKeyUsage=emailProtection', '-addext', `subjectAltName=email:${email}`], { stdio: 'ignore' });
  execFileSync('openssl', ['pkcs12', '-export', '-inkey', p('pfx.key'), '-in', p('pfx.pem'), '-passout', 'pass:bench-pfx-password', '-out', p('pfx.p12')], { stdio: 'ignore' });
  const connectorPublicKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
  const upload = preparePfxImport(
    { pfx: new Uint8Array(readFileSync(p('pfx.p12'))), password: 'bench-pfx-password', connectorPublicKey, userPrincipalName: upnOf(0), intendedPurpose: 'smimeEncryption', keyName: 'bench-connector' },
    readPfxMetadata,
  );
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({ ...upload, userPrincipalName: upnOf((i * 7919) % users), thumbprint: createHash('sha1').update(`${salt}/${i}`).digest('hex').toUpperCase() }),
  );
}

export interface PfxImportMeasurement {
  /** POST /api/v1/userPfxCertificates (one record a request) or …/import (a batch a request). */
  readonly endpoint: 'single' | 'batch';
  readonly recordsPerRequest: number;
  readonly connections: number;
  readonly records: number;
  readonly created: number;
  readonly failed: number;
  readonly seconds: number;
  readonly perSecond: number;
  /** Per request. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly bodyBytes: number;
  /** CPU time of the server process per record (the database's own processes aside). */
  readonly serverCpuMsPerRecord: number | undefined;
  /** CPU time of the database's processes per record (PostgreSQL's backends); undefined on SQLite. */
  readonly dbCpuMsPerRecord: number | undefined;
}

/** Groups single-record bodies into batch bodies of `perBatch` ({"value": […]}, as `keyfleet pfx import --manifest` sends). */
export function batchBodies(bodies: readonly string[], perBatch: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < bodies.length; i += perBatch) out.push(`{"value":[${bodies.slice(i, i + perBatch).join(',')}]}`);
  return out;
}

/** Posts every body once over `connections` keep-alive clients; each body holds `recordsPerRequest` records. */
export async function measurePfxImport(
  server: RunningServer,
  token: string,
  endpoint: PfxImportMeasurement['endpoint'],
  bodies: readonly string[],
  recordsPerRequest: number,
  connections: number,
  backendCpu?: () => Promise<ReadonlyMap<number, number>>,
): Promise<PfxImportMeasurement> {
  let next = 0;
  const db0 = await backendCpu?.();
  const cpu0 = processCpuSeconds(server.child.pid!);
  const started = performance.now();
  const r = await autocannon({
    url: server.baseUrl,
    // autocannon refuses more clients than requests (a small --pfx in batches).
    connections: Math.min(connections, bodies.length),
    amount: bodies.length,
    timeout: 60,
    requests: [{
      method: 'POST',
      path: endpoint === 'single' ? '/api/v1/userPfxCertificates' : '/api/v1/userPfxCertificates/import',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      setupRequest: (request) => ({ ...request, body: bodies[next++ % bodies.length]! }),
    }],
  });
  const seconds = (performance.now() - started) / 1000;
  const cpu1 = processCpuSeconds(server.child.pid!);
  const db1 = await backendCpu?.();
  const records = bodies.length * recordsPerRequest;
  const created = Number(r.statusCodeStats['201']?.count ?? 0) * recordsPerRequest;
  let dbSeconds: number | undefined;
  if (db0 !== undefined && db1 !== undefined) {
    dbSeconds = 0;
    for (const [pid, s] of db1) dbSeconds += s - (db0.get(pid) ?? 0);
  }
  return {
    endpoint,
    recordsPerRequest,
    connections,
    records,
    created,
    failed: records - created,
    seconds,
    perSecond: created / seconds,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    bodyBytes: bodies[0]?.length ?? 0,
    serverCpuMsPerRecord: cpu0 === undefined || cpu1 === undefined ? undefined : ((cpu1 - cpu0) * 1000) / records,
    dbCpuMsPerRecord: dbSeconds === undefined ? undefined : (dbSeconds * 1000) / records,
  };
}

export interface ApiMeasurement {
  readonly label: string;
  readonly connections: number;
  readonly seconds: number;
  readonly requests: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
  /** CPU time of the server process per completed request (the database's own processes aside). */
  readonly serverCpuMsPerRequest: number | undefined;
}

/** `connections` clients for `seconds` after a `warmupSeconds` unrecorded run (JIT, pools), each request's path from `path()`. */
export async function measureApi(label: string, server: RunningServer, token: string, path: () => string, connections: number, seconds: number, warmupSeconds: number): Promise<ApiMeasurement> {
  const run = (duration: number) =>
    autocannon({
      url: server.baseUrl,
      connections,
      duration,
      timeout: 30,
      requests: [{ method: 'GET', headers: { authorization: `Bearer ${token}` }, setupRequest: (request) => ({ ...request, path: path() }) }],
    });
  if (warmupSeconds > 0) await run(warmupSeconds);
  const cpu0 = processCpuSeconds(server.child.pid!);
  const r = await run(seconds);
  const cpu1 = processCpuSeconds(server.child.pid!);
  return {
    label,
    connections,
    seconds: r.duration,
    requests: r.requests.total,
    perSecond: r.requests.average,
    p50Ms: r.latency.p50,
    p90Ms: r.latency.p90,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    serverCpuMsPerRequest: cpu0 === undefined || cpu1 === undefined || r.requests.total === 0 ? undefined : ((cpu1 - cpu0) * 1000) / r.requests.total,
  };
}
