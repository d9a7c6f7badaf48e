/**
 * `npm run bench:pki` — issue 3's PKI benchmark, all in one run on loopback:
 *
 * - SCEP PKCSReq enrolments per second with pre-built requests, Keyfleet's
 *   `keyfleet serve` beside micromdm's `scepserver` (Debian), each a child
 *   process, both with RSA-2048 CA keys;
 * - OCSP responses per second from `keyfleet serve` (POST, a nonce per
 *   request, so each is freshly signed), beside OpenSSL's raw RSA rate;
 * - generating a CRL of 100,000 revoked serials, beside `openssl crl`
 *   reading it;
 * - PKCS#12 import of a 3-certificate history, beside `openssl pkcs12`;
 * - each target of the issue with PASS/MISS.
 *
 * Options: --json (one JSON object on stdout), --quick (a smoke run: short
 * windows, a 20,000-entry CRL), --concurrency N (requests in flight,
 * default 16), --cpu-prof DIR (run the Keyfleet server under
 * `node --cpu-prof`, keep the profiles in DIR and list their top self
 * time), --only LIST (some of speed, keyfleet, micromdm, crl, pkcs12; the
 * targets of the sections left out are n/a), --ca-key-type (Keyfleet's CA
 * key for SCEP and OCSP; default rsa-2048, like micromdm's).
 * Progress goes to stderr. Servers and temporary files are removed however
 * the run ends, and the run is bounded by a time budget.
 */
import { createPublicKey } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { defaultProfile } from '../src/ca/templates.ts';
import { openAuthority, openContext } from '../src/cli/context.ts';
import { StoreChallengeValidator } from '../src/scep/challenge.ts';
import type { Certificate } from '../src/x509/certificate.ts';
import { installCleanup, stopChild, trackDir } from './pki/cleanup.ts';
import { isOurs, selfTimes } from './pki/cpuprofile.ts';
import { measureCrl } from './pki/crl.ts';
import { type OcspSubject, measureOcsp, prepareOcspRequests } from './pki/ocsp.ts';
import { nodeRsaSignRate, opensslCliVersion, opensslSpeed } from './pki/openssl.ts';
import { measurePkcs12 } from './pki/pkcs12.ts';
import { type Outcome, type PkiReport, evaluateTargets, renderText } from './pki/report.ts';
import { BENCH_DOMAIN, enrolmentEmail, getCaCerts, keyPool, measureScep, prepareEnrolments } from './pki/scep.ts';
import { type RunningServer, SCEPSERVER, keyfleetCli, micromdmSignErrors, startKeyfleet, startMicromdm } from './pki/servers.ts';

const USAGE = 'Usage: node bench/pki.ts [--json] [--quick] [--concurrency N] [--workers N] [--cpu-prof DIR] [--only speed,keyfleet,micromdm,crl,pkcs12] [--ca-key-type rsa-2048|rsa-3072|p-256|p-384]';
const SECTIONS = ['speed', 'keyfleet', 'micromdm', 'crl', 'pkcs12'] as const;
const SKIPPED = { ok: false, error: 'skipped (--only)' } as const;
const MICROMDM_CHALLENGE = 'bench-static-challenge';
const CRL_ENTRIES = 100_000;

interface Plan {
  readonly budgetSeconds: number;
  readonly speedSeconds: number;
  readonly nodeSpeedSeconds: number;
  readonly keys: number;
  readonly keyfleet: { readonly warmup: number; readonly count: number; readonly maxSeconds: number };
  readonly micromdm: { readonly warmup: number; readonly count: number; readonly maxSeconds: number };
  readonly ocsp: { readonly warmup: number; readonly count: number; readonly maxSeconds: number };
  readonly sample: number;
  readonly crlEntries: number;
  readonly crlRuns: number;
  readonly p12Seconds: number;
  readonly p12OpensslRuns: number;
}

const FULL: Plan = {
  budgetSeconds: 360,
  speedSeconds: 2,
  nodeSpeedSeconds: 1,
  keys: 64,
  keyfleet: { warmup: 100, count: 3000, maxSeconds: 10 },
  micromdm: { warmup: 100, count: 3000, maxSeconds: 10 },
  ocsp: { warmup: 500, count: 40_000, maxSeconds: 8 },
  sample: 50,
  crlEntries: CRL_ENTRIES,
  crlRuns: 3,
  p12Seconds: 1,
  p12OpensslRuns: 5,
};

