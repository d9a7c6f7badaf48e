/**
 * A zero-copy BER/DER reader (X.690). Every decoded element is a `Tlv`: a set
 * of offsets into the bytes it was read from, so callers can verify
 * signatures over the exact bytes received (REFERENCE.md pitfall 3) and hash
 * or decrypt large contents without copying them.
 *
 * BER is accepted everywhere (indefinite lengths, constructed strings), since
 * Outlook and OpenSSL emit it; limits on depth and length keep hostile input
 * from costing more than its own size.
 */
import { KeyfleetError } from '../errors.ts';

export const TagClass = { universal: 0, application: 1, context: 2, private: 3 } as const;
export type TagClass = (typeof TagClass)[keyof typeof TagClass];

/** Universal tag numbers used in this code base. */
export const Tag = {
  boolean: 1,
  integer: 2,
  bitString: 3,
  octetString: 4,
  null: 5,
  oid: 6,
  enumerated: 10,
  utf8String: 12,
  sequence: 16,
  set: 17,
  numericString: 18,
  printableString: 19,
  teletexString: 20,
  ia5String: 22,
  utcTime: 23,
  generalizedTime: 24,
  visibleString: 26,
  universalString: 28,
  bmpString: 30,
} as const;

export interface Tlv {
  readonly bytes: Uint8Array;
  readonly cls: TagClass;
  readonly constructed: boolean;
  readonly tag: number;
  /** Offset of the identifier octet. */
  readonly start: number;
  readonly contentStart: number;
  /** End of the contents (before the end-of-contents octets when indefinite). */
  readonly contentEnd: number;
  /** End of the whole element, end-of-contents octets included. */
  readonly end: number;
  readonly indefinite: boolean;
}

/** Nesting deeper than this is refused: no real PKI structure comes close. */
export const MAX_DEPTH = 64;

function malformed(message: string): KeyfleetError {
  return new KeyfleetError('KF_ASN1_MALFORMED', message);
}

/**
 * Reads the element starting at `offset`, which must end by `limit`.
 * For an indefinite length the children are walked to find the end.
 */
export function readTlv(bytes: Uint8Array, offset = 0, limit = bytes.length, depth = 0): Tlv {
  if (depth > MAX_DEPTH) throw new KeyfleetError('KF_ASN1_LIMIT', 'ASN.1 nesting too deep');
  let p = offset;
  if (p >= limit) throw malformed('unexpected end of data (tag)');
  const id = bytes[p++]!;
  const cls = (id >> 6) as TagClass;
  const constructed = (id & 0x20) !== 0;
  let tag = id & 0x1f;
  if (tag === 0x1f) {
    tag = 0;
    for (let n = 0; ; n++) {
      if (p >= limit) throw malformed('unexpected end of data (high tag)');
      if (n >= 4) throw new KeyfleetError('KF_ASN1_LIMIT', 'tag number too large');
      const b = bytes[p++]!;
      tag = tag * 128 + (b & 0x7f);
      if ((b & 0x80) === 0) break;
    }
  }
  if (p >= limit) throw malformed('unexpected end of data (length)');
  const first = bytes[p++]!;
  if (first === 0x80) {
    if (!constructed) throw malformed('indefinite length on a primitive element');
    const contentStart = p;
    for (;;) {
      if (p + 2 <= limit && bytes[p] === 0 && bytes[p + 1] === 0) {
        return { bytes, cls, constructed, tag, start: offset, contentStart, contentEnd: p, end: p + 2, indefinite: true };
      }
      p = readTlv(bytes, p, limit, depth + 1).end;
    }
  }
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const n = first & 0x7f;
    // Six octets already exceed any buffer we accept; refuse before reading.
    if (n > 6) throw new KeyfleetError('KF_ASN1_LIMIT', 'length field too large');
    if (p + n > limit) throw malformed('unexpected end of data (long length)');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + bytes[p++]!;
  }
  const contentEnd = p + length;
  if (contentEnd > limit) throw malformed(`element length ${length} exceeds the data available`);
  return { bytes, cls, constructed, tag, start: offset, contentStart: p, contentEnd, end: contentEnd, indefinite: false };
}

/** Parses exactly one element filling all of `bytes`. */
export function parse(bytes: Uint8Array): Tlv {
  const tlv = readTlv(bytes);
  if (tlv.end !== bytes.length) throw malformed('trailing data after ASN.1 element');
  return tlv;
}

/** The whole encoding of an element, as received (a view, not a copy). */
export function raw(tlv: Tlv): Uint8Array {
  return tlv.bytes.subarray(tlv.start, tlv.end);
}

/** The contents octets (a view). For constructed BER strings see `octets`. */
export function contents(tlv: Tlv): Uint8Array {
  return tlv.bytes.subarray(tlv.contentStart, tlv.contentEnd);
}

