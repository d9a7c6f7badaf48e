/**
 * What an imported PFX holds, for Intune-style custody (issue 4 "Imported
 * PFX certificates"): the admin's machine opens the PFX once with its
 * password to learn the certificate's thumbprint, subject, addresses,
 * validity and key type, then uploads the PFX still locked by that password
 * (src/policy/pfx-import.ts). The service never sees the password.
 */
import { nameToString } from '../x509/name.ts';
import type { KeyUsage } from '../x509/certificate.ts';
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import { readPkcs12 } from './read.ts';

export interface PfxMetadata {
  /** SHA-1 of the certificate DER, upper-case hex (Graph `userPFXCertificate.thumbprint`). */
  readonly thumbprint: string;
  /** RFC 4514-style subject. */
  readonly subject: string;
  /** SAN rfc822Names and subject emailAddress values, lower-cased. */
  readonly emailAddresses: readonly string[];
  /** SAN Microsoft UPN otherNames. */
  readonly userPrincipalNames: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** "rsa-2048", "p-256", … (the CA's key-spec names), or the key type and size otherwise. */
  readonly keyType: string;
  /** keyUsage bits, or undefined when the certificate has no keyUsage extension (any use). */
  readonly keyUsage: readonly KeyUsage[] | undefined;
  /** extKeyUsage OIDs, or undefined when absent. */
  readonly extKeyUsage: readonly string[] | undefined;
}

/** A PFX for one user's certificate is a few KiB; anything past this is not one. */
export const MAX_PFX_BYTES = 256 * 1024;

const curveNames: Record<string, string> = { prime256v1: 'p-256', secp384r1: 'p-384', secp521r1: 'p-521' };

/**
 * Reads the metadata of a PFX holding exactly one private key and its
 * certificate. Throws KF_PKCS12_BAD_PASSWORD for a wrong password; the
 * reader's own codes with detail 'not-pkcs12' for bytes that are not
 * PKCS#12; KF_USAGE with detail 'pfx-without-key', 'pfx-without-certificate'
 * or 'pfx-multiple-keys' for a PFX that is not one identity.
 */
export function readPfxMetadata(pfx: Uint8Array, password: string): PfxMetadata {
  if (pfx.byteLength > MAX_PFX_BYTES) throw new KeyfleetError('KF_INPUT_TOO_LARGE', `PFX file is larger than ${MAX_PFX_BYTES / 1024} KiB`);
  let contents;
  try {
    contents = readPkcs12(pfx, password);
  } catch (e) {
    if (isKeyfleetError(e) && (e.code === 'KF_ASN1_MALFORMED' || e.code === 'KF_CMS_MALFORMED' || e.code === 'KF_ASN1_LIMIT')) {
      throw new KeyfleetError(e.code, `not a PKCS#12 (PFX) file: ${e.message}`, { cause: e, detail: 'not-pkcs12' });
    }
    throw e;
  }
  if (contents.keys.length === 0) throw new KeyfleetError('KF_USAGE', 'the PFX holds no private key; import the certificate with its key', { detail: 'pfx-without-key' });
  if (contents.keys.length > 1) {
    throw new KeyfleetError('KF_USAGE', `the PFX holds ${contents.keys.length} private keys; import one certificate per PFX`, { detail: 'pfx-multiple-keys' });
  }
  const { key, certificate } = contents.keys[0]!;
  if (certificate === undefined) throw new KeyfleetError('KF_USAGE', 'the PFX holds no certificate for its private key', { detail: 'pfx-without-certificate' });
  const details = key.asymmetricKeyDetails;
  const keyType =
    key.asymmetricKeyType === 'rsa'
      ? `rsa-${details?.modulusLength ?? 0}`
      : key.asymmetricKeyType === 'ec'
        ? (curveNames[details?.namedCurve ?? ''] ?? `ec-${details?.namedCurve ?? 'unknown'}`)
        : (key.asymmetricKeyType ?? 'unknown');
  return {
    thumbprint: certificate.thumbprint,
    subject: nameToString(certificate.subject),
    emailAddresses: certificate.emailAddresses,
    userPrincipalNames: certificate.subjectAltName?.upns ?? [],
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
    keyType,
    keyUsage: certificate.keyUsage ? [...certificate.keyUsage] : undefined,
    extKeyUsage: certificate.extKeyUsage,
  };
}
