/**
 * CertificateList (RFC 5280 §5).
 * IMPLEMENTATION PENDING — the interface below is the contract.
 */
import type { Name } from './name.ts';
import type { AlgorithmIdentifier } from './algorithm.ts';

export interface RevokedCertificate {
  /** userCertificate serial contents octets as hex. */
  readonly serialHex: string;
  readonly revocationDate: Date;
  /** CRLReason code (RFC 5280 §5.3.1), when present. */
  readonly reason: number | undefined;
}

export interface CertificateList {
  readonly der: Uint8Array;
  readonly tbs: Uint8Array;
  readonly signatureAlgorithm: AlgorithmIdentifier;
  readonly signatureValue: Uint8Array;
  readonly issuer: Name;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  readonly revoked: ReadonlyMap<string, RevokedCertificate>;
  readonly crlNumber: bigint | undefined;
  readonly authorityKeyIdentifier: Uint8Array | undefined;
}

export function decodeCrl(_der: Uint8Array): CertificateList {
  throw new Error('decodeCrl: not implemented yet');
}
