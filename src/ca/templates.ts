/**
 * Certificate templates (what a certificate may be used for) and profiles
 * (a template plus how to name the subject, how long it lives and which keys
 * are accepted), modelled on Intune's SCEP certificate profile
 * (REFERENCE.md "Graph shapes").
 *
 * Key usages follow RFC 8550 §4.4.2 and the CA/B Forum S/MIME baseline
 * requirements §7.1.2.3: signing certificates carry digitalSignature and
 * nonRepudiation; encryption certificates keyEncipherment for RSA (key
 * transport) and keyAgreement for EC (ECDH, RFC 5753); every S/MIME
 * template carries EKU emailProtection.
 */
import type { KeyObject } from 'node:crypto';
import { OID } from '../asn1/oids.ts';
import { KeyfleetError } from '../errors.ts';
import type { KeyUsage } from '../x509/certificate.ts';
import { type KeySpec, KeySpecs, describeKey, isKeySpec } from './key-spec.ts';
import { type SubjectAltNameType, type SubjectNameFormat, SubjectAltNameTypes, SubjectNameFormats, parseSubjectFormat, subjectFormatString } from './subject-name.ts';

export const TemplateNames = ['smimeSigning', 'smimeEncryption', 'smimeDual', 'deviceIdentity', 'ocspSigning', 'scepRa'] as const;
export type TemplateName = (typeof TemplateNames)[number];

export interface CertificateTemplate {
  readonly name: TemplateName;
  readonly keyUsage: (keyType: 'rsa' | 'ec') => readonly KeyUsage[];
  readonly extKeyUsage: readonly string[];
  /** RFC 6960 §4.2.2.2.1 id-pkix-ocsp-nocheck, for delegated OCSP responders. */
  readonly ocspNoCheck: boolean;
}

const encipher = (keyType: 'rsa' | 'ec'): KeyUsage => (keyType === 'rsa' ? 'keyEncipherment' : 'keyAgreement');

export const templates: Readonly<Record<TemplateName, CertificateTemplate>> = {
  smimeSigning: { name: 'smimeSigning', keyUsage: () => ['digitalSignature', 'nonRepudiation'], extKeyUsage: [OID.emailProtection], ocspNoCheck: false },
  smimeEncryption: { name: 'smimeEncryption', keyUsage: (k) => [encipher(k)], extKeyUsage: [OID.emailProtection], ocspNoCheck: false },
  smimeDual: { name: 'smimeDual', keyUsage: (k) => ['digitalSignature', 'nonRepudiation', encipher(k)], extKeyUsage: [OID.emailProtection], ocspNoCheck: false },
  deviceIdentity: { name: 'deviceIdentity', keyUsage: (k) => ['digitalSignature', encipher(k)], extKeyUsage: [OID.clientAuth], ocspNoCheck: false },
  ocspSigning: { name: 'ocspSigning', keyUsage: () => ['digitalSignature'], extKeyUsage: [OID.ocspSigning], ocspNoCheck: true },
  // SCEP RA: signs CertReps and opens request envelopes, so both usages (REFERENCE.md "SCEP in practice": macOS needs them).
  scepRa: { name: 'scepRa', keyUsage: (k) => ['digitalSignature', encipher(k)], extKeyUsage: [], ocspNoCheck: false },
};

export const ValidityScales = ['days', 'months', 'years'] as const;
export type ValidityScale = (typeof ValidityScales)[number];

/** certificateValidityPeriodValue + certificateValidityPeriodScale. */
export interface ValidityPeriod {
  readonly value: number;
  readonly scale: ValidityScale;
}

const maxValidity: Record<ValidityScale, number> = { days: 3650, months: 120, years: 10 };

export interface CertificateProfile {
  /** Recorded with every certificate issued under it (e.g. the SCEP profile name). */
  readonly name: string;
  readonly template: TemplateName;
  readonly subjectNameFormat: SubjectNameFormat;
  /** For 'custom', e.g. `CN={{EmailAddress}}`. */
  readonly subjectNameFormatString?: string;
  readonly subjectAlternativeNameTypes: readonly SubjectAltNameType[];
  readonly validity: ValidityPeriod;
  /** Key types accepted for the subject's key. */
  readonly keyTypes: readonly KeySpec[];
  /** Policy OIDs for certificatePolicies (omitted when empty). */
  readonly certificatePolicies?: readonly string[];
}

/** A profile with sensible defaults: CN = email, SAN email, one year, every supported key type. */
export function defaultProfile(template: TemplateName, overrides: Partial<CertificateProfile> = {}): CertificateProfile {
  return checkProfile({
    name: template,
    template,
    subjectNameFormat: 'commonNameAsEmail',
    subjectAlternativeNameTypes: template === 'deviceIdentity' || template === 'ocspSigning' || template === 'scepRa' ? [] : ['emailAddress'],
    validity: { value: 1, scale: 'years' },
    keyTypes: [...KeySpecs],
    ...overrides,
  });
}

