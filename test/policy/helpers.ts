/** Shared builders for the policy tests: the seed's resources and a refusal matcher. */
import assert from 'node:assert/strict';
import { isKeyfleetError, type ErrorCode } from '../../src/errors.ts';
import type { DerivedCredentialIssuer } from '../../src/policy/derived-credential.ts';
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

/** An Outlook for iOS licensed through a VPP token, and a VPP app that is not Outlook. */
export const outlookVpp: Stored<MobileApp> = {
  id: 'app-outlook-vpp', kind: 'iosVppApp', displayName: 'Microsoft Outlook', bundleId: 'com.microsoft.Office.Outlook', vppTokenId: 'vpp-1', appleId: '951937596', totalLicenseCount: 500, usedLicenseCount: 12,
};
export const teamsVpp: Stored<MobileApp> = { id: 'app-teams-vpp', kind: 'iosVppApp', displayName: 'Microsoft Teams', bundleId: 'com.microsoft.skype.teams', vppTokenId: 'vpp-1', appleId: '1113153706' };

export function lookups(rootDer: Uint8Array, derivedCredentialIssuer: DerivedCredentialIssuer | undefined = undefined): PolicyLookups {
  const apps = new Map([outlook, teams, outlookVpp, teamsVpp].map((a) => [a.id, a]));
  const profiles = profilesFor(rootDer);
  // Async, as a store's would be.
  return { app: async (id) => apps.get(id), profile: async (id) => profiles.get(id), derivedCredentialIssuer: async () => derivedCredentialIssuer };
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

/** One app of a VPP answer file, by its Apple fields and its metadata. */
export interface VppFixtureApp {
  readonly adamId: string;
  readonly bundleId: string;
  readonly name: string;
  readonly totalCount: number;
  readonly assignedCount: number;
}

export const OUTLOOK_VPP: VppFixtureApp = { adamId: '951937596', bundleId: 'com.microsoft.Office.Outlook', name: 'Microsoft Outlook', totalCount: 500, assignedCount: 12 };
export const TEAMS_VPP: VppFixtureApp = { adamId: '1113153706', bundleId: 'com.microsoft.skype.teams', name: 'Microsoft Teams', totalCount: 200, assignedCount: 3 };

/**
 * A VPP file as src/policy/vpp.ts reads it: Apple's Get Assets answer (as documented, with the fields
 * we do not use) and the content lookup's `results` beside it; plus a book, which the sync leaves out.
 */
export function vppAnswer(apps: readonly VppFixtureApp[] = [OUTLOOK_VPP, TEAMS_VPP]): Record<string, unknown> {
  const asset = (a: VppFixtureApp) => ({
    adamId: a.adamId,
    assignedCount: a.assignedCount,
    availableCount: a.totalCount - a.assignedCount,
    deviceAssignable: true,
    pricingParam: 'STDQ',
    productType: 'App',
    retiredCount: 0,
    revocable: true,
    supportedPlatforms: ['iOS', 'macOS'],
    totalCount: a.totalCount,
  });
  const book = { adamId: '1480309001', assignedCount: 0, availableCount: 10, deviceAssignable: false, pricingParam: 'STDQ', productType: 'Book', retiredCount: 0, revocable: false, totalCount: 10 };
  return {
    assets: [...apps.map(asset), book],
    currentPageIndex: 0,
    size: apps.length + 1,
    totalPages: 1,
    tokenExpirationDate: '2030-01-01T00:00:00+0000',
    uId: '2049025000431439',
    versionId: '3a4b6c',
    results: Object.fromEntries(apps.map((a) => [a.adamId, { bundleId: a.bundleId, name: a.name, artistName: 'Microsoft Corporation', url: `https://apps.apple.com/us/app/id${a.adamId}` }])),
  };
}
