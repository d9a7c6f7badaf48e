/**
 * Revocation status of one certificate in a path (RFC 5280 §6.3). Path
 * validation asks every RevocationSource it is given; CRLs are one source,
 * and an OCSP checker (RFC 6960) over pre-fetched responses can be another:
 * the x509 layer does no I/O, so sources answer synchronously from data
 * they already hold.
 */
import type { Certificate } from './certificate.ts';
import { type CertificateList, CrlReason, verifyCrlSignature } from './crl.ts';
import { namesEqual } from './name.ts';
import { nameKey } from './name-index.ts';

export type RevocationState = 'good' | 'revoked' | 'unknown';

export interface RevocationStatus {
  readonly status: RevocationState;
  /** CRLReason (RFC 5280 §5.3.1), when revoked and known. */
  readonly reason?: number;
  /** When revoked. */
  readonly revocationTime?: Date;
}

export interface RevocationSource {
  /**
   * The status of `cert`, issued by `issuer` (the next certificate in the
   * path), as of `at`. 'unknown' when the source holds nothing that covers
   * the certificate. Must not throw for ordinary lack of data.
   */
  status(cert: Certificate, issuer: Certificate, at: Date): RevocationStatus;
}

const UNKNOWN: RevocationStatus = { status: 'unknown' };
const GOOD: RevocationStatus = { status: 'good' };

/**
 * RFC 5280 §6.3.3 (simplified for S/MIME): a CRL covers `cert` when its
 * issuer name is the certificate's issuer, it is signed by the issuer's key,
 * that key may sign CRLs (keyUsage cRLSign when keyUsage is present), its
 * scope (issuingDistributionPoint) includes the certificate, and it has no
 * critical extension we do not understand. Indirect CRLs are not supported.
 */
function covers(crl: CertificateList, cert: Certificate, issuer: Certificate): boolean {
  if (crl.unknownCriticalExtensions.length > 0) return false;
  const idp = crl.issuingDistributionPoint;
  if (idp) {
    if (idp.indirectCRL || idp.onlyContainsAttributeCerts) return false;
    const isCa = cert.basicConstraints?.cA === true;
    if (idp.onlyContainsUserCerts && isCa) return false;
    if (idp.onlyContainsCACerts && !isCa) return false;
  }
  if (!namesEqual(crl.issuer, cert.issuer)) return false;
  if (issuer.keyUsage && !issuer.keyUsage.has('cRLSign')) return false;
  const aki = crl.authorityKeyIdentifier;
  const ski = issuer.subjectKeyIdentifier;
  if (aki && ski && Buffer.compare(aki, ski) !== 0) return false;
  return verifyCrlSignature(crl, issuer);
}

function byIssueOrder(a: CertificateList, b: CertificateList): number {
  const t = a.thisUpdate.getTime() - b.thisUpdate.getTime();
  if (t !== 0) return t;
  // Base before delta at the same instant; then by CRL number.
  const d = Number(a.deltaCrlIndicator !== undefined) - Number(b.deltaCrlIndicator !== undefined);
  if (d !== 0) return d;
  const an = a.crlNumber ?? -1n;
  const bn = b.crlNumber ?? -1n;
  return an < bn ? -1 : an > bn ? 1 : 0;
}

/**
 * A RevocationSource over CRLs. Expired CRLs still count as evidence of
 * revocation (a revocation never expires); 'good' needs a complete CRL
 * whose nextUpdate is not before `at`.
 *
 * Entries are replayed in issue order: any reason but certificateHold is
 * final; a hold is lifted by a later complete CRL that no longer lists the
 * serial or by a removeFromCRL entry (RFC 5280 §5.3.1). A revocation dated
 * after `at` does not count: mail signed before revocation stays valid.
 */
export function crlRevocationSource(crls: readonly CertificateList[]): RevocationSource {
  const byIssuer = new Map<string, CertificateList[]>();
  for (const crl of crls) {
    const key = nameKey(crl.issuer);
    const list = byIssuer.get(key);
    if (list) list.push(crl);
    else byIssuer.set(key, [crl]);
  }
  for (const list of byIssuer.values()) list.sort(byIssueOrder);

  return {
    status(cert, issuer, at) {
      const candidates = byIssuer.get(nameKey(cert.issuer));
      if (!candidates) return UNKNOWN;
      let covered = false;
      let current = false;
      let revoked: { readonly reason: number | undefined; readonly revocationDate: Date } | undefined;
      let final = false;
      for (const crl of candidates) {
        if (!covers(crl, cert, issuer)) continue;
        covered = true;
        const complete = crl.deltaCrlIndicator === undefined && !crl.issuingDistributionPoint?.onlySomeReasons;
        // A complete CRL speaks for every time up to its nextUpdate (issued later, it still lists what was revoked before).
        if (complete && (crl.nextUpdate === undefined || at <= crl.nextUpdate)) current = true;
        if (final) continue;
        const entry = crl.revoked.get(cert.serialHex);
        if (entry) {
          if (entry.reason === CrlReason.removeFromCRL) revoked = undefined;
          else {
            revoked = entry;
            final = entry.reason !== CrlReason.certificateHold;
          }
        } else if (complete) {
          revoked = undefined;
        }
      }
      if (!covered) return UNKNOWN;
      if (revoked && revoked.revocationDate.getTime() <= at.getTime()) {
        return revoked.reason === undefined
          ? { status: 'revoked', revocationTime: revoked.revocationDate }
          : { status: 'revoked', reason: revoked.reason, revocationTime: revoked.revocationDate };
      }
      return current ? GOOD : UNKNOWN;
    },
  };
}
