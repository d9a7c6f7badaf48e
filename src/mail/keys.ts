/**
 * What the mail side needs from the device, as narrow interfaces of its
 * own: src/mail may import only asn1, x509 and smime (eslint.config.js),
 * so the device keystore satisfies these through a thin adapter in
 * src/device (mail-keys.ts), and tests can hand in plain objects.
 */
import type { KeyObject } from 'node:crypto';
import type { Certificate } from '../x509/certificate.ts';
import type { KeyPair } from '../smime/cms/enveloped-data.ts';

export type { KeyPair } from '../smime/cms/enveloped-data.ts';

/** A signing certificate with its key and the CA certificates below the root, nearest first. */
export interface MailIdentity {
  readonly certificate: Certificate;
  readonly key: KeyObject;
  readonly chain: readonly Certificate[];
}

/** One managed app configuration entry (Graph appConfigurationSettingItem). */
export interface ManagedSetting {
  readonly appConfigKey: string;
  readonly appConfigKeyType: string;
  readonly appConfigKeyValue: string;
}

/**
 * The key material and configuration the mail app reads, as one consistent
 * version (the keystore hands out a snapshot). The mail side chooses among
 * them: the signing certificate must name the account's address, and
 * decryption uses whichever history key a message names.
 */
export interface MailKeys {
  /** Every signing certificate with its key (several during a renewal). */
  signingIdentities(): readonly MailIdentity[];
  /** The whole encryption history with keys, oldest certificates included. */
  decryptionKeys(): readonly KeyPair[];
  trustedRoots(): readonly Certificate[];
  /** Other people's certificates, and CA certificates on their paths. */
  contacts(): readonly Certificate[];
  /** Outlook's managed app configuration; empty when none is assigned. */
  managedSettings(): readonly ManagedSetting[];
}

export type ContactSource = 'signed-message' | 'attachment' | 'directory';

/** Where installed certificates go (the keystore's contacts). */
export interface ContactBook {
  /** Adds the certificates; returns those that were not held before. */
  addContacts(certificates: readonly Certificate[], source: ContactSource): Promise<readonly Certificate[]>;
}

/**
 * Another place to find a recipient's certificates after the device's own
 * contacts: the organisation's directory (GAL), LDAP, or the Keyfleet
 * service later. It returns what it has for the address; the caller
 * validates every certificate before use.
 */
export interface CertificateDirectory {
  readonly name: string;
  find(address: string): Promise<readonly Certificate[]>;
}
