/**
 * Content-Transfer-Encodings (RFC 2045 §6): base64 (§6.8) and
 * quoted-printable (§6.7), encoders and decoders over bytes. Bodies may be
 * 100 MB, so base64 is encoded and decoded by Node's native code in slices
 * of about 1 MB, straight into the output where the caller allows; nothing
 * builds a string the size of the body.
 */
import { ByteSink, CR, HT, LF, SP, asBuffer, malformed } from './bytes.ts';

/** Source bytes per base64 line: 57 bytes make 76 characters (RFC 2045 §6.8). */
const B64_LINE_IN = 57;
const B64_LINE_OUT = 76;
/**
 * Source bytes encoded per native call: whole lines, 76 KB of base64.
 * Strings under 128 KB live in V8's young generation, which is collected
 * within microseconds; larger ones would wait for a full collection, and
 * 100 MB of them would briefly hold 100 MB more (measured).
 */
const B64_CHUNK_IN = B64_LINE_IN * 1024;

/** The length of encodeBase64's output for `n` input bytes. */
export function base64EncodedLength(n: number): number {
  return Math.ceil(n / 3) * 4 + 2 * Math.ceil(n / B64_LINE_IN);
}

/**
 * Encodes whole 57-byte lines of `src[start, end)` (the last line may be
 * short) into `out` at `offset`, each line ended by CRLF; returns the new
 * offset. Node encodes a chunk into its final place, then the lines are
 * spread out from the last one back, each moved once (copyWithin), so no
 * intermediate copy of the chunk exists.
 */
function encodeLines(src: Buffer, start: number, end: number, out: Buffer, offset: number): number {
  let o = offset;
  for (let a = start; a < end; a += B64_CHUNK_IN) {
    const b = Math.min(end, a + B64_CHUNK_IN);
    const m = out.write(src.toString('base64', a, b), o, 'latin1');
    const lines = Math.ceil(m / B64_LINE_OUT);
    for (let k = lines - 1; k >= 0; k--) {
      const from = o + B64_LINE_OUT * k;
      const to = o + (B64_LINE_OUT + 2) * k;
      const len = Math.min(B64_LINE_OUT, o + m - from);
      if (k > 0) out.copyWithin(to, from, from + len);
      out[to + len] = CR;
      out[to + len + 1] = LF;
    }
    o += m + 2 * lines;
  }
  return o;
}

/** Small pieces are gathered up to this many bytes (whole lines) before one native call encodes them. */
const PENDING_CAP = B64_LINE_IN * 64;

/**
 * Base64 in 76-character lines written straight into a buffer the caller
 * sized with base64EncodedLength, from input given in pieces of any size.
 * Small pieces (DER headers) are gathered and encoded together; large ones
 * are encoded in place, but for up to 56 bytes held back to keep lines whole.
 */
export class Base64LineWriter {
  private readonly out: Buffer;
  private o: number;
  private readonly pending = Buffer.allocUnsafe(PENDING_CAP);
  private pendingLength = 0;

  constructor(out: Uint8Array, offset: number) {
    this.out = asBuffer(out);
    this.o = offset;
  }

  write(bytes: Uint8Array): void {
    const src = asBuffer(bytes);
    let i = 0;
    if (this.pendingLength > 0 || src.length < PENDING_CAP) {
      i = Math.min(src.length, PENDING_CAP - this.pendingLength);
      this.pendingLength += src.copy(this.pending, this.pendingLength, 0, i);
      if (this.pendingLength < PENDING_CAP) return;
      this.o = encodeLines(this.pending, 0, PENDING_CAP, this.out, this.o);
      this.pendingLength = 0;
    }
    const whole = i + Math.floor((src.length - i) / B64_LINE_IN) * B64_LINE_IN;
    if (whole > i) this.o = encodeLines(src, i, whole, this.out, this.o);
    this.pendingLength = src.copy(this.pending, 0, whole, src.length);
  }

  /** Writes what is held back, the last line short; returns the offset after the output. */
  end(): number {
    if (this.pendingLength > 0) this.o = encodeLines(this.pending, 0, this.pendingLength, this.out, this.o);
    this.pendingLength = 0;
    return this.o;
  }
}

/** Base64 in lines of 76 characters, each ended by CRLF (the last one too, when there is data). */
export function encodeBase64(bytes: Uint8Array): Uint8Array {
  const src = asBuffer(bytes);
  const out = Buffer.allocUnsafe(base64EncodedLength(src.length));
  encodeLines(src, 0, src.length, out, 0);
  return out;
}

