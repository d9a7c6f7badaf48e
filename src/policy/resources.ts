/**
 * What an administrator sets up before a device receives anything (issue 4
 * "Resources"; the seed's "Add the Microsoft Outlook app" and
 * "Prerequisites"): mobile apps, trusted-root certificate profiles, SCEP
 * certificate profiles and PKCS-imported certificate profiles. Field names
 * follow Microsoft Graph's Intune resources (REFERENCE.md "Graph shapes")
 * so an Intune admin recognises them; where Graph serialises a flags enum as
 * a comma-separated string (subjectAlternativeNameType, keyUsage) we take a
 * JSON array of the same names, and navigation properties become `…Id`
 * references (rootCertificateId).
 *
 * Each input has one JSON Schema (json-schema.ts) and a `parse…` function
 * that checks the schema and then what a schema cannot express.
 */
import { OID } from '../asn1/oids.ts';
import { type CertificateProfile, type ValidityScale, ValidityScales, checkProfile } from '../ca/templates.ts';
import { type SubjectAltNameType, type SubjectNameFormat, SubjectAltNameTypes, SubjectNameFormats, parseSubjectFormat, subjectFormatString } from '../ca/subject-name.ts';
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import { type Certificate, decodeCertificate } from '../x509/certificate.ts';
import { type JsonSchema, checkSchema } from './json-schema.ts';
import { refuse } from './refusal.ts';

/** Outlook for iOS in the App Store (the seed, "Add the Microsoft Outlook app"). */
export const OUTLOOK_IOS_BUNDLE_ID = 'com.microsoft.Office.Outlook';

/** A stored resource: the input plus the id the store gave it. */
export type Stored<T> = T & { readonly id: string };

/** Looks a resource up by id; a store method or a Map's `get` both fit. */
export type Lookup<T> = (id: string) => T | undefined | Promise<T | undefined>;

// ---------------------------------------------------------------- shared pieces

const noControl = '^[^\\u0000-\\u001f\\u007f]*$';
export const displayNameSchema = { type: 'string', minLength: 1, maxLength: 256, pattern: noControl } as const satisfies JsonSchema;
export const descriptionSchema = { type: 'string', maxLength: 1024 } as const satisfies JsonSchema;
export const idSchema = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' } as const satisfies JsonSchema;

// ---------------------------------------------------------------- mobile apps

/** Graph `iosStoreApp`: an App Store app the device installs by itself. */
export interface IosStoreApp {
  readonly kind: 'iosStoreApp';
  readonly displayName: string;
  readonly description?: string;
  readonly publisher?: string;
  readonly bundleId: string;
  readonly appStoreUrl?: string;
}

/**
 * Graph `iosVppApp`: an app whose licences come from an Apple Volume
 * Purchase Program token, recorded by a sync (vpp.ts).
 */
export interface IosVppApp {
  readonly kind: 'iosVppApp';
  readonly displayName: string;
  readonly description?: string;
  readonly publisher?: string;
  readonly bundleId: string;
  readonly appStoreUrl?: string;
  /** The VPP token the licences belong to. */
  readonly vppTokenId: string;
  /** Apple's adamId for the asset. */
  readonly appleId?: string;
  readonly totalLicenseCount?: number;
  readonly usedLicenseCount?: number;
  /** Graph `vppLicensingType`: whether licences can go to users, to devices. */
  readonly licensingType?: { readonly supportsUserLicensing: boolean; readonly supportsDeviceLicensing: boolean };
}

export type MobileApp = IosStoreApp | IosVppApp;

/** Apple bundle ids: alphanumerics, hyphens and periods, reverse-DNS style. */
export const bundleIdSchema = { type: 'string', minLength: 3, maxLength: 155, pattern: '^[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$' } as const satisfies JsonSchema;
export const appStoreUrlSchema = { type: 'string', maxLength: 2048, pattern: '^https://(apps|itunes)\\.apple\\.com/[^\\s]*$' } as const satisfies JsonSchema;
const count = { type: 'integer', minimum: 0, maximum: 10_000_000 } as const satisfies JsonSchema;

export const iosStoreAppSchema = {
  $id: 'keyfleet:iosStoreApp',
  title: 'iOS store app',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'displayName', 'bundleId'],
  properties: {
    kind: { const: 'iosStoreApp' },
    displayName: displayNameSchema,
    description: descriptionSchema,
    publisher: displayNameSchema,
    bundleId: bundleIdSchema,
    appStoreUrl: appStoreUrlSchema,
  },
} as const satisfies JsonSchema;

