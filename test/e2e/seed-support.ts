/**
 * Plumbing for the seed scenario (seed-scenario.test.ts): the `keyfleet`
 * command as a script runs it against a running server (KEYFLEET_URL,
 * KEYFLEET_TOKEN), a coded one-line refusal, Outlook's keys and a strict
 * reader for the XML property list `policies settings --plist` prints, the
 * SCEP profile, PKCS#12 files made with our writer from the test PKI and the
 * custody check on what the service stored, and the admin-API calls the
 * command does not wrap yet (effective state, apps other than Outlook).
 */
import assert from 'node:assert/strict';
import { constants, createPrivateKey, privateDecrypt } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readPkcs12, writePkcs12 } from '../../src/pkcs12/index.ts';
import { decodeCertificate, loadCertificates } from '../../src/x509/certificate.ts';
import { type RunResult, describeRun, run } from '../support/exec.ts';
import { stderrLines } from '../support/keyfleet.ts';
import type { TestEntity } from '../support/pki.ts';
import { withTenant } from './support.ts';

const node = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/keyfleet', import.meta.url));
const compileCache = join(tmpdir(), 'keyfleet-test-compile-cache');

/** A port nobody listens on right now: `serve --init` puts its base URL into certificates, so it needs the real port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface AdminCli {
  run(args: readonly string[], env?: Readonly<Record<string, string>>): Promise<RunResult>;
  /** Exit 0 required; stdout. */
  ok(args: readonly string[]): Promise<string>;
  /** `args --json`, exit 0 required, parsed. */
  json<T = Record<string, unknown>>(args: readonly string[]): Promise<T>;
}

/** `keyfleet …` with KEYFLEET_URL and KEYFLEET_TOKEN set, run in `cwd`. */
export function adminCli(url: string, token: string, cwd: string): AdminCli {
  const cli: AdminCli = {
    run: (args, env = {}) =>
      run(node, [bin, ...args], { cwd, env: { NODE_COMPILE_CACHE: compileCache, KEYFLEET_URL: url, KEYFLEET_TOKEN: token, ...env }, timeoutMs: 60_000 }),
    async ok(args) {
      const r = await cli.run(args);
      assert.equal(r.status, 0, describeRun(r));
      return r.stdout.toString('utf8');
    },
    async json<T>(args: readonly string[]) {
      const out = await cli.ok([...args, '--json']);
      try {
        return JSON.parse(out) as T;
      } catch {
        assert.fail(`keyfleet ${args.join(' ')} --json printed no JSON:\n${out}`);
      }
    },
  };
  return cli;
}

/**
 * A refusal as the command promises it: a non-zero exit (2 for KF_USAGE,
 * 1 for any other code), one coded line on stderr saying why, nothing on stdout.
 */
