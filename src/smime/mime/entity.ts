/**
 * MIME entities (RFC 2045 §2.4, RFC 5322 §2.1): a header block, an empty
 * line, a body; multiparts (RFC 2046 §5.1) split into parts that are
 * entities themselves. Every entity keeps the exact bytes it was read from
 * as views into the input (no copies), because S/MIME verifies signatures
 * over the bytes as received (REFERENCE.md pitfall 3).
 */
import type { Range } from './multipart.ts';
import { asBuffer, malformed } from './bytes.ts';
import { type HeaderField, type HeaderLimits, getHeader, parseHeaderBlock } from './headers.ts';
import { splitMultipart } from './multipart.ts';
import { type ContentType, parseContentType } from './params.ts';

export interface ParseLimits extends HeaderLimits {
  /** Deepest multipart nesting. */
  readonly maxDepth: number;
  /** Most body parts in the whole message. */
  readonly maxParts: number;
  /** Most header fields in the whole message: each costs an object, so this bounds memory per input byte. */
  readonly maxTotalHeaderFields: number;
}

export const defaultParseLimits: ParseLimits = {
  maxHeaderFields: 1000,
  maxHeaderLineLength: 64 * 1024,
  maxHeaderBytes: 1024 * 1024,
  maxDepth: 32,
  maxParts: 10_000,
  maxTotalHeaderFields: 100_000,
};

export interface MultipartInfo {
  /** The boundary parameter, decoded. */
  readonly boundary: string;
  /** Bytes before the first delimiter (ignored by readers, RFC 2046 §5.1.1). */
  readonly preamble: Uint8Array;
  /** Bytes after the close delimiter's line. */
  readonly epilogue: Uint8Array;
  /** False when the close delimiter is missing (the last part then runs to the end). */
  readonly closed: boolean;
}

export interface MimeEntity {
  /** The whole entity, headers and body: a view into the parsed input. */
  readonly raw: Uint8Array;
  /** Offset of `raw` in the bytes given to parseEntity. */
  readonly start: number;
  /** Offset of `body` in the bytes given to parseEntity. */
  readonly bodyStart: number;
  /** End offset (exclusive) of `raw` and `body` in the bytes given to parseEntity. */
  readonly end: number;
  readonly headers: readonly HeaderField[];
  /** The body as transmitted (still transfer-encoded): a view. */
  readonly body: Uint8Array;
  /** The Content-Type, or the default (RFC 2045 §5.2, RFC 2046 §5.1.5) when absent or unparseable. */
  readonly contentType: ContentType;
  /** Content-Transfer-Encoding lower-cased, "7bit" when absent (RFC 2045 §6.1). */
  readonly transferEncoding: string;
  /** The body parts of a multipart, in order; empty for any other entity. */
  readonly parts: readonly MimeEntity[];
  /** Multipart framing; undefined for any other entity. */
  readonly multipart: MultipartInfo | undefined;
}

const TEXT_PLAIN: ContentType = {
  type: 'text',
  subtype: 'plain',
  mediaType: 'text/plain',
  params: new Map([['charset', 'us-ascii']]),
};
const MESSAGE_RFC822: ContentType = { type: 'message', subtype: 'rfc822', mediaType: 'message/rfc822', params: new Map() };

interface ParseState {
  readonly limits: ParseLimits;
  parts: number;
  headerFields: number;
}

/**
 * Parses an RFC 5322 message or a MIME entity. Line breaks may be CRLF, bare
 * LF or a mixture; an mbox "From " line before the message is skipped. Throws KF_MIME_MALFORMED when the input is not a message
 * (empty, or not starting with a header field), when a multipart has no
 * boundary, or when a limit is exceeded. A multipart body without any
 * delimiter gives no parts; the caller decides whether that is acceptable.
 */
export function parseEntity(bytes: Uint8Array, limits: Partial<ParseLimits> = {}): MimeEntity {
  const root = asBuffer(bytes);
  if (root.length === 0) throw malformed('empty message');
  const state: ParseState = { limits: { ...defaultParseLimits, ...limits }, parts: 0, headerFields: 0 };
  return parseAt(root, { start: mboxFromLineEnd(root, state.limits), end: root.length }, 0, state, TEXT_PLAIN, true);
}

/**
 * A message saved from an mbox file starts with a "From " separator line
 * (RFC 4155), which is not a header field; the message starts after it.
 */
function mboxFromLineEnd(root: Buffer, limits: ParseLimits): number {
  if (root.length < 5 || root.toString('latin1', 0, 5) !== 'From ') return 0;
  const lf = root.subarray(0, limits.maxHeaderLineLength).indexOf(0x0a);
  return lf < 0 ? 0 : lf + 1;
}

/**
 * Parses a body part: unlike a message it may be empty or start with the
 * empty line (no headers at all, RFC 2046 §5.1.1).
 */
export function parsePart(bytes: Uint8Array, limits: Partial<ParseLimits> = {}): MimeEntity {
  const state: ParseState = { limits: { ...defaultParseLimits, ...limits }, parts: 0, headerFields: 0 };
  return parseAt(asBuffer(bytes), { start: 0, end: bytes.length }, 0, state, TEXT_PLAIN, false);
}

function parseAt(root: Buffer, range: Range, depth: number, state: ParseState, defaultType: ContentType, requireField: boolean): MimeEntity {
  const { limits } = state;
  if (depth > limits.maxDepth) throw malformed(`multipart nesting deeper than ${limits.maxDepth}`);
  const view = root.subarray(range.start, range.end);
  const { fields, bodyStart } = parseHeaderBlock(view, limits, requireField);
  state.headerFields += fields.length;
  if (state.headerFields > limits.maxTotalHeaderFields) throw malformed(`more than ${limits.maxTotalHeaderFields} header fields in the message`);
  const ctValue = getHeader(fields, 'content-type');
  const contentType = (ctValue === undefined ? undefined : parseContentType(ctValue)) ?? defaultType;
  const transferEncoding = (getHeader(fields, 'content-transfer-encoding') ?? '7bit').replace(/\(.*$/, '').trim().toLowerCase() || '7bit';
  const body = view.subarray(bodyStart);
  const base = range.start + bodyStart;
  let parts: MimeEntity[] = [];
  let multipart: MultipartInfo | undefined;
  if (contentType.type === 'multipart') {
    const boundary = contentType.params.get('boundary');
    // RFC 2046 §5.1.1 allows 70 characters; allow more, but not unbounded.
    if (boundary === undefined || boundary === '' || boundary.length > 200 || /[\r\n]/.test(boundary)) {
      throw malformed(`${contentType.mediaType} without a usable boundary parameter`);
    }
    const layout = splitMultipart(body, boundary, () => {
      if (++state.parts > limits.maxParts) throw malformed(`more than ${limits.maxParts} body parts`);
    });
    // RFC 2046 §5.1.5: in multipart/digest the default part type is message/rfc822.
    const partDefault = contentType.subtype === 'digest' ? MESSAGE_RFC822 : TEXT_PLAIN;
    parts = layout.parts.map((p) =>
      parseAt(root, { start: base + p.start, end: base + p.end }, depth + 1, state, partDefault, false),
    );
    multipart = {
      boundary,
      preamble: body.subarray(layout.preamble.start, layout.preamble.end),
      epilogue: body.subarray(layout.epilogue.start, layout.epilogue.end),
      closed: layout.closed,
    };
  }
  return {
    raw: view,
    start: range.start,
    bodyStart: base,
    end: range.end,
    headers: fields,
    body,
    contentType,
    transferEncoding,
    parts,
    multipart,
  };
}