export const iosVppAppSchema = {
  $id: 'keyfleet:iosVppApp',
  title: 'iOS app from an Apple Volume Purchase Program token',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'displayName', 'bundleId', 'vppTokenId'],
  properties: {
    kind: { const: 'iosVppApp' },
    displayName: displayNameSchema,
    description: descriptionSchema,
    publisher: displayNameSchema,
    bundleId: bundleIdSchema,
    appStoreUrl: appStoreUrlSchema,
    vppTokenId: idSchema,
    appleId: { type: 'string', maxLength: 32, pattern: '^[0-9]+$' },
    totalLicenseCount: count,
    usedLicenseCount: count,
    licensingType: {
      type: 'object',
      additionalProperties: false,
      required: ['supportsUserLicensing', 'supportsDeviceLicensing'],
      properties: { supportsUserLicensing: { type: 'boolean' }, supportsDeviceLicensing: { type: 'boolean' } },
    },
  },
} as const satisfies JsonSchema;

export function parseMobileApp(json: unknown): MobileApp {
  const kind = typeof json === 'object' && json !== null ? (json as { kind?: unknown }).kind : undefined;
  if (kind === 'iosStoreApp') return checkSchema<IosStoreApp>(iosStoreAppSchema, json, 'mobile app');
  if (kind === 'iosVppApp') {
    const app = checkSchema<IosVppApp>(iosVppAppSchema, json, 'mobile app');
    if (app.usedLicenseCount !== undefined && app.totalLicenseCount !== undefined && app.usedLicenseCount > app.totalLicenseCount) {
      throw refuse('schema-violation', 'mobile app: usedLicenseCount must not exceed totalLicenseCount');
    }
    return app;
  }
  throw refuse('schema-violation', 'mobile app: kind must be "iosStoreApp" or "iosVppApp"');
}

/** Bundle ids compare case-insensitively on iOS; Intune matches Outlook the same way. */
export function isOutlookForIos(app: MobileApp): boolean {
  return app.bundleId.toLowerCase() === OUTLOOK_IOS_BUNDLE_ID.toLowerCase();
}

// ---------------------------------------------------------------- trusted root

/** Graph `iosTrustedRootCertificate`: a CA certificate the device is told to trust. */
export interface TrustedRootProfile {
  readonly kind: 'iosTrustedRootCertificate';
  readonly displayName: string;
  readonly description?: string;
  readonly certFileName: string;
  /** The certificate, DER in base64 (Graph's Edm.Binary). */
  readonly trustedRootCertificate: string;
}

/** 64 KiB of DER is far beyond any CA certificate; the bound keeps bodies small. */
const MAX_CERT_BASE64 = 87_384;

export const trustedRootProfileSchema = {
  $id: 'keyfleet:iosTrustedRootCertificate',
  title: 'Trusted-root certificate profile',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'displayName', 'certFileName', 'trustedRootCertificate'],
  properties: {
    kind: { const: 'iosTrustedRootCertificate' },
    displayName: displayNameSchema,
    description: descriptionSchema,
    certFileName: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[^/\\\\\\u0000-\\u001f\\u007f]+$' },
    trustedRootCertificate: { type: 'string', minLength: 4, maxLength: MAX_CERT_BASE64 },
  },
} as const satisfies JsonSchema;

export function parseTrustedRootProfile(json: unknown): TrustedRootProfile {
  const p = checkSchema<TrustedRootProfile>(trustedRootProfileSchema, json, 'trusted-root profile');
  trustedRootCertificateOf(p);
  return p;
}

/**
 * The profile's certificate, checked to be a CA certificate: basicConstraints
 * cA set and, when keyUsage is present, keyCertSign (RFC 5280 §4.2.1.9,
 * §4.2.1.3). Intermediates are allowed, as in Intune; a leaf is not.
 */
export function trustedRootCertificateOf(p: Pick<TrustedRootProfile, 'trustedRootCertificate'>): Certificate {
  const b64 = p.trustedRootCertificate.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    throw refuse('trusted-root-not-base64', 'trustedRootCertificate must be the DER certificate in base64 (no PEM armour)');
  }
  let cert: Certificate;
  try {
    cert = decodeCertificate(Buffer.from(b64, 'base64'));
  } catch (e) {
    if (isKeyfleetError(e)) throw new KeyfleetError(e.code, `trustedRootCertificate: ${e.message}`, { cause: e, detail: 'trusted-root-not-certificate' });
    throw e;
  }
  if (!cert.basicConstraints?.cA) throw refuse('trusted-root-not-ca', 'trustedRootCertificate is not a CA certificate (basicConstraints cA is not set)');
  if (cert.keyUsage && !cert.keyUsage.has('keyCertSign')) throw refuse('trusted-root-not-ca', 'trustedRootCertificate is not a CA certificate (keyUsage lacks keyCertSign)');
  return cert;
}

// ---------------------------------------------------------------- SCEP profile