/** The direct children of a constructed element. */
export function children(tlv: Tlv): Tlv[] {
  if (!tlv.constructed) throw malformed('expected a constructed element');
  const out: Tlv[] = [];
  for (let p = tlv.contentStart; p < tlv.contentEnd; ) {
    const child = readTlv(tlv.bytes, p, tlv.contentEnd);
    out.push(child);
    p = child.end;
  }
  return out;
}

export function is(tlv: Tlv, cls: TagClass, tag: number): boolean {
  return tlv.cls === cls && tlv.tag === tag;
}

export function isUniversal(tlv: Tlv, tag: number): boolean {
  return tlv.cls === 0 && tlv.tag === tag;
}

export function isContext(tlv: Tlv, tag: number): boolean {
  return tlv.cls === 2 && tlv.tag === tag;
}

export function expectUniversal(tlv: Tlv, tag: number, what: string): Tlv {
  if (tlv.cls !== 0 || tlv.tag !== tag) throw malformed(`${what}: unexpected tag [${tlv.cls}:${tlv.tag}]`);
  return tlv;
}

/**
 * Walks the children of a SEQUENCE in order, for decoders of structures
 * with OPTIONAL and context-tagged fields.
 */
export class SequenceReader {
  private readonly items: Tlv[];
  private readonly what: string;
  private index = 0;

  constructor(tlv: Tlv, what: string) {
    this.what = what;
    if (!tlv.constructed) throw malformed(`${what}: expected a constructed element`);
    this.items = children(tlv);
  }

  /** The next element, which must exist (and have the universal tag, when given). */
  next(tag?: number): Tlv {
    const item = this.items[this.index++];
    if (item === undefined) throw malformed(`${this.what}: missing element`);
    if (tag !== undefined && (item.cls !== 0 || item.tag !== tag)) {
      throw malformed(`${this.what}: unexpected tag [${item.cls}:${item.tag}], expected ${tag}`);
    }
    return item;
  }

  /** The next element if it is context-specific `[tag]`, else undefined. */
  optionalContext(tag: number): Tlv | undefined {
    const item = this.items[this.index];
    if (item !== undefined && item.cls === 2 && item.tag === tag) {
      this.index++;
      return item;
    }
    return undefined;
  }

  /** The next element if it has universal tag `tag`, else undefined. */
  optional(tag: number): Tlv | undefined {
    const item = this.items[this.index];
    if (item !== undefined && item.cls === 0 && item.tag === tag) {
      this.index++;
      return item;
    }
    return undefined;
  }

  peek(): Tlv | undefined {
    return this.items[this.index];
  }

  hasMore(): boolean {
    return this.index < this.items.length;
  }

  /** Asserts that no elements remain (extension markers are ignored by callers that skip). */
  end(): void {
    if (this.index < this.items.length) throw malformed(`${this.what}: unexpected trailing element`);
  }

  rest(): Tlv[] {
    const r = this.items.slice(this.index);
    this.index = this.items.length;
    return r;
  }
}

// ---------------------------------------------------------------- primitives

const oidCache = new Map<string, string>();

export function readOid(tlv: Tlv): string {
  if (tlv.constructed || tlv.cls !== 0 || tlv.tag !== Tag.oid) throw malformed('expected an OBJECT IDENTIFIER');
  const c = contents(tlv);
  if (c.length === 0 || c.length > 64) throw malformed('OBJECT IDENTIFIER of bad length');
  const key = Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString('latin1');
  const cached = oidCache.get(key);
  if (cached !== undefined) return cached;
  const arcs: number[] = [];
  let value = 0;
  for (let i = 0; i < c.length; i++) {
    const b = c[i]!;
    if (value === 0 && b === 0x80) throw malformed('OBJECT IDENTIFIER arc with leading 0x80');
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw malformed('OBJECT IDENTIFIER arc too large');
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2;
        arcs.push(first, value - first * 40);
      } else {
        arcs.push(value);
      }
      value = 0;
    } else if (i === c.length - 1) {
      throw malformed('OBJECT IDENTIFIER truncated');
    }
  }
  const oid = arcs.join('.');
  if (oidCache.size < 4096) oidCache.set(key, oid);
  return oid;
}

/** INTEGER as a bigint (two's complement). */
export function readBigInt(tlv: Tlv): bigint {
  const c = integerContents(tlv);
  let v = 0n;
  for (const b of c) v = (v << 8n) | BigInt(b);
  if (c[0]! & 0x80) v -= 1n << BigInt(c.length * 8);
  return v;
}

/** A small INTEGER as a number (refuses values outside the safe range). */
export function readSmallInt(tlv: Tlv): number {
  const v = readBigInt(tlv);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw malformed('INTEGER too large');
  return Number(v);
}

/** The contents octets of an INTEGER (as encoded: serial numbers are compared bytewise). */
export function integerContents(tlv: Tlv): Uint8Array {
  if (tlv.constructed || tlv.cls !== 0 || (tlv.tag !== Tag.integer && tlv.tag !== Tag.enumerated)) {
    throw malformed('expected an INTEGER');
  }
  const c = contents(tlv);
  if (c.length === 0) throw malformed('empty INTEGER');
  return c;
}

