/**
 * Safe contents and bags (RFC 7292 §4.2):
 *
 *   SafeContents ::= SEQUENCE OF SafeBag
 *
 *   SafeBag ::= SEQUENCE {
 *     bagId          BAG-TYPE.&id ({PKCS12BagSet}),
 *     bagValue       [0] EXPLICIT BAG-TYPE.&Type({PKCS12BagSet}{@bagId}),
 *     bagAttributes  SET OF PKCS12Attribute OPTIONAL }
 *
 *   PKCS12Attribute ::= SEQUENCE {
 *     attrId      ATTRIBUTE.&id ({PKCS12AttrSet}),
 *     attrValues  SET OF ATTRIBUTE.&Type ({PKCS12AttrSet}{@attrId}) }
 *
 *   CertBag ::= SEQUENCE {
 *     certId     BAG-TYPE.&id ({CertTypes}),
 *     certValue  [0] EXPLICIT BAG-TYPE.&Type ({CertTypes}{@certId}) }
 *
 *   EncryptedPrivateKeyInfo ::= SEQUENCE {          -- RFC 5958 §3
 *     encryptionAlgorithm  AlgorithmIdentifier,
 *     encryptedData        OCTET STRING }
 *
 * The attributes Keyfleet reads and writes are friendlyName (a BMPString,
 * RFC 2985 §5.5.1) and localKeyId (an OCTET STRING, §5.5.2), which tie a
 * key bag to its certificate bag.
 */
import { KeyfleetError } from '../errors.ts';
import { type Tlv, SequenceReader, Tag, children, readOctets, readOid, readString } from '../asn1/reader.ts';
import { oidName } from '../asn1/oids.ts';
import * as der from '../asn1/writer.ts';
import { type AlgorithmIdentifier, decodeAlgorithmIdentifier } from '../x509/algorithm.ts';
import { P12 } from './oids.ts';

export interface BagAttributes {
  readonly friendlyName?: string;
  readonly localKeyId?: Uint8Array;
}

export interface SafeBag extends BagAttributes {
  readonly bagId: string;
  /** The element inside bagValue [0]. */
  readonly value: Tlv;
}

const bagNames: Record<string, string> = {
  [P12.keyBag]: 'keyBag',
  [P12.pkcs8ShroudedKeyBag]: 'pkcs8ShroudedKeyBag',
  [P12.certBag]: 'certBag',
  [P12.crlBag]: 'crlBag',
  [P12.secretBag]: 'secretBag',
  [P12.safeContentsBag]: 'safeContentsBag',
};

/** The RFC 7292 name of a bag type, else its dotted OID. */
export function bagName(bagId: string): string {
  return bagNames[bagId] ?? oidName(bagId);
}

export function decodeSafeContents(tlv: Tlv): SafeBag[] {
  if (tlv.cls !== 0 || tlv.tag !== Tag.sequence) throw new KeyfleetError('KF_ASN1_MALFORMED', 'SafeContents is not a SEQUENCE');
  return children(tlv).map(decodeSafeBag);
}

function decodeSafeBag(tlv: Tlv): SafeBag {
  const r = new SequenceReader(tlv, 'SafeBag');
  const bagId = readOid(r.next(Tag.oid));
  const wrapper = r.optionalContext(0);
  if (!wrapper) throw new KeyfleetError('KF_ASN1_MALFORMED', 'SafeBag has no bagValue');
  const inner = children(wrapper);
  if (inner.length !== 1) throw new KeyfleetError('KF_ASN1_MALFORMED', 'SafeBag bagValue must be one element');
  const attributes = r.optional(Tag.set);
  r.end();
  return { bagId, value: inner[0]!, ...(attributes ? decodeAttributes(attributes) : {}) };
}

function decodeAttributes(set: Tlv): BagAttributes {
  let friendlyName: string | undefined;
  let localKeyId: Uint8Array | undefined;
  for (const attribute of children(set)) {
    const r = new SequenceReader(attribute, 'PKCS12Attribute');
    const attrId = readOid(r.next(Tag.oid));
    const values = children(r.next(Tag.set));
    r.end();
    // Both attributes are single-valued (RFC 2985 §5.5); a later value is ignored.
    const first = values[0];
    if (first === undefined) continue;
    if (attrId === P12.friendlyName) friendlyName = readString(first);
    else if (attrId === P12.localKeyId) localKeyId = readOctets(first);
  }
  return { ...(friendlyName !== undefined ? { friendlyName } : {}), ...(localKeyId !== undefined ? { localKeyId } : {}) };
}

/** The DER certificate of an X.509 CertBag, or undefined for other certificate types (SDSI). */
export function decodeCertBag(tlv: Tlv): Uint8Array | undefined {
  const r = new SequenceReader(tlv, 'CertBag');
  const certId = readOid(r.next(Tag.oid));
  const wrapper = r.optionalContext(0);
  if (!wrapper) throw new KeyfleetError('KF_ASN1_MALFORMED', 'CertBag has no certValue');
  r.end();
  if (certId !== P12.x509Certificate) return undefined;
  const inner = children(wrapper);
  if (inner.length !== 1 || inner[0]!.cls !== 0 || inner[0]!.tag !== Tag.octetString) {
    throw new KeyfleetError('KF_ASN1_MALFORMED', 'x509Certificate certValue is not an OCTET STRING');
  }
  return readOctets(inner[0]!);
}

export interface EncryptedPrivateKeyInfo {
  readonly encryptionAlgorithm: AlgorithmIdentifier;
  readonly encryptedData: Uint8Array;
}

export function decodeEncryptedPrivateKeyInfo(tlv: Tlv): EncryptedPrivateKeyInfo {
  const r = new SequenceReader(tlv, 'EncryptedPrivateKeyInfo');
  const encryptionAlgorithm = decodeAlgorithmIdentifier(r.next(Tag.sequence));
  const encryptedData = readOctets(r.next(Tag.octetString));
  r.end();
  return { encryptionAlgorithm, encryptedData };
}

// ------------------------------------------------------------------ writing

/** BMPString (UTF-16BE); the DER writer has no helper for it. */
function bmpString(s: string): Uint8Array {
  return der.tlv(Tag.bmpString, Buffer.from(s, 'utf16le').swap16());
}

export function encodeSafeBag(bagId: string, value: Uint8Array, attributes: BagAttributes = {}): Uint8Array {
  const attrs: Uint8Array[] = [];
  if (attributes.friendlyName !== undefined) attrs.push(der.sequence(der.oid(P12.friendlyName), der.setOf(bmpString(attributes.friendlyName))));
  if (attributes.localKeyId !== undefined) attrs.push(der.sequence(der.oid(P12.localKeyId), der.setOf(der.octetString(attributes.localKeyId))));
  return der.sequence(der.oid(bagId), der.explicit(0, value), ...(attrs.length > 0 ? [der.setOf(...attrs)] : []));
}

export function encodeCertBag(certificateDer: Uint8Array): Uint8Array {
  return der.sequence(der.oid(P12.x509Certificate), der.explicit(0, der.octetString(certificateDer)));
}

export function encodeEncryptedPrivateKeyInfo(algorithm: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return der.sequence(algorithm, der.octetString(ciphertext));
}
