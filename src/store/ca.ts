/**
 * What the certificate authority needs from storage (src/ca reaches storage
 * only through this interface). Implementations are scoped to one tenant
 * when created (`Store.forTenant`), so no method takes a tenant id: tenant
 * isolation lives in one place, the store.
 */

export interface CaRecord {
  /** Stable id (e.g. "issuing"), unique per tenant. */
  readonly id: string;
  /** 'ra': the SCEP registration authority (signs CertReps, opens request envelopes), issued by the issuing CA. */
  /** 'ocsp': the delegated OCSP responder (RFC 6960 §4.2.2.2). */
  readonly role: 'root' | 'issuing' | 'ra' | 'ocsp';
  readonly certificateDer: Uint8Array;
  /** Issuer chain above this CA, nearest first (empty for a root). */
  readonly chainDer: readonly Uint8Array[];
  /** Where the KeyStore keeps the private key, e.g. "file:issuing" or a PKCS#11 URI. */
  readonly keyRef: string;
  /** The private key sealed by the KeyStore (AES-256-GCM under the KEK); undefined when the key lives outside (HSM). */
  readonly sealedKey: Uint8Array | undefined;
  readonly createdAt: Date;
}

export type CertificateStatus = 'good' | 'revoked';

export interface IssuedCertificateRecord {
  readonly caId: string;
  /** Serial number contents octets, lower-case hex. */
  readonly serialHex: string;
  readonly subject: string;
  readonly emailAddresses: readonly string[];
  /** Certificate template / SCEP profile it was issued under. */
  readonly profile: string | undefined;
  /** Who asked: a SCEP transaction's requester, a device id, "cli". */
  readonly requester: string | undefined;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly issuedAt: Date;
  readonly certificateDer: Uint8Array;
  readonly status: CertificateStatus;
  readonly revokedAt: Date | undefined;
  /** CRLReason (RFC 5280 §5.3.1). */
  readonly revocationReason: number | undefined;
}

export interface RevokedEntry {
  readonly serialHex: string;
  readonly revokedAt: Date;
  readonly reason: number | undefined;
}

export interface CrlRecord {
  readonly caId: string;
  readonly crlNumber: bigint;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly der: Uint8Array;
}

export interface ListIssuedOptions {
  readonly status?: CertificateStatus;
  readonly limit?: number;
  /** Cursor: serials greater than this one. */
  readonly afterSerialHex?: string;
  /** Only certificates issued to this requester (a SCEP challenge's device, or the request's subject). */
  readonly requester?: string;
}

export interface CaStore {
  getCa(id: string): Promise<CaRecord | undefined>;
  listCas(): Promise<CaRecord[]>;
  /** Inserts; a second CA with the same id is refused with KF_CONFLICT. */
  putCa(record: CaRecord): Promise<void>;
  /** Replaces a CA record (a renewed RA certificate); KF_NOT_FOUND when there is none with that id. */
  replaceCa(record: CaRecord): Promise<void>;
  /** Inserts; a duplicate serial for the CA is refused with KF_CONFLICT. */
  recordIssued(record: IssuedCertificateRecord): Promise<void>;
  getIssued(caId: string, serialHex: string): Promise<IssuedCertificateRecord | undefined>;
  listIssued(caId: string, options?: ListIssuedOptions): Promise<IssuedCertificateRecord[]>;
  /** Marks a certificate revoked; false when unknown or already revoked (the first revocation stands). */
  revoke(caId: string, serialHex: string, reason: number | undefined, at: Date): Promise<boolean>;
  listRevoked(caId: string): Promise<RevokedEntry[]>;
  /** Allocates the next CRL number (monotonic per CA) and stores the CRL, atomically. */
  putCrl(caId: string, build: (crlNumber: bigint) => Omit<CrlRecord, 'caId' | 'crlNumber'>): Promise<CrlRecord>;
  getLatestCrl(caId: string): Promise<CrlRecord | undefined>;
}
