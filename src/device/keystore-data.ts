/**
 * What the keystore holds, and its plaintext form (JSON inside the GCM
 * envelope of keystore-format.ts). Certificates are DER and keys PKCS#8
 * DER, both base64; thumbprints are computed from the certificates, never
 * stored beside them, so the two cannot disagree.
 *
 * Reading is all or nothing: every entry is decoded and checked before a
 * snapshot exists, so a bad entry refuses the whole file rather than
 * loading part of it.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import { decodeCertificate, type Certificate } from '../x509/certificate.ts';
import { KEYSTORE_ERROR } from './keystore-errors.ts';

export type KeystoreItemKind = 'device-identity' | 'signing' | 'encryption' | 'trusted-root' | 'contact';

/** The device identity: the key made on the device and the certificate the service issued for it. */
export interface DeviceIdentity {
  readonly deviceId: string | undefined;
  readonly certificate: Certificate;
  readonly key: KeyObject;
  /** The issuing CA and root, nearest first. */
  readonly caCertificates: readonly Certificate[];
  readonly addedAt: Date;
}

/** A signing certificate enrolled over SCEP with a key made on the device; one profile may hold several (renewals). */
export interface SigningCredential {
  readonly profileId: string;
  readonly certificate: Certificate;
  readonly key: KeyObject;
  /** Issuing CAs below the root, nearest first. */
  readonly chain: readonly Certificate[];
  readonly addedAt: Date;
}

/** One certificate of the user's encryption history, with its key, delivered from an imported PFX. */
export interface EncryptionCredential {
  readonly pfxId: string;
  readonly certificate: Certificate;
  readonly key: KeyObject;
  readonly addedAt: Date;
}

export interface TrustedRoot {
  readonly profileId: string | undefined;
  readonly certificate: Certificate;
  readonly addedAt: Date;
}

export type ContactSource = 'signed-message' | 'attachment' | 'directory' | 'manual';

/** Someone else's certificate (or a CA certificate on its path) that the mail side found. */
export interface Contact {
  readonly certificate: Certificate;
  readonly source: ContactSource;
  readonly addedAt: Date;
}

/** Graph's appConfigurationSettingItem: values are strings ("true", "42"). */
export interface AppSetting {
  readonly appConfigKey: string;
  readonly appConfigKeyType: string;
  readonly appConfigKeyValue: string;
}

/** The managed app configuration of one app. */
export interface AppConfiguration {
  readonly bundleId: string;
  readonly settings: readonly AppSetting[];
  readonly plist: string | undefined;
  readonly updatedAt: Date;
}

export interface KeystoreContents {
  readonly identity: DeviceIdentity | undefined;
  readonly signing: readonly SigningCredential[];
  readonly encryption: readonly EncryptionCredential[];
  readonly trustedRoots: readonly TrustedRoot[];
  readonly appConfigurations: readonly AppConfiguration[];
  readonly contacts: readonly Contact[];
}

export const EMPTY_CONTENTS: KeystoreContents = { identity: undefined, signing: [], encryption: [], trustedRoots: [], appConfigurations: [], contacts: [] };

const FORMAT = 'keyfleet-device-keystore';
const CONTACT_SOURCES: readonly ContactSource[] = ['signed-message', 'attachment', 'directory', 'manual'];

// ------------------------------------------------------------------ encoding

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
const keyB64 = (key: KeyObject): string => key.export({ format: 'der', type: 'pkcs8' }).toString('base64');

export function encodeContents(c: KeystoreContents): Buffer {
  const doc = {
    format: FORMAT,
    version: 1,
    identity: c.identity
      ? { deviceId: c.identity.deviceId ?? null, certificate: b64(c.identity.certificate.der), key: keyB64(c.identity.key), caCertificates: c.identity.caCertificates.map((x) => b64(x.der)), addedAt: c.identity.addedAt.toISOString() }
      : null,
    signing: c.signing.map((s) => ({ profileId: s.profileId, certificate: b64(s.certificate.der), key: keyB64(s.key), chain: s.chain.map((x) => b64(x.der)), addedAt: s.addedAt.toISOString() })),
    encryption: c.encryption.map((e) => ({ pfxId: e.pfxId, certificate: b64(e.certificate.der), key: keyB64(e.key), addedAt: e.addedAt.toISOString() })),
    trustedRoots: c.trustedRoots.map((r) => ({ profileId: r.profileId ?? null, certificate: b64(r.certificate.der), addedAt: r.addedAt.toISOString() })),
    appConfigurations: c.appConfigurations.map((a) => ({ bundleId: a.bundleId, settings: a.settings, plist: a.plist ?? null, updatedAt: a.updatedAt.toISOString() })),
    contacts: c.contacts.map((x) => ({ certificate: b64(x.certificate.der), source: x.source, addedAt: x.addedAt.toISOString() })),
  };
  return Buffer.from(JSON.stringify(doc), 'utf8');
}

