/**
 * CertificateList (RFC 5280 §5.1):
 *
 *   CertificateList ::= SEQUENCE {
 *     tbsCertList          TBSCertList,
 *     signatureAlgorithm   AlgorithmIdentifier,
 *     signatureValue       BIT STRING }
 *
 *   TBSCertList ::= SEQUENCE {
 *     version              Version OPTIONAL,  -- if present, MUST be v2
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
 * Large CAs publish CRLs with 10^5 entries and more, so the entries are read
 * with a flat loop over the encoding and kept in a Map by serial.
 */
import { KeyfleetError } from '../errors.ts';
import { type Tlv, SequenceReader, Tag, children, contents, expectUniversal, integerContents, isContext, parse, raw, readBigInt, readBoolean, readOctets, readOid, readTime, readTlv } from '../asn1/reader.ts';
import { OID } from '../asn1/oids.ts';
import { decodePemAll, looksLikePem } from '../asn1/pem.ts';
import { type AlgorithmIdentifier, decodeAlgorithmIdentifier } from './algorithm.ts';
import { type Name, decodeName } from './name.ts';
import type { Certificate } from './certificate.ts';
import { signatureScheme, verifySignature } from './signature.ts';

// RFC 5280 §5.2 and §5.3 extensions not (yet) in oids.ts.
const OID_deltaCRLIndicator = '2.5.29.27';
const OID_issuingDistributionPoint = '2.5.29.28';
const OID_freshestCRL = '2.5.29.46';
const OID_invalidityDate = '2.5.29.24';
const OID_holdInstructionCode = '2.5.29.23';

/** CRLReason (RFC 5280 §5.3.1). */
export const CrlReason = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;

export interface RevokedCertificate {
  /** userCertificate serial contents octets as hex. */
  readonly serialHex: string;
  readonly revocationDate: Date;
  /** CRLReason code (RFC 5280 §5.3.1), when present. */
  readonly reason: number | undefined;
}

/**
 *   IssuingDistributionPoint ::= SEQUENCE {
 *     distributionPoint          [0] DistributionPointName OPTIONAL,
 *     onlyContainsUserCerts      [1] BOOLEAN DEFAULT FALSE,
 *     onlyContainsCACerts        [2] BOOLEAN DEFAULT FALSE,
 *     onlySomeReasons            [3] ReasonFlags OPTIONAL,
 *     indirectCRL                [4] BOOLEAN DEFAULT FALSE,
 *     onlyContainsAttributeCerts [5] BOOLEAN DEFAULT FALSE }
 *
 * Only the scope flags are kept: they decide whether a CRL covers a certificate (RFC 5280 §5.2.5).
 */
export interface IssuingDistributionPoint {
  readonly onlyContainsUserCerts: boolean;
  readonly onlyContainsCACerts: boolean;
  readonly onlySomeReasons: boolean;
  readonly indirectCRL: boolean;
  readonly onlyContainsAttributeCerts: boolean;
}

export interface CertificateList {
  readonly der: Uint8Array;
  readonly tbs: Uint8Array;
  /** 1 or 2. */
  readonly version: number;
  readonly signatureAlgorithm: AlgorithmIdentifier;
  /** False when TBSCertList.signature differs from signatureAlgorithm (RFC 5280 §5.1.1.2): the signature is then never accepted. */
  readonly signatureAlgorithmsMatch: boolean;
  readonly signatureValue: Uint8Array;
  readonly issuer: Name;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  readonly revoked: ReadonlyMap<string, RevokedCertificate>;
  readonly crlNumber: bigint | undefined;
  readonly authorityKeyIdentifier: Uint8Array | undefined;
  /** BaseCRLNumber when this is a delta CRL (RFC 5280 §5.2.4). */
  readonly deltaCrlIndicator: bigint | undefined;
  readonly issuingDistributionPoint: IssuingDistributionPoint | undefined;
  /**
   * Critical CRL or CRL entry extensions this decoder does not understand.
   * RFC 5280 §5.2 and §5.3: such a CRL MUST NOT be used to determine status.
   */
  readonly unknownCriticalExtensions: readonly string[];
}

interface RawExtension {
  readonly extnID: string;
  readonly critical: boolean;
  readonly extnValue: Uint8Array;
}

