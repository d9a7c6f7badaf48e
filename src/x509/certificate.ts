/**
 * Certificate (RFC 5280 §4.1):
 *
 *   Certificate ::= SEQUENCE {
 *     tbsCertificate       TBSCertificate,
 *     signatureAlgorithm   AlgorithmIdentifier,
 *     signatureValue       BIT STRING }
 *
 * Decoding keeps the bytes as received (`der`, `tbs`) so signatures are
 * checked over exactly what the issuer signed. Decoded certificates are
 * cached by their encoding: S/MIME messages carry the same few certificates
 * over and over, and decoding is most of the cost of a small verify.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import { type Tlv, SequenceReader, Tag, bit, children, contents, integerContents, isContext, parse, raw, readBitString, readBoolean, readOctets, readOid, readSmallInt, readString, readTime } from '../asn1/reader.ts';
import { OID } from '../asn1/oids.ts';
import { decodePemAll, looksLikePem } from '../asn1/pem.ts';
import { type AlgorithmIdentifier, decodeAlgorithmIdentifier } from './algorithm.ts';
import { type Name, decodeName, nameValues } from './name.ts';

export const KeyUsageBits = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsage = (typeof KeyUsageBits)[number];

export interface Extension {
  readonly extnID: string;
  readonly critical: boolean;
  readonly extnValue: Uint8Array;
}

export interface BasicConstraints {
  readonly cA: boolean;
  readonly pathLenConstraint: number | undefined;
}

export interface GeneralNames {
  readonly rfc822Names: readonly string[];
  readonly dnsNames: readonly string[];
  readonly uris: readonly string[];
  readonly directoryNames: readonly Name[];
  /** Microsoft UPN otherName values (1.3.6.1.4.1.311.20.2.3). */
  readonly upns: readonly string[];
}

export interface Certificate {
  /** The certificate as received. */
  readonly der: Uint8Array;
  /** TBSCertificate as received: what the signature covers. */
  readonly tbs: Uint8Array;
  readonly version: number;
  /** serialNumber contents octets, as encoded (compare bytewise). */
  readonly serialNumber: Uint8Array;
  readonly serialHex: string;
  readonly signatureAlgorithm: AlgorithmIdentifier;
  readonly signatureValue: Uint8Array;
  readonly issuer: Name;
  readonly subject: Name;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SubjectPublicKeyInfo as received. */
  readonly spki: Uint8Array;
  readonly publicKeyAlgorithm: AlgorithmIdentifier;
  /** The public key as a node:crypto KeyObject (created on first use). */
  readonly publicKey: KeyObject;
  readonly extensions: readonly Extension[];
  readonly keyUsage: ReadonlySet<KeyUsage> | undefined;
  /** Extended key usage OIDs, or undefined when the extension is absent. */
  readonly extKeyUsage: readonly string[] | undefined;
  readonly basicConstraints: BasicConstraints | undefined;
  readonly subjectKeyIdentifier: Uint8Array | undefined;
  readonly authorityKeyIdentifier: Uint8Array | undefined;
  readonly subjectAltName: GeneralNames | undefined;
  /** CRL distribution point URIs. */
  readonly crlDistributionPoints: readonly string[];
  /** OCSP responder URIs from authorityInfoAccess. */
  readonly ocspUrls: readonly string[];
  /** Every email address: SAN rfc822Names and subject emailAddress attributes, lower-cased. */
  readonly emailAddresses: readonly string[];
  /** SHA-256 of the encoding, hex. */
  readonly fingerprint256: string;
  /** SHA-1 of the encoding, hex upper-case (Intune's "thumbprint"). */
  readonly thumbprint: string;
  /** Extensions marked critical that this decoder does not understand. */
  readonly unknownCriticalExtensions: readonly string[];
}

const understood = new Set<string>([
  OID.keyUsage,
  OID.extKeyUsage,
  OID.basicConstraints,
  OID.subjectKeyIdentifier,
  OID.authorityKeyIdentifier,
  OID.subjectAltName,
  OID.cRLDistributionPoints,
  OID.authorityInfoAccess,
  OID.certificatePolicies,
  OID.issuerAltName,
]);

/**
 * Decoded certificates by a cheap key: the length and the last 32 octets
 * (the end of the signature value, which differs between any two
 * certificates); a hit is confirmed by comparing the whole encoding. A key
 * built from the whole encoding would cost a 1–2 KB string per lookup,
 * which showed in profiles of a 1 KB verify.
 */
const cache = new Map<string, Certificate[]>();
let cached = 0;
const CACHE_LIMIT = 2048;
const KEY_TAIL = 32;

function cacheKey(bytes: Buffer): string {
  return `${bytes.length}:${bytes.toString('latin1', Math.max(0, bytes.length - KEY_TAIL))}`;
}