class Bad extends Error {}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Bad(`${what} is not an object`);
  return v as Record<string, unknown>;
}
function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new Bad(`${what} is not a list`);
  return v;
}
function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new Bad(`${what} is not a string`);
  return v;
}
function optStr(v: unknown, what: string): string | undefined {
  return v === null || v === undefined ? undefined : str(v, what);
}
function date(v: unknown, what: string): Date {
  const d = new Date(str(v, what));
  if (Number.isNaN(d.getTime())) throw new Bad(`${what} is not a time`);
  return d;
}
function cert(v: unknown, what: string): Certificate {
  return decodeCertificate(Buffer.from(str(v, what), 'base64'));
}
function key(v: unknown, what: string): KeyObject {
  return createPrivateKey({ key: Buffer.from(str(v, what), 'base64'), format: 'der', type: 'pkcs8' });
}

/** Decodes and checks every entry; throws the keystore error (damaged) on anything wrong. */
export function decodeContents(plaintext: Uint8Array): KeystoreContents {
  try {
    const doc = obj(JSON.parse(Buffer.from(plaintext).toString('utf8')), 'keystore');
    if (doc.format !== FORMAT || doc.version !== 1) throw new Bad('unknown contents version');
    const id = doc.identity === null || doc.identity === undefined ? undefined : obj(doc.identity, 'identity');
    const identity: DeviceIdentity | undefined = id && {
      deviceId: optStr(id.deviceId, 'deviceId'),
      certificate: cert(id.certificate, 'identity certificate'),
      key: key(id.key, 'identity key'),
      caCertificates: arr(id.caCertificates, 'caCertificates').map((x) => cert(x, 'CA certificate')),
      addedAt: date(id.addedAt, 'addedAt'),
    };
    const signing = arr(doc.signing, 'signing').map((v): SigningCredential => {
      const s = obj(v, 'signing entry');
      return { profileId: str(s.profileId, 'profileId'), certificate: cert(s.certificate, 'certificate'), key: key(s.key, 'key'), chain: arr(s.chain, 'chain').map((x) => cert(x, 'chain')), addedAt: date(s.addedAt, 'addedAt') };
    });
    const encryption = arr(doc.encryption, 'encryption').map((v): EncryptionCredential => {
      const e = obj(v, 'encryption entry');
      return { pfxId: str(e.pfxId, 'pfxId'), certificate: cert(e.certificate, 'certificate'), key: key(e.key, 'key'), addedAt: date(e.addedAt, 'addedAt') };
    });
    const trustedRoots = arr(doc.trustedRoots, 'trustedRoots').map((v): TrustedRoot => {
      const r = obj(v, 'trusted root');
      return { profileId: optStr(r.profileId, 'profileId'), certificate: cert(r.certificate, 'certificate'), addedAt: date(r.addedAt, 'addedAt') };
    });
    const appConfigurations = arr(doc.appConfigurations, 'appConfigurations').map((v): AppConfiguration => {
      const a = obj(v, 'app configuration');
      const settings = arr(a.settings, 'settings').map((x): AppSetting => {
        const s = obj(x, 'setting');
        return { appConfigKey: str(s.appConfigKey, 'appConfigKey'), appConfigKeyType: str(s.appConfigKeyType, 'appConfigKeyType'), appConfigKeyValue: str(s.appConfigKeyValue, 'appConfigKeyValue') };
      });
      return { bundleId: str(a.bundleId, 'bundleId'), settings, plist: optStr(a.plist, 'plist'), updatedAt: date(a.updatedAt, 'updatedAt') };
    });
    const contacts = arr(doc.contacts, 'contacts').map((v): Contact => {
      const c = obj(v, 'contact');
      const source = str(c.source, 'source') as ContactSource;
      if (!CONTACT_SOURCES.includes(source)) throw new Bad('unknown contact source');
      return { certificate: cert(c.certificate, 'certificate'), source, addedAt: date(c.addedAt, 'addedAt') };
    });
    for (const pair of [...(identity ? [identity] : []), ...signing, ...encryption]) {
      if (!keyMatches(pair.certificate, pair.key)) throw new Bad(`the key stored with ${pair.certificate.thumbprint} is not its key`);
    }
    return { identity, signing, encryption, trustedRoots, appConfigurations, contacts };
  } catch (e) {
    throw new KeyfleetError(KEYSTORE_ERROR, `the keystore contents cannot be read (${e instanceof Error ? e.message : 'invalid'})`, { cause: e, detail: 'damaged' });
  }
}

