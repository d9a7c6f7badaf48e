/**
 * End-to-end plumbing for issue 3: the real `keyfleet` command in child
 * processes, `keyfleet serve` on a free port of loopback (the port read back
 * from its "serving … at URL" line), a temporary --data directory per test
 * file, and a recording proxy that can hide GetCACaps capabilities from a
 * client (serve itself always offers POSTPKIOperation).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodePem } from '../../src/asn1/pem.ts';
import { type Certificate, loadCertificates } from '../../src/x509/certificate.ts';
import { openStore } from '../../src/store/open.ts';
import type { TenantStore } from '../../src/store/store.ts';
import type { ScepTransactionRecord } from '../../src/store/scep.ts';
import { DEFAULT_TENANT } from '../../src/cli/context.ts';
import { type RunResult, describeRun, run } from '../support/exec.ts';
import { keyfleet, keyfleetOk, repoRoot, stderrLines } from '../support/keyfleet.ts';

export { keyfleet, keyfleetOk };

const node = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/keyfleet', import.meta.url));
/** The compile cache test/support/keyfleet.ts uses, so serve starts as fast as the other commands. */
const compileCache = join(tmpdir(), 'keyfleet-test-compile-cache');

export const scepclient = '/usr/bin/scepclient';
export const scepSubmit = '/usr/lib/certmonger/scep-submit';

/** A fresh directory under the system temp dir, removed by `cleanup`. */
export function tempDir(prefix: string): { readonly path: string; sub(name: string): string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), `kf-e2e-${prefix}-`));
  return {
    path,
    sub(name) {
      const p = join(path, name);
      mkdirSync(p, { recursive: true });
      return p;
    },
    cleanup: () => rmSync(path, { recursive: true, force: true }),
  };
}

// --- keyfleet serve -----------------------------------------------------------

export interface Served {
  /** e.g. http://127.0.0.1:40123 */
  readonly origin: string;
  readonly scepUrl: (profile?: string) => string;
  /** Still running (it must not crash on bad input). */
  alive(): boolean;
  /** Everything it wrote so far. */
  output(): string;
  /** SIGTERM, then the exit status (SIGKILL after 10 s). */
  stop(): Promise<{ readonly status: number | null; readonly signal: NodeJS.Signals | null }>;
}

/** Starts `keyfleet serve --data DIR --port 0 --quiet …` and waits for its "serving … at URL" line. */
export async function startServe(dataDir: string, extra: readonly string[] = [], env: Readonly<Record<string, string>> = {}): Promise<Served> {
  const child: ChildProcess = spawn(node, [bin, 'serve', '--data', dataDir, '--port', '0', '--quiet', ...extra], {
    cwd: repoRoot,
    env: { ...process.env, NODE_COMPILE_CACHE: compileCache, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
  const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (status, signal) => resolve({ status, signal })));
  // A test that fails before its `after` hook must not leave a server behind.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);

  const origin = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`keyfleet serve did not start within 20 s:\n${out}`)), 20_000);
    const check = () => {
      const m = /serving .* at (https?:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', check);
    void exited.then((e) => {
      clearTimeout(timer);
      reject(new Error(`keyfleet serve exited (${e.status ?? e.signal}) before serving:\n${out}`));
    });
  });
  return {
    origin,
    scepUrl: (profile = 'default') => `${origin}/scep/${profile}`,
    alive: () => child.exitCode === null && child.signalCode === null,
    output: () => out,
    async stop() {
      process.off('exit', reap);
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const e = await exited;
      clearTimeout(timer);
      return e;
    },
  };
}

// --- the CA under --data ------------------------------------------------------

export interface CaFiles {
  readonly dataDir: string;
  /** `ca show --pem`: the issuing CA then the root. */
  readonly chainPem: string;
  readonly issuingPem: string;
  readonly rootPem: string;
}

/** `keyfleet ca init` in `dir/data`, and the CA certificates as PEM files beside it. */
export async function initCa(dir: string, extra: readonly string[] = []): Promise<CaFiles> {
  const dataDir = join(dir, 'data');
  await keyfleetOk(['ca', 'init', '--data', dataDir, '--base-url', 'http://127.0.0.1:8080', ...extra]);
  const pem = (await keyfleetOk(['ca', 'show', '--data', dataDir, '--pem'])).toString('utf8');
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n?/g) ?? [];
  assert.equal(blocks.length, 2, `ca show --pem: expected the issuing CA and the root\n${pem}`);
  const files = { dataDir, chainPem: join(dir, 'chain.pem'), issuingPem: join(dir, 'issuing.pem'), rootPem: join(dir, 'root.pem') };
  writeFileSync(files.chainPem, pem);
  writeFileSync(files.issuingPem, blocks[0]!);
  writeFileSync(files.rootPem, blocks[1]!);
  return files;
}

export interface ListedCertificate {
  readonly serialHex: string;
  readonly status: string;
  readonly profile: string;
  readonly subject: string;
}