const understoodCrlExtensions = new Set<string>([
  OID.cRLNumber,
  OID.authorityKeyIdentifier,
  OID.issuerAltName,
  OID.authorityInfoAccess,
  OID_deltaCRLIndicator,
  OID_issuingDistributionPoint,
  OID_freshestCRL,
]);
// certificateIssuer (2.5.29.29, always critical) is left out: indirect CRLs are not supported, so such a CRL is not used.
const understoodEntryExtensions = new Set<string>([OID.cRLReason, OID_invalidityDate, OID_holdInstructionCode]);

/** Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING } */
function decodeExtension(tlv: Tlv): RawExtension {
  const r = new SequenceReader(tlv, 'Extension');
  const extnID = readOid(r.next(Tag.oid));
  const criticalTlv = r.optional(Tag.boolean);
  const critical = criticalTlv ? readBoolean(criticalTlv) : false;
  const extnValue = readOctets(r.next(Tag.octetString));
  r.end();
  return { extnID, critical, extnValue };
}

/** Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension (RFC 5280 §4.1). */
function decodeExtensions(tlv: Tlv): RawExtension[] {
  expectUniversal(tlv, Tag.sequence, 'Extensions');
  return children(tlv).map(decodeExtension);
}

function isTime(tlv: Tlv | undefined): boolean {
  return tlv !== undefined && tlv.cls === 0 && (tlv.tag === Tag.utcTime || tlv.tag === Tag.generalizedTime);
}

/**
 * Decodes a DER (or BER) CRL. Throws KF_ASN1_MALFORMED for anything that is
 * not a CertificateList, KF_ASN1_LIMIT when a limit is exceeded.
 */
