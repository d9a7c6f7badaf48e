/**
 * Header fields (RFC 5322 §2.2, §3.6): parsing a header block into fields that
 * keep their exact bytes, case-insensitive lookup, and formatting with
 * folding for the builders.
 *
 *   field       = field-name ":" unstructured CRLF
 *   field-name  = 1*ftext          ; printable US-ASCII except ":"
 *   folding     = CRLF followed by WSP, removed again by unfolding (§2.2.3)
 *
 * Line breaks may be CRLF or a bare LF (files saved on Unix); both are kept
 * in `raw` as received.
 */
import { CR, HT, LF, SP, malformed, sameName } from './bytes.ts';

/** One header field as received. */
export interface HeaderField {
  /** The field name as written (compare with `sameName`, case-insensitively). */
  readonly name: string;
  /**
   * The field body unfolded (RFC 5322 §2.2.3) with leading and trailing
   * whitespace removed, otherwise raw: RFC 2047 encoded-words and comments
   * are left as they are. Decoded as UTF-8 (RFC 6532 allows it in headers).
   */
  readonly value: string;
  /** The exact bytes of the field: all its folded lines and the final line break. */
  readonly raw: Uint8Array;
}

/** Limits that keep a hostile header block from costing more than its size. */
export interface HeaderLimits {
  /** Most header fields in one entity's header block. */
  readonly maxHeaderFields: number;
  /** Longest physical header line, line break included (RFC 5322 §2.1.1 says 998; senders exceed it). */
  readonly maxHeaderLineLength: number;
  /** Largest header block of one entity. */
  readonly maxHeaderBytes: number;
}

export interface HeaderBlock {
  readonly fields: HeaderField[];
  /** Offset in the block's bytes where the body starts (after the empty line, or the end when there is none). */
  readonly bodyStart: number;
}

function isWsp(c: number | undefined): boolean {
  return c === SP || c === HT;
}

/**
 * Reads the header fields at the start of `bytes` up to the empty line.
 *
 * A line that is not a header field ends the block and starts the body, as
 * in RFC 2046 parts whose generator forgot the empty line. With
 * `requireField` (a whole message, RFC 5322 §3.6) the first line must be a
 * header field, else the input is refused as not a message.
 */
export function parseHeaderBlock(bytes: Buffer, limits: HeaderLimits, requireField: boolean): HeaderBlock {
  const n = bytes.length;
  const fields: HeaderField[] = [];
  let pos = 0;
  while (pos < n) {
    const colon = fieldNameEnd(bytes, pos, limits.maxHeaderLineLength);
    if (colon < 0 && requireField && fields.length === 0) {
      throw malformed('not a MIME message: the first line is not a header field');
    }
    // The empty line that separates the header from the body (RFC 5322 §2.1).
    if (bytes[pos] === LF) return { fields, bodyStart: pos + 1 };
    if (bytes[pos] === CR && bytes[pos + 1] === LF) return { fields, bodyStart: pos + 2 };
    if (colon < 0) return { fields, bodyStart: pos };
    const fieldStart = pos;
    // The field's first line and every continuation line (starting with WSP).
    do {
      pos = nextLine(bytes, pos, limits.maxHeaderLineLength);
    } while (pos < n && isWsp(bytes[pos]));
    if (fields.length >= limits.maxHeaderFields) {
      throw malformed(`more than ${limits.maxHeaderFields} header fields`);
    }
    if (pos > limits.maxHeaderBytes) throw malformed(`header block longer than ${limits.maxHeaderBytes} bytes`);
    const raw = bytes.subarray(fieldStart, pos);
    const name = bytes.toString('latin1', fieldStart, colon).replace(/[ \t]+$/, '');
    fields.push({ name, value: unfold(bytes.toString('utf8', colon + 1, pos)), raw });
  }
  return { fields, bodyStart: n };
}

/**
 * The offset of the ":" ending a valid field name on the line at `pos`, or
 * -1 when the line is not a header field. Whitespace before the colon is
 * obsolete syntax (RFC 5322 §4.5) and accepted.
 */
function fieldNameEnd(bytes: Buffer, pos: number, maxLine: number): number {
  const end = Math.min(bytes.length, pos + maxLine);
  let i = pos;
  while (i < end) {
    const c = bytes[i]!;
    if (c === 0x3a) break;
    if (c <= SP || c >= 0x7f) break;
    i++;
  }
  if (i === pos) return -1;
  let j = i;
  while (j < end && isWsp(bytes[j])) j++;
  return bytes[j] === 0x3a ? j : -1;
}

