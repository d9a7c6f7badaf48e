/**
 * Certification path validation (RFC 5280 §6) for S/MIME (RFC 8550).
 * IMPLEMENTATION PENDING — the interface below is the contract.
 */
import type { Certificate } from './certificate.ts';
import type { CertificateList } from './crl.ts';

export type PathReason =
  | 'untrusted-chain'
  | 'expired'
  | 'not-yet-valid'
  | 'revoked'
  | 'wrong-key-usage'
  | 'wrong-eku'
  | 'weak-algorithm';

/** What the end-entity certificate is being used for (RFC 8550 §4.4). */
export type Purpose = 'smime-sign' | 'smime-encrypt' | 'any';

export interface PathValidationOptions {
  readonly trustAnchors: readonly Certificate[];
  /** Candidate intermediates (from the message, and any supplied). */
  readonly intermediates: readonly Certificate[];
  /** Validation time (default now): `--at` for archived mail. */
  readonly at?: Date;
  readonly purpose: Purpose;
  /** Revocation data; `revoked` is reported only when a CRL covers a certificate. */
  readonly crls?: readonly CertificateList[];
}

export interface PathResult {
  /** Leaf first, anchor last (as far as it could be built). */
  readonly chain: readonly { readonly certificate: Certificate; readonly reasons: readonly PathReason[] }[];
  /** Union of all reasons; empty when the path is valid. */
  readonly reasons: readonly PathReason[];
}

export function validatePath(_leaf: Certificate, _options: PathValidationOptions): PathResult {
  throw new Error('validatePath: not implemented yet');
}