export const ScepKeyUsages = ['digitalSignature', 'keyEncipherment'] as const;
export type ScepKeyUsage = (typeof ScepKeyUsages)[number];

/** Graph `extendedKeyUsage`. */
export interface ExtendedKeyUsage {
  readonly name: string;
  readonly objectIdentifier: string;
}

/** Graph `iosScepCertificateProfile`, pointing at Keyfleet's SCEP server and a trusted-root profile. */
export interface ScepProfile {
  readonly kind: 'iosScepCertificateProfile';
  readonly displayName: string;
  readonly description?: string;
  readonly subjectNameFormat: SubjectNameFormat;
  /** Required for 'custom', e.g. `CN={{EmailAddress}}`. */
  readonly subjectNameFormatString?: string;
  readonly subjectAlternativeNameType: readonly SubjectAltNameType[];
  readonly keyUsage: readonly ScepKeyUsage[];
  readonly keySize: 2048 | 4096;
  readonly extendedKeyUsages: readonly ExtendedKeyUsage[];
  readonly certificateValidityPeriodValue: number;
  readonly certificateValidityPeriodScale: ValidityScale;
  /** Renew when this share of the lifetime remains (Graph: 1–99). */
  readonly renewalThresholdPercentage: number;
  readonly scepServerUrls: readonly string[];
  /** Id of an iosTrustedRootCertificate profile (Graph's rootCertificate navigation property). */
  readonly rootCertificateId: string;
}

export const scepProfileSchema = {
  $id: 'keyfleet:iosScepCertificateProfile',
  title: 'SCEP certificate profile',
  type: 'object',
  additionalProperties: false,
  required: [
    'kind', 'displayName', 'subjectNameFormat', 'subjectAlternativeNameType', 'keyUsage', 'keySize', 'extendedKeyUsages',
    'certificateValidityPeriodValue', 'certificateValidityPeriodScale', 'renewalThresholdPercentage', 'scepServerUrls', 'rootCertificateId',
  ],
  properties: {
    kind: { const: 'iosScepCertificateProfile' },
    displayName: displayNameSchema,
    description: descriptionSchema,
    subjectNameFormat: { type: 'string', enum: SubjectNameFormats },
    subjectNameFormatString: { type: 'string', minLength: 1, maxLength: 1024 },
    subjectAlternativeNameType: { type: 'array', items: { type: 'string', enum: SubjectAltNameTypes }, uniqueItems: true, maxItems: 2 },
    keyUsage: { type: 'array', items: { type: 'string', enum: ScepKeyUsages }, uniqueItems: true, minItems: 1, maxItems: 2 },
    keySize: { type: 'integer', enum: [2048, 4096] },
    extendedKeyUsages: {
      type: 'array',
      maxItems: 16,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'objectIdentifier'],
        properties: { name: displayNameSchema, objectIdentifier: { type: 'string', maxLength: 128, pattern: '^[0-2](\\.(0|[1-9][0-9]*))+$' } },
      },
    },
    certificateValidityPeriodValue: { type: 'integer', minimum: 1, maximum: 3650 },
    certificateValidityPeriodScale: { type: 'string', enum: ValidityScales },
    renewalThresholdPercentage: { type: 'integer', minimum: 1, maximum: 99 },
    scepServerUrls: { type: 'array', minItems: 1, maxItems: 8, uniqueItems: true, items: { type: 'string', maxLength: 2048, pattern: '^https?://' } },
    rootCertificateId: idSchema,
  },
} as const satisfies JsonSchema;

/** Checks a SCEP profile's own fields; `validateScepProfile` also checks its trusted root. */
export function parseScepProfile(json: unknown): ScepProfile {
  const p = checkSchema<ScepProfile>(scepProfileSchema, json, 'SCEP profile');
  try {
    parseSubjectFormat(subjectFormatString(p.subjectNameFormat, p.subjectNameFormatString));
  } catch (e) {
    if (isKeyfleetError(e)) throw refuse('scep-subject-format-invalid', `SCEP profile: ${e.message}`);
    throw e;
  }
  if (p.subjectNameFormat !== 'custom' && p.subjectNameFormatString !== undefined) {
    throw refuse('scep-subject-format-invalid', 'SCEP profile: subjectNameFormatString is used only with subjectNameFormat "custom"');
  }
  for (const u of p.scepServerUrls) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw refuse('scep-url-invalid', 'SCEP profile: a scepServerUrls entry is not a URL');
    }
    if (url.username !== '' || url.password !== '') throw refuse('scep-url-invalid', 'SCEP profile: scepServerUrls must not carry credentials');
    if (url.hash !== '') throw refuse('scep-url-invalid', 'SCEP profile: scepServerUrls must not have a fragment');
  }
  try {
    checkProfile(scepProfileToCertificateProfile(p));
  } catch (e) {
    if (isKeyfleetError(e)) throw refuse('scep-validity-invalid', `SCEP profile: ${e.message}`);
    throw e;
  }
  return p;
}

