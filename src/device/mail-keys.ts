/**
 * The keystore as the mail side sees it (src/mail/keys.ts): a snapshot
 * read as MailKeys, and the keystore's contacts as a ContactBook. The
 * managed settings are those of Outlook's bundle id.
 */
import type { ContactBook, MailKeys } from '../mail/keys.ts';
import { OUTLOOK_BUNDLE_ID } from '../mail/settings.ts';
import type { KeystoreContents } from './keystore-data.ts';
import type { DeviceKeystore } from './keystore.ts';

export function mailKeysOf(contents: KeystoreContents, bundleId: string = OUTLOOK_BUNDLE_ID): MailKeys {
  const signing = contents.signing.map((s) => ({ certificate: s.certificate, key: s.key, chain: s.chain }));
  const decryption = contents.encryption.map((e) => ({ certificate: e.certificate, key: e.key }));
  const roots = contents.trustedRoots.map((r) => r.certificate);
  const contacts = contents.contacts.map((c) => c.certificate);
  const settings = contents.appConfigurations.find((a) => a.bundleId === bundleId)?.settings ?? [];
  return {
    signingIdentities: () => signing,
    decryptionKeys: () => decryption,
    trustedRoots: () => roots,
    contacts: () => contacts,
    managedSettings: () => settings,
  };
}

/** A fresh MailKeys per call: what MailClient's `keys` option wants. */
export function keystoreMailKeys(keystore: DeviceKeystore, bundleId?: string): () => Promise<MailKeys> {
  return async () => mailKeysOf(await keystore.snapshot(), bundleId);
}

export function keystoreContactBook(keystore: DeviceKeystore): ContactBook {
  return { addContacts: (certificates, source) => keystore.addContacts(certificates, source) };
}
