/**
 * CMS attributes (RFC 5652 §5.3, §11):
 *
 *   Attribute ::= SEQUENCE {
 *     attrType   OBJECT IDENTIFIER,
 *     attrValues SET OF AttributeValue }
 *
 *   SignedAttributes ::= SET SIZE (1..MAX) OF Attribute
 *
 * Signing writes the SET DER-sorted (X.690 §11.6, REFERENCE.md pitfall 4);
 * verifying never re-encodes: the signature covers the attributes exactly as
 * received (see `signedAttributesForSignature`).
 */
import { KeyfleetError } from '../../errors.ts';
import { type Tlv, SequenceReader, Tag, children, isUniversal, octetSegments, raw, readOid, readTime } from '../../asn1/reader.ts';
import { OID } from '../../asn1/oids.ts';
import * as der from '../../asn1/writer.ts';

export interface Attribute {
  readonly attrType: string;
  /** The values as received (the SET's children). */
  readonly attrValues: readonly Tlv[];
}

/** The attributes of a SET OF Attribute (or its [n] IMPLICIT form in SignerInfo). */
export function decodeAttributes(tlv: Tlv): Attribute[] {
  return children(tlv).map((a) => {
    const r = new SequenceReader(expectSequence(a), 'Attribute');
    const attrType = readOid(r.next(Tag.oid));
    const values = r.next(Tag.set);
    r.end();
    return { attrType, attrValues: children(values) };
  });
}

function expectSequence(tlv: Tlv): Tlv {
  if (!isUniversal(tlv, Tag.sequence)) throw new KeyfleetError('KF_CMS_MALFORMED', 'attribute is not a SEQUENCE');
  return tlv;
}

/**
 * The single value of the attribute `type`, undefined when absent. RFC 5652
 * §11 makes contentType, messageDigest and signingTime single-valued and
 * allows one instance per SignerInfo; anything else is malformed.
 */
export function singleAttributeValue(attributes: readonly Attribute[], type: string): Tlv | undefined {
  let found: Tlv | undefined;
  for (const a of attributes) {
    if (a.attrType !== type) continue;
    if (found !== undefined || a.attrValues.length !== 1) {
      throw new KeyfleetError('KF_CMS_MALFORMED', `attribute ${type} must occur once with one value`);
    }
    found = a.attrValues[0]!;
  }
  return found;
}

/** Attribute encoding with its values DER-sorted. */
export function encodeAttribute(type: string, ...values: Uint8Array[]): Uint8Array {
  return der.sequence(der.oid(type), der.setOf(...values));
}

/**
 * The signed attributes to sign: a DER SET OF, sorted. The signature is
 * computed over this encoding (tag 0x31); the SignerInfo stores it re-tagged
 * as [0] IMPLICIT (RFC 5652 §5.4).
 */
export function encodeSignedAttributes(attributes: readonly Uint8Array[]): Uint8Array {
  return der.setOf(...attributes);
}

/**
 * The bytes a signature over signed attributes covers (RFC 5652 §5.4): the
 * received [0] IMPLICIT encoding with its tag replaced by SET (0x31) and
 * nothing else changed, so unsorted or BER-encoded attributes from other
 * producers verify as they were signed.
 */
export function signedAttributesForSignature(signedAttrs: Tlv): Uint8Array {
  const bytes = Buffer.from(raw(signedAttrs));
  bytes[0] = 0x31;
  return bytes;
}

const contentTypeCache = new Map<string, Uint8Array>();

/** contentType attribute (RFC 5652 §11.1); its encoding is cached per type. */
export function contentTypeAttribute(contentType: string): Uint8Array {
  let enc = contentTypeCache.get(contentType);
  if (!enc) {
    enc = encodeAttribute(OID.contentType, der.oid(contentType));
    if (contentTypeCache.size < 64) contentTypeCache.set(contentType, enc);
  }
  return enc;
}

/** messageDigest attribute (RFC 5652 §11.2). */
export function messageDigestAttribute(digest: Uint8Array): Uint8Array {
  return encodeAttribute(OID.messageDigest, der.octetString(digest));
}

/** signingTime attribute (RFC 5652 §11.3): UTCTime for 1950–2049, else GeneralizedTime. */
export function signingTimeAttribute(date: Date): Uint8Array {
  if (Number.isNaN(date.getTime())) throw new KeyfleetError('KF_USAGE', 'signing time is not a valid date');
  return encodeAttribute(OID.signingTime, der.time(date));
}

/** The contentType attribute's value, or undefined when absent. */
export function readContentType(attributes: readonly Attribute[]): string | undefined {
  const v = singleAttributeValue(attributes, OID.contentType);
  return v === undefined ? undefined : readOid(v);
}

/** The messageDigest attribute's value (segments, for a BER-constructed OCTET STRING), or undefined. */
export function readMessageDigest(attributes: readonly Attribute[]): Uint8Array | undefined {
  const v = singleAttributeValue(attributes, OID.messageDigest);
  if (v === undefined) return undefined;
  if (!isUniversal(v, Tag.octetString)) throw new KeyfleetError('KF_CMS_MALFORMED', 'messageDigest is not an OCTET STRING');
  const segments = octetSegments(v);
  return segments.length === 1 ? segments[0]! : Buffer.concat(segments);
}

/** The signingTime attribute's value, or undefined. */
export function readSigningTime(attributes: readonly Attribute[]): Date | undefined {
  const v = singleAttributeValue(attributes, OID.signingTime);
  return v === undefined ? undefined : readTime(v);
}
