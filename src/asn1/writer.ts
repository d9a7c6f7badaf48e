/**
 * DER encoding (X.690 §10). Each function returns the complete encoding of
 * one element; constructed elements take their children's encodings.
 * SET OF values are sorted as DER requires (X.690 §11.6), which CMS needs for
 * signed attributes (RFC 5652 §5.4).
 */
import { Tag } from './reader.ts';

type Bytes = Uint8Array;

/** The identifier and length octets of an element with `length` content octets. */
export function header(identifier: number, length: number): Bytes {
  if (length < 0x80) return Uint8Array.of(identifier, length);
  const lenBytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) lenBytes.unshift(n & 0xff);
  return Uint8Array.of(identifier, 0x80 | lenBytes.length, ...lenBytes);
}

export function tlv(identifier: number, ...content: Bytes[]): Bytes {
  let length = 0;
  for (const c of content) length += c.length;
  const h = header(identifier, length);
  const out = Buffer.allocUnsafe(h.length + length);
  out.set(h, 0);
  let p = h.length;
  for (const c of content) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}

export function sequence(...items: Bytes[]): Bytes {
  return tlv(0x30, ...items);
}

/** SET OF, sorted by encoding as DER requires. */
export function setOf(...items: Bytes[]): Bytes {
  return tlv(0x31, ...[...items].sort(compareBytes));
}

/** SET with elements in the given order (for SET of distinct types, already in tag order). */
export function set(...items: Bytes[]): Bytes {
  return tlv(0x31, ...items);
}

/** Context tags in this code base are all below 31 (the low-tag form, X.690 §8.1.2.2). */
function lowTag(n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > 30) throw new Error(`context tag [${n}] needs the high-tag form, which the writer does not produce`);
  return n;
}

/** `[n]` EXPLICIT / constructed context-specific. */
export function explicit(n: number, ...items: Bytes[]): Bytes {
  return tlv(0xa0 | lowTag(n), ...items);
}

/** `[n]` IMPLICIT primitive context-specific. */
export function implicitPrimitive(n: number, content: Bytes): Bytes {
  return tlv(0x80 | lowTag(n), content);
}

/** Re-tags an encoded element as `[n]` IMPLICIT, keeping its constructed bit. */
export function retag(encoded: Bytes, n: number): Bytes {
  const out = Buffer.from(encoded);
  out[0] = (encoded[0]! & 0x20) | 0x80 | lowTag(n);
  return out;
}

const oidCache = new Map<string, Bytes>();

export function oid(dotted: string): Bytes {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0) || arcs[0]! > 2 || (arcs[0]! < 2 && arcs[1]! >= 40)) {
    throw new Error(`bad OID ${dotted}`); // X.690 §8.19.4: the first two arcs share one subidentifier
  }
  const body: number[] = [];
  const push = (v: number) => {
    const tmp = [v & 0x7f];
    for (v = Math.floor(v / 128); v > 0; v = Math.floor(v / 128)) tmp.unshift((v & 0x7f) | 0x80);
    body.push(...tmp);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const a of arcs.slice(2)) push(a);
  const enc = tlv(Tag.oid, Uint8Array.from(body));
  oidCache.set(dotted, enc);
  return enc;
}

export function integer(value: bigint | number): Bytes {
  let v = BigInt(value);
  const bytes: number[] = [];
  if (v === 0n) bytes.push(0);
  const negative = v < 0n;
  while (v !== 0n && v !== -1n) {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  if (negative && (bytes.length === 0 || (bytes[0]! & 0x80) === 0)) bytes.unshift(0xff);
  if (!negative && (bytes[0]! & 0x80) !== 0) bytes.unshift(0);
  return tlv(Tag.integer, Uint8Array.from(bytes));
}

/** INTEGER from unsigned big-endian magnitude bytes (serial numbers). */
export function unsignedInteger(magnitude: Bytes): Bytes {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const m = magnitude.subarray(i);
  return m.length > 0 && (m[0]! & 0x80) !== 0 ? tlv(Tag.integer, Uint8Array.of(0), m) : tlv(Tag.integer, m.length ? m : Uint8Array.of(0));
}

/** INTEGER from contents octets already in two's-complement form (as read). */
export function integerFromContents(contentOctets: Bytes): Bytes {
  return tlv(Tag.integer, contentOctets);
}

export function octetString(value: Bytes): Bytes {
  return tlv(Tag.octetString, value);
}

export function bitString(value: Bytes, unusedBits = 0): Bytes {
  return tlv(Tag.bitString, Uint8Array.of(unusedBits), value);
}

/** A named-bit BIT STRING (keyUsage and friends) with trailing zero bits removed (X.690 §11.2.2). */
export function namedBits(bits: readonly number[]): Bytes {
  const max = Math.max(-1, ...bits);
  if (max < 0) return bitString(new Uint8Array(0));
  const bytes = new Uint8Array((max >> 3) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  return bitString(bytes, 7 - (max & 7));
}

export function boolean(value: boolean): Bytes {
  return tlv(Tag.boolean, Uint8Array.of(value ? 0xff : 0));
}

export function nullValue(): Bytes {
  return Uint8Array.of(Tag.null, 0);
}

export function utf8String(s: string): Bytes {
  return tlv(Tag.utf8String, Buffer.from(s, 'utf8'));
}

export function printableString(s: string): Bytes {
  return tlv(Tag.printableString, Buffer.from(s, 'latin1'));
}

export function ia5String(s: string): Bytes {
  return tlv(Tag.ia5String, Buffer.from(s, 'latin1'));
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** UTCTime for years 1950–2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5). */
export function time(date: Date): Bytes {
  const y = date.getUTCFullYear();
  const rest = `${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(Tag.utcTime, Buffer.from(`${pad(y % 100)}${rest}`, 'latin1'));
  return tlv(Tag.generalizedTime, Buffer.from(`${pad(y, 4)}${rest}`, 'latin1'));
}

export function generalizedTime(date: Date): Bytes {
  const s = `${pad(date.getUTCFullYear(), 4)}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}Z`;
  return tlv(Tag.generalizedTime, Buffer.from(s, 'latin1'));
}

export function compareBytes(a: Bytes, b: Bytes): number {
  return Buffer.compare(a, b);
}
