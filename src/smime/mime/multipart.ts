/**
 * Splitting a multipart body on its boundary (RFC 2046 §5.1.1):
 *
 *   multipart-body := [preamble CRLF] dash-boundary transport-padding CRLF
 *                     body-part *encapsulation close-delimiter
 *                     transport-padding [CRLF epilogue]
 *   encapsulation  := delimiter transport-padding CRLF body-part
 *   delimiter      := CRLF dash-boundary      ; dash-boundary := "--" boundary
 *   close-delimiter := delimiter "--"
 *
 * The CRLF before a delimiter belongs to the delimiter, not to the part: a
 * part's bytes end before it. That is exactly what multipart/signed
 * verification hashes (RFC 1847 §2.1), so the ranges here are exact.
 *
 * A delimiter line is "--boundary" at the start of a line followed only by
 * optional "--", spaces or tabs (transport padding) and the line break.
 * OpenSSL matches the boundary as a prefix of the line instead; on valid
 * input (RFC 2046 forbids a boundary that is a prefix of a line in a part)
 * both agree. Boundaries are searched with Buffer.indexOf, so the cost is
 * linear in the body.
 */
import { CR, HT, LF, SP } from './bytes.ts';

export interface Range {
  readonly start: number;
  readonly end: number;
}

export interface MultipartLayout {
  /** Before the first delimiter (its preceding line break excluded); empty when the body starts with one. */
  readonly preamble: Range;
  readonly parts: readonly Range[];
  /** After the close delimiter's line; empty when there is none. */
  readonly epilogue: Range;
  /** False when the body ended without a close delimiter (the last part then runs to the end). */
  readonly closed: boolean;
}

interface Delimiter {
  /** Offset of the "--". */
  readonly at: number;
  /** Offset after the delimiter line's line break (or the end). */
  readonly next: number;
  readonly close: boolean;
}

/** The length of the line break ending just before `at` (2 for CRLF, 1 for LF, 0 at the start). */
function breakBefore(body: Uint8Array, at: number, floor: number): number {
  if (at - 2 >= floor && body[at - 1] === LF && body[at - 2] === CR) return 2;
  if (at - 1 >= floor && body[at - 1] === LF) return 1;
  return 0;
}

/** The delimiter starting at `at` (a line start holding "--boundary"), or undefined when the line is not one. */
function delimiterAt(body: Buffer, at: number, dashLength: number): Delimiter | undefined {
  const n = body.length;
  let j = at + dashLength;
  const close = body[j] === 0x2d && body[j + 1] === 0x2d;
  if (close) j += 2;
  while (j < n && (body[j] === SP || body[j] === HT)) j++;
  if (j === n) return { at, next: n, close };
  if (body[j] === LF) return { at, next: j + 1, close };
  if (body[j] === CR && (j + 1 === n || body[j + 1] === LF)) return { at, next: Math.min(n, j + 2), close };
  return undefined;
}

/** The next delimiter at or after `from`, or undefined. */
function findDelimiter(body: Buffer, dash: Buffer, from: number): Delimiter | undefined {
  for (let i = body.indexOf(dash, from); i >= 0; i = body.indexOf(dash, i + 1)) {
    if (i > 0 && body[i - 1] !== LF) continue;
    const d = delimiterAt(body, i, dash.length);
    if (d) return d;
  }
  return undefined;
}

/** Splits a multipart body; `onPart` is called per part so callers can enforce a part limit early. */
export function splitMultipart(body: Buffer, boundary: string, onPart: () => void): MultipartLayout {
  const dash = Buffer.from(`--${boundary}`, 'utf8');
  const first = findDelimiter(body, dash, 0);
  if (!first) {
    return { preamble: { start: 0, end: body.length }, parts: [], epilogue: { start: body.length, end: body.length }, closed: false };
  }
  const preamble = { start: 0, end: first.at - breakBefore(body, first.at, 0) };
  const parts: Range[] = [];
  let d = first;
  while (!d.close) {
    const start = d.next;
    const next = findDelimiter(body, dash, start);
    onPart();
    if (!next) {
      parts.push({ start, end: body.length });
      return { preamble, parts, epilogue: { start: body.length, end: body.length }, closed: false };
    }
    parts.push({ start, end: next.at - breakBefore(body, next.at, start) });
    d = next;
  }
  return { preamble, parts, epilogue: { start: d.next, end: body.length }, closed: true };
}

/**
 * True when some line of `bytes` starts with "--boundary" (whatever follows):
 * the stricter test, matching prefix-matching parsers such as OpenSSL's, that
 * a builder must pass before using a boundary around these bytes.
 */
export function hasBoundaryLine(bytes: Uint8Array, boundary: string): boolean {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dash = Buffer.from(`--${boundary}`, 'utf8');
  for (let i = buf.indexOf(dash); i >= 0; i = buf.indexOf(dash, i + 1)) {
    if (i === 0 || buf[i - 1] === LF || buf[i - 1] === CR) return true;
  }
  return false;
}
