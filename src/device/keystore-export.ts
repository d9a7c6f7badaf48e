/**
 * What `keyfleet device keystore list|export` shows of a keystore: a
 * listing of metadata (never a key), and one item exported as PKCS#12
 * (src/pkcs12's writer; `legacy` for iOS and older Windows) or PEM.
 */
import type { KeyObject } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import { encodePem } from '../asn1/pem.ts';
import type { Certificate } from '../x509/certificate.ts';
import { nameToString } from '../x509/name.ts';
import { writePkcs12 } from '../pkcs12/index.ts';
import { type ContactSource, type KeystoreContents, type KeystoreItemKind, normaliseThumbprint } from './keystore-data.ts';

export interface KeystoreItemSummary {
  readonly kind: KeystoreItemKind;
  /** SHA-1 of the certificate, upper-case hex (Intune's thumbprint). */
  readonly thumbprint: string;
  readonly subject: string;
  readonly issuer: string;
  readonly serialNumber: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly emailAddresses: readonly string[];
  readonly hasPrivateKey: boolean;
  readonly deviceId?: string;
  readonly profileId?: string;
  readonly pfxId?: string;
  readonly source?: ContactSource;
  readonly addedAt: string;
}

export interface KeystoreListing {
  readonly path: string;
  readonly generation: number;
  readonly writtenAt: string;
  readonly kdf: 'key-file' | 'scrypt';
  readonly items: readonly KeystoreItemSummary[];
  readonly appConfigurations: readonly {
    readonly bundleId: string;
    readonly settings: readonly { readonly appConfigKey: string; readonly appConfigKeyType: string; readonly appConfigKeyValue: string }[];
    readonly updatedAt: string;
  }[];
}

export type ExportOptions =
  | { readonly format: 'pkcs12'; readonly password: string; readonly profile?: 'modern' | 'legacy'; readonly friendlyName?: string }
  | { readonly format: 'pem'; readonly includeKey?: boolean };

interface Item {
  readonly kind: KeystoreItemKind;
  readonly certificate: Certificate;
  readonly key: KeyObject | undefined;
  readonly chain: readonly Certificate[];
  readonly extra: Partial<Pick<KeystoreItemSummary, 'deviceId' | 'profileId' | 'pfxId' | 'source'>>;
  readonly addedAt: Date;
}

function items(c: KeystoreContents): Item[] {
  const out: Item[] = [];
  if (c.identity) {
    const extra = c.identity.deviceId !== undefined ? { deviceId: c.identity.deviceId } : {};
    out.push({ kind: 'device-identity', certificate: c.identity.certificate, key: c.identity.key, chain: c.identity.caCertificates, extra, addedAt: c.identity.addedAt });
  }
  for (const s of c.signing) out.push({ kind: 'signing', certificate: s.certificate, key: s.key, chain: s.chain, extra: { profileId: s.profileId }, addedAt: s.addedAt });
  for (const e of c.encryption) out.push({ kind: 'encryption', certificate: e.certificate, key: e.key, chain: [], extra: { pfxId: e.pfxId }, addedAt: e.addedAt });
  for (const r of c.trustedRoots) {
    out.push({ kind: 'trusted-root', certificate: r.certificate, key: undefined, chain: [], extra: r.profileId !== undefined ? { profileId: r.profileId } : {}, addedAt: r.addedAt });
  }
  for (const x of c.contacts) out.push({ kind: 'contact', certificate: x.certificate, key: undefined, chain: [], extra: { source: x.source }, addedAt: x.addedAt });
  return out;
}

function summary(i: Item): KeystoreItemSummary {
  const c = i.certificate;
  return {
    kind: i.kind,
    thumbprint: c.thumbprint,
    subject: nameToString(c.subject),
    issuer: nameToString(c.issuer),
    serialNumber: c.serialHex,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    emailAddresses: c.emailAddresses,
    hasPrivateKey: i.key !== undefined,
    ...i.extra,
    addedAt: i.addedAt.toISOString(),
  };
}

export function listContents(c: KeystoreContents & { readonly generation: number; readonly writtenAt: Date; readonly kdf: 'key-file' | 'scrypt' }, path: string): KeystoreListing {
  return {
    path,
    generation: c.generation,
    writtenAt: c.writtenAt.toISOString(),
    kdf: c.kdf,
    items: items(c).map(summary),
    appConfigurations: c.appConfigurations.map((a) => ({ bundleId: a.bundleId, settings: a.settings, updatedAt: a.updatedAt.toISOString() })),
  };
}

/**
 * One item by thumbprint (and kind, when the same certificate is held as
 * several kinds). PKCS#12 needs an item with a key; PEM writes the
 * certificate, its chain, and the key only when asked.
 */
export function exportItem(c: KeystoreContents, thumbprint: string, options: ExportOptions, kind?: KeystoreItemKind): Uint8Array {
  const t = normaliseThumbprint(thumbprint);
  const matches = items(c).filter((i) => i.certificate.thumbprint === t && (kind === undefined || i.kind === kind));
  // The same certificate as signing and encryption (a dual-use certificate) has the same key: prefer an entry with one.
  const item = matches.find((i) => i.key !== undefined) ?? matches[0];
  if (!item) throw new KeyfleetError('KF_NOT_FOUND', `the keystore holds no ${kind ?? 'item'} with thumbprint ${t}`);
  if (options.format === 'pem') {
    const parts = [item.certificate, ...item.chain].map((x) => encodePem('CERTIFICATE', x.der));
    if (options.includeKey) {
      if (!item.key) throw new KeyfleetError('KF_USAGE', `${item.kind} ${t} has no private key to export`);
      parts.push(item.key.export({ format: 'pem', type: 'pkcs8' }).toString());
    }
    return Buffer.from(parts.join(''), 'latin1');
  }
  if (!item.key) throw new KeyfleetError('KF_USAGE', `${item.kind} ${t} has no private key; export it as PEM`);
  return writePkcs12(
    [{ key: item.key, certificate: item.certificate, chain: item.chain, friendlyName: options.friendlyName ?? friendlyName(item) }],
    options.password,
    options.profile ? { profile: options.profile } : {},
  );
}

function friendlyName(i: Item): string {
  const who = i.certificate.emailAddresses[0] ?? nameToString(i.certificate.subject);
  return `${who} (${i.kind})`;
}