/** The offset after the line break of the line at `pos` (or the end), enforcing the line-length limit. */
function nextLine(bytes: Buffer, pos: number, maxLine: number): number {
  // Search a bounded window so a huge body without line breaks costs only the limit.
  const window = bytes.subarray(pos, Math.min(bytes.length, pos + maxLine + 1));
  const lf = window.indexOf(LF);
  if (lf < 0) {
    if (window.length > maxLine) throw malformed(`header line longer than ${maxLine} bytes`);
    return bytes.length;
  }
  return pos + lf + 1;
}

/** Unfolding (RFC 5322 §2.2.3): remove each line break followed by WSP; trim the ends. */
export function unfold(text: string): string {
  return text.replace(/\r?\n(?=[ \t])/g, '').replace(/^[ \t]+|[ \t\r\n]+$/g, '');
}

/** The value of the first field called `name`, or undefined. */
export function getHeader(headers: readonly HeaderField[], name: string): string | undefined {
  for (const h of headers) if (sameName(h.name, name)) return h.value;
  return undefined;
}

/** The values of every field called `name`, in order. */
export function getHeaders(headers: readonly HeaderField[], name: string): string[] {
  return headers.filter((h) => sameName(h.name, name)).map((h) => h.value);
}

/** True for the Content-* fields that belong to a MIME entity rather than to the message (RFC 2045 §9). */
export function isContentField(name: string): boolean {
  return name.length > 8 && name.slice(0, 8).toLowerCase() === 'content-';
}

/** ftext (RFC 5322 §3.6.8): printable US-ASCII except ":". */
const FIELD_NAME = /^[!-9;-~]+$/;

/** Preferred line length (RFC 5322 §2.1.1); the hard limit is 998. */
const FOLD_AT = 78;

/**
 * Formats one header field, folded at whitespace so that lines stay within
 * 78 characters where the value allows it. The value must not contain line
 * breaks: they would let the value forge further header fields.
 */
export function formatHeaderField(name: string, value: string): string {
  if (!FIELD_NAME.test(name)) throw malformed(`invalid header field name ${JSON.stringify(name)}`);
  if (/[\r\n]/.test(value)) throw malformed(`header field ${name} value contains a line break`);
  // Segments each starting with the whitespace a fold may be placed before.
  const segments = value.match(/[ \t]*[^ \t]+|[ \t]+$/g) ?? [];
  let line = `${name}:`;
  let out = '';
  for (let i = 0; i < segments.length; i++) {
    let seg = segments[i]!;
    if (i === 0) seg = ` ${seg.replace(/^[ \t]+/, '')}`;
    // A fold goes before the segment's whitespace; never leave a line holding whitespace only.
    if (line.length + seg.length > FOLD_AT && /[^ \t]/.test(seg) && /^[ \t]/.test(seg) && line.length > name.length + 1) {
      out += `${line}\r\n`;
      line = seg;
    } else {
      line += seg;
    }
  }
  return `${out}${line}\r\n`;
}

/**
 * The field's bytes with CRLF line breaks (RFC 5322 §2.1). Bare CRs inside a
 * field would become line breaks under canonicalisation and forge lines, so
 * they are replaced by spaces.
 */
export function canonicalFieldBytes(field: HeaderField): Uint8Array {
  const raw = Buffer.from(field.raw.buffer, field.raw.byteOffset, field.raw.byteLength);
  let clean = true;
  for (let i = raw.indexOf(LF); i >= 0; i = raw.indexOf(LF, i + 1)) {
    if (i === 0 || raw[i - 1] !== CR) clean = false;
  }
  for (let i = raw.indexOf(CR); clean && i >= 0; i = raw.indexOf(CR, i + 1)) {
    if (raw[i + 1] !== LF) clean = false;
  }
  if (clean && raw[raw.length - 1] === LF) return raw;
  const text = raw.toString('latin1').replace(/\r?\n$/, '');
  const lines = text.split(/\r?\n/).map((l) => l.replace(/\r/g, ' '));
  return Buffer.from(`${lines.join('\r\n')}\r\n`, 'latin1');
}
