/**
 * SignerInfo (RFC 5652 §5.3):
 *
 *   SignerInfo ::= SEQUENCE {
 *     version CMSVersion,
 *     sid SignerIdentifier,
 *     digestAlgorithm DigestAlgorithmIdentifier,
 *     signedAttrs [0] IMPLICIT SignedAttributes OPTIONAL,
 *     signatureAlgorithm SignatureAlgorithmIdentifier,
 *     signature SignatureValue,
 *     unsignedAttrs [1] IMPLICIT UnsignedAttributes OPTIONAL }
 *
 *   SignerIdentifier ::= CHOICE {
 *     issuerAndSerialNumber IssuerAndSerialNumber,
 *     subjectKeyIdentifier [0] SubjectKeyIdentifier }
 *
 *   IssuerAndSerialNumber ::= SEQUENCE {
 *     issuer Name,
 *     serialNumber CertificateSerialNumber }
 */
import { KeyfleetError } from '../../errors.ts';
import { type Tlv, SequenceReader, Tag, contents, integerContents, isContext, isUniversal, raw, readOctets, readSmallInt } from '../../asn1/reader.ts';
import * as der from '../../asn1/writer.ts';
import type { Certificate } from '../../x509/certificate.ts';
import { type AlgorithmIdentifier, decodeAlgorithmIdentifier } from '../../x509/algorithm.ts';
import { type Name, decodeName, namesEqual } from '../../x509/name.ts';
import { type Attribute, decodeAttributes, readContentType, readMessageDigest, readSigningTime } from './attributes.ts';

export interface IssuerAndSerialNumber {
  readonly issuer: Name;
  /** serialNumber contents octets as encoded. */
  readonly serialNumber: Uint8Array;
}

export type SignerIdentifier =
  | { readonly issuerAndSerialNumber: IssuerAndSerialNumber; readonly subjectKeyIdentifier?: undefined }
  | { readonly subjectKeyIdentifier: Uint8Array; readonly issuerAndSerialNumber?: undefined };

/** The signed attributes of a SignerInfo, as received and as read. */
export interface SignedAttributes {
  /** The [0] IMPLICIT element as received: the signature covers it re-tagged as SET. */
  readonly tlv: Tlv;
  readonly attributes: readonly Attribute[];
  readonly contentType: string | undefined;
  readonly messageDigest: Uint8Array | undefined;
  readonly signingTime: Date | undefined;
}

export interface SignerInfo {
  readonly version: number;
  readonly sid: SignerIdentifier;
  readonly digestAlgorithm: AlgorithmIdentifier;
  readonly signedAttrs: SignedAttributes | undefined;
  readonly signatureAlgorithm: AlgorithmIdentifier;
  readonly signature: Uint8Array;
  readonly unsignedAttrs: readonly Attribute[] | undefined;
}

export function decodeIssuerAndSerialNumber(tlv: Tlv): IssuerAndSerialNumber {
  const r = new SequenceReader(tlv, 'IssuerAndSerialNumber');
  const issuer = lazyName(r.next(Tag.sequence));
  const serialNumber = integerContents(r.next(Tag.integer));
  r.end();
  return { issuer, serialNumber };
}

/**
 * A Name whose attributes are decoded on first use: matching a signer is
 * almost always settled by comparing the encodings (namesEqual does that first).
 */
function lazyName(tlv: Tlv): Name {
  let decoded: Name | undefined;
  return {
    der: raw(tlv),
    get rdns() {
      decoded ??= decodeName(tlv);
      return decoded.rdns;
    },
  };
}

const issuerAndSerialCache = new WeakMap<Certificate, Uint8Array>();