/** Decodes a DER certificate. Throws KF_CERT_INVALID for anything malformed. */
export function decodeCertificate(bytes: Uint8Array): Certificate {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const key = cacheKey(view);
  const same = cache.get(key);
  const hit = same?.find((c) => view.equals(c.der));
  if (hit) return hit;
  let cert: Certificate;
  try {
    // A copy: the cache must not keep the message the certificate came in alive.
    cert = decode(Uint8Array.from(bytes));
  } catch (e) {
    if (e instanceof KeyfleetError && e.code === 'KF_CERT_INVALID') throw e;
    throw new KeyfleetError('KF_CERT_INVALID', `certificate cannot be parsed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (cached >= CACHE_LIMIT) {
    const [oldest, list] = cache.entries().next().value!;
    cache.delete(oldest);
    cached -= list.length;
  }
  if (same) same.push(cert);
  else cache.set(key, [cert]);
  cached++;
  return cert;
}

/** Certificates from PEM text (every CERTIFICATE block) or one DER certificate. */
export function loadCertificates(bytes: Uint8Array): Certificate[] {
  if (looksLikePem(bytes)) {
    const blocks = decodePemAll(Buffer.from(bytes).toString('latin1')).filter((b) => b.label === 'CERTIFICATE' || b.label === 'X509 CERTIFICATE');
    if (blocks.length === 0) throw new KeyfleetError('KF_CERT_INVALID', 'no CERTIFICATE block in PEM input');
    return blocks.map((b) => decodeCertificate(b.der));
  }
  return [decodeCertificate(bytes)];
}

function decode(bytes: Uint8Array): Certificate {
  const top = parse(bytes);
  const outer = new SequenceReader(top, 'Certificate');
  const tbsTlv = outer.next(Tag.sequence);
  const signatureAlgorithm = decodeAlgorithmIdentifier(outer.next(Tag.sequence));
  const signatureValue = readBitString(outer.next(Tag.bitString)).bytes;
  outer.end();

  const t = new SequenceReader(tbsTlv, 'TBSCertificate');
  const versionTlv = t.optionalContext(0);
  const version = versionTlv ? readSmallInt(onlyChild(versionTlv, 'version')) + 1 : 1;
  const serialNumber = integerContents(t.next(Tag.integer));
  t.next(Tag.sequence); // signature: must equal signatureAlgorithm, checked in path validation
  const issuer = decodeName(t.next(Tag.sequence));
  const validity = new SequenceReader(t.next(Tag.sequence), 'Validity');
  const notBefore = readTime(validity.next());
  const notAfter = readTime(validity.next());
  const subject = decodeName(t.next(Tag.sequence));
  const spkiTlv = t.next(Tag.sequence);
  const spkiReader = new SequenceReader(spkiTlv, 'SubjectPublicKeyInfo');
  const publicKeyAlgorithm = decodeAlgorithmIdentifier(spkiReader.next(Tag.sequence));
  t.optionalContext(1); // issuerUniqueID
  t.optionalContext(2); // subjectUniqueID
  const extTlv = t.optionalContext(3);
  const extensions: Extension[] = [];
  if (extTlv) {
    for (const e of children(children(extTlv)[0]!)) {
      const r = new SequenceReader(e, 'Extension');
      const extnID = readOid(r.next(Tag.oid));
      const criticalTlv = r.optional(Tag.boolean);
      const critical = criticalTlv ? readBoolean(criticalTlv) : false;
      const extnValue = readOctets(r.next(Tag.octetString));
      extensions.push({ extnID, critical, extnValue });
    }
  }
  if (new Set(extensions.map((e) => e.extnID)).size !== extensions.length) {
    throw new KeyfleetError('KF_CERT_INVALID', 'certificate repeats an extension (RFC 5280 §4.2)');
  }
  const ext = (oid: string) => extensions.find((e) => e.extnID === oid);

  const kuExt = ext(OID.keyUsage);
  let keyUsage: Set<KeyUsage> | undefined;
  if (kuExt) {
    const bits = readBitString(parse(kuExt.extnValue));
    keyUsage = new Set(KeyUsageBits.filter((_, i) => bit(bits, i)));
  }
  const ekuExt = ext(OID.extKeyUsage);
  const extKeyUsage = ekuExt ? children(parse(ekuExt.extnValue)).map(readOid) : undefined;
  const bcExt = ext(OID.basicConstraints);
  let basicConstraints: BasicConstraints | undefined;
  if (bcExt) {
    const r = new SequenceReader(parse(bcExt.extnValue), 'BasicConstraints');
    const ca = r.optional(Tag.boolean);
    const pl = r.optional(Tag.integer);
    basicConstraints = { cA: ca ? readBoolean(ca) : false, pathLenConstraint: pl ? readSmallInt(pl) : undefined };
  }
  const skiExt = ext(OID.subjectKeyIdentifier);
  const subjectKeyIdentifier = skiExt ? readOctets(parse(skiExt.extnValue)) : undefined;
  const akiExt = ext(OID.authorityKeyIdentifier);
  let authorityKeyIdentifier: Uint8Array | undefined;
  if (akiExt) {
    const kid = children(parse(akiExt.extnValue)).find((c) => isContext(c, 0));
    authorityKeyIdentifier = kid ? contents(kid) : undefined;
  }
  const sanExt = ext(OID.subjectAltName);
  const subjectAltName = sanExt ? decodeGeneralNames(parse(sanExt.extnValue)) : undefined;
  const crlDistributionPoints: string[] = [];
  const cdpExt = ext(OID.cRLDistributionPoints);
  if (cdpExt) {
    for (const dp of children(parse(cdpExt.extnValue))) {
      const dpName = children(dp).find((c) => isContext(c, 0));
      const full = dpName && children(dpName).find((c) => isContext(c, 0));
      if (full) crlDistributionPoints.push(...decodeGeneralNames(full).uris);
    }
  }
  const ocspUrls: string[] = [];
  const aiaExt = ext(OID.authorityInfoAccess);
  if (aiaExt) {
    for (const ad of children(parse(aiaExt.extnValue))) {
      const r = new SequenceReader(ad, 'AccessDescription');
      const method = readOid(r.next(Tag.oid));
      const loc = r.next();
      if (method === OID.adOcsp && isContext(loc, 6)) ocspUrls.push(Buffer.from(contents(loc)).toString('latin1'));
    }
  }
  const emailAddresses = [...new Set([...(subjectAltName?.rfc822Names ?? []), ...nameValues(subject, OID.emailAddress)].map((e) => e.toLowerCase()))];
  const spki = raw(spkiTlv);
  let publicKey: KeyObject | undefined;

  return {
    der: bytes,
    tbs: raw(tbsTlv),
    version,
    serialNumber,
    serialHex: Buffer.from(serialNumber).toString('hex'),
    signatureAlgorithm,
    signatureValue,
    issuer,
    subject,
    notBefore,
    notAfter,
    spki,
    publicKeyAlgorithm,
    get publicKey(): KeyObject {
      if (!publicKey) {
        try {
          publicKey = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
        } catch (e) {
          throw new KeyfleetError('KF_CERT_INVALID', 'certificate public key is not usable', { cause: e });
        }
      }
      return publicKey;
    },
    extensions,
    keyUsage,
    extKeyUsage,
    basicConstraints,
    subjectKeyIdentifier,
    authorityKeyIdentifier,
    subjectAltName,
    crlDistributionPoints,
    ocspUrls,
    emailAddresses,
    fingerprint256: createHash('sha256').update(bytes).digest('hex'),
    thumbprint: createHash('sha1').update(bytes).digest('hex').toUpperCase(),
    unknownCriticalExtensions: extensions.filter((e) => e.critical && !understood.has(e.extnID)).map((e) => e.extnID),
  };
}

function onlyChild(tlv: Tlv, what: string): Tlv {
  const c = children(tlv);
  if (c.length !== 1) throw new KeyfleetError('KF_CERT_INVALID', `${what} must hold exactly one element`);
  return c[0]!;
}

/** GeneralNames (RFC 5280 §4.2.1.6), the kinds S/MIME uses. */
export function decodeGeneralNames(tlv: Tlv): GeneralNames {
  const rfc822Names: string[] = [];
  const dnsNames: string[] = [];
  const uris: string[] = [];
  const directoryNames: Name[] = [];
  const upns: string[] = [];
  for (const gn of children(tlv)) {
    if (gn.cls !== 2) continue;
    const text = () => Buffer.from(contents(gn)).toString('latin1');
    switch (gn.tag) {
      case 0: {
        const r = new SequenceReader(gn, 'OtherName');
        const typeId = readOid(r.next(Tag.oid));
        const value = r.next();
        if (typeId === OID.msUpn && isContext(value, 0)) upns.push(readString(children(value)[0]!));
        break;
      }
      case 1:
        rfc822Names.push(text());
        break;
      case 2:
        dnsNames.push(text());
        break;
      case 4:
        directoryNames.push(decodeName(onlyChild(gn, 'directoryName')));
        break;
      case 6:
        uris.push(text());
        break;
    }
  }
  return { rfc822Names, dnsNames, uris, directoryNames, upns };
}

/** The RSA modulus size in bits, or undefined for other key types. */
const keyBits = new WeakMap<Certificate, number | undefined>();

export function rsaKeyBits(cert: Certificate): number | undefined {
  // Cached: asymmetricKeyDetails builds a new object on every read, and verification asks for every message.
  if (keyBits.has(cert)) return keyBits.get(cert);
  const details = cert.publicKey.asymmetricKeyDetails;
  const bits = cert.publicKey.asymmetricKeyType === 'rsa' || cert.publicKey.asymmetricKeyType === 'rsa-pss' ? details?.modulusLength : undefined;
  keyBits.set(cert, bits);
  return bits;
}
