/**
 * Compiles an S/MIME policy into Outlook for iOS's managed app configuration:
 * the typed key/values of Graph's `iosMobileAppConfiguration.settings`
 * (appConfigKey, appConfigKeyType, appConfigKeyValue) and the same as an
 * Apple property list, which is what reaches the app through the MDM
 * `InstallApplication` Configuration or `Settings` ApplicationConfiguration
 * (REFERENCE.md "Apple device-management payloads").
 *
 * Only keys the administrator set are emitted: Outlook applies its own
 * defaults (outlookSmimeKeys) to the rest, and an emitted default would
 * override what a second policy sets on purpose (see effective-state.ts).
 */
import { KeyfleetError } from '../errors.ts';
import type { SmimePolicy } from './smime-policy.ts';

/** Graph `mdmAppConfigKeyType`. */
export const AppConfigKeyTypes = ['stringType', 'integerType', 'realType', 'booleanType', 'tokenType'] as const;
export type AppConfigKeyType = (typeof AppConfigKeyTypes)[number];

/** Graph `appConfigurationSettingItem`; values are strings, as Graph sends them ("true", "42"). */
export interface AppConfigSetting {
  readonly appConfigKey: string;
  readonly appConfigKeyType: AppConfigKeyType;
  readonly appConfigKeyValue: string;
}

export interface CompiledPolicy {
  readonly settings: readonly AppConfigSetting[];
  /** A complete XML property list whose root <dict> holds the same keys. */
  readonly plist: string;
}

type PolicyField = keyof SmimePolicy;

interface KeyDefinition {
  readonly key: string;
  readonly type: 'booleanType' | 'stringType';
  /** Outlook's default when the key is absent; undefined for "none". */
  readonly default: boolean | undefined;
  readonly field: PolicyField;
}

/** Outlook's S/MIME keys (REFERENCE.md table, from Microsoft's "Deploying Outlook for iOS and Android app configuration settings"). */
export const outlookSmimeKeys: readonly KeyDefinition[] = [
  { key: 'com.microsoft.outlook.Mail.SMIMEEnabled', type: 'booleanType', default: false, field: 'enableSmime' },
  { key: 'com.microsoft.outlook.Mail.SMIMEEnabled.UserChangeAllowed', type: 'booleanType', default: true, field: 'enableSmimeUserChangeAllowed' },
  { key: 'com.microsoft.outlook.Mail.SMIMEEnabled.EncryptAllMail', type: 'booleanType', default: false, field: 'encryptAllMail' },
  { key: 'com.microsoft.outlook.Mail.SMIMEEnabled.EncryptAllMail.UserChangeAllowed', type: 'booleanType', default: true, field: 'encryptAllMailUserChangeAllowed' },
  { key: 'com.microsoft.outlook.Mail.SMIMEEnabled.SignAllMail', type: 'booleanType', default: false, field: 'signAllMail' },
  { key: 'com.microsoft.outlook.Mail.SMIMEEnabled.SignAllMail.UserChangeAllowed', type: 'booleanType', default: true, field: 'signAllMailUserChangeAllowed' },
  { key: 'com.microsoft.outlook.Mail.SMIMEEnabled.LDAPHostName', type: 'stringType', default: undefined, field: 'ldapHostName' },
];

/**
 * Keyfleet's own keys, NOT Outlook keys: "deploy certificates", the
 * certificate profile types and the notification channel are service-side
 * settings in Intune, with no public Outlook key (REFERENCE.md). They ride in
 * the same dictionary under `com.keyfleet.smime.*` so one compiled document
 * describes the policy; Outlook ignores keys it does not know, and delivery
 * may strip them (isKeyfleetKey).
 */