/** 0..63 for the base64 alphabet, PAD for "=", SKIP for everything else. */
const PAD = 0x40;
const SKIP = 0x80;
const B64 = new Uint8Array(256).fill(SKIP);
'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('').forEach((c, i) => {
  B64[c.charCodeAt(0)] = i;
});
B64[0x3d] = PAD;

/** Bytes decoded per native call when decoding a whole body (1 MB). */
const B64_SLICE_OUT = 1 << 20;
/** Base64 characters per native call: young-generation strings (see B64_CHUNK_IN). */
const B64_SLICE_CHARS = 96 * 1024;

/**
 * Decodes base64 incrementally, with the semantics of decodeBase64Reference
 * (below): characters outside the alphabet are ignored (RFC 2045 §6.8), the
 * first "=" ends the data, a dangling single character is dropped.
 *
 * Node's decoder does the work, a slice of 96 KB at a time, so no string
 * or buffer the size of the whole body exists. Node's decoder has those
 * semantics too (a property test holds it to the table-driven reference;
 * it is some ten times faster), except that it also accepts the URL-safe "-" and "_", which
 * RFC 2045 does not have: input with either (before the "=") is decoded by
 * the reference instead.
 *
 * A slice may end inside a 4-character quantum. How many characters it had
 * modulo 4 follows from the output length modulo 3, except that 0 and 1
 * (a dangling character) give the same: then the last quantum is encoded
 * again and compared with the slice's last four characters, which match
 * for a whole quantum and, for a dangling one, only when the last five
 * characters are all equal — and that case is settled by counting.
 */
export class Base64Reader {
  private readonly src: Buffer;
  /** Where the data ends: the first "=" or the end of the input. */
  private readonly limit: number;
  private pos: number;
  /** Alphabet characters (0–3) of a quantum cut by the previous slice. */
  private carry = '';
  /** The whole output when the reference decoder had to be used. */
  private readonly decoded: Buffer | undefined;

  constructor(bytes: Uint8Array) {
    this.src = asBuffer(bytes);
    const eq = this.src.indexOf(0x3d);
    this.limit = eq < 0 ? this.src.length : eq;
    this.pos = 0;
    const dash = this.src.indexOf(0x2d);
    const underscore = this.src.indexOf(0x5f);
    if ((dash >= 0 && dash < this.limit) || (underscore >= 0 && underscore < this.limit)) this.decoded = decodeBase64Reference(this.src);
  }

  /** True when the URL-safe characters send everything through the reference decoder. */
  get referenceOnly(): boolean {
    return this.decoded !== undefined;
  }

  /** An upper bound of the bytes still to come. */
  get remainingBound(): number {
    if (this.decoded) return this.decoded.length - this.pos;
    return Math.floor(((this.limit - this.pos + this.carry.length) * 3) / 4);
  }

  /** Where the reader is, to come back to with `reset`. */
  mark(): { readonly pos: number; readonly carry: string } {
    return { pos: this.pos, carry: this.carry };
  }

  reset(mark: { readonly pos: number; readonly carry: string }): void {
    this.pos = mark.pos;
    this.carry = mark.carry;
  }

  /**
   * Decodes the next bytes into `out` at `offset`, at most about `max`
   * (out needs room for `max` + 3); returns how many, 0 at the end.
   */
  read(out: Buffer, offset: number, max: number): number {
    if (this.decoded) {
      const n = this.decoded.copy(out, offset, this.pos, Math.min(this.decoded.length, this.pos + max));
      this.pos += n;
      return n;
    }
    while (this.pos < this.limit) {
      const end = Math.min(this.limit, this.pos + Math.max(4, Math.min(B64_SLICE_CHARS, Math.floor(max / 3) * 4) - this.carry.length));
      const s = this.carry + this.src.toString('latin1', this.pos, end);
      this.pos = end;
      let written = out.write(s, offset, 'base64');
      if (end === this.limit) {
        this.carry = '';
        return written;
      }
      const k = this.cutQuantum(s, out, offset, written);
      written -= k === 0 ? 0 : k - 1;
      if (written > 0) return written;
    }
    const last = this.carry;
    this.carry = '';
    return last.length > 1 ? out.write(last, offset, 'base64') : 0;
  }

