/**
 * Writing full CRLs (RFC 5280 §5.1, v2):
 *
 *   TBSCertList ::= SEQUENCE {
 *     version              Version OPTIONAL,  -- v2
 *     signature            AlgorithmIdentifier,
 *     issuer               Name,
 *     thisUpdate           Time,
 *     nextUpdate           Time OPTIONAL,
 *     revokedCertificates  SEQUENCE OF SEQUENCE {
 *       userCertificate      CertificateSerialNumber,
 *       revocationDate       Time,
 *       crlEntryExtensions   Extensions OPTIONAL } OPTIONAL,
 *     crlExtensions        [0] EXPLICIT Extensions OPTIONAL }
 *
 * with the two extensions §5.2 requires of conforming CAs (authority key
 * identifier, CRL number) and a reasonCode entry extension (§5.3.1) when
 * the reason is known and not `unspecified` (which SHOULD be absent).
 *
 * A CA may have 10^5 revoked certificates, so the list is sized first and
 * then written into one buffer: no per-entry `sequence()`, and no
 * 10^5-argument call that would exhaust the stack.
 */
import { OID } from '../asn1/oids.ts';
import { Tag } from '../asn1/reader.ts';
import * as der from '../asn1/writer.ts';
import { KeyfleetError } from '../errors.ts';
import type { RevokedEntry } from '../store/ca.ts';
import { type CertificateSigner, signStructure } from './certificate-builder.ts';
import { authorityKeyIdentifier, extension } from './extensions.ts';

export interface CrlFields {
  /** The issuing CA's subject Name (DER, as in its certificate). */
  readonly issuer: Uint8Array;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly crlNumber: bigint;
  /** The CA's subject key identifier. */
  readonly authorityKeyId: Uint8Array;
  readonly revoked: readonly RevokedEntry[];
}

/** Encoded `Extensions` holding only reasonCode, per reason (at most 11 distinct values). */
const reasonExtensions = new Map<number, Uint8Array>();

function reasonExtensionsFor(reason: number): Uint8Array {
  let enc = reasonExtensions.get(reason);
  if (!enc) {
    if (!Number.isInteger(reason) || reason < 0 || reason > 10 || reason === 7) throw new KeyfleetError('KF_USAGE', `${reason} is not a CRLReason (RFC 5280 §5.3.1)`);
    enc = der.sequence(extension(OID.cRLReason, der.tlv(Tag.enumerated, Uint8Array.of(reason))));
    reasonExtensions.set(reason, enc);
  }
  return enc;
}

const SERIAL_HEX = /^(?:[0-9a-f]{2}){1,20}$/;

/** UTCTime for 1950–2049, else GeneralizedTime (RFC 5280 §5.1.2.6): the encoded length, header included. */
function timeLength(date: Date): number {
  const y = date.getUTCFullYear();
  return y >= 1950 && y < 2050 ? 15 : 17;
}

/** Writes the Time `der.time(date)` would produce, digit by digit (der.time's string building dominates a big CRL otherwise). */
function writeTime(out: Buffer, p: number, date: Date): number {
  const y = date.getUTCFullYear();
  const utc = y >= 1950 && y < 2050;
  out[p++] = utc ? Tag.utcTime : Tag.generalizedTime;
  out[p++] = utc ? 13 : 15;
  const two = (n: number) => {
    out[p++] = 0x30 + ((n / 10) | 0);
    out[p++] = 0x30 + (n % 10);
  };
  if (!utc) two((y / 100) | 0);
  two(y % 100);
  two(date.getUTCMonth() + 1);
  two(date.getUTCDate());
  two(date.getUTCHours());
  two(date.getUTCMinutes());
  two(date.getUTCSeconds());
  out[p++] = 0x5a; // 'Z'
  return p;
}

/** The revokedCertificates SEQUENCE (undefined when empty: RFC 5280 §5.1.2.6 says the list MUST then be absent). */
export function encodeRevokedCertificates(revoked: readonly RevokedEntry[]): Uint8Array | undefined {
  if (revoked.length === 0) return undefined;
  // Pass 1: check and size.
  const exts: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(revoked.length);
  let total = 0;
  for (let i = 0; i < revoked.length; i++) {
    const entry = revoked[i]!;
    if (!SERIAL_HEX.test(entry.serialHex)) throw new KeyfleetError('KF_USAGE', `stored serial "${entry.serialHex.slice(0, 48)}" is not a serial number in lower-case hex`);
    if (!Number.isFinite(entry.revokedAt.getTime())) throw new KeyfleetError('KF_USAGE', `stored revocation date of ${entry.serialHex} is not a date`);
    const ext = entry.reason === undefined || entry.reason === 0 ? undefined : reasonExtensionsFor(entry.reason);
    exts[i] = ext;
    // Serials are at most 20 octets and the other parts short, so an entry is always below 128 octets: a 2-octet header.
    total += 2 + 2 + entry.serialHex.length / 2 + timeLength(entry.revokedAt) + (ext?.length ?? 0);
  }
  // Pass 2: one buffer, written in place.
  const listHeader = der.header(0x30, total);
  const out = Buffer.allocUnsafe(listHeader.length + total);
  out.set(listHeader, 0);
  let p = listHeader.length;
  for (let i = 0; i < revoked.length; i++) {
    const { serialHex, revokedAt } = revoked[i]!;
    const serialLength = serialHex.length / 2;
    const ext = exts[i];
    out[p++] = 0x30;
    out[p++] = 2 + serialLength + timeLength(revokedAt) + (ext?.length ?? 0);
    out[p++] = Tag.integer;
    out[p++] = serialLength;
    p += out.write(serialHex, p, 'hex');
    p = writeTime(out, p, revokedAt);
    if (ext) {
      out.set(ext, p);
      p += ext.length;
    }
  }
  return out;
}

export function encodeTbsCertList(fields: CrlFields, signatureAlgorithm: Uint8Array): Uint8Array {
  if (fields.nextUpdate.getTime() <= fields.thisUpdate.getTime()) throw new KeyfleetError('KF_USAGE', 'CRL nextUpdate must be after thisUpdate');
  const list = encodeRevokedCertificates(fields.revoked);
  const crlExtensions = der.explicit(0, der.sequence(authorityKeyIdentifier(fields.authorityKeyId), extension(OID.cRLNumber, der.integer(fields.crlNumber))));
  const parts: Uint8Array[] = [der.integer(1), signatureAlgorithm, fields.issuer, der.time(fields.thisUpdate), der.time(fields.nextUpdate)];
  if (list) parts.push(list);
  parts.push(crlExtensions);
  return der.sequence(...parts);
}

/** Encodes and signs a CRL; returns its DER. */
export function buildCrl(fields: CrlFields, signer: CertificateSigner): Promise<Uint8Array> {
  return signStructure(encodeTbsCertList(fields, signer.algorithm), signer);
}