function profileError(message: string): KeyfleetError {
  return new KeyfleetError('KF_USAGE', message);
}

/** Checks a profile's fields (types, ranges, subject format variables); returns it. */
export function checkProfile(p: CertificateProfile): CertificateProfile {
  if (typeof p.name !== 'string' || p.name === '' || p.name.length > 128) throw profileError('profile name must be a non-empty string of at most 128 characters');
  if (!(TemplateNames as readonly string[]).includes(p.template)) throw profileError(`unknown template "${String(p.template)}"; expected one of ${TemplateNames.join(', ')}`);
  if (!(SubjectNameFormats as readonly string[]).includes(p.subjectNameFormat)) {
    throw profileError(`unknown subjectNameFormat "${String(p.subjectNameFormat)}"; expected one of ${SubjectNameFormats.join(', ')}`);
  }
  parseSubjectFormat(subjectFormatString(p.subjectNameFormat, p.subjectNameFormatString));
  if (!Array.isArray(p.subjectAlternativeNameTypes) || p.subjectAlternativeNameTypes.some((t) => !(SubjectAltNameTypes as readonly string[]).includes(t))) {
    throw profileError(`subjectAlternativeNameTypes must list only ${SubjectAltNameTypes.join(', ')}`);
  }
  const v = p.validity;
  if (!v || !(ValidityScales as readonly string[]).includes(v.scale) || !Number.isInteger(v.value) || v.value < 1 || v.value > maxValidity[v.scale]) {
    throw profileError(`validity must be a whole number of days (1–3650), months (1–120) or years (1–10)`);
  }
  if (!Array.isArray(p.keyTypes) || p.keyTypes.length === 0 || p.keyTypes.some((k) => !isKeySpec(k))) {
    throw profileError(`keyTypes must list one or more of ${KeySpecs.join(', ')}`);
  }
  if (p.certificatePolicies !== undefined && (!Array.isArray(p.certificatePolicies) || p.certificatePolicies.some((o) => typeof o !== 'string' || !/^[0-2](\.\d+)+$/.test(o)))) {
    throw profileError('certificatePolicies must be dotted OIDs');
  }
  return p;
}

/** A profile from stored JSON (ScepProfileRecord.template): every field checked, unknown fields refused. */
export function parseCertificateProfile(json: unknown): CertificateProfile {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw profileError('certificate profile must be an object');
  const o = json as Record<string, unknown>;
  const known = new Set(['name', 'template', 'subjectNameFormat', 'subjectNameFormatString', 'subjectAlternativeNameTypes', 'validity', 'keyTypes', 'certificatePolicies']);
  const unknown = Object.keys(o).filter((k) => !known.has(k));
  if (unknown.length > 0) throw profileError(`unknown certificate profile field(s): ${unknown.join(', ')}`);
  if (o.subjectNameFormatString !== undefined && typeof o.subjectNameFormatString !== 'string') throw profileError('subjectNameFormatString must be a string');
  const validity = o.validity as Record<string, unknown> | undefined;
  const profile = {
    name: o.name,
    template: o.template,
    subjectNameFormat: o.subjectNameFormat,
    ...(o.subjectNameFormatString === undefined ? {} : { subjectNameFormatString: o.subjectNameFormatString }),
    subjectAlternativeNameTypes: o.subjectAlternativeNameTypes,
    validity: typeof validity === 'object' && validity !== null ? { value: validity.value, scale: validity.scale } : undefined,
    keyTypes: o.keyTypes,
    ...(o.certificatePolicies === undefined ? {} : { certificatePolicies: o.certificatePolicies }),
  } as unknown as CertificateProfile;
  return checkProfile(profile);
}

/** The subject key's spec when the profile accepts it; KF_KEY_INVALID naming the profile and what it accepts otherwise. */
export function checkKeyAllowed(profile: Pick<CertificateProfile, 'name' | 'keyTypes'>, key: KeyObject): KeySpec {
  const { spec, description } = describeKey(key);
  if (spec === undefined || !profile.keyTypes.includes(spec)) {
    throw new KeyfleetError('KF_KEY_INVALID', `profile "${profile.name}" does not accept ${description} keys; it accepts ${profile.keyTypes.join(', ')}`, {
      detail: description,
    });
  }
  return spec;
}

/**
 * The end of a validity period starting at `start`. Months and years are
 * calendar steps in UTC; a day that does not exist in the target month
 * (31 January + 1 month) falls back to that month's last day.
 */
export function addValidity(start: Date, period: ValidityPeriod): Date {
  if (period.scale === 'days') return new Date(start.getTime() + period.value * 86_400_000);
  const months = period.scale === 'months' ? period.value : period.value * 12;
  const d = new Date(start.getTime());
  const day = d.getUTCDate();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() + months);
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  d.setUTCDate(Math.min(day, last));
  return d;
}