  /** How many alphabet characters (0–3) at the end of `s` are a cut quantum; keeps them as the carry. */
  private cutQuantum(s: string, out: Buffer, offset: number, written: number): number {
    const r = written % 3;
    let k = r === 0 ? 0 : r + 1;
    // The last five alphabet characters, from the end.
    const last: number[] = [];
    for (let i = s.length - 1; i >= 0 && last.length < 5; i--) {
      const c = s.charCodeAt(i);
      if (c < 256 && B64[c]! < PAD) last.push(c);
    }
    if (r === 0 && last.length > 0) {
      const allEqual = last.length === 5 && last.every((c) => c === last[0]);
      if (written >= 3 && !allEqual) {
        const quantum = out.toString('base64', offset + written - 3, offset + written);
        const tail = String.fromCharCode(last[3] ?? 0, last[2] ?? 0, last[1] ?? 0, last[0]!);
        k = quantum === tail ? 0 : 1;
      } else {
        let v = 0;
        for (let i = 0; i < s.length; i++) {
          const c = s.charCodeAt(i);
          if (c < 256 && B64[c]! < PAD) v++;
        }
        k = v % 4;
      }
    }
    this.carry = String.fromCharCode(...last.slice(0, k).reverse());
    return k;
  }
}

/**
 * The reference decoder, a table-driven loop: decodes base64, ignoring
 * every character outside the alphabet (line breaks, spaces, stray
 * characters: RFC 2045 §6.8 says to ignore them) and stopping at the first
 * "=", which marks the end of the data. A dangling single character (a
 * truncated quantum) is dropped. It defines what decodeBase64 does, and
 * decodes the rare input Node's decoder would read differently.
 */
export function decodeBase64Reference(bytes: Uint8Array): Buffer {
  const src = bytes;
  const n = src.length;
  const out = Buffer.allocUnsafe(Math.floor((n * 3) / 4) + 3);
  let o = 0;
  let i = 0;
  let acc = 0;
  let k = 0;
  while (i < n) {
    if (k === 0) {
      // Fast path: four alphabet characters in a row.
      while (i + 4 <= n) {
        const a = B64[src[i]!]!;
        const b = B64[src[i + 1]!]!;
        const c = B64[src[i + 2]!]!;
        const d = B64[src[i + 3]!]!;
        if ((a | b | c | d) >= PAD) break;
        out[o] = (a << 2) | (b >> 4);
        out[o + 1] = ((b & 15) << 4) | (c >> 2);
        out[o + 2] = ((c & 3) << 6) | d;
        o += 3;
        i += 4;
      }
      if (i >= n) break;
    }
    const v = B64[src[i++]!]!;
    if (v === PAD) break;
    if (v === SKIP) continue;
    acc = (acc << 6) | v;
    if (++k === 4) {
      out[o++] = (acc >> 16) & 255;
      out[o++] = (acc >> 8) & 255;
      out[o++] = acc & 255;
      acc = 0;
      k = 0;
    }
  }
  if (k === 2) out[o++] = (acc >> 4) & 255;
  else if (k === 3) {
    out[o++] = (acc >> 10) & 255;
    out[o++] = (acc >> 2) & 255;
  }
  return out.subarray(0, o);
}

/**
 * Decodes base64 (RFC 2045 §6.8) with the semantics of
 * decodeBase64Reference, by Node's native decoder (see Base64Reader).
 */
export function decodeBase64(bytes: Uint8Array): Uint8Array {
  const src = asBuffer(bytes);
  const reader = new Base64Reader(src);
  const bound = reader.remainingBound;
  if (bound <= B64_SLICE_OUT && !reader.referenceOnly) {
    // One slice: one native call, no carry.
    const eq = src.indexOf(0x3d);
    return Buffer.from(src.toString('latin1', 0, eq < 0 ? src.length : eq), 'base64');
  }
  const out = Buffer.allocUnsafe(bound + 3);
  let o = 0;
  for (let n; (n = reader.read(out, o, Math.min(B64_SLICE_OUT, out.length - 3 - o))) > 0; ) o += n;
  return o < out.length * 0.75 ? Buffer.from(out.subarray(0, o)) : out.subarray(0, o);
}

const HEX = Buffer.from('0123456789ABCDEF', 'latin1');
/** 1 for the bytes quoted-printable writes as themselves: "!" to "~" except "=" (rule 2). */
const QP_LITERAL = new Uint8Array(256);
for (let c = 33; c <= 126; c++) if (c !== 0x3d) QP_LITERAL[c] = 1;
/** Encoded line length limit, soft-break "=" included (RFC 2045 §6.7 rule 5). */
const QP_LINE = 76;

/**
 * Quoted-printable (RFC 2045 §6.7) for text: CRLF pairs are hard line
 * breaks; bare CR and LF, "=", controls and 8-bit bytes are =XX; a space or
 * tab before a line break or the end is encoded (rule 3); lines are at most
 * 76 characters. "From " at the start of a line is written "=46rom " so that
 * mbox delivery cannot alter signed text. Give it canonical (CRLF) text.
 */