export function keyMatches(certificate: Certificate, privateKey: KeyObject): boolean {
  try {
    const fromKey = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
    return fromKey.equals(certificate.publicKey.export({ format: 'der', type: 'spki' }));
  } catch {
    return false;
  }
}

/** Upper-case hex SHA-1, colons and spaces removed: how thumbprints are compared. */
export function normaliseThumbprint(t: string): string {
  return t.replace(/[\s:]/g, '').toUpperCase();
}

// ------------------------------------------------------------------ changes

function requirePair(certificate: Certificate, privateKey: KeyObject, what: string): void {
  if (privateKey.type !== 'private' || !keyMatches(certificate, privateKey)) {
    throw new KeyfleetError('KF_KEY_INVALID', `${what}: the private key does not belong to certificate ${certificate.thumbprint}`);
  }
}

/**
 * A copy of the contents being changed inside one locked write
 * (DeviceKeystore.update). Adding what is already there changes nothing,
 * so an idempotent check-in does not rewrite the file.
 */
export class KeystoreDraft {
  identity: DeviceIdentity | undefined;
  signing: SigningCredential[];
  encryption: EncryptionCredential[];
  trustedRoots: TrustedRoot[];
  appConfigurations: AppConfiguration[];
  contacts: Contact[];
  changed = false;
  readonly now: Date;

  constructor(c: KeystoreContents, now: Date) {
    this.identity = c.identity;
    this.signing = [...c.signing];
    this.encryption = [...c.encryption];
    this.trustedRoots = [...c.trustedRoots];
    this.appConfigurations = [...c.appConfigurations];
    this.contacts = [...c.contacts];
    this.now = now;
  }

  contents(): KeystoreContents {
    return { identity: this.identity, signing: this.signing, encryption: this.encryption, trustedRoots: this.trustedRoots, appConfigurations: this.appConfigurations, contacts: this.contacts };
  }

  setIdentity(input: { readonly deviceId?: string; readonly certificate: Certificate; readonly key: KeyObject; readonly caCertificates?: readonly Certificate[] }): void {
    requirePair(input.certificate, input.key, 'device identity');
    this.identity = { deviceId: input.deviceId, certificate: input.certificate, key: input.key, caCertificates: [...(input.caCertificates ?? [])], addedAt: this.now };
    this.changed = true;
  }

  /** Keeps earlier certificates of the profile (they go when removed by thumbprint). False when already held. */
  addSigning(input: { readonly profileId: string; readonly certificate: Certificate; readonly key: KeyObject; readonly chain?: readonly Certificate[] }): boolean {
    requirePair(input.certificate, input.key, 'signing certificate');
    if (this.signing.some((s) => s.certificate.thumbprint === input.certificate.thumbprint)) return false;
    this.signing.push({ profileId: input.profileId, certificate: input.certificate, key: input.key, chain: [...(input.chain ?? [])], addedAt: this.now });
    return (this.changed = true);
  }

