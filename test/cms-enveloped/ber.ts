/**
 * Re-encodes a DER CMS message the way streaming producers (OpenSSL -stream,
 * Outlook, NSS) do: every constructed element with an indefinite length and
 * the encryptedContent as a constructed OCTET STRING of small segments.
 */
import { type Tlv, children, contents, parse } from '../../src/asn1/reader.ts';

function identifier(tlv: Tlv, constructed: boolean): number {
  if (tlv.tag > 30) throw new Error('high tag numbers are not used in CMS');
  return (tlv.cls << 6) | (constructed ? 0x20 : 0) | tlv.tag;
}

function definite(id: number, body: Uint8Array): Buffer {
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Uint8Array.of(id, ...len), body]);
}

/** True for EncryptedContentInfo: SEQUENCE { OID, AlgorithmIdentifier, [0] ... }. */
function isEncryptedContentInfo(tlv: Tlv): boolean {
  if (tlv.cls !== 0 || tlv.tag !== 16 || !tlv.constructed) return false;
  const c = children(tlv);
  return c.length === 3 && c[0]!.tag === 6 && c[0]!.cls === 0 && c[2]!.cls === 2 && c[2]!.tag === 0;
}

function encode(tlv: Tlv, segmentSize: number, parentIsEci: boolean): Buffer {
  if (!tlv.constructed) {
    if (parentIsEci && tlv.cls === 2 && tlv.tag === 0) {
      const value = contents(tlv);
      const segments: Buffer[] = [];
      for (let i = 0; i < value.length; i += segmentSize) segments.push(definite(0x04, value.subarray(i, i + segmentSize)));
      return Buffer.concat([Uint8Array.of(identifier(tlv, true), 0x80), ...segments, Uint8Array.of(0, 0)]);
    }
    return Buffer.from(tlv.bytes.subarray(tlv.start, tlv.end));
  }
  const eci = isEncryptedContentInfo(tlv);
  const inner = children(tlv).map((c) => encode(c, segmentSize, eci));
  return Buffer.concat([Uint8Array.of(identifier(tlv, true), 0x80), ...inner, Uint8Array.of(0, 0)]);
}

export function toStreamedBer(der: Uint8Array, segmentSize: number): Buffer {
  return encode(parse(der), segmentSize, false);
}
