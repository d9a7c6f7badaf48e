/**
 * The S/MIME app configuration policy for Outlook for iOS: exactly the
 * seed's "Create the Outlook for iOS S/MIME configuration policy" steps 2–12
 * (name and description; Managed devices; iOS/iPadOS; the Outlook app; the
 * configuration designer's S/MIME section: enable S/MIME, deploy S/MIME
 * certificates, signing and encryption certificate profile types and
 * profiles, end-user notification) plus Outlook's other S/MIME keys
 * (REFERENCE.md "Outlook for iOS/Android: managed app configuration keys").
 *
 * Stored as Graph's `iosMobileAppConfiguration` would hold it; compile.ts
 * turns it into the managed app configuration Outlook reads.
 */
import { isIPv6 } from 'node:net';
import type { DerivedCredentialIssuer } from './derived-credential.ts';
import { type JsonSchema, checkSchema } from './json-schema.ts';
import { refuse } from './refusal.ts';
import {
  type CertificateProfileResource,
  type Lookup,
  type MobileApp,
  type Stored,
  OUTLOOK_IOS_BUNDLE_ID,
  descriptionSchema,
  displayNameSchema,
  idSchema,
  isOutlookForIos,
  scepProfileCanSignMail,
  validateScepProfile,
} from './resources.ts';

/** Intune's platforms; only iOS/iPadOS is accepted, the others are named so the refusal can say so. */
export const Platforms = ['iOS/iPadOS', 'android', 'androidEnterprise', 'windows', 'macOS'] as const;
export type Platform = (typeof Platforms)[number];

/** Seed step 3: managed app configuration reaches the app through MDM, so Managed devices only. */
export const DeviceEnrollmentTypes = ['managedDevices', 'managedApps'] as const;
export type DeviceEnrollmentType = (typeof DeviceEnrollmentTypes)[number];

/** Seed step 10. */
export const SigningCertificateProfileTypes = ['scep', 'pkcsImported', 'derivedCredential'] as const;
export type SigningCertificateProfileType = (typeof SigningCertificateProfileTypes)[number];

/** Seed step 11: encryption certificates are shared across a user's devices, so no SCEP. */
export const EncryptionCertificateProfileTypes = ['pkcsImported', 'derivedCredential'] as const;
export type EncryptionCertificateProfileType = (typeof EncryptionCertificateProfileTypes)[number];

/** Seed step 12. */
export const EndUserNotifications = ['companyPortal', 'email'] as const;
export type EndUserNotification = (typeof EndUserNotifications)[number];

export interface SmimePolicy {
  readonly displayName: string;
  readonly description?: string;
  readonly deviceEnrollmentType: DeviceEnrollmentType;
  readonly platform: Platform;
  /** App ids (Graph `targetedMobileApps`); exactly one, Outlook for iOS. */
  readonly targetedMobileApps: readonly string[];
  /** com.microsoft.outlook.Mail.SMIMEEnabled */
  readonly enableSmime: boolean;
  /** com.microsoft.outlook.Mail.SMIMEEnabled.UserChangeAllowed */
  readonly enableSmimeUserChangeAllowed?: boolean;
  /** "Deploy S/MIME certificates from Keyfleet" (seed step 9; Intune's wording says Intune). */
  readonly deploySmimeCertificates?: boolean;
  readonly signingCertificateProfileType?: SigningCertificateProfileType;
  /** The SCEP or PKCS-imported profile; none for derived credentials. */
  readonly signingCertificateProfileId?: string;
  readonly encryptionCertificateProfileType?: EncryptionCertificateProfileType;
  readonly encryptionCertificateProfileId?: string;
  readonly endUserNotification?: EndUserNotification;
  readonly signAllMail?: boolean;
  readonly signAllMailUserChangeAllowed?: boolean;
  readonly encryptAllMail?: boolean;
  readonly encryptAllMailUserChangeAllowed?: boolean;
  /** `ldap://host[:port]`, `ldaps://host[:port]` or `host[:port]`; Outlook binds anonymously. */
  readonly ldapHostName?: string;
}

const bool = { type: 'boolean' } as const satisfies JsonSchema;

