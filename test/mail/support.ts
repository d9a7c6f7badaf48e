/**
 * Devices for the mail tests: a real keystore per device filled from the
 * test PKI the way the Company Portal agent fills it (SCEP signing
 * certificate, imported encryption history, trusted root, Outlook's managed
 * configuration), and a MailClient reading it through the device adapter.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestPki, createTestPki } from '../support/pki.ts';
import type { EntityName } from '../pki/pki.ts';
import { type Certificate, loadCertificates } from '../../src/x509/certificate.ts';
import { loadPrivateKey } from '../../src/smime/keys.ts';
import { DeviceKeystore, defaultKeyFilePath } from '../../src/device/keystore.ts';
import { keystoreContactBook, keystoreMailKeys } from '../../src/device/mail-keys.ts';
import { type CertificateDirectory, MailClient, OUTLOOK_BUNDLE_ID, OutlookKeys, type SmimePreferences } from '../../src/mail/index.ts';

export interface MailFixture {
  readonly pki: TestPki;
  readonly dir: string;
  cert(n: EntityName): Certificate;
  key(n: EntityName): ReturnType<typeof loadPrivateKey>;
  cleanup(): void;
}

export async function mailFixture(): Promise<MailFixture> {
  const pki = await createTestPki();
  const dir = mkdtempSync(join(tmpdir(), 'keyfleet-mail-'));
  return {
    pki,
    dir,
    cert: (n) => loadCertificates(readFileSync(pki.entity(n).certPath))[0]!,
    key: (n) => loadPrivateKey(readFileSync(pki.entity(n).keyPath)),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Outlook's managed S/MIME keys as the policy compiler emits them (booleanType "true"/"false"). */
export function outlookSettings(values: Partial<Record<keyof typeof OutlookKeys, boolean | string>>) {
  return Object.entries(values).map(([k, v]) => ({
    appConfigKey: OutlookKeys[k as keyof typeof OutlookKeys],
    appConfigKeyType: typeof v === 'boolean' ? 'booleanType' : 'stringType',
    appConfigKeyValue: String(v),
  }));
}

export interface DeviceSpec {
  readonly name: string;
  readonly account: string;
  readonly signing?: readonly EntityName[];
  readonly encryption?: readonly EntityName[];
  readonly roots?: readonly EntityName[];
  readonly settings?: ReturnType<typeof outlookSettings>;
  readonly preferences?: SmimePreferences;
  readonly directories?: readonly CertificateDirectory[];
}

export interface Device {
  readonly keystore: DeviceKeystore;
  readonly mail: MailClient;
}

let n = 0;

/** A device's keystore as the agent leaves it, and its mail app. */
export async function device(f: MailFixture, spec: DeviceSpec): Promise<Device> {
  const path = join(f.dir, `${spec.name}-${++n}.kfks`);
  const keystore = await DeviceKeystore.create(path, { kind: 'key-file', path: defaultKeyFilePath(path) });
  await keystore.update((d) => {
    for (const s of spec.signing ?? []) d.addSigning({ profileId: 'scep-signing', certificate: f.cert(s), key: f.key(s), chain: [f.cert('intermediate')] });
    for (const e of spec.encryption ?? []) d.addEncryption({ pfxId: `pfx-${e}`, certificate: f.cert(e), key: f.key(e) });
    for (const r of spec.roots ?? ['root']) d.addTrustedRoot({ certificate: f.cert(r), profileId: 'root-profile' });
    d.setAppConfiguration({ bundleId: OUTLOOK_BUNDLE_ID, settings: spec.settings ?? outlookSettings({ smimeEnabled: true }) });
  });
  const mail = new MailClient({
    account: spec.account,
    keys: keystoreMailKeys(keystore),
    contactBook: keystoreContactBook(keystore),
    ...(spec.directories ? { directories: spec.directories } : {}),
    ...(spec.preferences ? { preferences: spec.preferences } : {}),
  });
  return { keystore, mail };
}

export const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');
