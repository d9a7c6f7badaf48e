/**
 * The declared test PKI. test/support/pki.ts turns this into keys,
 * certificates, CRLs and PKCS#12 files with the `openssl` CLI at test time,
 * so no binary fixture is committed (STYLE.md practice 10).
 *
 * Like MimeKit's test PKI, entities are grouped into scenario folders: the
 * folder says what a certificate is for, the entity what is special about it.
 * Validity is declared in days relative to generation time, so "expired"
 * stays expired and "not yet valid" stays in the future however late the
 * tests run.
 */

export type KeySpec = 'rsa-2048' | 'rsa-1024' | 'p-256' | 'p-384' | 'ed25519' | 'x25519';

export type KeyUsageName =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign';

/** openssl's short names for extendedKeyUsage purposes. */
export type EkuName = 'emailProtection' | 'serverAuth' | 'clientAuth' | 'codeSigning';

export interface EntitySpec {
  /** Folder under the PKI directory: what the certificate is used for in tests. */
  readonly scenario: string;
  /** The issuing entity's name; absent for a self-signed root. */
  readonly issuer?: string;
  readonly commonName: string;
  /** rfc822Name entries of subjectAltName (RFC 8550 §3). */
  readonly emails?: readonly string[];
  readonly key: KeySpec;
  /**
   * Reuse this other entity's key instead of generating one (RSA key
   * generation is most of the generation time). Only where the two
   * certificates never meet in one test: they share a subjectKeyIdentifier.
   */
  readonly keyOf?: string;
  /** CA certificate: basicConstraints cA=TRUE with this pathLenConstraint (undefined: none). */
  readonly ca?: { readonly pathLen?: number };
  readonly keyUsage: readonly KeyUsageName[];
  /** Omitted: no extendedKeyUsage extension (acceptable for S/MIME, RFC 8550 §4.4.4). */
  readonly extendedKeyUsage?: readonly EkuName[];
  /** Validity in days from generation time; notBefore defaults to 0 (now). */
  readonly validity: { readonly notBefore?: number; readonly notAfter: number };
  /** Digest the issuer signs this certificate with; default sha256. */
  readonly signatureDigest?: 'sha256' | 'sha1';
  /** Issue the certificate for a key that cannot sign its own request (X25519). */
  readonly forcePubkey?: boolean;
  /** Revoked by its issuer, and listed in the issuer's CRL. */
  readonly revoked?: boolean;
  /** Export key, certificate and chain as PKCS#12 (password in PKI.p12Password). */
  readonly p12?: boolean;
}

export interface PkiSpec {
  readonly p12Password: string;
  /** Entities in issuing order is not required; generation follows `issuer`. */
  readonly entities: Readonly<Record<string, EntitySpec>>;
}

const dualUse = ['digitalSignature', 'nonRepudiation', 'keyEncipherment'] as const;
const signing = ['digitalSignature', 'nonRepudiation'] as const;
const email = ['emailProtection'] as const;