export function decodeCrl(bytes: Uint8Array): CertificateList {
  try {
    return decode(Uint8Array.from(bytes));
  } catch (e) {
    if (e instanceof KeyfleetError && e.code === 'KF_ASN1_LIMIT') throw e;
    throw new KeyfleetError('KF_ASN1_MALFORMED', `CRL cannot be parsed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

function decode(bytes: Uint8Array): CertificateList {
  const outer = new SequenceReader(parse(bytes), 'CertificateList');
  const tbsTlv = outer.next(Tag.sequence);
  const signatureAlgorithm = decodeAlgorithmIdentifier(outer.next(Tag.sequence));
  const signatureBits = outer.next(Tag.bitString);
  outer.end();
  const sigContents = contents(signatureBits);
  if (signatureBits.constructed || sigContents.length === 0 || sigContents[0] !== 0) throw new Error('bad signatureValue BIT STRING');

  const t = new SequenceReader(tbsTlv, 'TBSCertList');
  const versionTlv = t.optional(Tag.integer);
  const version = versionTlv ? Number(readBigInt(versionTlv)) + 1 : 1;
  if (version !== 1 && version !== 2) throw new Error(`unsupported CRL version ${version}`);
  const innerSignature = raw(t.next(Tag.sequence));
  const issuer = decodeName(t.next(Tag.sequence));
  const thisUpdate = readTime(t.next());
  const nextUpdate = isTime(t.peek()) ? readTime(t.next()) : undefined;
  const list = t.optional(Tag.sequence);
  const extTlv = t.optionalContext(0);
  t.end();

  const unknownCritical = new Set<string>();
  const revoked = readRevoked(bytes, list, unknownCritical);

  let crlNumber: bigint | undefined;
  let authorityKeyIdentifier: Uint8Array | undefined;
  let deltaCrlIndicator: bigint | undefined;
  let issuingDistributionPoint: IssuingDistributionPoint | undefined;
  if (extTlv) {
    const inner = children(extTlv);
    if (inner.length !== 1) throw new Error('crlExtensions must hold one Extensions element');
    for (const ext of decodeExtensions(inner[0]!)) {
      switch (ext.extnID) {
        case OID.cRLNumber:
          crlNumber = readBigInt(parse(ext.extnValue));
          break;
        case OID_deltaCRLIndicator:
          deltaCrlIndicator = readBigInt(parse(ext.extnValue));
          break;
        case OID.authorityKeyIdentifier: {
          const kid = children(parse(ext.extnValue)).find((c) => isContext(c, 0));
          authorityKeyIdentifier = kid ? contents(kid) : undefined;
          break;
        }
        case OID_issuingDistributionPoint:
          issuingDistributionPoint = decodeIssuingDistributionPoint(parse(ext.extnValue));
          break;
        default:
          if (ext.critical && !understoodCrlExtensions.has(ext.extnID)) unknownCritical.add(ext.extnID);
      }
    }
  }

  return {
    der: bytes,
    tbs: raw(tbsTlv),
    version,
    signatureAlgorithm,
    signatureAlgorithmsMatch: Buffer.compare(innerSignature, signatureAlgorithm.der) === 0,
    signatureValue: sigContents.subarray(1),
    issuer,
    thisUpdate,
    nextUpdate,
    revoked,
    crlNumber,
    authorityKeyIdentifier,
    deltaCrlIndicator,
    issuingDistributionPoint,
    unknownCriticalExtensions: [...unknownCritical],
  };
}

/** A revoked entry; the date is kept as a number, since big CRLs have 10^5 entries and few are ever looked at. */
class RevokedEntry implements RevokedCertificate {
  readonly serialHex: string;
  readonly reason: number | undefined;
  private readonly revokedAt: number;

  constructor(serialHex: string, revokedAt: number, reason: number | undefined) {
    this.serialHex = serialHex;
    this.revokedAt = revokedAt;
    this.reason = reason;
  }

  get revocationDate(): Date {
    return new Date(this.revokedAt);
  }
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function serialKey(bytes: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += HEX[bytes[i]!]!;
  return s;
}

function digits(bytes: Uint8Array, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const d = bytes[i]! - 0x30;
    if (d < 0 || d > 9) return NaN;
    v = v * 10 + d;
  }
  return v;
}

/**
 * The two Time forms RFC 5280 §5.1.2.6 prescribes (YYMMDDHHMMSSZ,
 * YYYYMMDDHHMMSSZ) read straight from the bytes; anything else goes through
 * the general reader. This is most of the cost of a large CRL otherwise.
 */
function fastTime(tlv: Tlv): number {
  const { bytes, contentStart: p, contentEnd: e } = tlv;
  const utc = tlv.tag === Tag.utcTime;
  if (!tlv.constructed && e - p === (utc ? 13 : 15) && bytes[e - 1] === 0x5a) {
    const y = utc ? digits(bytes, p, 2) : digits(bytes, p, 4);
    const q = p + (utc ? 2 : 4);
    const [mo, d, h, mi, sec] = [digits(bytes, q, 2), digits(bytes, q + 2, 2), digits(bytes, q + 4, 2), digits(bytes, q + 6, 2), digits(bytes, q + 8, 2)];
    if (mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && sec <= 59) {
      return Date.UTC(utc ? (y >= 50 ? 1900 + y : 2000 + y) : y, mo - 1, d, h, mi, sec);
    }
  }
  return readTime(tlv).getTime();
}

/** reasonCode's OID (2.5.29.21) as encoded, to spot it without decoding every entry's OID. */
const REASON_CODE_OID = Uint8Array.of(0x06, 0x03, 0x55, 0x1d, 0x15);

function isReasonCode(bytes: Uint8Array, at: number): boolean {
  for (let i = 0; i < REASON_CODE_OID.length; i++) if (bytes[at + i] !== REASON_CODE_OID[i]) return false;
  return true;
}

/** The revokedCertificates list, read with a flat loop over the encoding (no Tlv array for the list). */
function readRevoked(bytes: Uint8Array, list: Tlv | undefined, unknownCritical: Set<string>): Map<string, RevokedCertificate> {
  const revoked = new Map<string, RevokedCertificate>();
  if (!list) return revoked;
  for (let p = list.contentStart; p < list.contentEnd; ) {
    const entry = readTlv(bytes, p, list.contentEnd);
    p = entry.end;
    if (entry.cls !== 0 || entry.tag !== Tag.sequence || !entry.constructed) throw new Error('revokedCertificates entry is not a SEQUENCE');
    const serial = readTlv(bytes, entry.contentStart, entry.contentEnd);
    integerContents(serial);
    const serialHex = serialKey(bytes, serial.contentStart, serial.contentEnd);
    const dateTlv = readTlv(bytes, serial.end, entry.contentEnd);
    if (!isTime(dateTlv)) throw new Error('revocationDate is not a Time');
    const revokedAt = fastTime(dateTlv);
    let reason: number | undefined;
    if (dateTlv.end < entry.contentEnd) {
      const extensions = readTlv(bytes, dateTlv.end, entry.contentEnd);
      if (extensions.end !== entry.contentEnd) throw new Error('revokedCertificates entry has trailing data');
      expectUniversal(extensions, Tag.sequence, 'crlEntryExtensions');
      for (let q = extensions.contentStart; q < extensions.contentEnd; ) {
        const ext = readTlv(bytes, q, extensions.contentEnd);
        q = ext.end;
        if (ext.constructed && ext.contentEnd - ext.contentStart > REASON_CODE_OID.length && isReasonCode(bytes, ext.contentStart)) {
          // reasonCode is never critical: its value is the last element.
          let value = readTlv(bytes, ext.contentStart + REASON_CODE_OID.length, ext.contentEnd);
          if (value.end < ext.contentEnd) value = readTlv(bytes, value.end, ext.contentEnd);
          if (value.end !== ext.contentEnd || value.cls !== 0 || value.tag !== Tag.octetString) throw new Error('bad reasonCode extension');
          reason = Number(readBigInt(parse(readOctets(value))));
        } else {
          const e = decodeExtension(ext);
          if (e.critical && !understoodEntryExtensions.has(e.extnID)) unknownCritical.add(e.extnID);
        }
      }
    }
    // A serial listed twice keeps its first entry; well-formed CRLs list each once.
    if (!revoked.has(serialHex)) revoked.set(serialHex, new RevokedEntry(serialHex, revokedAt, reason));
  }
  return revoked;
}

function decodeIssuingDistributionPoint(tlv: Tlv): IssuingDistributionPoint {
  expectUniversal(tlv, Tag.sequence, 'IssuingDistributionPoint');
  const flag = (n: number) => {
    const f = children(tlv).find((c) => isContext(c, n));
    if (!f) return false;
    const c = contents(f);
    if (f.constructed || c.length !== 1) throw new Error('bad IssuingDistributionPoint flag');
    return c[0] !== 0;
  };
  return {
    onlyContainsUserCerts: flag(1),
    onlyContainsCACerts: flag(2),
    onlySomeReasons: children(tlv).some((c) => isContext(c, 3)),
    indirectCRL: flag(4),
    onlyContainsAttributeCerts: flag(5),
  };
}

/** Every CRL in `bytes`: PEM text with "X509 CRL" blocks, or one DER CRL. */
export function loadCrls(bytes: Uint8Array): CertificateList[] {
  if (looksLikePem(bytes)) {
    const blocks = decodePemAll(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1')).filter((b) => b.label === 'X509 CRL');
    if (blocks.length === 0) throw new KeyfleetError('KF_ASN1_MALFORMED', 'no X509 CRL block in PEM input');
    return blocks.map((b) => decodeCrl(b.der));
  }
  return [decodeCrl(bytes)];
}

const signatureChecks = new WeakMap<CertificateList, Map<string, boolean>>();

/**
 * True when `issuer`'s key verifies the CRL's signature (and the signature
 * algorithm inside TBSCertList matches the outer one). Whether `issuer` may
 * sign CRLs for a certificate (name, cRLSign) is the caller's question; see
 * revocation.ts. Results are cached per (CRL, issuer certificate).
 */
export function verifyCrlSignature(crl: CertificateList, issuer: Certificate): boolean {
  let byIssuer = signatureChecks.get(crl);
  const hit = byIssuer?.get(issuer.fingerprint256);
  if (hit !== undefined) return hit;
  let ok = false;
  if (crl.signatureAlgorithmsMatch) {
    try {
      ok = verifySignature(signatureScheme(crl.signatureAlgorithm), crl.tbs, crl.signatureValue, issuer.publicKey);
    } catch {
      ok = false; // unsupported algorithm or unusable key: the CRL is not evidence
    }
  }
  if (!byIssuer) signatureChecks.set(crl, (byIssuer = new Map()));
  if (byIssuer.size < 64) byIssuer.set(issuer.fingerprint256, ok);
  return ok;
}

/**
 * The entry revoking `cert` (by serial number) when it is on this CRL and
 * revoked at `at` (default: any time). An entry with reason removeFromCRL
 * (delta CRLs, RFC 5280 §5.3.1) means the certificate is no longer revoked.
 * The CRL's issuer and signature are not checked here.
 */
export function isRevoked(crl: CertificateList, cert: Pick<Certificate, 'serialHex'>, at?: Date): RevokedCertificate | undefined {
  const entry = crl.revoked.get(cert.serialHex);
  if (!entry || entry.reason === CrlReason.removeFromCRL) return undefined;
  if (at !== undefined && entry.revocationDate.getTime() > at.getTime()) return undefined;
  return entry;
}
