/**
 * Which certificates the mail app uses, as Outlook for iOS chooses them
 * (REFERENCE.md "Client behaviour to reproduce"):
 *
 * - its own: the signing (and announced encryption) certificate must name
 *   the account's primary SMTP address and be usable now; otherwise
 *   "certificate not available". Its own chain is not required to reach a
 *   root on this device (the recipient judges trust), but expiry, key
 *   usage and algorithm strength are.
 * - recipients': looked up on the device (contacts), then in each
 *   CertificateDirectory in order (GAL, LDAP, the service); a certificate
 *   is used only when it validates to a trusted root for encryption now.
 *   The newest valid one wins.
 */
import type { Certificate } from '../x509/certificate.ts';
import { type PathReason, type PathResult, validatePath } from '../x509/path.ts';
import type { KeyPair } from '../smime/cms/enveloped-data.ts';
import type { CertificateDirectory, MailIdentity, MailKeys } from './keys.ts';

/** Outlook warns this long before a certificate expires. */
export const EXPIRY_WARNING_DAYS = 30;

function names(certificate: Certificate, address: string): boolean {
  return certificate.emailAddresses.includes(address.toLowerCase());
}

function newestFirst<T extends { readonly certificate: Certificate }>(list: readonly T[]): T[] {
  return [...list].sort((a, b) => b.certificate.notBefore.getTime() - a.certificate.notBefore.getTime());
}

export function isCa(c: Certificate): boolean {
  return c.basicConstraints?.cA === true;
}

/**
 * CA certificates the device knows besides its roots: those on its own
 * signing certificates' paths (the organisation's issuing CAs) and those
 * installed with contacts. A recipient's bare .cer from the same CA then
 * validates without its chain attached.
 */
export function knownCertificates(keys: MailKeys): Certificate[] {
  return [...keys.contacts(), ...keys.signingIdentities().flatMap((i) => i.chain)];
}

/** Reasons that count against one's own certificate: all but an untrusted chain (the recipient decides trust). */
function ownReasons(certificate: Certificate, purpose: 'smime-sign' | 'smime-encrypt', keys: MailKeys, intermediates: readonly Certificate[], at: Date): PathReason[] {
  const r = validatePath(certificate, { trustAnchors: keys.trustedRoots(), intermediates, purpose, at });
  return r.reasons.filter((x) => x !== 'untrusted-chain');
}

/** The account's signing identity: names the address, usable for signing at `at`, newest first. */
export function signingIdentityFor(address: string, keys: MailKeys, at: Date): MailIdentity | undefined {
  return newestFirst(keys.signingIdentities()).find(
    (id) => names(id.certificate, address) && ownReasons(id.certificate, 'smime-sign', keys, knownCertificates(keys), at).length === 0,
  );
}

/** The account's current encryption certificate (to announce when signing, and to encrypt a copy to oneself). */
export function ownEncryptionKeyFor(address: string, keys: MailKeys, at: Date): KeyPair | undefined {
  return newestFirst(keys.decryptionKeys()).find((k) => names(k.certificate, address) && ownReasons(k.certificate, 'smime-encrypt', keys, knownCertificates(keys), at).length === 0);
}

/** The path of `certificate` to a trusted root for `purpose` at `at`; valid when it has no reasons. */
export function validateFor(certificate: Certificate, purpose: 'smime-encrypt' | 'any', keys: MailKeys, intermediates: readonly Certificate[], at: Date): PathResult {
  return validatePath(certificate, { trustAnchors: keys.trustedRoots(), intermediates, purpose, at });
}

export interface RecipientLookup {
  /** Address (lower-case) → the certificate to encrypt to. */
  readonly found: ReadonlyMap<string, { readonly certificate: Certificate; readonly source: string }>;
  /** Addresses without a valid certificate anywhere. */
  readonly missing: readonly string[];
  /** Directories that failed, by name, with the address asked (the lookup went on without them). */
  readonly errors: readonly { readonly directory: string; readonly address: string; readonly error: unknown }[];
}

function bestValid(address: string, candidates: readonly Certificate[], keys: MailKeys, pool: readonly Certificate[], at: Date): Certificate | undefined {
  const usable = candidates.filter((c) => !isCa(c) && names(c, address));
  return newestFirst(usable.map((certificate) => ({ certificate }))).find((x) => validateFor(x.certificate, 'smime-encrypt', keys, pool, at).reasons.length === 0)?.certificate;
}

/** Finds each address's encryption certificate: the device's contacts first, then each directory in order. */
export async function findRecipientCertificates(
  addresses: readonly string[],
  keys: MailKeys,
  directories: readonly CertificateDirectory[],
  at: Date,
): Promise<RecipientLookup> {
  const found = new Map<string, { certificate: Certificate; source: string }>();
  const missing: string[] = [];
  const errors: { directory: string; address: string; error: unknown }[] = [];
  const contacts = keys.contacts();
  const known = knownCertificates(keys);
  for (const raw of addresses) {
    const address = raw.toLowerCase();
    let hit = bestValid(address, contacts, keys, known, at);
    let source = 'contacts';
    for (let i = 0; !hit && i < directories.length; i++) {
      const dir = directories[i]!;
      try {
        const got = await dir.find(address);
        hit = bestValid(address, got, keys, [...got, ...known], at);
        source = dir.name;
      } catch (error) {
        errors.push({ directory: dir.name, address, error });
      }
    }
    if (hit) found.set(address, { certificate: hit, source });
    else missing.push(address);
  }
  return { found, missing, errors };
}

/** Days until `certificate` expires, when that is within the warning period; undefined otherwise. */
export function expiresSoon(certificate: Certificate, at: Date): number | undefined {
  const days = Math.floor((certificate.notAfter.getTime() - at.getTime()) / 86_400_000);
  return days <= EXPIRY_WARNING_DAYS ? days : undefined;
}
