/** Shared builders for the policy tests: the seed's resources and a refusal matcher. */
import assert from 'node:assert/strict';
import { isKeyfleetError, type ErrorCode } from '../../src/errors.ts';
import type { PolicyRefusal } from '../../src/policy/refusal.ts';
import type { CertificateProfileResource, MobileApp, ScepProfile, Stored } from '../../src/policy/resources.ts';
import type { PolicyLookups, SmimePolicy } from '../../src/policy/smime-policy.ts';

export function refusal(detail: PolicyRefusal, code: ErrorCode = 'KF_USAGE') {
  return (e: unknown): boolean => {
    assert.ok(isKeyfleetError(e), `expected a KeyfleetError, got ${String(e)}`);
    assert.equal(e.detail, detail, e.message);
    assert.equal(e.code, code);
    return true;
  };
}

export const outlook: Stored<MobileApp> = { id: 'app-outlook', kind: 'iosStoreApp', displayName: 'Microsoft Outlook', bundleId: 'com.microsoft.Office.Outlook', appStoreUrl: 'https://apps.apple.com/app/microsoft-outlook/id951937596' };
export const teams: Stored<MobileApp> = { id: 'app-teams', kind: 'iosStoreApp', displayName: 'Microsoft Teams', bundleId: 'com.microsoft.skype.teams' };

export function scepInput(overrides: Partial<ScepProfile> = {}): ScepProfile {
  return {
    kind: 'iosScepCertificateProfile',
    displayName: 'S/MIME signing (SCEP)',
    subjectNameFormat: 'commonNameAsEmail',
    subjectAlternativeNameType: ['emailAddress'],
    keyUsage: ['digitalSignature'],
    keySize: 2048,
    extendedKeyUsages: [{ name: 'Secure Email', objectIdentifier: '1.3.6.1.5.5.7.3.4' }],
    certificateValidityPeriodValue: 1,
    certificateValidityPeriodScale: 'years',
    renewalThresholdPercentage: 20,
    scepServerUrls: ['https://keyfleet.example.test/scep'],
    rootCertificateId: 'root',
    ...overrides,
  };
}

export function profilesFor(rootDer: Uint8Array): Map<string, CertificateProfileResource> {
  const profiles: CertificateProfileResource[] = [
    { id: 'root', kind: 'iosTrustedRootCertificate', displayName: 'Root', certFileName: 'root.cer', trustedRootCertificate: Buffer.from(rootDer).toString('base64') },
    { id: 'scep-sign', ...scepInput() },
    { id: 'scep-encrypt-only', ...scepInput({ keyUsage: ['keyEncipherment'] }) },
    { id: 'scep-no-root', ...scepInput({ rootCertificateId: 'gone' }) },
    { id: 'scep-root-is-pfx', ...scepInput({ rootCertificateId: 'pfx-enc' }) },
    { id: 'pfx-enc', kind: 'iosImportedPfxCertificateProfile', displayName: 'Encryption history', intendedPurpose: 'smimeEncryption' },
    { id: 'pfx-sign', kind: 'iosImportedPfxCertificateProfile', displayName: 'Imported signing', intendedPurpose: 'smimeSigning' },
  ];
  return new Map(profiles.map((p) => [p.id, p]));
}

export function lookups(rootDer: Uint8Array, derivedCredentialIssuer: string | undefined = undefined): PolicyLookups {
  const apps = new Map([outlook, teams].map((a) => [a.id, a]));
  const profiles = profilesFor(rootDer);
  // Async, as a store's would be.
  return { app: async (id) => apps.get(id), profile: async (id) => profiles.get(id), derivedCredentialIssuer };
}

/** The seed's steps 2–12: SCEP signing, imported encryption, Company Portal notification. */
export function seedPolicy(overrides: Record<string, unknown> = {}): SmimePolicy {
  return {
    displayName: 'Outlook S/MIME',
    description: 'Signing by SCEP, encryption history imported',
    deviceEnrollmentType: 'managedDevices',
    platform: 'iOS/iPadOS',
    targetedMobileApps: ['app-outlook'],
    enableSmime: true,
    deploySmimeCertificates: true,
    signingCertificateProfileType: 'scep',
    signingCertificateProfileId: 'scep-sign',
    encryptionCertificateProfileType: 'pkcsImported',
    encryptionCertificateProfileId: 'pfx-enc',
    endUserNotification: 'companyPortal',
    ...overrides,
  } as SmimePolicy;
}

/** A copy without the named fields (to unset what seedPolicy sets). */
export function without<T extends object>(o: T, ...keys: string[]): T {
  const copy = { ...o } as Record<string, unknown>;
  for (const k of keys) delete copy[k];
  return copy as T;
}