/** A SCEP profile is usable only with a trusted-root profile behind it (issue 4, "a SCEP profile without a trusted root"). */
export async function validateScepProfile(p: ScepProfile, profiles: Lookup<CertificateProfileResource>): Promise<void> {
  const root = await profiles(p.rootCertificateId);
  if (root === undefined) throw refuse('scep-profile-without-trusted-root', `SCEP profile "${p.displayName}": trusted-root profile ${p.rootCertificateId} does not exist`);
  if (root.kind !== 'iosTrustedRootCertificate') {
    throw refuse('scep-profile-without-trusted-root', `SCEP profile "${p.displayName}": ${p.rootCertificateId} is a ${root.kind}, not a trusted-root profile`);
  }
}

/** The CA's view of a SCEP profile (src/ca/templates.ts), used when the SCEP server issues under it. */
export function scepProfileToCertificateProfile(p: ScepProfile): CertificateProfile {
  const signs = p.keyUsage.includes('digitalSignature');
  const encrypts = p.keyUsage.includes('keyEncipherment');
  return {
    name: p.displayName.slice(0, 128),
    template: signs && encrypts ? 'smimeDual' : signs ? 'smimeSigning' : 'smimeEncryption',
    subjectNameFormat: p.subjectNameFormat,
    ...(p.subjectNameFormatString === undefined ? {} : { subjectNameFormatString: p.subjectNameFormatString }),
    subjectAlternativeNameTypes: p.subjectAlternativeNameType,
    validity: { value: p.certificateValidityPeriodValue, scale: p.certificateValidityPeriodScale },
    keyTypes: [p.keySize === 2048 ? 'rsa-2048' : 'rsa-4096'],
  };
}

/** True when the profile's certificates can sign mail: digitalSignature, and emailProtection when EKUs are listed (RFC 8550 §4.4). */
export function scepProfileCanSignMail(p: ScepProfile): boolean {
  const ekus = p.extendedKeyUsages.map((e) => e.objectIdentifier);
  return p.keyUsage.includes('digitalSignature') && (ekus.length === 0 || ekus.includes(OID.emailProtection) || ekus.includes(OID.anyExtendedKeyUsage));
}

// ---------------------------------------------------------------- PKCS-imported profile

/** Graph `userPFXCertificate.intendedPurpose` (also the imported profile's). */
export const IntendedPurposes = ['unassigned', 'smimeEncryption', 'smimeSigning', 'vpn', 'wifi'] as const;
export type IntendedPurpose = (typeof IntendedPurposes)[number];

/** Graph `iosImportedPFXCertificateProfile`: delivers the user's imported PFX certificates of one purpose. */
export interface ImportedPfxProfile {
  readonly kind: 'iosImportedPfxCertificateProfile';
  readonly displayName: string;
  readonly description?: string;
  readonly intendedPurpose: IntendedPurpose;
}

export const importedPfxProfileSchema = {
  $id: 'keyfleet:iosImportedPfxCertificateProfile',
  title: 'PKCS-imported certificate profile',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'displayName', 'intendedPurpose'],
  properties: {
    kind: { const: 'iosImportedPfxCertificateProfile' },
    displayName: displayNameSchema,
    description: descriptionSchema,
    intendedPurpose: { type: 'string', enum: IntendedPurposes },
  },
} as const satisfies JsonSchema;

export function parseImportedPfxProfile(json: unknown): ImportedPfxProfile {
  return checkSchema<ImportedPfxProfile>(importedPfxProfileSchema, json, 'PKCS-imported profile');
}

export type CertificateProfileInput = TrustedRootProfile | ScepProfile | ImportedPfxProfile;
export type CertificateProfileResource = Stored<CertificateProfileInput>;

/** Any certificate profile, by its `kind`. */
export function parseCertificateProfileInput(json: unknown): CertificateProfileInput {
  const kind = typeof json === 'object' && json !== null ? (json as { kind?: unknown }).kind : undefined;
  switch (kind) {
    case 'iosTrustedRootCertificate':
      return parseTrustedRootProfile(json);
    case 'iosScepCertificateProfile':
      return parseScepProfile(json);
    case 'iosImportedPfxCertificateProfile':
      return parseImportedPfxProfile(json);
    default:
      throw refuse('schema-violation', 'certificate profile: kind must be "iosTrustedRootCertificate", "iosScepCertificateProfile" or "iosImportedPfxCertificateProfile"');
  }
}
