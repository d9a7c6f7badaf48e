/**
 * PKCS#12 import of a 3-certificate history: one user's three successive
 * key + certificate pairs (what a key-escrow import or a device restore
 * brings in), with the issuing CA certificate.
 *
 * Two ways the history arrives:
 * - as `openssl pkcs12 -export` writes it: one file per pair (it takes a
 *   single key), so the history is three files — in OpenSSL 3's default
 *   profile (PBES2 AES-256-CBC, PBKDF2-SHA-256, SHA-256 MAC) and in the
 *   iOS/legacy profile (pbeWithSHAAnd3-KeyTripleDES-CBC, SHA-1 MAC);
 * - as our writePkcs12 writes it: one file with three entries, modern and
 *   legacy profile.
 *
 * Timed: readPkcs12 of the whole history in-process (all three keys and
 * certificates out, checked), beside `openssl pkcs12 -in … -nodes -passin`
 * as a whole process per file (its output checked for the keys).
 */
import { type KeyObject, createPublicKey } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodePem } from '../../src/asn1/pem.ts';
import { buildCertificate, makeSigner, randomSerial } from '../../src/ca/certificate-builder.ts';
import { authorityKeyIdentifier, basicConstraints, extKeyUsage, keyIdentifier, keyUsage, subjectAltName, subjectKeyIdentifier } from '../../src/ca/extensions.ts';
import { OID } from '../../src/asn1/oids.ts';
import { readPkcs12, writePkcs12 } from '../../src/pkcs12/index.ts';
import { type Certificate, decodeCertificate } from '../../src/x509/certificate.ts';
import { encodeName } from '../../src/x509/name.ts';
import { createSignature } from '../../src/x509/signature.ts';
import { type ProcessTiming, timeCommand } from './openssl.ts';

const PASSWORD = 'bench-p12-password';
const DAY = 86_400_000;

export interface Pkcs12Case {
  /** e.g. "openssl -export ×3 files (AES-256, PBKDF2-SHA-256)". */
  readonly label: string;
  readonly files: number;
  readonly bytes: number;
  /** readPkcs12 of every file of the history, per history. */
  readonly readMs: number;
  readonly readsPerSec: number;
  readonly iterations: number;
  /** `openssl pkcs12 -in … -nodes` over every file of the history (sum of each file's best run). */
  readonly openssl: { readonly bestMs: number; readonly medianMs: number; readonly error?: string };
  readonly error?: string;
}

interface History {
  readonly ca: Certificate;
  readonly pairs: readonly { readonly key: KeyObject; readonly cert: Certificate }[];
}

/** A small CA and three successive S/MIME certificates for one address, each for its own key. */
async function makeHistory(keys: readonly KeyObject[]): Promise<History> {
  const caKey = keys[0]!;
  const caPublic = createPublicKey(caKey);
  const caSpki = caPublic.export({ format: 'der', type: 'spki' });
  const caKid = keyIdentifier(caSpki);
  const caName = encodeName([['O', 'Keyfleet Bench'], ['CN', 'PKCS#12 Bench CA']]);
  const signer = makeSigner(caPublic, (scheme, data) => Promise.resolve(createSignature(scheme, data, caKey)));
  const now = Date.now();
  const ca = decodeCertificate(
    await buildCertificate(
      { serialNumber: randomSerial(), issuer: caName, subject: caName, notBefore: new Date(now - 4 * 365 * DAY), notAfter: new Date(now + 365 * DAY), spki: caSpki, extensions: [basicConstraints(true), keyUsage(['keyCertSign', 'cRLSign']), subjectKeyIdentifier(caKid)] },
      signer,
    ),
  );
  const email = 'alice@bench.keyfleet.example';
  const pairs = [];
  for (let i = 0; i < 3; i++) {
    const key = keys[i + 1]!;
    const spki = createPublicKey(key).export({ format: 'der', type: 'spki' });
    const start = now - (3 - i) * 365 * DAY;
    const der = await buildCertificate(
      {
        serialNumber: randomSerial(),
        issuer: caName,
        subject: encodeName([['O', 'Keyfleet Bench'], ['CN', email]]),
        notBefore: new Date(start),
        notAfter: new Date(start + 400 * DAY),
        spki,
        extensions: [
          basicConstraints(false),
          keyUsage(['digitalSignature', 'keyEncipherment']),
          extKeyUsage([OID.emailProtection]),
          subjectAltName({ emails: [email], upns: [] })!,
          subjectKeyIdentifier(keyIdentifier(spki)),
          authorityKeyIdentifier(caKid),
        ],
      },
      signer,
    );
    pairs.push({ key, cert: decodeCertificate(der) });
  }
  return { ca, pairs };
}