export const KEYFLEET_KEY_PREFIX = 'com.keyfleet.smime.';
export const keyfleetSmimeKeys: readonly KeyDefinition[] = [
  { key: `${KEYFLEET_KEY_PREFIX}DeployCertificates`, type: 'booleanType', default: false, field: 'deploySmimeCertificates' },
  { key: `${KEYFLEET_KEY_PREFIX}SigningCertificateProfileType`, type: 'stringType', default: undefined, field: 'signingCertificateProfileType' },
  { key: `${KEYFLEET_KEY_PREFIX}SigningCertificateProfileId`, type: 'stringType', default: undefined, field: 'signingCertificateProfileId' },
  { key: `${KEYFLEET_KEY_PREFIX}EncryptionCertificateProfileType`, type: 'stringType', default: undefined, field: 'encryptionCertificateProfileType' },
  { key: `${KEYFLEET_KEY_PREFIX}EncryptionCertificateProfileId`, type: 'stringType', default: undefined, field: 'encryptionCertificateProfileId' },
  { key: `${KEYFLEET_KEY_PREFIX}EndUserNotification`, type: 'stringType', default: undefined, field: 'endUserNotification' },
];

export function isKeyfleetKey(key: string): boolean {
  return key.startsWith(KEYFLEET_KEY_PREFIX);
}

/** The policy as managed app configuration. Expects a policy validatePolicy accepted. */
export function compilePolicy(policy: SmimePolicy): CompiledPolicy {
  const settings: AppConfigSetting[] = [];
  for (const def of [...outlookSmimeKeys, ...keyfleetSmimeKeys]) {
    const value = policy[def.field];
    if (value === undefined) continue;
    if (def.type === 'booleanType' ? typeof value !== 'boolean' : typeof value !== 'string') {
      throw new KeyfleetError('KF_USAGE', `S/MIME policy: ${def.field} has the wrong type`, { detail: 'schema-violation' });
    }
    settings.push({ appConfigKey: def.key, appConfigKeyType: def.type, appConfigKeyValue: String(value) });
  }
  return { settings, plist: settingsToPlist(settings) };
}

// ---------------------------------------------------------------- property list

const PLIST_HEADER =
  '<?xml version="1.0" encoding="UTF-8"?>\n' +
  '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n' +
  '<plist version="1.0">\n';

/**
 * Characters XML 1.0 cannot carry at all (§2.2 Char): C0 controls other than
 * tab, LF and CR, lone surrogates, U+FFFE/U+FFFF. Escaping cannot help, so
 * such a value is refused rather than written into a plist iOS would reject.
 */
const notXmlChar = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/u;

export function xmlEscape(text: string): string {
  if (notXmlChar.test(text)) throw new KeyfleetError('KF_USAGE', 'a configuration value contains a character XML cannot carry', { detail: 'schema-violation' });
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function plistValue(s: AppConfigSetting): string {
  const v = s.appConfigKeyValue;
  switch (s.appConfigKeyType) {
    case 'booleanType':
      if (v !== 'true' && v !== 'false') throw badValue(s, 'true or false');
      return v === 'true' ? '<true/>' : '<false/>';
    case 'integerType':
      if (!/^-?(0|[1-9][0-9]*)$/.test(v)) throw badValue(s, 'an integer');
      return `<integer>${v}</integer>`;
    case 'realType':
      if (!Number.isFinite(Number(v)) || v.trim() === '') throw badValue(s, 'a number');
      return `<real>${xmlEscape(v)}</real>`;
    case 'stringType':
    case 'tokenType':
      // Tokens ({{mail}}, …) are substituted per user before delivery; the plist carries them as strings.
      return `<string>${xmlEscape(v)}</string>`;
  }
}

function badValue(s: AppConfigSetting, expected: string): KeyfleetError {
  return new KeyfleetError('KF_USAGE', `app configuration key ${s.appConfigKey} must be ${expected}`, { detail: 'schema-violation' });
}

/** An XML property list (Apple's PropertyList-1.0 DTD) with one <dict> of the settings, in order. */
export function settingsToPlist(settings: readonly AppConfigSetting[]): string {
  let body = '<dict>\n';
  for (const s of settings) body += `\t<key>${xmlEscape(s.appConfigKey)}</key>\n\t${plistValue(s)}\n`;
  body += '</dict>\n';
  return `${PLIST_HEADER}${body}</plist>\n`;
}

/** Graph's encodedSettingXml: the plist, base64-encoded. */
export function encodedSettingXml(plist: string): string {
  return Buffer.from(plist, 'utf8').toString('base64');
}