export const smimePolicySchema = {
  $id: 'keyfleet:smimeAppConfigurationPolicy',
  title: 'S/MIME app configuration policy for Outlook for iOS',
  type: 'object',
  additionalProperties: false,
  required: ['displayName', 'deviceEnrollmentType', 'platform', 'targetedMobileApps', 'enableSmime'],
  properties: {
    displayName: displayNameSchema,
    description: descriptionSchema,
    deviceEnrollmentType: { type: 'string', enum: DeviceEnrollmentTypes },
    platform: { type: 'string', enum: Platforms },
    targetedMobileApps: { type: 'array', items: idSchema, minItems: 1, maxItems: 1 },
    enableSmime: bool,
    enableSmimeUserChangeAllowed: bool,
    deploySmimeCertificates: bool,
    signingCertificateProfileType: { type: 'string', enum: SigningCertificateProfileTypes },
    signingCertificateProfileId: idSchema,
    encryptionCertificateProfileType: { type: 'string', enum: EncryptionCertificateProfileTypes },
    encryptionCertificateProfileId: idSchema,
    endUserNotification: { type: 'string', enum: EndUserNotifications },
    signAllMail: bool,
    signAllMailUserChangeAllowed: bool,
    encryptAllMail: bool,
    encryptAllMailUserChangeAllowed: bool,
    ldapHostName: { type: 'string', minLength: 1, maxLength: 300 },
  },
} as const satisfies JsonSchema;

/** What validatePolicy needs to know beyond the policy itself. */
export interface PolicyLookups {
  readonly app: Lookup<Stored<MobileApp>>;
  readonly profile: Lookup<CertificateProfileResource>;
  /**
   * The tenant's derived-credential issuer (e.g. "purebred"), or undefined when none is configured.
   * Asked only when the policy chooses derived credentials.
   */
  readonly derivedCredentialIssuer: () => DerivedCredentialIssuer | undefined | Promise<DerivedCredentialIssuer | undefined>;
}

/**
 * Checks a policy completely: its shape, the combinations the seed rules out
 * (checkPolicyCombinations) and what it references. Returns the policy typed.
 * Each refusal is a KeyfleetError with a `detail` from refusal.ts.
 */
export async function validatePolicy(json: unknown, lookups: PolicyLookups): Promise<SmimePolicy> {
  const policy = checkPolicyCombinations(checkSchema<SmimePolicy>(smimePolicySchema, json, 'S/MIME policy'));

  const appId = policy.targetedMobileApps[0]!;
  const app = await lookups.app(appId);
  if (app === undefined) throw refuse('app-missing', `S/MIME policy: app ${appId} does not exist`);
  if (!isOutlookForIos(app)) {
    throw refuse('app-not-outlook', `S/MIME policy: the targeted app must be Outlook for iOS (${OUTLOOK_IOS_BUNDLE_ID}), not ${app.bundleId}`);
  }

  const usesDerived = policy.signingCertificateProfileType === 'derivedCredential' || policy.encryptionCertificateProfileType === 'derivedCredential';
  if (usesDerived && (await lookups.derivedCredentialIssuer()) === undefined) {
    throw refuse('derived-credential-issuer-not-configured', 'S/MIME policy: derived credentials are chosen, but no derived-credential issuer is configured');
  }

  if (policy.signingCertificateProfileType === 'scep') {
    const p = await profileOf(lookups, 'signing', policy.signingCertificateProfileId!);
    if (p.kind !== 'iosScepCertificateProfile') throw wrongKind('signing', p, 'a SCEP profile');
    if (!scepProfileCanSignMail(p)) {
      throw refuse('profile-wrong-purpose', `S/MIME policy: SCEP profile ${p.id} cannot sign mail (it needs keyUsage digitalSignature and, when EKUs are listed, emailProtection)`);
    }
    await validateScepProfile(p, lookups.profile);
  } else if (policy.signingCertificateProfileType === 'pkcsImported') {
    await importedProfile(lookups, 'signing', policy.signingCertificateProfileId!, 'smimeSigning');
  }
  if (policy.encryptionCertificateProfileType === 'pkcsImported') {
    await importedProfile(lookups, 'encryption', policy.encryptionCertificateProfileId!, 'smimeEncryption');
  }
  return policy;
}

/**
 * The rules that need nothing but the policy. Exported for the CLI, which
 * can check a policy file before sending it.
 */