function timeRead(files: readonly Uint8Array[], minSeconds: number): { readMs: number; readsPerSec: number; iterations: number } {
  const readAll = (): void => {
    let keys = 0;
    for (const f of files) {
      const c = readPkcs12(f, PASSWORD);
      keys += c.keys.filter((k) => k.certificate !== undefined).length;
    }
    if (keys !== 3) throw new Error(`readPkcs12 found ${keys} key+certificate pairs, expected 3`);
  };
  for (let i = 0; i < 5; i++) readAll();
  let n = 0;
  const t0 = performance.now();
  while (n < 10 || performance.now() - t0 < minSeconds * 1000) {
    readAll();
    n++;
  }
  const ms = (performance.now() - t0) / n;
  return { readMs: ms, readsPerSec: 1000 / ms, iterations: n };
}

function opensslRead(paths: readonly string[], keysPerFile: number, runs: number): Pkcs12Case['openssl'] {
  const timings: ProcessTiming[] = paths.map((p) =>
    timeCommand('openssl', ['pkcs12', '-in', p, '-nodes', '-passin', `pass:${PASSWORD}`], runs, (stdout) => {
      const found = stdout.match(/-----BEGIN PRIVATE KEY-----/g)?.length ?? 0;
      return found === keysPerFile ? undefined : `openssl printed ${found} private keys, expected ${keysPerFile}`;
    }),
  );
  const failed = timings.find((t) => t.error !== undefined);
  if (failed) return { bestMs: NaN, medianMs: NaN, error: failed.error! };
  return { bestMs: timings.reduce((s, t) => s + t.bestMs, 0), medianMs: timings.reduce((s, t) => s + t.medianMs, 0) };
}

export async function measurePkcs12(dir: string, keys: readonly KeyObject[], options: { readonly minSeconds: number; readonly opensslRuns: number }): Promise<Pkcs12Case[]> {
  const history = await makeHistory(keys);
  const caPem = join(dir, 'ca.pem');
  writeFileSync(caPem, encodePem('CERTIFICATE', history.ca.der));
  const cases: { label: string; paths: string[]; keysPerFile: number }[] = [];

  for (const [profile, args] of [
    ['modern', []],
    ['legacy', ['-certpbe', 'PBE-SHA1-3DES', '-keypbe', 'PBE-SHA1-3DES', '-macalg', 'sha1']],
  ] as const) {
    const paths = history.pairs.map((pair, i) => {
      const keyPem = join(dir, `key-${i}.pem`);
      const certPem = join(dir, `cert-${i}.pem`);
      writeFileSync(keyPem, pair.key.export({ format: 'pem', type: 'pkcs8' }));
      writeFileSync(certPem, encodePem('CERTIFICATE', pair.cert.der));
      const out = join(dir, `openssl-${profile}-${i}.p12`);
      execFileSync('openssl', ['pkcs12', '-export', '-inkey', keyPem, '-in', certPem, '-certfile', caPem, '-name', `alice (${i + 1})`, '-passout', `pass:${PASSWORD}`, ...args, '-out', out], { stdio: ['ignore', 'ignore', 'pipe'] });
      return out;
    });
    const what = profile === 'modern' ? 'AES-256-CBC, PBKDF2-SHA-256, SHA-256 MAC' : '3DES, SHA-1 MAC (iOS profile)';
    cases.push({ label: `openssl pkcs12 -export, 3 files (${what})`, paths, keysPerFile: 1 });
  }
  for (const profile of ['modern', 'legacy'] as const) {
    const out = join(dir, `keyfleet-${profile}.p12`);
    writeFileSync(out, writePkcs12(history.pairs.map((p, i) => ({ key: p.key, certificate: p.cert, chain: [history.ca], friendlyName: `alice (${i + 1})` })), PASSWORD, { profile }));
    const what = profile === 'modern' ? 'AES-256-CBC, PBKDF2-SHA-256, SHA-256 MAC' : '3DES, SHA-1 MAC';
    cases.push({ label: `writePkcs12, 1 file with 3 entries (${what})`, paths: [out], keysPerFile: 3 });
  }

  return cases.map((c) => {
    const files = c.paths.map((p) => new Uint8Array(readFileSync(p)));
    const bytes = files.reduce((s, f) => s + f.length, 0);
    const openssl = opensslRead(c.paths, c.keysPerFile, options.opensslRuns);
    try {
      return { label: c.label, files: files.length, bytes, ...timeRead(files, options.minSeconds), openssl };
    } catch (e) {
      return { label: c.label, files: files.length, bytes, readMs: NaN, readsPerSec: NaN, iterations: 0, openssl, error: e instanceof Error ? e.message : String(e) };
    }
  });
}