const QUICK: Plan = {
  budgetSeconds: 150,
  speedSeconds: 1,
  nodeSpeedSeconds: 0.3,
  keys: 8,
  keyfleet: { warmup: 20, count: 200, maxSeconds: 3 },
  micromdm: { warmup: 10, count: 100, maxSeconds: 3 },
  ocsp: { warmup: 100, count: 3000, maxSeconds: 2 },
  sample: 10,
  crlEntries: 20_000,
  crlRuns: 1,
  p12Seconds: 0.2,
  p12OpensslRuns: 2,
};

function progress(text: string): void {
  process.stderr.write(`bench:pki: ${text}\n`);
}

async function attempt<T>(what: string, fn: () => Promise<T> | T): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    const error = e instanceof Error ? `${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ''}` : String(e);
    progress(`${what} failed: ${error}`);
    return { ok: false, error };
  }
}

function scepserverVersion(): string {
  try {
    return execFileSync(SCEPSERVER, ['-version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return 'not installed';
  }
}

interface KeyfleetResults {
  readonly scep: Outcome<Awaited<ReturnType<typeof measureScep>>>;
  readonly ocsp: Outcome<Awaited<ReturnType<typeof measureOcsp>>>;
}

/**
 * Keyfleet: `ca init` (RSA-2048 unless --ca-key-type), then — before the server starts — the
 * certificates OCSP will be asked about (a quarter of them revoked) and a
 * one-time challenge per enrolment, through the same store the server uses;
 * then `keyfleet serve`, SCEP, OCSP, stop.
 */
async function keyfleetPhase(root: string, keys: Awaited<ReturnType<typeof keyPool>>, plan: Plan, concurrency: number, caKeyType: string, cpuProfileDir: string | undefined, workers: number): Promise<KeyfleetResults> {
  const dataDir = join(root, 'keyfleet-data');
  progress(`keyfleet: ca init --key-type ${caKeyType}`);
  keyfleetCli(['ca', 'init', '--data', dataDir, '--key-type', caKeyType, '--org', 'Keyfleet Bench', '--base-url', 'http://127.0.0.1:8080']);

  const total = plan.keyfleet.warmup + plan.keyfleet.count;
  progress(`keyfleet: issuing OCSP subjects and ${total} one-time challenges`);
  const subjects: OcspSubject[] = [];
  let issuer: Certificate;
  let passwords: string[];
  const ctx = await openContext(dataDir);
  try {
    const ca = await openAuthority(ctx);
    issuer = ca.certificate;
    const profile = defaultProfile('smimeSigning', { name: 'ocsp-bench' });
    for (let i = 0; i < 32; i++) {
      const issued = await ca.issue({ publicKey: createPublicKey(keys[i % keys.length]!), profile, attributes: { emailAddress: `ocsp-${i}@${BENCH_DOMAIN}` }, requester: 'bench' });
      const revoked = i % 4 === 3;
      if (revoked) await ca.revoke(issued.record.serialHex, 'keyCompromise');
      subjects.push({ cert: issued.certificate, expected: revoked ? 'revoked' : 'good' });
    }
    passwords = await ctx.tenant.transaction(async (tx) => {
      const validator = new StoreChallengeValidator(tx.scep);
      const out: string[] = [];
      for (let i = 0; i < total; i++) {
        const email = enrolmentEmail('kf', i);
        out.push((await validator.issueChallenge({ profile: 'default', subject: `CN=${email}`, sanEmail: email, deviceId: `bench-device-${i}` })).password);
      }
      return out;
    });
  } finally {
    await ctx.close();
  }

  // One server per measurement, so that a --cpu-prof profile is of one kind of work.
  const serve = async <T>(phase: 'scep' | 'ocsp', work: (server: RunningServer) => Promise<T>): Promise<T> => {
    const profileDir = cpuProfileDir === undefined ? undefined : join(cpuProfileDir, phase);
    if (profileDir) mkdirSync(profileDir, { recursive: true });
    progress(`keyfleet: starting keyfleet serve${profileDir ? ` under --cpu-prof (${profileDir})` : ''}`);
    const server = await startKeyfleet({ dataDir, workers, logFile: join(root, `keyfleet-serve-${phase}.log`), ...(profileDir ? { cpuProfileDir: profileDir } : {}) });
    try {
      return await work(server);
    } finally {
      await stopChild(server.child);
    }
  };

  const scep = await attempt('keyfleet SCEP', () =>
    serve('scep', async (server) => {
      const scepUrl = `${server.baseUrl}/scep/default`;
      const caCerts = await getCaCerts(scepUrl);
      progress(`keyfleet: building ${total} PKCSReq messages`);
      const enrolments = await prepareEnrolments({ label: 'kf', count: total, keys, recipient: caCerts[0]!, cipher: 'aes-256-cbc', challenge: (i) => passwords[i]! });
      progress(`keyfleet: SCEP, ${plan.keyfleet.warmup} warm-up + up to ${plan.keyfleet.count} enrolments or ${plan.keyfleet.maxSeconds} s, ${concurrency} in flight`);
      const m = await measureScep(enrolments, { scepUrl, trusted: caCerts, serverPid: server.pid, concurrency, warmup: plan.keyfleet.warmup, maxSeconds: plan.keyfleet.maxSeconds, sample: plan.sample });
      progress(`keyfleet: ${m.perSecond.toFixed(1)} enrolments/s`);
      return m;
    }),
  );

  const ocsp = await attempt('keyfleet OCSP', () =>
    serve('ocsp', async (server) => {
      const requests = prepareOcspRequests(plan.ocsp.warmup + plan.ocsp.count, subjects, issuer);
      progress(`keyfleet: OCSP, ${plan.ocsp.warmup} warm-up + up to ${plan.ocsp.count} requests or ${plan.ocsp.maxSeconds} s, ${concurrency} in flight`);
      const m = await measureOcsp(requests, { url: `${server.baseUrl}/ocsp`, issuer, serverPid: server.pid, concurrency, warmup: plan.ocsp.warmup, maxSeconds: plan.ocsp.maxSeconds, sample: plan.sample });
      progress(`keyfleet: ${m.perSecond.toFixed(0)} OCSP responses/s`);
      return m;
    }),
  );
  return { scep, ocsp };
}

async function micromdmPhase(root: string, keys: Awaited<ReturnType<typeof keyPool>>, plan: Plan, concurrency: number) {
  progress('micromdm: scepserver ca -init -keySize 2048, then scepserver');
  const server = await startMicromdm({ dir: join(root, 'micromdm'), challenge: MICROMDM_CHALLENGE, logFile: join(root, 'scepserver.log') });
  try {
    const scepUrl = `${server.baseUrl}/scep`;
    const caCerts = await getCaCerts(scepUrl);
    const total = plan.micromdm.warmup + plan.micromdm.count;
    progress(`micromdm: building ${total} PKCSReq messages`);
    const enrolments = await prepareEnrolments({ label: 'mdm', count: total, keys, recipient: caCerts[0]!, cipher: 'aes-256-cbc', challenge: () => MICROMDM_CHALLENGE });
    progress(`micromdm: SCEP, ${plan.micromdm.warmup} warm-up + up to ${plan.micromdm.count} enrolments or ${plan.micromdm.maxSeconds} s, ${concurrency} in flight`);
    const m = await measureScep(enrolments, { scepUrl, trusted: caCerts, serverPid: server.pid, concurrency, warmup: plan.micromdm.warmup, maxSeconds: plan.micromdm.maxSeconds, sample: plan.sample });
    progress(`micromdm: ${m.perSecond.toFixed(1)} enrolments/s`);
    return m;
  } finally {
    await stopChild(server.child);
  }
}

function newestProfile(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean' },
      quick: { type: 'boolean' },
      concurrency: { type: 'string' },
      'cpu-prof': { type: 'string' },
      only: { type: 'string' },
      'ca-key-type': { type: 'string' },
      workers: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const quick = values.quick === true;
  const plan = quick ? QUICK : FULL;
  const concurrency = Number(values.concurrency ?? 16);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) throw new Error(`--concurrency must be 1–256\n${USAGE}`);
  // RSA-2048 by default: micromdm's CA is RSA-2048 too, so the SCEP comparison is like for like.
  const caKeyType = values['ca-key-type'] ?? 'rsa-2048';
  if (!['rsa-2048', 'rsa-3072', 'p-256', 'p-384'].includes(caKeyType)) throw new Error(`--ca-key-type must be rsa-2048, rsa-3072, p-256 or p-384\n${USAGE}`);
  // One server process per core by default, as micromdm's Go server uses both cores.
  const workers = Number(values.workers ?? availableParallelism());
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new Error(`--workers must be 1–64\n${USAGE}`);
  const only = new Set(values.only === undefined ? SECTIONS : values.only.split(','));
  const unknown = [...only].filter((x) => !(SECTIONS as readonly string[]).includes(x));
  if (unknown.length > 0) throw new Error(`--only takes ${SECTIONS.join(', ')}; not ${unknown.join(', ')}\n${USAGE}`);
  const cpuProfileDir = values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']);
  if (cpuProfileDir) mkdirSync(cpuProfileDir, { recursive: true });

  installCleanup(plan.budgetSeconds * 1000);
  // The bench's own store and key files, never a deployment's.
  delete process.env['KEYFLEET_DATABASE_URL'];
  delete process.env['KEYFLEET_MASTER_KEY'];
  const started = performance.now();
  const loadStart = loadavg();
  const root = mkdtempSync(join(tmpdir(), 'keyfleet-bench-pki-'));
  trackDir(root);

  // Yardsticks first, while nothing of ours runs.
  progress(`openssl speed -seconds ${plan.speedSeconds} rsa2048 rsa3072`);
  const opensslSpeedResult = only.has('speed') ? await attempt('openssl speed', () => opensslSpeed([2048, 3072], plan.speedSeconds)) : SKIPPED;
  if (only.has('speed')) progress('node:crypto RSA-2048 and RSA-3072 sign rates');
  const nodeCrypto = only.has('speed') ? [nodeRsaSignRate(2048, plan.nodeSpeedSeconds), nodeRsaSignRate(3072, plan.nodeSpeedSeconds)] : [];

  progress(`generating ${plan.keys} RSA-2048 requester keys`);
  const keys = await keyPool(plan.keys);

  const kf = only.has('keyfleet') ? await attempt('keyfleet phase', () => keyfleetPhase(root, keys, plan, concurrency, caKeyType, cpuProfileDir, workers)) : SKIPPED;
  const micromdm = only.has('micromdm') ? await attempt('micromdm phase', () => micromdmPhase(root, keys, plan, concurrency)) : SKIPPED;

  if (only.has('crl')) progress(`CRL: filling the store with ${plan.crlEntries.toLocaleString('en-US')} revoked records, then generateCrl() ×${plan.crlRuns}`);
  const crlDir = join(root, 'crl');
  mkdirSync(crlDir);
  const crl = only.has('crl') ? await attempt('CRL', () => measureCrl(crlDir, plan.crlEntries, plan.crlRuns)) : SKIPPED;

  if (only.has('pkcs12')) progress('PKCS#12: 3-certificate history');
  const p12Dir = join(root, 'pkcs12');
  mkdirSync(p12Dir);
  const pkcs12 = only.has('pkcs12') ? await attempt('PKCS#12', () => measurePkcs12(p12Dir, keys, { minSeconds: plan.p12Seconds, opensslRuns: plan.p12OpensslRuns })) : SKIPPED;

  const profiles: NonNullable<PkiReport['profiles']>[number][] = [];
  for (const phase of cpuProfileDir ? (['scep', 'ocsp'] as const) : []) {
    const file = newestProfile(join(cpuProfileDir!, phase));
    if (file) {
      const rows = selfTimes(file);
      profiles.push({ phase, file, top: rows.slice(0, 25), ours: rows.filter(isOurs).slice(0, 25) });
    } else progress(`no .cpuprofile appeared in ${join(cpuProfileDir!, phase)}`);
  }

  const scep = {
    keyfleet: kf.ok ? kf.value.scep : kf,
    micromdm,
    keyPool: keys.length,
  };
  const ocsp = kf.ok ? kf.value.ocsp : kf;
  const measured = { rawRsa: { opensslSpeed: opensslSpeedResult, nodeCrypto }, scep, ocsp, crl, pkcs12, ...(profiles.length > 0 ? { profiles } : {}) };
  const loadEnd = loadavg();
  const notes = [
    `Requester keys come from a pool of ${keys.length} RSA-2048 keys (key generation is client work, excluded by the issue; a key per request would take minutes of setup). Every request still differs: subject, SAN, challenge, transaction id, nonces, self-signed requester certificate. Neither server checks key reuse.`,
    'Rates count only responses checked after the run: SCEP — HTTP 200, a CertRep signed by the RA/CA with pkiStatus SUCCESS for its transaction (all of them), and a sample opened in full with parseCertRep (issued certificate for the requested key and address); OCSP — successful with the nonce echoed (all), a sample verified with verifyOcspResponse (signature, nonce, expected good/revoked).',
    'Keyfleet enrolments each use their own one-time challenge (issued through StoreChallengeValidator before timing, bound to the subject and SAN); micromdm takes its static -challenge. Both issue S/MIME-style certificates for CN=<address> with SAN <address>.',
    'Logging: micromdm logs every request (logfmt); Keyfleet logs SCEP and OCSP requests only at warn level and above (its default). Each writes to a file. micromdm scepserver has no listen-address option and binds :port; the bench only talks to it on 127.0.0.1.',
    `"server CPU" is the server's user+system time (all threads and child processes, from /proc) over the timed window; enrolments per server-CPU-second factor out the client's share of the two cores. Go uses both cores for micromdm; Keyfleet runs ${workers} worker process(es) (keyfleet serve --workers), signs CA signatures on libuv's thread pool, and answers OCSP with its delegated P-256 responder.`,
  ];
  const mdmErrors = Object.entries(micromdmSignErrors(join(root, 'scepserver.log')));
  if (mdmErrors.length > 0) {
    notes.push(
      `micromdm answered FAILURE (badRequest) to ${mdmErrors.reduce((n, [, c]) => n + c, 0)} requests, warm-up included; its log says "failed to sign CSR": ${mdmErrors.map(([e, c]) => `${c}× "${e.replaceAll(root, '<tmp>')}"`).join(', ')}. Its file depot replaces depot/serial (remove, then exclusive create) while other requests read it, with no file lock, so concurrent enrolments race (micromdm/scep issue #234 reports the same "open depot/serial: file exists"). Its rate counts successes only; its failures are not held against the comparison.`,
    );
  }
  const busiest = Math.max(loadStart[0] ?? 0, loadEnd[0] ?? 0);
  if (busiest > 0.5 * cpus().length) {
    notes.push(`The machine was busy (1-minute load average ${(loadStart[0] ?? 0).toFixed(1)} at start, ${(loadEnd[0] ?? 0).toFixed(1)} at end, ${cpus().length} CPUs): other processes competed for the cores, so rates are lower and noisier than on an idle machine.`);
  }
  if (caKeyType !== 'rsa-2048') notes.push(`--ca-key-type ${caKeyType}: Keyfleet's CA key differs from micromdm's RSA-2048, so the SCEP comparison is not like for like.`);
  if (quick) notes.push(`--quick: short windows and a ${plan.crlEntries.toLocaleString('en-US')}-entry CRL (its target is n/a). Use the full run for the figures.`);

  const report: PkiReport = {
    meta: {
      date: new Date().toISOString(),
      quick,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      nodeOpenssl: process.versions.openssl,
      opensslCli: opensslCliVersion().split(' ').slice(0, 2).join(' '),
      scepserver: scepserverVersion(),
      loadAverage: { start: loadStart, end: loadEnd },
      concurrency,
      caKeyType,
      seconds: (performance.now() - started) / 1000,
    },
    ...measured,
    targets: evaluateTargets({ ...measured, crlEntriesRequired: CRL_ENTRIES }),
    notes,
  };
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderText(report));
}

await main();
