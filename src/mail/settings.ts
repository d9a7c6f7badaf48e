/**
 * Outlook for iOS's managed S/MIME settings (REFERENCE.md, first section)
 * and how the app applies them: each of S/MIME, sign-all and encrypt-all
 * has a value and a UserChangeAllowed flag. The managed value is the
 * default; the user may change it (in the account's settings, or for one
 * message while composing) only where UserChangeAllowed is true. A change
 * that is not allowed is refused with a clear error rather than silently
 * ignored, so the user learns their organisation decides.
 *
 * A key that is absent takes Outlook's documented default (S/MIME off,
 * sign-all and encrypt-all off, every change allowed). A key with the
 * wrong type or an unreadable value is ignored like an absent one, as a
 * managed app ignores configuration it cannot use, and reported in
 * `ignored`.
 */
import type { ManagedSetting } from './keys.ts';
import { settingLocked } from './errors.ts';

/** Outlook for iOS's App Store bundle id: whose managed configuration these keys are. */
export const OUTLOOK_BUNDLE_ID = 'com.microsoft.Office.Outlook';

export const OutlookKeys = {
  smimeEnabled: 'com.microsoft.outlook.Mail.SMIMEEnabled',
  smimeEnabledUserChangeAllowed: 'com.microsoft.outlook.Mail.SMIMEEnabled.UserChangeAllowed',
  encryptAllMail: 'com.microsoft.outlook.Mail.SMIMEEnabled.EncryptAllMail',
  encryptAllMailUserChangeAllowed: 'com.microsoft.outlook.Mail.SMIMEEnabled.EncryptAllMail.UserChangeAllowed',
  signAllMail: 'com.microsoft.outlook.Mail.SMIMEEnabled.SignAllMail',
  signAllMailUserChangeAllowed: 'com.microsoft.outlook.Mail.SMIMEEnabled.SignAllMail.UserChangeAllowed',
  ldapHostName: 'com.microsoft.outlook.Mail.SMIMEEnabled.LDAPHostName',
} as const;

export interface ManagedValue {
  readonly value: boolean;
  readonly userChangeAllowed: boolean;
  /** True when the administrator set the value (rather than Outlook's default applying). */
  readonly managed: boolean;
}

export interface OutlookSmimeSettings {
  readonly smimeEnabled: ManagedValue;
  readonly signAllMail: ManagedValue;
  readonly encryptAllMail: ManagedValue;
  /** Where to look up recipients' certificates over LDAP (anonymous bind), when configured. */
  readonly ldapHostName: string | undefined;
  /** Keys present with a wrong type or value, ignored as Outlook ignores them. */
  readonly ignored: readonly string[];
}

/** What the user chose in the account's S/MIME settings; undefined keeps the managed value. */
export interface SmimePreferences {
  readonly smimeEnabled?: boolean;
  readonly signAllMail?: boolean;
  readonly encryptAllMail?: boolean;
}

/** The user's choice for one message; undefined takes the account's default. */
export interface ProtectionChoice {
  readonly sign?: boolean;
  readonly encrypt?: boolean;
}

export interface Protection {
  readonly sign: boolean;
  readonly encrypt: boolean;
}

const DEFAULT: ManagedValue = { value: false, userChangeAllowed: true, managed: false };

/** Reads Outlook's S/MIME keys from its managed app configuration. */
export function readOutlookSettings(settings: readonly ManagedSetting[]): OutlookSmimeSettings {
  const byKey = new Map(settings.map((s) => [s.appConfigKey, s]));
  const ignored: string[] = [];
  const bool = (key: string): boolean | undefined => {
    const s = byKey.get(key);
    if (!s) return undefined;
    const v = s.appConfigKeyValue.trim().toLowerCase();
    if (s.appConfigKeyType === 'booleanType' && (v === 'true' || v === 'false')) return v === 'true';
    ignored.push(key);
    return undefined;
  };
  const value = (key: string, allowedKey: string): ManagedValue => {
    const v = bool(key);
    const allowed = bool(allowedKey);
    return { value: v ?? DEFAULT.value, userChangeAllowed: allowed ?? DEFAULT.userChangeAllowed, managed: v !== undefined };
  };
  const ldap = byKey.get(OutlookKeys.ldapHostName);
  let ldapHostName: string | undefined;
  if (ldap) {
    const v = ldap.appConfigKeyValue.trim();
    if (ldap.appConfigKeyType === 'stringType' && /^((ldaps?):\/\/)?[A-Za-z0-9.-]+(:\d{1,5})?\/?$/.test(v)) ldapHostName = v;
    else ignored.push(OutlookKeys.ldapHostName);
  }
  return {
    smimeEnabled: value(OutlookKeys.smimeEnabled, OutlookKeys.smimeEnabledUserChangeAllowed),
    signAllMail: value(OutlookKeys.signAllMail, OutlookKeys.signAllMailUserChangeAllowed),
    encryptAllMail: value(OutlookKeys.encryptAllMail, OutlookKeys.encryptAllMailUserChangeAllowed),
    ldapHostName,
    ignored,
  };
}

const LABELS = {
  smimeEnabled: 'S/MIME',
  signAllMail: 'signing all messages',
  encryptAllMail: 'encrypting all messages',
} as const;

function onOff(v: boolean): string {
  return v ? 'on' : 'off';
}

function override(name: keyof typeof LABELS, managed: ManagedValue, wanted: boolean | undefined, where: string): ManagedValue {
  if (wanted === undefined || wanted === managed.value) return managed;
  if (!managed.userChangeAllowed) {
    throw settingLocked(
      `your organisation has turned ${LABELS[name]} ${onOff(managed.value)} and does not allow changing it${where}`,
      `managed-setting-locked: ${name}`,
    );
  }
  return { ...managed, value: wanted };
}

/** The account's settings after the user's own choices, each refused where the managed flag forbids it. */
export function applyPreferences(settings: OutlookSmimeSettings, preferences: SmimePreferences = {}): OutlookSmimeSettings {
  return {
    ...settings,
    smimeEnabled: override('smimeEnabled', settings.smimeEnabled, preferences.smimeEnabled, ''),
    signAllMail: override('signAllMail', settings.signAllMail, preferences.signAllMail, ''),
    encryptAllMail: override('encryptAllMail', settings.encryptAllMail, preferences.encryptAllMail, ''),
  };
}

/**
 * Whether one new message is signed and encrypted: the account's defaults,
 * changed by the user's choice where allowed. With S/MIME off, asking for
 * either is refused (and a message is never protected by default).
 */
export function decideProtection(settings: OutlookSmimeSettings, choice: ProtectionChoice = {}): Protection {
  if (!settings.smimeEnabled.value) {
    if (choice.sign || choice.encrypt) {
      const hint = settings.smimeEnabled.userChangeAllowed ? '; turn it on in the account settings first' : ' and your organisation does not allow turning it on';
      throw settingLocked(`S/MIME is off for this account${hint}`, 'smime-disabled');
    }
    return { sign: false, encrypt: false };
  }
  return {
    sign: override('signAllMail', settings.signAllMail, choice.sign, ' for a single message').value,
    encrypt: override('encryptAllMail', settings.encryptAllMail, choice.encrypt, ' for a single message').value,
  };
}
