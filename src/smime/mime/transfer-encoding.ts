/**
 * Content-Transfer-Encodings (RFC 2045 §6): base64 (§6.8) and
 * quoted-printable (§6.7), encoders and decoders over bytes. Bodies may be
 * 100 MB, so base64 is encoded by Node in large chunks and decoded by a
 * table-driven loop; nothing builds a string the size of the body.
 */
import { ByteSink, CR, HT, LF, SP, asBuffer, malformed } from './bytes.ts';

/** Source bytes per base64 line: 57 bytes make 76 characters (RFC 2045 §6.8). */
const B64_LINE_IN = 57;
const B64_LINE_OUT = 76;
/** Lines encoded per native call. */
const B64_CHUNK_LINES = 16384;

/** Base64 in lines of 76 characters, each ended by CRLF (the last one too, when there is data). */
export function encodeBase64(bytes: Uint8Array): Uint8Array {
  const src = asBuffer(bytes);
  const lines = Math.ceil(src.length / B64_LINE_IN);
  const out = Buffer.allocUnsafe(Math.ceil(src.length / 3) * 4 + lines * 2);
  const chunk = B64_LINE_IN * B64_CHUNK_LINES;
  const scratch = Buffer.allocUnsafe(Math.min(out.length, (chunk / 3) * 4));
  let o = 0;
  for (let a = 0; a < src.length; a += chunk) {
    const m = scratch.write(src.toString('base64', a, Math.min(src.length, a + chunk)), 0, 'latin1');
    for (let p = 0; p < m; p += B64_LINE_OUT) {
      o += scratch.copy(out, o, p, Math.min(m, p + B64_LINE_OUT));
      out[o++] = CR;
      out[o++] = LF;
    }
  }
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

/**
 * Decodes base64, ignoring every character outside the alphabet (line
 * breaks, spaces, stray characters: RFC 2045 §6.8 says to ignore them) and
 * stopping at the first "=", which marks the end of the data. A dangling
 * single character (a truncated quantum) is dropped.
 */
export function decodeBase64(bytes: Uint8Array): Uint8Array {
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
