/**
 * What the PKI commands share: the data directory, the store (SQLite under
 * --data, or PostgreSQL from KEYFLEET_DATABASE_URL), the default tenant,
 * the sealed KeyStore under the master key, and the CA's public URLs.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeyfleetError } from '../errors.ts';
import { SQLITE_FILE_NAME, openStore } from '../store/open.ts';
import type { Store, TenantStore } from '../store/store.ts';
import { resolveMasterKey } from '../ca/master-key.ts';
import { SealedKeyStore } from '../ca/keystore.ts';
import { openCa } from '../ca/setup.ts';
import type { CertificateAuthority } from '../ca/authority.ts';
import { type CaOptions, ISSUING_CA_ID } from '../ca/authority.ts';

export const DEFAULT_TENANT = 'default';
const SETTINGS_FILE = 'settings.json';

/** Settings written by `ca init` beside the database: where clients reach this service. */
export interface Settings {
  /** e.g. http://pki.example.com:8080 — CRL distribution points and OCSP URLs are made from it. */
  readonly baseUrl: string;
}

export interface Context {
  readonly dataDir: string;
  readonly store: Store;
  readonly tenant: TenantStore;
  close(): Promise<void>;
}

/**
 * Opens the store under `dataDir`. Unless `create` is set (`ca init`,
 * `serve --init`), a data directory without a database is refused rather
 * than created: a mistyped --data should not leave an empty database behind.
 */
export async function openContext(dataDir = './data', options: { readonly create?: boolean } = {}): Promise<Context> {
  const usesSqlite = !process.env['KEYFLEET_DATABASE_URL'];
  if (usesSqlite && !options.create && !existsSync(join(dataDir, SQLITE_FILE_NAME))) {
    throw new KeyfleetError('KF_CA_NOT_INITIALISED', `no Keyfleet data in ${dataDir}: run \`keyfleet ca init --data ${dataDir}\` first`);
  }
  const store = await openStore({ dataDir });
  await store.ensureTenant(DEFAULT_TENANT, 'Default');
  return { dataDir, store, tenant: store.forTenant(DEFAULT_TENANT), close: () => store.close() };
}

export function readSettings(dataDir: string): Settings | undefined {
  const path = join(dataDir, SETTINGS_FILE);
  if (!existsSync(path)) return undefined;
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<Settings>;
    if (typeof parsed.baseUrl !== 'string') throw new Error('baseUrl missing');
    return { baseUrl: parsed.baseUrl };
  } catch (e) {
    throw new KeyfleetError('KF_USAGE', `${path} is not valid: fix or remove it`, { cause: e });
  }
}

export function writeSettings(dataDir: string, settings: Settings): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dataDir, SETTINGS_FILE), `${JSON.stringify(settings, null, 2)}\n`);
}

export function checkBaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new KeyfleetError('KF_USAGE', `--base-url must be an http(s) URL, got "${url}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new KeyfleetError('KF_USAGE', '--base-url must be an http(s) URL');
  return parsed.origin + parsed.pathname.replace(/\/$/, '');
}

/** CRL and OCSP locations in issued certificates, served by `keyfleet serve`. */
export function caUrls(settings: Settings | undefined): NonNullable<CaOptions['urls']> {
  if (!settings) return {};
  return { crl: [`${settings.baseUrl}/crl/issuing.crl`], ocsp: [`${settings.baseUrl}/ocsp`], caIssuers: [`${settings.baseUrl}/ca/issuing.crt`] };
}

export function keyStoreFor(dataDir: string, create = false): SealedKeyStore {
  return new SealedKeyStore(resolveMasterKey({ dataDir, create }).key);
}

export async function openAuthority(ctx: Context): Promise<CertificateAuthority> {
  // Say "not set up" before asking for the master key, which a fresh --data lacks too.
  if (!(await ctx.tenant.ca.getCa(ISSUING_CA_ID))) {
    throw new KeyfleetError('KF_CA_NOT_INITIALISED', `no certificate authority in ${ctx.dataDir}: run \`keyfleet ca init --data ${ctx.dataDir}\` first`);
  }
  return openCa({ store: ctx.tenant.ca, keyStore: keyStoreFor(ctx.dataDir), urls: caUrls(readSettings(ctx.dataDir)) });
}