  /**
   * Adds one certificate of the encryption history. Entries are never merged
   * or replaced by newer ones: mail encrypted years ago still needs its key.
   * The same certificate again (same thumbprint) is a no-op, or records a
   * new pfxId when it was imported again under another id.
   */
  addEncryption(input: { readonly pfxId: string; readonly certificate: Certificate; readonly key: KeyObject }): boolean {
    requirePair(input.certificate, input.key, `encryption certificate of PFX ${input.pfxId}`);
    const i = this.encryption.findIndex((e) => e.certificate.thumbprint === input.certificate.thumbprint);
    if (i >= 0) {
      if (this.encryption[i]!.pfxId === input.pfxId) return false;
      this.encryption[i] = { ...this.encryption[i]!, pfxId: input.pfxId };
      return (this.changed = true);
    }
    this.encryption.push({ pfxId: input.pfxId, certificate: input.certificate, key: input.key, addedAt: this.now });
    return (this.changed = true);
  }

  addTrustedRoot(input: { readonly certificate: Certificate; readonly profileId?: string }): boolean {
    if (this.trustedRoots.some((r) => r.certificate.thumbprint === input.certificate.thumbprint)) return false;
    this.trustedRoots.push({ profileId: input.profileId, certificate: input.certificate, addedAt: this.now });
    return (this.changed = true);
  }

  addContact(certificate: Certificate, source: ContactSource): boolean {
    if (this.contacts.some((c) => c.certificate.thumbprint === certificate.thumbprint)) return false;
    this.contacts.push({ certificate, source, addedAt: this.now });
    return (this.changed = true);
  }

  /** Replaces the app's configuration; false when the settings and plist are unchanged. */
  setAppConfiguration(input: { readonly bundleId: string; readonly settings: readonly AppSetting[]; readonly plist?: string }): boolean {
    const settings = input.settings.map((s) => ({ appConfigKey: s.appConfigKey, appConfigKeyType: s.appConfigKeyType, appConfigKeyValue: s.appConfigKeyValue }));
    const i = this.appConfigurations.findIndex((a) => a.bundleId === input.bundleId);
    const current = i >= 0 ? this.appConfigurations[i] : undefined;
    if (current && JSON.stringify(current.settings) === JSON.stringify(settings) && current.plist === input.plist) return false;
    const entry: AppConfiguration = { bundleId: input.bundleId, settings, plist: input.plist, updatedAt: this.now };
    if (i >= 0) this.appConfigurations[i] = entry;
    else this.appConfigurations.push(entry);
    return (this.changed = true);
  }

  removeAppConfiguration(bundleId: string): boolean {
    const before = this.appConfigurations.length;
    this.appConfigurations = this.appConfigurations.filter((a) => a.bundleId !== bundleId);
    return this.#did(before !== this.appConfigurations.length);
  }

  /** Removes every entry of the given kinds (default: all but the device identity) with this thumbprint; returns how many. */
  remove(thumbprint: string, kinds: readonly KeystoreItemKind[] = ['signing', 'encryption', 'trusted-root', 'contact']): number {
    const t = normaliseThumbprint(thumbprint);
    const keep = <T extends { readonly certificate: Certificate }>(kind: KeystoreItemKind, list: T[]): T[] => (kinds.includes(kind) ? list.filter((x) => x.certificate.thumbprint !== t) : list);
    const before = this.#count();
    if (kinds.includes('device-identity') && this.identity?.certificate.thumbprint === t) this.identity = undefined;
    this.signing = keep('signing', this.signing);
    this.encryption = keep('encryption', this.encryption);
    this.trustedRoots = keep('trusted-root', this.trustedRoots);
    this.contacts = keep('contact', this.contacts);
    const removed = before - this.#count();
    this.#did(removed > 0);
    return removed;
  }

  /** Retire/wipe: every managed certificate, root and app configuration goes; the identity and contacts stay. */
  clearManaged(): number {
    const n = this.signing.length + this.encryption.length + this.trustedRoots.length + this.appConfigurations.length;
    this.signing = [];
    this.encryption = [];
    this.trustedRoots = [];
    this.appConfigurations = [];
    this.#did(n > 0);
    return n;
  }

  #count(): number {
    return (this.identity ? 1 : 0) + this.signing.length + this.encryption.length + this.trustedRoots.length + this.contacts.length;
  }

  #did(changed: boolean): boolean {
    if (changed) this.changed = true;
    return changed;
  }
}
