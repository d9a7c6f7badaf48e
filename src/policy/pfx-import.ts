/**
 * Preparing an imported PFX for upload, with Intune's custody model (issue 4
 * "Imported PFX certificates"; REFERENCE.md `userPFXCertificate`): on the
 * admin's machine the PFX is opened once to read its metadata, then uploaded
 * still locked by its own password, and only that password is encrypted,
 * with RSA-OAEP (SHA-256/384/512; OAEP-SHA512 by default, as Intune) to the
 * PFX connector's public key. The service stores both and can open neither;
 * the connector, which holds the private key, opens them when it delivers.
 *
 * src/policy may not read PKCS#12 itself (eslint.config.js layers), so the
 * metadata reader is passed in: src/pkcs12/pfx-metadata.ts `readPfxMetadata`.
 */
import { type KeyObject, constants, createPublicKey, generateKeyPairSync, publicEncrypt } from 'node:crypto';
import { OID } from '../asn1/oids.ts';
import type { KeyUsage } from '../x509/certificate.ts';
import { type JsonSchema, checkSchema } from './json-schema.ts';
import { refuse } from './refusal.ts';
import { type IntendedPurpose, IntendedPurposes } from './resources.ts';

/** Graph `userPfxPaddingScheme`, without the retired pkcs1 and oaepSha1. */
export const PaddingSchemes = ['oaepSha256', 'oaepSha384', 'oaepSha512'] as const;
export type PaddingScheme = (typeof PaddingSchemes)[number];

export const DEFAULT_PADDING_SCHEME: PaddingScheme = 'oaepSha512';
export const DEFAULT_PROVIDER_NAME = 'Keyfleet PFX Connector';

const oaepHash: Record<PaddingScheme, { readonly name: string; readonly bytes: number }> = {
  oaepSha256: { name: 'sha256', bytes: 32 },
  oaepSha384: { name: 'sha384', bytes: 48 },
  oaepSha512: { name: 'sha512', bytes: 64 },
};

/** The facts preparePfxImport needs from the PFX (src/pkcs12/pfx-metadata.ts `PfxMetadata` has them). */
export interface PfxFacts {
  readonly thumbprint: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly keyUsage: readonly KeyUsage[] | undefined;
  readonly extKeyUsage: readonly string[] | undefined;
}

export type PfxMetadataReader = (pfx: Uint8Array, password: string) => PfxFacts;

export interface PfxImportInput {
  readonly pfx: Uint8Array;
  readonly password: string;
  /** The connector's RSA public key (a private key is accepted and only its public half used). */
  readonly connectorPublicKey: KeyObject;
  readonly paddingScheme?: PaddingScheme;
  readonly userPrincipalName: string;
  readonly intendedPurpose: IntendedPurpose;
  /** The name the connector knows its key by (Graph `keyName`). */
  readonly keyName: string;
  readonly providerName?: string;
}

/** Graph `userPFXCertificate` as uploaded (the service adds id and timestamps). */
export interface UserPfxCertificateUpload {
  readonly userPrincipalName: string;
  readonly thumbprint: string;
  readonly intendedPurpose: IntendedPurpose;
  /** ISO 8601, from the certificate's notBefore. */
  readonly startDateTime: string;
  /** ISO 8601, from the certificate's notAfter. */
  readonly expirationDateTime: string;
  readonly providerName: string;
  readonly keyName: string;
  readonly paddingScheme: PaddingScheme;
  /** The PFX bytes in base64, still encrypted under the PFX password. */
  readonly encryptedPfxBlob: string;
  /** RSA-OAEP(UTF-8 password) under the connector key, base64. */
  readonly encryptedPfxPassword: string;
}

const base64 = '^[A-Za-z0-9+/]*={0,2}$';

