/**
 * The mail side (the seed's Outlook for iOS): managed S/MIME settings,
 * composing signed and encrypted messages, opening received ones, and the
 * recipients' certificates. It sees the device only through MailKeys and
 * ContactBook (keys.ts).
 */
export type { CertificateDirectory, ContactBook, ContactSource, KeyPair, MailIdentity, MailKeys, ManagedSetting } from './keys.ts';
export { CERTIFICATE_UNAVAILABLE, RecipientCertificatesMissing, SETTING_LOCKED } from './errors.ts';
export {
  OUTLOOK_BUNDLE_ID,
  OutlookKeys,
  applyPreferences,
  decideProtection,
  readOutlookSettings,
  type ManagedValue,
  type OutlookSmimeSettings,
  type Protection,
  type ProtectionChoice,
  type SmimePreferences,
} from './settings.ts';
export { buildMessage, encodeWords, mailboxAddress, recipientAddresses, type Attachment, type MessageDraft } from './compose.ts';
export { EXPIRY_WARNING_DAYS, findRecipientCertificates, ownEncryptionKeyFor, signingIdentityFor, type RecipientLookup } from './certificates.ts';
export { openMessage, signerCertificates, type OpenOptions, type OpenOutcome, type OpenedMessage, type SignerReport } from './open.ts';
export { MailClient, certificatesOfFile, type ComposedMessage, type InstallResult, type MailClientOptions } from './client.ts';
