/** Inputs for the resource tests: the seed's resources as API bodies, and an openssl-made PKCS#12. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildServer } from '../../src/http/server.ts';
import type { VppSourceFor } from '../../src/policy/vpp.ts';
import type { Harness } from '../admin/support.ts';
import { runOk } from '../support/exec.ts';
import type { Identity } from '../policy/fixtures.ts';
import { scepInput } from '../policy/helpers.ts';

export const OUTLOOK = { kind: 'iosStoreApp', displayName: 'Microsoft Outlook', bundleId: 'com.microsoft.Office.Outlook', appStoreUrl: 'https://apps.apple.com/app/microsoft-outlook/id951937596' };

export function trustedRoot(der: Uint8Array) {
  return { kind: 'iosTrustedRootCertificate', displayName: 'Keyfleet root', certFileName: 'root.cer', trustedRootCertificate: Buffer.from(der).toString('base64') };
}

/** The SCEP profile fixture of the policy tests, pointing at a stored trusted-root profile. */
export function scepProfile(rootCertificateId: string) {
  return scepInput({ rootCertificateId });
}

export const PKCS_ENCRYPTION = { kind: 'iosImportedPfxCertificateProfile', displayName: 'Encryption history', intendedPurpose: 'smimeEncryption' };

/** The seed's steps 2–12. */
export function seedPolicy(appId: string, signingId: string, encryptionId: string, overrides: Record<string, unknown> = {}) {
  return {
    displayName: 'Outlook S/MIME',
    description: 'Signing by SCEP, encryption history imported',
    deviceEnrollmentType: 'managedDevices',
    platform: 'iOS/iPadOS',
    targetedMobileApps: [appId],
    enableSmime: true,
    deploySmimeCertificates: true,
    signingCertificateProfileType: 'scep',
    signingCertificateProfileId: signingId,
    encryptionCertificateProfileType: 'pkcsImported',
    encryptionCertificateProfileId: encryptionId,
    endUserNotification: 'companyPortal',
    ...overrides,
  };
}

/** A PKCS#12 of the identity made by `openssl pkcs12 -export` (its defaults: AES-256-CBC, PBKDF2, SHA-256 MAC). */
export async function opensslPfx(identity: Identity, password: string): Promise<Uint8Array> {
  const dir = mkdtempSync(join(tmpdir(), 'kf-resources-pfx-'));
  try {
    writeFileSync(join(dir, 'key.pem'), identity.key.export({ type: 'pkcs8', format: 'pem' }));
    writeFileSync(join(dir, 'cert.pem'), `-----BEGIN CERTIFICATE-----\n${Buffer.from(identity.cert.der).toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE-----\n`);
    await runOk('openssl', ['pkcs12', '-export', '-inkey', join(dir, 'key.pem'), '-in', join(dir, 'cert.pem'), '-passout', `pass:${password}`, '-out', join(dir, 'id.p12')]);
    return new Uint8Array(readFileSync(join(dir, 'id.p12')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The admin harness's store and tokens behind a second server that has VPP sources configured
 * (test/admin/support.ts builds its server without them). Closing it closes only that server.
 */
export async function withVpp(h: Harness, vpp: VppSourceFor): Promise<Harness> {
  const app = await buildServer({ admin: { store: h.store }, vpp });
  return {
    ...h,
    app,
    request(method, url, options = {}) {
      const token = options.token === undefined ? h.tokens.administrator : options.token;
      const headers: Record<string, string> = {};
      if (token !== null) headers['authorization'] = `Bearer ${token}`;
      const payload = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
      if (payload !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
      return app.inject({ method: method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) });
    },
    close: () => app.close(),
  };
}