/** IssuerAndSerialNumber of a certificate (DER, cached per certificate). */
export function encodeIssuerAndSerialNumber(cert: Certificate): Uint8Array {
  let enc = issuerAndSerialCache.get(cert);
  if (!enc) {
    enc = der.sequence(cert.issuer.der, der.integerFromContents(cert.serialNumber));
    issuerAndSerialCache.set(cert, enc);
  }
  return enc;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export function matchesIssuerAndSerial(ias: IssuerAndSerialNumber, cert: Certificate): boolean {
  if (!bytesEqual(ias.serialNumber, cert.serialNumber)) return false;
  try {
    return namesEqual(ias.issuer, cert.issuer);
  } catch {
    return false; // an issuer name that cannot be decoded names no certificate
  }
}

/** True when `cert` is the certificate `sid` names. */
export function identifies(sid: SignerIdentifier, cert: Certificate): boolean {
  if (sid.issuerAndSerialNumber) return matchesIssuerAndSerial(sid.issuerAndSerialNumber, cert);
  return cert.subjectKeyIdentifier !== undefined && bytesEqual(sid.subjectKeyIdentifier, cert.subjectKeyIdentifier);
}

export function decodeSignerInfo(tlv: Tlv): SignerInfo {
  const r = new SequenceReader(tlv, 'SignerInfo');
  const version = readSmallInt(r.next(Tag.integer));
  const sidTlv = r.next();
  let sid: SignerIdentifier;
  if (isUniversal(sidTlv, Tag.sequence)) sid = { issuerAndSerialNumber: decodeIssuerAndSerialNumber(sidTlv) };
  else if (isContext(sidTlv, 0)) sid = { subjectKeyIdentifier: sidTlv.constructed ? readOctets(sidTlv) : contents(sidTlv) };
  else throw new KeyfleetError('KF_CMS_MALFORMED', 'SignerInfo has an unknown signer identifier');
  const digestAlgorithm = decodeAlgorithmIdentifier(r.next(Tag.sequence));
  const signedTlv = r.optionalContext(0);
  let signedAttrs: SignedAttributes | undefined;
  if (signedTlv) {
    const attributes = decodeAttributes(signedTlv);
    if (attributes.length === 0) throw new KeyfleetError('KF_CMS_MALFORMED', 'SignerInfo has an empty signedAttrs');
    signedAttrs = {
      tlv: signedTlv,
      attributes,
      contentType: readContentType(attributes),
      messageDigest: readMessageDigest(attributes),
      signingTime: readSigningTime(attributes),
    };
  }
  const signatureAlgorithm = decodeAlgorithmIdentifier(r.next(Tag.sequence));
  const signature = readOctets(r.next(Tag.octetString));
  const unsignedTlv = r.optionalContext(1);
  r.end();
  return { version, sid, digestAlgorithm, signedAttrs, signatureAlgorithm, signature, unsignedAttrs: unsignedTlv ? decodeAttributes(unsignedTlv) : undefined };
}

/** The fields of a SignerInfo to write, each already DER-encoded. */
export interface SignerInfoFields {
  /** 1 for issuerAndSerialNumber, 3 for subjectKeyIdentifier (RFC 5652 §5.3). */
  readonly version: 1 | 3;
  readonly sid: Uint8Array;
  readonly digestAlgorithm: Uint8Array;
  /** The signed attributes as signed (a SET, tag 0x31); written as [0] IMPLICIT. */
  readonly signedAttrs: Uint8Array;
  readonly signatureAlgorithm: Uint8Array;
  readonly signature: Uint8Array;
}

export function encodeSignerInfo(f: SignerInfoFields): Uint8Array {
  return der.sequence(der.integer(f.version), f.sid, f.digestAlgorithm, der.retag(f.signedAttrs, 0), f.signatureAlgorithm, der.octetString(f.signature));
}

/** The SignerIdentifier for a certificate; subjectKeyIdentifier needs the extension. */
export function encodeSignerIdentifier(cert: Certificate, kind: 'issuerAndSerialNumber' | 'subjectKeyIdentifier'): Uint8Array {
  if (kind === 'issuerAndSerialNumber') return encodeIssuerAndSerialNumber(cert);
  if (!cert.subjectKeyIdentifier) throw new KeyfleetError('KF_USAGE', 'the signer certificate has no subjectKeyIdentifier extension to identify it by');
  return der.implicitPrimitive(0, cert.subjectKeyIdentifier);
}