export function checkPolicyCombinations(policy: SmimePolicy): SmimePolicy {
  if (policy.platform !== 'iOS/iPadOS') {
    throw refuse('platform-not-ios', `S/MIME policy: platform must be iOS/iPadOS (Outlook's S/MIME keys are delivered as iOS managed app configuration), not ${policy.platform}`);
  }
  if (policy.deviceEnrollmentType !== 'managedDevices') {
    throw refuse('enrollment-type-not-managed-devices', 'S/MIME policy: device enrollment type must be managedDevices (certificates reach only MDM-enrolled devices)');
  }
  if (!policy.enableSmime) {
    if (policy.deploySmimeCertificates === true) {
      throw refuse('certificate-deployment-without-smime', 'S/MIME policy: deploySmimeCertificates needs enableSmime');
    }
    if (policy.signAllMail === true || policy.encryptAllMail === true) {
      throw refuse('smime-setting-without-smime', 'S/MIME policy: signAllMail and encryptAllMail need enableSmime');
    }
  }
  const certificateFields = [
    'signingCertificateProfileType', 'signingCertificateProfileId', 'encryptionCertificateProfileType', 'encryptionCertificateProfileId', 'endUserNotification',
  ] as const;
  if (policy.deploySmimeCertificates !== true) {
    const set = certificateFields.filter((f) => policy[f] !== undefined);
    if (set.length > 0) throw refuse('certificate-settings-without-deployment', `S/MIME policy: ${set.join(', ')} need deploySmimeCertificates`);
  } else if (policy.signingCertificateProfileType === undefined && policy.encryptionCertificateProfileType === undefined) {
    throw refuse('deployment-without-certificate-profiles', 'S/MIME policy: deploySmimeCertificates needs a signing or an encryption certificate profile type');
  }
  checkProfileReference('signing', policy.signingCertificateProfileType, policy.signingCertificateProfileId);
  checkProfileReference('encryption', policy.encryptionCertificateProfileType, policy.encryptionCertificateProfileId);
  if (policy.ldapHostName !== undefined) checkLdapHostName(policy.ldapHostName);
  return policy;
}

function checkProfileReference(role: string, type: string | undefined, id: string | undefined): void {
  if (type === 'derivedCredential' || type === undefined) {
    if (id !== undefined) {
      const why = type === undefined ? `no ${role}CertificateProfileType is set` : 'derived credentials come from the device, not a profile';
      throw refuse('profile-id-not-applicable', `S/MIME policy: ${role}CertificateProfileId is not applicable: ${why}`);
    }
  } else if (id === undefined) {
    throw refuse('profile-id-required', `S/MIME policy: ${role}CertificateProfileType "${type}" needs ${role}CertificateProfileId`);
  }
}

async function profileOf(lookups: PolicyLookups, role: string, id: string): Promise<CertificateProfileResource> {
  const p = await lookups.profile(id);
  if (p === undefined) throw refuse('profile-missing', `S/MIME policy: ${role} certificate profile ${id} does not exist`);
  return p;
}

function wrongKind(role: string, p: CertificateProfileResource, expected: string) {
  return refuse('profile-wrong-kind', `S/MIME policy: ${role} certificate profile ${p.id} is a ${p.kind}, not ${expected}`);
}

async function importedProfile(lookups: PolicyLookups, role: string, id: string, purpose: 'smimeSigning' | 'smimeEncryption'): Promise<void> {
  const p = await profileOf(lookups, role, id);
  if (p.kind !== 'iosImportedPfxCertificateProfile') throw wrongKind(role, p, 'a PKCS-imported profile');
  if (p.intendedPurpose !== purpose) {
    throw refuse('profile-wrong-purpose', `S/MIME policy: ${role} certificate profile ${p.id} has intended purpose ${p.intendedPurpose}, not ${purpose}`);
  }
}

const hostLabel = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const ldapHost = new RegExp(`^(?:(ldaps?)://)?(${hostLabel}(?:\\.${hostLabel})*|\\[[0-9A-Fa-f:.]+\\])(?::([0-9]{1,5}))?/?$`);

/**
 * Outlook's LDAPHostName: `ldap://`, `ldaps://` or a bare host, optional
 * port, no credentials (Outlook binds anonymously) and no DN or filter.
 */
export function checkLdapHostName(value: string): void {
  const m = ldapHost.exec(value);
  const bad = (why: string) => refuse('ldap-host-invalid', `S/MIME policy: ldapHostName ${why}; expected ldap://host[:port], ldaps://host[:port] or host[:port]`);
  if (!m) throw bad('is not a host name with an optional scheme and port');
  const host = m[2]!;
  if (host.startsWith('[') && !isIPv6(host.slice(1, -1))) throw bad('has an invalid IPv6 address');
  if (host.length > 253) throw bad('has a host name longer than 253 characters');
  if (m[3] !== undefined) {
    const port = Number(m[3]);
    if (port < 1 || port > 65535) throw bad('has a port outside 1–65535');
  }
}

