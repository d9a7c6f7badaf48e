/**
 * The tenant's derived-credential issuer (Graph
 * `deviceManagementDerivedCredentialSettings`): a certificate derived from
 * the user's smart card (NIST SP 800-157), provisioned on the device by the
 * issuer's app. An S/MIME policy may choose derived credentials for signing
 * or encryption only while one is configured (smime-policy.ts).
 *
 * Intune allows one issuer per tenant at a time ("you can use only a single
 * issuer per tenant at a time", MicrosoftDocs memdocs
 * intune/protect/derived-credentials.md); the service enforces that.
 */
import { type JsonSchema, checkSchema } from './json-schema.ts';
import { refuse } from './refusal.ts';
import { displayNameSchema } from './resources.ts';

/** Graph `deviceManagementDerivedCredentialIssuer`. */
export const DerivedCredentialIssuers = ['intercede', 'entrustDatacard', 'purebred', 'xTec'] as const;
export type DerivedCredentialIssuer = (typeof DerivedCredentialIssuers)[number];

/** Graph `deviceManagementDerivedCredentialNotificationType`, a flags enum: `none`, or either or both channels. */
export const DerivedCredentialNotificationTypes = ['none', 'companyPortal', 'email'] as const;
export type DerivedCredentialNotificationType = (typeof DerivedCredentialNotificationTypes)[number];

/** The kind column of a derived-credential setting (its Graph type). */
export const DERIVED_CREDENTIAL_KIND = 'deviceManagementDerivedCredentialSettings';

export interface DerivedCredentialSettings {
  readonly displayName: string;
  readonly issuer: DerivedCredentialIssuer;
  /** Where the Company Portal sends users who enrol a derived credential. */
  readonly helpUrl?: string;
  /** Graph's comma-separated flags as an array (as resources.ts does for keyUsage); absent means none. */
  readonly notificationType?: readonly DerivedCredentialNotificationType[];
  /** Renew when this share of the credential's lifetime remains. */
  readonly renewalThresholdPercentage?: number;
}

export const derivedCredentialSettingsSchema = {
  $id: 'keyfleet:deviceManagementDerivedCredentialSettings',
  title: 'Derived-credential issuer settings',
  type: 'object',
  additionalProperties: false,
  required: ['displayName', 'issuer'],
  properties: {
    displayName: displayNameSchema,
    issuer: { type: 'string', enum: DerivedCredentialIssuers },
    helpUrl: { type: 'string', maxLength: 2048, pattern: '^https?://[^\\s]+$' },
    notificationType: { type: 'array', items: { type: 'string', enum: DerivedCredentialNotificationTypes }, minItems: 1, maxItems: 2, uniqueItems: true },
    renewalThresholdPercentage: { type: 'integer', minimum: 1, maximum: 99 },
  },
} as const satisfies JsonSchema;

export function parseDerivedCredentialSettings(json: unknown): DerivedCredentialSettings {
  const s = checkSchema<DerivedCredentialSettings>(derivedCredentialSettingsSchema, json, 'derived-credential settings');
  if (s.notificationType?.includes('none') && s.notificationType.length > 1) {
    throw refuse('schema-violation', 'derived-credential settings: notificationType "none" cannot be combined with a channel');
  }
  if (s.helpUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(s.helpUrl);
    } catch {
      throw refuse('schema-violation', 'derived-credential settings: helpUrl is not a URL');
    }
    if (url.username !== '' || url.password !== '') throw refuse('schema-violation', 'derived-credential settings: helpUrl must not carry credentials');
  }
  return s;
}
