/**
 * ContentInfo (RFC 5652 §3):
 *
 *   ContentInfo ::= SEQUENCE {
 *     contentType ContentType,
 *     content [0] EXPLICIT ANY DEFINED BY contentType }
 */
import { KeyfleetError } from '../../errors.ts';
import { type Tlv, SequenceReader, Tag, children, parse, readOid } from '../../asn1/reader.ts';
import * as der from '../../asn1/writer.ts';

export interface ContentInfo {
  readonly contentType: string;
  /** The content element inside [0] (e.g. the SignedData SEQUENCE), as received. */
  readonly content: Tlv;
}

export function decodeContentInfo(bytes: Uint8Array): ContentInfo {
  try {
    const r = new SequenceReader(parse(bytes), 'ContentInfo');
    const contentType = readOid(r.next(Tag.oid));
    const wrapper = r.optionalContext(0);
    if (!wrapper) throw new KeyfleetError('KF_CMS_MALFORMED', 'ContentInfo has no content');
    const inner = children(wrapper);
    if (inner.length !== 1) throw new KeyfleetError('KF_CMS_MALFORMED', 'ContentInfo content must be one element');
    return { contentType, content: inner[0]! };
  } catch (e) {
    if (e instanceof KeyfleetError && e.code !== 'KF_ASN1_MALFORMED') throw e;
    throw new KeyfleetError('KF_CMS_MALFORMED', `not a CMS ContentInfo: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

export function encodeContentInfo(contentType: string, content: Uint8Array): Uint8Array {
  return der.sequence(der.oid(contentType), der.explicit(0, content));
}
