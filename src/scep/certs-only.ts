/**
 * Degenerate certificates-only SignedData (RFC 8894 §3.4, RFC 5652 §5.2):
 * no signers, no content, just certificates. GetCACert answers with one
 * when it returns the RA and CA chain; a CertRep SUCCESS encloses one with
 * the issued certificate.
 *
 *   SignedData { version 1, digestAlgorithms {}, encapContentInfo { id-data },
 *                certificates [0] { ... }, signerInfos {} }
 *
 * The certificates are written in the given order (a SET, not DER-sorted):
 * clients such as micromdm's take the first certificate of a CertRep as the
 * issued one, and the first of GetCACert as the RA.
 */
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import { OID } from '../asn1/oids.ts';
import * as der from '../asn1/writer.ts';
import type { Certificate } from '../x509/certificate.ts';
import { encodeContentInfo } from '../smime/cms/content-info.ts';
import { decodeSignedData } from '../smime/cms/signed-data.ts';

export function encodeCertsOnly(certificates: readonly Certificate[]): Uint8Array {
  const body = der.sequence(der.integer(1), der.set(), der.sequence(der.oid(OID.data)), der.retag(der.set(...certificates.map((c) => c.der)), 0), der.set());
  return encodeContentInfo(OID.signedData, body);
}

/** The certificates of a certs-only SignedData, in the order received. */
export function decodeCertsOnly(bytes: Uint8Array): Certificate[] {
  try {
    return decodeSignedData(bytes).certificates;
  } catch (e) {
    if (isKeyfleetError(e, 'KF_CMS_MALFORMED') || isKeyfleetError(e, 'KF_CERT_INVALID')) throw e;
    throw new KeyfleetError('KF_CMS_MALFORMED', 'not a certificates-only SignedData', { cause: e });
  }
}