export const pkiSpec = {
  p12Password: 'test',
  entities: {
    // --- ca: the trusted hierarchy. The CAs reach ten years into the past so
    // that `verify --at` on old mail still finds a valid chain (RFC 5280
    // §6.1.3 checks every certificate's validity at the validation time).
    root: {
      scenario: 'ca',
      commonName: 'Keyfleet Test Root CA',
      key: 'rsa-2048',
      ca: {},
      keyUsage: ['keyCertSign', 'cRLSign'],
      validity: { notBefore: -3650, notAfter: 3650 },
    },
    intermediate: {
      scenario: 'ca',
      issuer: 'root',
      commonName: 'Keyfleet Test S/MIME CA',
      key: 'rsa-2048',
      ca: { pathLen: 0 },
      keyUsage: ['keyCertSign', 'cRLSign'],
      validity: { notBefore: -3600, notAfter: 3600 },
    },

    // --- users: the certificates interop tests sign and encrypt with.
    alice: {
      scenario: 'users',
      issuer: 'intermediate',
      commonName: 'Alice',
      emails: ['alice@example.com'],
      key: 'rsa-2048',
      keyUsage: dualUse,
      extendedKeyUsage: email,
      validity: { notAfter: 825 },
      p12: true,
    },
    // A signing-only certificate for RSASSA-PSS over Alice's key: the key is
    // plain rsaEncryption (RFC 4056 §2 lets such a key sign with PSS), so
    // every peer can load it.
    'alice-pss': {
      scenario: 'users',
      issuer: 'intermediate',
      commonName: 'Alice (signing)',
      emails: ['alice@example.com'],
      key: 'rsa-2048',
      keyOf: 'alice',
      keyUsage: signing,
      extendedKeyUsage: email,
      validity: { notAfter: 825 },
      p12: true,
    },
    // Bob's key history: three encryption certificates with their own keys,
    // oldest first. bob-1 has expired (mail encrypted to it is still read
    // with its key); bob-2 and bob-3 overlap, as at a renewal.
    'bob-1': {
      scenario: 'users',
      issuer: 'intermediate',
      commonName: 'Bob',
      emails: ['bob@example.com'],
      key: 'rsa-2048',
      keyUsage: ['keyEncipherment'],
      extendedKeyUsage: email,
      validity: { notBefore: -1095, notAfter: -365 },
      p12: true,
    },
    'bob-2': {
      scenario: 'users',
      issuer: 'intermediate',
      commonName: 'Bob',
      emails: ['bob@example.com'],
      key: 'rsa-2048',
      keyUsage: ['keyEncipherment'],
      extendedKeyUsage: email,
      validity: { notBefore: -400, notAfter: 330 },
      p12: true,
    },
    'bob-3': {
      scenario: 'users',
      issuer: 'intermediate',
      commonName: 'Bob',
      emails: ['bob@example.com'],
      key: 'rsa-2048',
      keyUsage: ['keyEncipherment'],
      extendedKeyUsage: email,
      validity: { notBefore: -30, notAfter: 700 },
      p12: true,
    },
    carol: {
      scenario: 'users',
      issuer: 'intermediate',
      commonName: 'Carol',
      emails: ['carol@example.com'],
      key: 'p-256',
      keyUsage: ['digitalSignature', 'keyAgreement'],
      extendedKeyUsage: email,
      validity: { notAfter: 825 },
      p12: true,
    },
    dave: {
      scenario: 'users',
      issuer: 'intermediate',
      commonName: 'Dave',
      emails: ['dave@example.com'],
      key: 'p-384',
      keyUsage: ['digitalSignature', 'keyAgreement'],
      extendedKeyUsage: email,
      validity: { notAfter: 825 },
      p12: true,
    },
    erin: {
      scenario: 'users',
      issuer: 'intermediate',
      commonName: 'Erin',
      emails: ['erin@example.com'],
      key: 'ed25519',
      keyUsage: signing,
      extendedKeyUsage: email,
      validity: { notAfter: 825 },
      p12: true,
    },
    // X25519 cannot sign a request, so the CA places the key (RFC 8410 §5).
    frank: {
      scenario: 'users',
      issuer: 'intermediate',
      commonName: 'Frank',
      emails: ['frank@example.com'],
      key: 'x25519',
      keyUsage: ['keyAgreement'],
      extendedKeyUsage: email,
      validity: { notAfter: 825 },
      forcePubkey: true,
      p12: true,
    },

    // --- validity: dates outside "now". The negative scenarios below share
    // the key of `expired`; each test signs with one of them at a time.
    expired: {
      scenario: 'validity',
      issuer: 'intermediate',
      commonName: 'Expired User',
      emails: ['expired@example.com'],
      key: 'rsa-2048',
      keyUsage: dualUse,
      extendedKeyUsage: email,
      validity: { notBefore: -1095, notAfter: -365 },
    },
    'not-yet-valid': {
      scenario: 'validity',
      issuer: 'intermediate',
      commonName: 'Future User',
      emails: ['future@example.com'],
      key: 'rsa-2048',
      keyOf: 'expired',
      keyUsage: dualUse,
      extendedKeyUsage: email,
      validity: { notBefore: 365, notAfter: 1095 },
    },

    // --- usage: extended key usage (RFC 8550 §4.4.4).
    'wrong-eku': {
      scenario: 'usage',
      issuer: 'intermediate',
      commonName: 'Server Only',
      emails: ['server@example.com'],
      key: 'rsa-2048',
      keyOf: 'expired',
      keyUsage: dualUse,
      extendedKeyUsage: ['serverAuth'],
      validity: { notAfter: 825 },
    },
    'no-eku': {
      scenario: 'usage',
      issuer: 'intermediate',
      commonName: 'No EKU',
      emails: ['noeku@example.com'],
      key: 'rsa-2048',
      keyOf: 'expired',
      keyUsage: dualUse,
      validity: { notAfter: 825 },
    },

    // --- sender: a valid certificate for another address than From.
    mallory: {
      scenario: 'sender',
      issuer: 'intermediate',
      commonName: 'Mallory',
      emails: ['mallory@example.com'],
      key: 'rsa-2048',
      keyOf: 'expired',
      keyUsage: dualUse,
      extendedKeyUsage: email,
      validity: { notAfter: 825 },
    },

    // --- weak: algorithms RFC 8551 §2 / issue 2 call weak.
    'weak-rsa1024': {
      scenario: 'weak',
      issuer: 'intermediate',
      commonName: 'Weak RSA',
      emails: ['weak1024@example.com'],
      key: 'rsa-1024',
      keyUsage: dualUse,
      extendedKeyUsage: email,
      validity: { notAfter: 825 },
    },
    'weak-sha1': {
      scenario: 'weak',
      issuer: 'intermediate',
      commonName: 'SHA-1 Signed',
      emails: ['weaksha1@example.com'],
      key: 'rsa-2048',
      keyOf: 'expired',
      keyUsage: dualUse,
      extendedKeyUsage: email,
      validity: { notAfter: 825 },
      signatureDigest: 'sha1',
    },

    // --- untrusted: a hierarchy no test passes to --trust.
    'untrusted-root': {
      scenario: 'untrusted',
      commonName: 'Untrusted Root CA',
      key: 'rsa-2048',
      ca: {},
      keyUsage: ['keyCertSign', 'cRLSign'],
      validity: { notBefore: -3650, notAfter: 3650 },
    },
    untrusted: {
      scenario: 'untrusted',
      issuer: 'untrusted-root',
      commonName: 'Untrusted User',
      emails: ['untrusted@example.com'],
      key: 'rsa-2048',
      keyUsage: dualUse,
      extendedKeyUsage: email,
      validity: { notAfter: 825 },
    },

    // --- revoked: listed in the intermediate's CRL.
    revoked: {
      scenario: 'revoked',
      issuer: 'intermediate',
      commonName: 'Revoked User',
      emails: ['revoked@example.com'],
      key: 'rsa-2048',
      keyOf: 'expired',
      keyUsage: dualUse,
      extendedKeyUsage: email,
      validity: { notAfter: 825 },
      revoked: true,
    },
  },
} as const satisfies PkiSpec;

export type EntityName = keyof typeof pkiSpec.entities;