/** `keyfleet ca list`, parsed. */
export async function caList(dataDir: string): Promise<ListedCertificate[]> {
  const text = (await keyfleetOk(['ca', 'list', '--data', dataDir])).toString('utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const m = /^([0-9a-f]+) {2}(\S+)\s+\S+ {2}(\S+) {2}(.*)$/.exec(l);
      assert.ok(m, `ca list: unexpected line "${l}"`);
      return { serialHex: m[1]!, status: m[2]!, profile: m[3]!, subject: m[4]! };
    });
}

/** The first certificate in a PEM file, decoded. */
export function certificateIn(pemPath: string): Certificate {
  const [cert] = loadCertificates(readFileSync(pemPath));
  assert.ok(cert, `${pemPath} holds no certificate`);
  return cert;
}

// --- outside judges ------------------------------------------------------------

/**
 * `openssl verify -x509_strict -purpose P` of a leaf against the root, the
 * issuing CA as untrusted intermediate. 'none' leaves the purpose out: OpenSSL's
 * smimeencrypt requires keyEncipherment, which an EC encryption certificate
 * (keyAgreement, RFC 8551 §2.4) does not have.
 */
export async function opensslVerify(ca: CaFiles, certPath: string, purpose: 'smimesign' | 'smimeencrypt' | 'none' = 'smimesign', extra: readonly string[] = []): Promise<RunResult> {
  return run('openssl', ['verify', '-x509_strict', ...(purpose === 'none' ? [] : ['-purpose', purpose]), '-CAfile', ca.rootPem, '-untrusted', ca.issuingPem, ...extra, certPath]);
}

/** A failed command that says why in one line on stderr, with the exit status given. */
export function assertOneLine(r: RunResult, status: number, what: string, code?: RegExp): string {
  assert.equal(r.timedOut, false, `${what}: timed out\n${describeRun(r)}`);
  assert.equal(r.status, status, `${what}: expected exit ${status}\n${describeRun(r)}`);
  const lines = stderrLines(r);
  assert.equal(lines.length, 1, `${what}: expected one line on stderr\n${describeRun(r)}`);
  const line = lines[0]!;
  assert.match(line, /^keyfleet: KF_[A-Z0-9_]+: \S/, `${what}: not a coded one-line error\n${describeRun(r)}`);
  assert.doesNotMatch(line, /internal error|\bat .+:\d+:\d+|TypeError|RangeError|ReferenceError|undefined/, `${what}: not a readable error\n${describeRun(r)}`);
  if (code) assert.match(line, code, `${what}\n${describeRun(r)}`);
  return line;
}

// --- a proxy in front of serve --------------------------------------------------

export interface ProxiedRequest {
  readonly method: string;
  readonly operation: string;
  /** The PKIOperation message: the POST body, or the GET parameter decoded. */
  readonly message: Buffer | undefined;
}

export interface RecordingProxy {
  readonly origin: string;
  readonly requests: ProxiedRequest[];
  close(): Promise<void>;
}

/**
 * Forwards every request to `target` unchanged and records it, except that
 * GetCACaps answers lose the capabilities in `hide`. With POSTPKIOperation
 * and SCEPStandard hidden, a client must send PKIOperation over GET (RFC 8894
 * §4.1) — to the real server behind.
 */
export async function startProxy(target: string, hide: readonly string[] = []): Promise<RecordingProxy> {
  const requests: ProxiedRequest[] = [];
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url ?? '/', target);
    const operation = url.searchParams.get('operation') ?? '';
    const getMessage = url.searchParams.get('message');
    requests.push({
      method: req.method ?? '',
      operation,
      message: req.method === 'POST' ? body : getMessage === null ? undefined : Buffer.from(getMessage.replace(/ /g, '+'), 'base64'),
    });
    const contentType = req.headers['content-type'];
    const upstream = await fetch(url, {
      method: req.method ?? 'GET',
      ...(req.method === 'POST' ? { body } : {}),
      headers: contentType ? { 'content-type': contentType } : {},
    });
    let answer = Buffer.from(await upstream.arrayBuffer());
    if (operation === 'GetCACaps' && upstream.ok) {
      answer = Buffer.from(
        answer
          .toString('utf8')
          .split('\n')
          .filter((c) => !hide.includes(c.trim()))
          .join('\n'),
      );
    }
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/octet-stream', 'content-length': answer.length }).end(answer);
  };
  const server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => res.writeHead(502).end(String(e)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// --- the store under --data, read beside the running server ------------------

/** Opens the store `keyfleet serve` uses (SQLite in WAL mode: a reader beside the server is fine). */
export async function withTenant<T>(dataDir: string, fn: (tenant: TenantStore) => Promise<T>): Promise<T> {
  const store = await openStore({ dataDir });
  try {
    return await fn(store.forTenant(DEFAULT_TENANT));
  } finally {
    await store.close();
  }
}

/** The SCEP transaction log, newest last. */
export async function scepTransactions(dataDir: string): Promise<ScepTransactionRecord[]> {
  // The store lists newest first.
  return (await withTenant(dataDir, (t) => t.scep.listTransactions({ limit: 1000 }))).reverse();
}

/** Writes a certificate as PEM and returns the path. */
export function writeCertPem(path: string, cert: Certificate): string {
  writeFileSync(path, encodePem('CERTIFICATE', cert.der));
  return path;
}