export function encodeQuotedPrintable(bytes: Uint8Array): Uint8Array {
  const src = bytes;
  const n = src.length;
  let out = Buffer.allocUnsafe(n + (n >> 3) + 16);
  let o = 0;
  let line = 0;
  const endsLine = (j: number): boolean => j >= n || (src[j] === CR && src[j + 1] === LF);
  const isFrom = (i: number): boolean =>
    src[i] === 0x46 && src[i + 1] === 0x72 && src[i + 2] === 0x6f && src[i + 3] === 0x6d && src[i + 4] === SP;
  for (let i = 0; i < n; i++) {
    // At most a soft break and one escape per input byte.
    if (o + 6 > out.length) {
      const next = Buffer.allocUnsafe(out.length * 2);
      out.copy(next, 0, 0, o);
      out = next;
    }
    const c = src[i]!;
    if (c === CR && src[i + 1] === LF) {
      out[o++] = CR;
      out[o++] = LF;
      line = 0;
      i++;
      continue;
    }
    let literal = QP_LITERAL[c] === 1 || ((c === SP || c === HT) && !endsLine(i + 1));
    if (literal && line === 0 && c === 0x46 && isFrom(i)) literal = false;
    let len = literal ? 1 : 3;
    // Soft break unless this character still fits and ends the line anyway.
    if (line + len > QP_LINE - 1 && !(line + len <= QP_LINE && endsLine(i + 1))) {
      out[o++] = 0x3d;
      out[o++] = CR;
      out[o++] = LF;
      line = 0;
      if (literal && c === 0x46 && isFrom(i)) {
        literal = false;
        len = 3;
      }
    }
    if (literal) {
      out[o++] = c;
    } else {
      out[o++] = 0x3d;
      out[o++] = HEX[c >> 4]!;
      out[o++] = HEX[c & 15]!;
    }
    line += len;
  }
  return o < out.length * 0.75 ? Buffer.from(out.subarray(0, o)) : out.subarray(0, o);
}

function hexValue(c: number | undefined): number {
  if (c === undefined) return -1;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Decodes quoted-printable (RFC 2045 §6.7): =XX escapes (either case),
 * soft line breaks ("=" at the end of a line), trailing whitespace removed
 * from every line (rule 3: transport may add it). Hard line breaks, CRLF or
 * bare LF, come out as CRLF. A "=" not followed by two hex digits is kept
 * literally, as the RFC suggests for robustness.
 */
export function decodeQuotedPrintable(bytes: Uint8Array): Uint8Array {
  const src = asBuffer(bytes);
  const n = src.length;
  const sink = new ByteSink(n + 16);
  let s = 0;
  let nextEq = src.indexOf(0x3d);
  while (s < n) {
    const lf = src.indexOf(LF, s);
    const lineEnd = lf < 0 ? n : lf;
    let e = lineEnd;
    if (e > s && src[e - 1] === CR) e--;
    while (e > s && (src[e - 1] === SP || src[e - 1] === HT)) e--;
    const soft = e > s && src[e - 1] === 0x3d;
    if (soft) e--;
    // Copy runs between escapes natively. The next "=" is remembered across
    // lines: searching again from every line would rescan the rest of the body.
    let p = s;
    while (p < e) {
      if (nextEq >= 0 && nextEq < p) nextEq = src.indexOf(0x3d, p);
      const eq = nextEq < 0 || nextEq >= e ? e : nextEq;
      sink.append(src, p, eq);
      if (eq >= e) break;
      const hi = hexValue(src[eq + 1]);
      const lo = hexValue(src[eq + 2]);
      const buf = sink.reserve(1);
      if (eq + 2 < e && hi >= 0 && lo >= 0) {
        buf[sink.length++] = (hi << 4) | lo;
        p = eq + 3;
      } else {
        buf[sink.length++] = 0x3d;
        p = eq + 1;
      }
    }
    if (lf < 0) break;
    if (!soft) {
      const buf = sink.reserve(2);
      buf[sink.length++] = CR;
      buf[sink.length++] = LF;
    }
    s = lf + 1;
  }
  return sink.result();
}

/** The transfer encodings whose bodies are already plain bytes. */
export const IDENTITY_ENCODINGS: ReadonlySet<string> = new Set(['7bit', '8bit', 'binary']);

/** The decoded body for a Content-Transfer-Encoding (lower-cased, as in MimeEntity). */
export function decodeTransferEncoding(body: Uint8Array, transferEncoding: string): Uint8Array {
  if (transferEncoding === 'base64') return decodeBase64(body);
  if (transferEncoding === 'quoted-printable') return decodeQuotedPrintable(body);
  if (IDENTITY_ENCODINGS.has(transferEncoding)) return body;
  throw malformed(`unsupported Content-Transfer-Encoding ${JSON.stringify(transferEncoding)}`);
}
