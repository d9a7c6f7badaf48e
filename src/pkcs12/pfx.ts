/**
 * The outer layers of a PKCS#12 file (RFC 7292 §4–§5), shared by the reader
 * and the inspector:
 *
 *   PFX ::= SEQUENCE {
 *     version   INTEGER {v3(3)}(v3,...),
 *     authSafe  ContentInfo,
 *     macData   MacData OPTIONAL }
 *
 *   AuthenticatedSafe ::= SEQUENCE OF ContentInfo
 *     -- Data if unencrypted
 *     -- EncryptedData if password-encrypted
 *     -- EnvelopedData if public key-encrypted
 *
 *   EncryptedData ::= SEQUENCE {                       -- RFC 5652 §8
 *     version               CMSVersion,
 *     encryptedContentInfo  EncryptedContentInfo,
 *     unprotectedAttrs  [1] IMPLICIT UnprotectedAttributes OPTIONAL }
 *
 *   EncryptedContentInfo ::= SEQUENCE {
 *     contentType                 ContentType,
 *     contentEncryptionAlgorithm  ContentEncryptionAlgorithmIdentifier,
 *     encryptedContent        [0] IMPLICIT EncryptedContent OPTIONAL }
 */
import { KeyfleetError } from '../errors.ts';
import { type Tlv, SequenceReader, Tag, children, parse, raw, readOctets, readSmallInt } from '../asn1/reader.ts';
import { OID, oidName } from '../asn1/oids.ts';
import * as der from '../asn1/writer.ts';
import { type AlgorithmIdentifier, decodeAlgorithmIdentifier } from '../x509/algorithm.ts';
import { decodeContentInfo, encodeContentInfo } from '../smime/cms/content-info.ts';
import { type MacData, decodeMacData } from './mac.ts';

export interface Pfx {
  /** The AuthenticatedSafe encoding: the contents of the outer Data, which the MAC covers. */
  readonly authSafe: Uint8Array;
  readonly macData: MacData | undefined;
}

export function decodePfx(bytes: Uint8Array): Pfx {
  const r = new SequenceReader(parse(bytes), 'PFX');
  const version = readSmallInt(r.next(Tag.integer));
  if (version !== 3) throw new KeyfleetError('KF_CMS_UNSUPPORTED', `PKCS#12 PFX version ${version} is not supported (3 expected)`);
  const authSafe = decodeContentInfo(raw(r.next(Tag.sequence)));
  if (authSafe.contentType === OID.signedData) {
    throw new KeyfleetError('KF_CMS_UNSUPPORTED', 'PKCS#12 public-key integrity mode (SignedData) is not supported', { detail: OID.signedData });
  }
  if (authSafe.contentType !== OID.data) throw new KeyfleetError('KF_CMS_MALFORMED', `PKCS#12 authSafe has content type ${oidName(authSafe.contentType)}`);
  const macTlv = r.optional(Tag.sequence);
  r.end();
  return { authSafe: octets(authSafe.content, 'authSafe'), macData: macTlv ? decodeMacData(macTlv) : undefined };
}

function octets(tlv: Tlv, what: string): Uint8Array {
  if (tlv.cls !== 0 || tlv.tag !== Tag.octetString) throw new KeyfleetError('KF_CMS_MALFORMED', `PKCS#12 ${what} Data is not an OCTET STRING`);
  return readOctets(tlv);
}

/** One ContentInfo of the AuthenticatedSafe. */
export type AuthSafeContent =
  | { readonly kind: 'data'; readonly safeContents: Tlv }
  | { readonly kind: 'encryptedData'; readonly algorithm: AlgorithmIdentifier; readonly encryptedContent: Uint8Array }
  | { readonly kind: 'other'; readonly contentType: string };

export function decodeAuthenticatedSafe(authSafe: Uint8Array): AuthSafeContent[] {
  const seq = parse(authSafe);
  if (seq.cls !== 0 || seq.tag !== Tag.sequence) throw new KeyfleetError('KF_CMS_MALFORMED', 'PKCS#12 AuthenticatedSafe is not a SEQUENCE');
  return children(seq).map((item): AuthSafeContent => {
    const ci = decodeContentInfo(raw(item));
    if (ci.contentType === OID.data) return { kind: 'data', safeContents: parse(octets(ci.content, 'SafeContents')) };
    if (ci.contentType === OID.encryptedData) return { kind: 'encryptedData', ...decodeEncryptedData(ci.content) };
    // EnvelopedData (public-key privacy mode) is reported, not opened: no tool in use writes it.
    return { kind: 'other', contentType: ci.contentType };
  });
}

function decodeEncryptedData(tlv: Tlv): { algorithm: AlgorithmIdentifier; encryptedContent: Uint8Array } {
  const r = new SequenceReader(tlv, 'EncryptedData');
  readSmallInt(r.next(Tag.integer));
  const eci = new SequenceReader(r.next(Tag.sequence), 'EncryptedContentInfo');
  eci.next(Tag.oid);
  const algorithm = decodeAlgorithmIdentifier(eci.next(Tag.sequence));
  const content = eci.optionalContext(0);
  eci.end();
  if (!content) throw new KeyfleetError('KF_CMS_MALFORMED', 'PKCS#12 EncryptedData has no encryptedContent');
  return { algorithm, encryptedContent: readOctets(content) };
}

// ------------------------------------------------------------------ writing

export function encodeDataContentInfo(content: Uint8Array): Uint8Array {
  return encodeContentInfo(OID.data, der.octetString(content));
}

export function encodeEncryptedDataContentInfo(algorithm: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  const eci = der.sequence(der.oid(OID.data), algorithm, der.implicitPrimitive(0, ciphertext));
  return encodeContentInfo(OID.encryptedData, der.sequence(der.integer(0), eci));
}

export function encodePfx(authSafe: Uint8Array, macData: Uint8Array): Uint8Array {
  return der.sequence(der.integer(3), encodeDataContentInfo(authSafe), macData);
}
