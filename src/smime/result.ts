/**
 * The structured result of verifying a signed message: one entry per
 * signer, each with the reasons it failed as string codes (never a bare
 * boolean). A message verifies when every signer has no reasons.
 */
import type { Certificate } from '../x509/certificate.ts';
import type { PathReason } from '../x509/path.ts';

export type SignerReason =
  | PathReason
  | 'bad-signature'
  | 'digest-mismatch'
  | 'sender-mismatch'
  | 'signer-certificate-missing'
  | 'unsupported-algorithm';

export interface ChainStep {
  readonly certificate: Certificate;
  readonly reasons: readonly PathReason[];
}

export interface SignerResult {
  /** The signer's certificate, when it was found in the message or supplied. */
  readonly certificate: Certificate | undefined;
  /** Email addresses of the signer (SAN rfc822Name and subject emailAddress). */
  readonly emailAddresses: readonly string[];
  /** Leaf first, trust anchor last; empty when no path was built. */
  readonly chain: readonly ChainStep[];
  readonly signingTime: Date | undefined;
  readonly digestAlgorithm: string;
  readonly signatureAlgorithm: string;
  readonly reasons: readonly SignerReason[];
}

export interface VerifyResult {
  readonly signers: readonly SignerResult[];
  /** True when there is at least one signer and no signer has any reason. */
  readonly valid: boolean;
}

export function verifyResult(signers: readonly SignerResult[]): VerifyResult {
  return { signers, valid: signers.length > 0 && signers.every((s) => s.reasons.length === 0) };
}