export function assertRefusal(r: RunResult, why: RegExp): string {
  const what = describeRun(r);
  assert.equal(r.timedOut, false, what);
  assert.notEqual(r.status, 0, `expected a refusal\n${what}`);
  const lines = stderrLines(r);
  assert.equal(lines.length, 1, `expected one line on stderr\n${what}`);
  const m = /^keyfleet: (KF_[A-Z0-9_]+): (.+)$/.exec(lines[0]!);
  assert.ok(m, `not a coded one-line error\n${what}`);
  assert.equal(r.status, m[1] === 'KF_USAGE' ? 2 : 1, `exit status for ${m[1]}\n${what}`);
  assert.doesNotMatch(m[2]!, /internal error|\bat .+:\d+:\d+|TypeError|RangeError|ReferenceError|undefined|\[object /, `not a readable reason\n${what}`);
  assert.match(m[2]!, why, what);
  assert.equal(r.stdout.length, 0, `a refusal prints nothing on stdout\n${what}`);
  return lines[0]!;
}

// --- the policy's compiled settings and the property list --------------------------

export interface Setting {
  readonly appConfigKey: string;
  readonly appConfigKeyType: string;
  readonly appConfigKeyValue: string;
}

/** What `policies settings --json` prints. */
export interface Compiled {
  readonly settings: readonly Setting[];
  readonly plist: string;
}

export const OUTLOOK = 'com.microsoft.outlook.Mail.SMIMEEnabled';
/** Keyfleet's own keys for what Outlook has no public key for (src/policy/compile.ts). */
export const KEYFLEET = 'com.keyfleet.smime.';
/** Outlook for iOS's S/MIME keys and their types (REFERENCE.md, from Microsoft's Outlook app configuration docs). */
export const OUTLOOK_KEYS: Readonly<Record<string, 'booleanType' | 'stringType'>> = {
  [OUTLOOK]: 'booleanType',
  [`${OUTLOOK}.UserChangeAllowed`]: 'booleanType',
  [`${OUTLOOK}.EncryptAllMail`]: 'booleanType',
  [`${OUTLOOK}.EncryptAllMail.UserChangeAllowed`]: 'booleanType',
  [`${OUTLOOK}.SignAllMail`]: 'booleanType',
  [`${OUTLOOK}.SignAllMail.UserChangeAllowed`]: 'booleanType',
  [`${OUTLOOK}.LDAPHostName`]: 'stringType',
};

export type PlistValue = boolean | string | number;

const xmlEntities: Record<string, string> = { '&lt;': '<', '&gt;': '>', '&amp;': '&', '&quot;': '"', '&apos;': "'" };
const unescapeXml = (s: string) => s.replace(/&(lt|gt|amp|quot|apos);/g, (e) => xmlEntities[e]!);

/**
 * The root <dict> of an XML property list (Apple's PropertyList-1.0 DTD)
 * holding only scalars, read strictly: the XML declaration, the plist
 * DOCTYPE, `<plist version="1.0">`, then key/value pairs and nothing else.
 */
export function parsePlistDict(xml: string): Map<string, PlistValue> {
  const doc = /^<\?xml version="1\.0" encoding="UTF-8"\?>\s*<!DOCTYPE plist PUBLIC "-\/\/Apple\/\/DTD PLIST 1\.0\/\/EN" "http:\/\/www\.apple\.com\/DTDs\/PropertyList-1\.0\.dtd">\s*<plist version="1\.0">\s*<dict>([\s\S]*?)<\/dict>\s*<\/plist>\s*$/.exec(xml);
  assert.ok(doc, `not an XML property list with one <dict>:\n${xml}`);
  const body = doc[1]!;
  const pair = /\s*<key>([^<]*)<\/key>\s*(?:<(true|false)\/>|<string>([^<]*)<\/string>|<integer>(-?[0-9]+)<\/integer>|<real>([^<]*)<\/real>)\s*/y;
  const out = new Map<string, PlistValue>();
  while (pair.lastIndex < body.length) {
    const at = pair.lastIndex;
    const m = pair.exec(body);
    assert.ok(m, `plist: unexpected content at "${body.slice(at, at + 60)}"`);
    const key = unescapeXml(m[1]!);
    assert.ok(!out.has(key), `plist: key ${key} appears twice`);
    const value = m[2] !== undefined ? m[2] === 'true' : m[3] !== undefined ? unescapeXml(m[3]) : m[4] !== undefined ? Number(m[4]) : Number(m[5]);
    out.set(key, value);
  }
  return out;
}

/** The plist holds exactly the settings, in order: booleans as <true/>/<false/>, strings as <string>. */
export function assertPlistMatches(plist: ReadonlyMap<string, PlistValue>, settings: readonly Setting[]): void {
  assert.deepEqual([...plist.keys()], settings.map((s) => s.appConfigKey));
  for (const s of settings) {
    const expected = s.appConfigKeyType === 'booleanType' ? s.appConfigKeyValue === 'true' : s.appConfigKeyValue;
    assert.equal(plist.get(s.appConfigKey), expected, s.appConfigKey);
  }
}

// --- certificate profiles -----------------------------------------------------------

/** `profiles create-scep --file` fields: an S/MIME signing certificate per device and user, from `scepUrl`, under the trusted root. */
export function scepProfileFields(scepUrl: string, rootCertificateId: string) {
  return {
    displayName: 'S/MIME signing (SCEP)',
    description: 'A signing certificate unique to each device and user',
    subjectNameFormat: 'commonNameAsEmail',
    subjectAlternativeNameType: ['emailAddress'],
    keyUsage: ['digitalSignature'],
    keySize: 2048,
    extendedKeyUsages: [{ name: 'Secure Email', objectIdentifier: '1.3.6.1.5.5.7.3.4' }],
    certificateValidityPeriodValue: 1,
    certificateValidityPeriodScale: 'years',
    renewalThresholdPercentage: 20,
    scepServerUrls: [scepUrl],
    rootCertificateId,
  };
}

// --- PKCS#12 ----------------------------------------------------------------------

/**
 * The entity's key, certificate and issuing CAs as a PKCS#12 file made by our
 * writer: 'legacy' is what Windows exports (3DES keys, SHA-1 MAC), 'modern'
 * PBES2/AES-256 with a SHA-256 MAC.
 */
export function pfxOf(entity: TestEntity, password: string, profile: 'modern' | 'legacy'): Uint8Array {
  return writePkcs12(
    [{
      key: createPrivateKey(entity.keyPem),
      certificate: decodeCertificate(entity.certDer),
      chain: entity.chainPath === undefined ? [] : loadCertificates(readFileSync(entity.chainPath)),
      friendlyName: `${entity.spec.commonName} (${entity.name})`,
    }],
    password,
    { profile },
  );
}

export interface ImportedPfx {
  /** The userPfxCertificate id. */
  readonly id: string;
  /** The file the admin imported. */
  readonly pfx: Uint8Array;
  readonly password: string;
  /** The PKCS#8 private key inside. */
  readonly keyDer: Uint8Array;
}

/**
 * Intune's custody model, checked in the database beside the running server:
 * each PFX is stored exactly as imported (still locked by its password), the
 * password only RSA-OAEP-SHA512 encrypted to the connector, whose private
 * key alone recovers it and opens the PFX; no password is in any database
 * file in the clear.
 */
export async function assertPfxCustody(dataDir: string, connectorKeyPath: string, imports: readonly ImportedPfx[]): Promise<void> {
  const connector = createPrivateKey(readFileSync(connectorKeyPath));
  await withTenant(dataDir, async (t) => {
    for (const expected of imports) {
      const stored = await t.resources.getUserPfxCertificate(expected.id);
      assert.ok(stored, expected.id);
      assert.deepEqual(Buffer.from(stored.encryptedPfxBlob), Buffer.from(expected.pfx));
      const password = privateDecrypt({ key: connector, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha512' }, stored.encryptedPfxPassword).toString('utf8');
      assert.equal(password, expected.password);
      const [opened] = readPkcs12(stored.encryptedPfxBlob, password).keys;
      assert.deepEqual(opened?.key.export({ format: 'der', type: 'pkcs8' }), Buffer.from(expected.keyDer));
    }
  });
  for (const f of readdirSync(dataDir).filter((n) => n.startsWith('keyfleet.db'))) {
    const bytes = readFileSync(join(dataDir, f));
    for (const { id, password } of imports) {
      assert.equal(bytes.includes(Buffer.from(password, 'utf8')) || bytes.includes(Buffer.from(password, 'utf16le')), false, `the password of ${id} is in ${f} in the clear`);
    }
  }
}

// --- what the command does not wrap -----------------------------------------------

/** One admin-API call with the token, for the few things `keyfleet` has no verb for. */
export async function adminApi(origin: string, token: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, unknown>> {
  const r = await fetch(new URL(path, origin), {
    method,
    headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}