export const userPfxCertificateUploadSchema = {
  $id: 'keyfleet:userPfxCertificate',
  title: 'Imported PFX certificate (userPFXCertificate)',
  type: 'object',
  additionalProperties: false,
  required: ['userPrincipalName', 'thumbprint', 'intendedPurpose', 'startDateTime', 'expirationDateTime', 'providerName', 'keyName', 'paddingScheme', 'encryptedPfxBlob', 'encryptedPfxPassword'],
  properties: {
    userPrincipalName: { type: 'string', minLength: 3, maxLength: 256, pattern: '^[^@\\s]+@[^@\\s]+$' },
    thumbprint: { type: 'string', pattern: '^[0-9A-F]{40}$' },
    intendedPurpose: { type: 'string', enum: IntendedPurposes },
    startDateTime: { type: 'string', maxLength: 40, pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z$' },
    expirationDateTime: { type: 'string', maxLength: 40, pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z$' },
    providerName: { type: 'string', minLength: 1, maxLength: 256 },
    keyName: { type: 'string', minLength: 1, maxLength: 256, pattern: '^[^\\u0000-\\u001f\\u007f]*$' },
    paddingScheme: { type: 'string', enum: PaddingSchemes },
    // 256 KiB of PFX (src/pkcs12/pfx-metadata.ts MAX_PFX_BYTES) in base64.
    encryptedPfxBlob: { type: 'string', minLength: 4, maxLength: 349_528, pattern: base64 },
    // An RSA-8192 ciphertext at most.
    encryptedPfxPassword: { type: 'string', minLength: 4, maxLength: 1368, pattern: base64 },
  },
} as const satisfies JsonSchema;

export function parseUserPfxCertificateUpload(json: unknown): UserPfxCertificateUpload {
  return checkSchema<UserPfxCertificateUpload>(userPfxCertificateUploadSchema, json, 'PFX import');
}

/**
 * Builds the upload record. Refuses (besides the reader's own errors for a
 * file that is not PKCS#12 or a wrong password): a connector key that is
 * not RSA of at least 2048 bits, a password too long for one OAEP block, and
 * an intended purpose the certificate's key usages do not allow.
 */
export function preparePfxImport(input: PfxImportInput, readMetadata: PfxMetadataReader): UserPfxCertificateUpload {
  const padding = input.paddingScheme ?? DEFAULT_PADDING_SCHEME;
  if (!(PaddingSchemes as readonly string[]).includes(padding)) throw refuse('schema-violation', `paddingScheme must be one of ${PaddingSchemes.join(', ')}`);
  const connectorKey = checkConnectorKey(input.connectorPublicKey);
  const facts = readMetadata(input.pfx, input.password);
  checkPurpose(input.intendedPurpose, facts);

  const hash = oaepHash[padding];
  const plaintext = Buffer.from(input.password, 'utf8');
  // RFC 8017 §7.1.1: at most k - 2hLen - 2 octets fit in one OAEP block.
  const k = Math.ceil((connectorKey.asymmetricKeyDetails?.modulusLength ?? 0) / 8);
  const room = k - 2 * hash.bytes - 2;
  if (plaintext.length > room) {
    throw refuse('password-too-long-for-connector-key', `the PFX password is longer than the ${room} bytes ${padding} can encrypt to this connector key; use a larger connector key or a shorter password`);
  }
  const encryptedPassword = publicEncrypt({ key: connectorKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash.name }, plaintext);

  return parseUserPfxCertificateUpload({
    userPrincipalName: input.userPrincipalName,
    thumbprint: facts.thumbprint,
    intendedPurpose: input.intendedPurpose,
    startDateTime: facts.notBefore.toISOString(),
    expirationDateTime: facts.notAfter.toISOString(),
    providerName: input.providerName ?? DEFAULT_PROVIDER_NAME,
    keyName: input.keyName,
    paddingScheme: padding,
    encryptedPfxBlob: Buffer.from(input.pfx.buffer, input.pfx.byteOffset, input.pfx.byteLength).toString('base64'),
    encryptedPfxPassword: encryptedPassword.toString('base64'),
  });
}

function checkConnectorKey(key: KeyObject): KeyObject {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.type !== 'public' || pub.asymmetricKeyType !== 'rsa') {
    throw refuse('connector-key-not-rsa', `the connector key must be an RSA public key, not ${pub.asymmetricKeyType ?? pub.type}`, 'KF_KEY_INVALID');
  }
  const bits = pub.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < 2048) throw refuse('connector-key-too-small', `the connector key has ${bits} bits; at least 2048 are needed`, 'KF_KEY_INVALID');
  return pub;
}

/**
 * The purpose must be one the certificate allows (RFC 5280 §4.2.1.3 and
 * §4.2.1.12; an absent extension allows everything). S/MIME encryption
 * needs keyEncipherment (RSA key transport) or keyAgreement (ECDH, RFC 8550
 * §4.4.2); signing needs digitalSignature or nonRepudiation; both need
 * emailProtection when EKUs are listed. VPN and Wi-Fi need clientAuth then.
 */
function checkPurpose(purpose: IntendedPurpose, facts: PfxFacts): void {
  const ku = facts.keyUsage;
  const eku = facts.extKeyUsage;
  const ekuAllows = (oid: string) => eku === undefined || eku.includes(oid) || eku.includes(OID.anyExtendedKeyUsage);
  const kuAllows = (...bits: KeyUsage[]) => ku === undefined || bits.some((b) => ku.includes(b));
  const mismatch = (why: string) => refuse('pfx-purpose-mismatch', `the certificate cannot be used for ${purpose}: ${why}`);
  switch (purpose) {
    case 'smimeEncryption':
      if (!kuAllows('keyEncipherment', 'keyAgreement')) throw mismatch('its keyUsage has neither keyEncipherment nor keyAgreement');
      if (!ekuAllows(OID.emailProtection)) throw mismatch('its extendedKeyUsage lacks emailProtection');
      return;
    case 'smimeSigning':
      if (!kuAllows('digitalSignature', 'nonRepudiation')) throw mismatch('its keyUsage has neither digitalSignature nor nonRepudiation');
      if (!ekuAllows(OID.emailProtection)) throw mismatch('its extendedKeyUsage lacks emailProtection');
      return;
    case 'vpn':
    case 'wifi':
      if (!ekuAllows(OID.clientAuth)) throw mismatch('its extendedKeyUsage lacks clientAuth');
      return;
    case 'unassigned':
      return;
  }
}

export interface ConnectorKeyPair {
  readonly publicKeyPem: string;
  readonly privateKeyPem: string;
}

/** `keyfleet connector keygen`: the PFX connector's RSA key pair (SPKI and PKCS#8 PEM). */
export function connectorKeygen(bits: 3072 | 4096 = 4096): ConnectorKeyPair {
  if (bits !== 3072 && bits !== 4096) throw refuse('schema-violation', 'connector keys are RSA-3072 or RSA-4096');
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return { publicKeyPem: publicKey, privateKeyPem: privateKey };
}