export function readBoolean(tlv: Tlv): boolean {
  if (tlv.constructed || !isUniversal(tlv, Tag.boolean) || tlv.contentEnd - tlv.contentStart !== 1) {
    throw malformed('expected a BOOLEAN');
  }
  return tlv.bytes[tlv.contentStart] !== 0;
}

/**
 * The value of an OCTET STRING (or an implicitly tagged one), as the list of
 * its segments: one for a primitive encoding, several for a constructed BER
 * one. No bytes are copied.
 */
export function octetSegments(tlv: Tlv, depth = 0): Uint8Array[] {
  if (!tlv.constructed) return [contents(tlv)];
  if (depth > 8) throw new KeyfleetError('KF_ASN1_LIMIT', 'constructed string nested too deep');
  const out: Uint8Array[] = [];
  for (const child of children(tlv)) {
    if (child.cls !== 0 || child.tag !== Tag.octetString) throw malformed('constructed OCTET STRING has a non-string segment');
    for (const s of octetSegments(child, depth + 1)) out.push(s);
  }
  return out;
}

/** The value of an OCTET STRING as one array (a view when primitive, else a copy). */
export function readOctets(tlv: Tlv): Uint8Array {
  const segments = octetSegments(tlv);
  return segments.length === 1 ? segments[0]! : Buffer.concat(segments);
}

export interface BitString {
  readonly unusedBits: number;
  readonly bytes: Uint8Array;
}

export function readBitString(tlv: Tlv): BitString {
  if (tlv.constructed) throw malformed('constructed BIT STRING is not supported');
  const c = contents(tlv);
  if (c.length === 0 || c[0]! > 7 || (c.length === 1 && c[0] !== 0)) throw malformed('bad BIT STRING');
  return { unusedBits: c[0]!, bytes: c.subarray(1) };
}

/** Bit `n` (0 = most significant of the first octet) of a named-bit BIT STRING. */
export function bit(bits: BitString, n: number): boolean {
  const byte = bits.bytes[n >> 3];
  return byte !== undefined && (byte & (0x80 >> (n & 7))) !== 0;
}

export function readString(tlv: Tlv): string {
  if (tlv.cls !== 0) throw malformed('expected a character string');
  const c = tlv.constructed ? readOctets(tlv) : contents(tlv);
  const b = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
  switch (tlv.tag) {
    case Tag.utf8String:
      return b.toString('utf8');
    case Tag.printableString:
    case Tag.ia5String:
    case Tag.numericString:
    case Tag.visibleString:
    case Tag.teletexString:
      return b.toString('latin1');
    case Tag.bmpString: {
      if (b.length % 2) throw malformed('odd-length BMPString');
      return Buffer.from(b).swap16().toString('utf16le');
    }
    case Tag.universalString: {
      if (b.length % 4) throw malformed('bad UniversalString');
      let s = '';
      for (let i = 0; i < b.length; i += 4) s += String.fromCodePoint(b.readUInt32BE(i));
      return s;
    }
    default:
      throw malformed(`unexpected string tag ${tlv.tag}`);
  }
}

/** UTCTime or GeneralizedTime (RFC 5280 §4.1.2.5 forms, plus fractional seconds and offsets). */
export function readTime(tlv: Tlv): Date {
  if (tlv.cls !== 0 || (tlv.tag !== Tag.utcTime && tlv.tag !== Tag.generalizedTime)) throw malformed('expected a time');
  const s = Buffer.from(contents(tlv)).toString('latin1');
  const m =
    tlv.tag === Tag.utcTime
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(Z|[+-]\d{4})$/.exec(s)
      : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})?(\d{2})?(?:[.,](\d{1,9}))?(Z|[+-]\d{4})?$/.exec(s);
  if (!m) throw malformed(`bad time value`);
  let year = Number(m[1]);
  if (tlv.tag === Tag.utcTime) year += year >= 50 ? 1900 : 2000;
  const frac = tlv.tag === Tag.generalizedTime ? m[7] : undefined;
  const zone = tlv.tag === Tag.generalizedTime ? m[8] : m[7];
  const [month, day, hour, minute, second] = [Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5] ?? 0), Number(m[6] ?? 0)];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) throw malformed('time field out of range');
  // Date.UTC maps years 0–99 to 1900–1999; setUTCFullYear does not.
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  if (date.getUTCDate() !== day) throw malformed('time field out of range');
  let ms = date.getTime();
  if (frac) ms += Math.floor(Number(`0.${frac}`) * 1000);
  if (zone && zone !== 'Z') {
    const sign = zone[0] === '+' ? 1 : -1;
    ms -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5))) * 60_000;
  }
  return new Date(ms);
}

export function isNull(tlv: Tlv | undefined): boolean {
  return tlv !== undefined && isUniversal(tlv, Tag.null) && tlv.contentEnd === tlv.contentStart;
}
