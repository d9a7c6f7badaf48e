/**
 * Building MIME entities: single-part entities, multiparts with boundaries
 * that cannot occur in their parts (RFC 2046 §5.1.1), and moving a message's
 * own header fields between the message and the content entity that S/MIME
 * signs or encrypts (RFC 8551 §3.1: only the MIME entity is protected; From,
 * To, Subject, Date, Message-ID stay on the outer message, issue 2).
 *
 * Builders write CRLF line breaks and return parsed entities, so the result
 * can be inspected, nested and serialised (`raw`) alike.
 */
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { CRLF, concatBytes, malformed, sameName } from './bytes.ts';
import { type MimeEntity, parseEntity, parsePart } from './entity.ts';
import { type HeaderField, canonicalFieldBytes, formatHeaderField, isContentField } from './headers.ts';
import { hasBoundaryLine } from './multipart.ts';
import { formatParameterized } from './params.ts';

/** A header field to write: name and unfolded value. */
export type HeaderInput = readonly [name: string, value: string];

export interface EntitySpec {
  readonly headers: readonly HeaderInput[];
  /** The body as it should be transmitted (already transfer-encoded, CRLF line breaks). */
  readonly body: Uint8Array;
}

function isHeaderField(h: HeaderField | HeaderInput): h is HeaderField {
  return !Array.isArray(h);
}

/** A field's bytes: received fields keep their bytes (with CRLF line breaks), new ones are formatted and folded. */
export function fieldBytes(h: HeaderField | HeaderInput): Uint8Array {
  if (isHeaderField(h)) return canonicalFieldBytes(h);
  return Buffer.from(formatHeaderField(h[0], h[1]), 'utf8');
}

/** Header block, empty line, body: the chunks of an entity, not yet joined. */
export function entityChunks(headers: readonly (HeaderField | HeaderInput)[], body: Uint8Array): Uint8Array[] {
  return [...headers.map(fieldBytes), CRLF, body];
}

/** Builds one entity from header fields and a body. */
export function buildEntity(spec: EntitySpec): MimeEntity {
  return parsePart(concatBytes(entityChunks(spec.headers, spec.body)));
}

/** RFC 2046 §5.1.1 bchars, at most 70, not ending in a space. */
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/;

/**
 * A random boundary. "=_" cannot occur in quoted-printable output and the
 * rest is 144 random bits, so a collision with content is negligible (and
 * still checked by buildMultipart).
 */
export function randomBoundary(random: (n: number) => Uint8Array = nodeRandomBytes): string {
  return `=_kf_${Buffer.from(random(18)).toString('base64url')}`;
}

export interface MultipartOptions {
  /** Use this boundary instead of a random one; refused when a part has a line starting with it. */
  readonly boundary?: string;
  /** Text before the first part, e.g. "This is an S/MIME signed message" as OpenSSL writes. */
  readonly preamble?: string;
  /** Further header fields of the multipart entity, written before its Content-Type. */
  readonly headers?: readonly HeaderInput[];
  /** Randomness for the boundary (tests inject it); node:crypto by default. */
  readonly randomBytes?: (n: number) => Uint8Array;
}

function partBytes(p: MimeEntity | Uint8Array): Uint8Array {
  return p instanceof Uint8Array ? p : p.raw;
}

/**
 * Builds `multipart/<subtype>` around the parts, each given as an entity or
 * as the bytes of one. Parameters are written in the order given, then the
 * boundary; e.g. for RFC 8551 §3.5.3:
 *
 *   buildMultipart('signed', { protocol: 'application/pkcs7-signature', micalg: 'sha-256' }, [content, signature])
 */
export function buildMultipart(
  subtype: string,
  params: Readonly<Record<string, string>>,
  parts: readonly (MimeEntity | Uint8Array)[],
  options: MultipartOptions = {},
): MimeEntity {
  if (!/^[a-z0-9][a-z0-9!#$&^_.+-]*$/i.test(subtype)) throw malformed(`invalid multipart subtype ${JSON.stringify(subtype)}`);
  if (Object.keys(params).some((k) => k.toLowerCase() === 'boundary')) {
    throw malformed('pass the boundary as options.boundary, not as a parameter');
  }
  const bodies = parts.map(partBytes);
  const boundary = chooseBoundary(bodies, options);
  const contentType = formatParameterized(`multipart/${subtype.toLowerCase()}`, [...Object.entries(params), ['boundary', boundary]]);
  const dash = `--${boundary}`;
  const chunks: Uint8Array[] = [...(options.headers ?? []).map(fieldBytes), fieldBytes(['Content-Type', contentType]), CRLF];
  if (options.preamble !== undefined) {
    if (/(^|\n)--/.test(options.preamble)) throw malformed('multipart preamble must not contain a line starting with "--"');
    chunks.push(Buffer.from(`${options.preamble.replace(/\r?\n/g, '\r\n')}\r\n`, 'utf8'));
  }
  for (const body of bodies) chunks.push(Buffer.from(`${dash}\r\n`, 'latin1'), body, CRLF);
  chunks.push(Buffer.from(`${dash}--\r\n`, 'latin1'));
  return parsePart(concatBytes(chunks));
}

function chooseBoundary(bodies: readonly Uint8Array[], options: MultipartOptions): string {
  if (options.boundary !== undefined) {
    const b = options.boundary;
    if (!BOUNDARY.test(b)) throw malformed(`invalid multipart boundary ${JSON.stringify(b)} (RFC 2046 §5.1.1)`);
    const i = bodies.findIndex((body) => hasBoundaryLine(body, b));
    if (i >= 0) throw malformed(`boundary ${JSON.stringify(b)} occurs at a line start in part ${i + 1}`);
    return b;
  }
  for (let attempt = 0; attempt < 8; attempt++) {
    const b = randomBoundary(options.randomBytes);
    const needle = Buffer.from(b, 'latin1');
    if (bodies.every((body) => Buffer.from(body.buffer, body.byteOffset, body.byteLength).indexOf(needle) < 0)) return b;
  }
  throw malformed('could not choose a boundary absent from the parts (is the random source constant?)');
}

/** A message split into the header fields that stay outside and the entity S/MIME protects. */
export interface SplitMessage {
  /** Every field that is not Content-*: From, To, Subject, Date, Message-ID, MIME-Version… in order. */
  readonly outerHeaders: readonly HeaderField[];
  /** The Content-* fields and the body, as an entity of its own. */
  readonly content: MimeEntity;
}

/**
 * Splits a message into its outer header fields and its content entity. The
 * content keeps the received bytes of its fields and body; when those are
 * already contiguous at the end of the message (Content-* fields last) it
 * is a view, otherwise one copy. A message without any Content-* field gets
 * the explicit default `Content-Type: text/plain; charset=us-ascii`
 * (RFC 2045 §5.2), so that every receiver reads the same.
 */
export function splitMessage(message: MimeEntity): SplitMessage {
  const outerHeaders = message.headers.filter((h) => !isContentField(h.name));
  const contentFields = message.headers.filter((h) => isContentField(h.name));
  const rawBase = message.raw.byteOffset;
  const headerEnd = message.bodyStart - message.start;
  const lastField = message.headers[message.headers.length - 1];
  const fieldsEnd = lastField ? lastField.raw.byteOffset - rawBase + lastField.raw.byteLength : 0;
  const firstContent = contentFields[0];
  const firstContentAt = firstContent ? firstContent.raw.byteOffset - rawBase : -1;
  const contiguous =
    firstContent !== undefined &&
    message.headers.slice(message.headers.indexOf(firstContent)).every((h) => isContentField(h.name));
  if (contiguous && headerEnd > fieldsEnd) {
    return { outerHeaders, content: parsePart(message.raw.subarray(firstContentAt)) };
  }
  const fields = contentFields.length > 0 ? contentFields.map((h) => h.raw) : [fieldBytes(['Content-Type', 'text/plain; charset=us-ascii'])];
  // The empty line as received, or CRLF when the message had none (headers only).
  const separator = headerEnd > fieldsEnd ? message.raw.subarray(fieldsEnd, headerEnd) : CRLF;
  return { outerHeaders, content: parsePart(concatBytes([...fields, separator, message.body])) };
}

/**
 * A message made of outer header fields and a content entity (the reverse of
 * splitMessage, around e.g. a multipart/signed or application/pkcs7-mime
 * entity). Content-* fields among `outerHeaders` are dropped (the entity
 * brings its own) and `MIME-Version: 1.0` is added when missing (RFC 2045 §4).
 */
export function attachOuterHeaders(outerHeaders: readonly (HeaderField | HeaderInput)[], content: MimeEntity): MimeEntity {
  const nameOf = (h: HeaderField | HeaderInput): string => (isHeaderField(h) ? h.name : h[0]);
  const kept = outerHeaders.filter((h) => !isContentField(nameOf(h)));
  if (!kept.some((h) => sameName(nameOf(h), 'MIME-Version'))) kept.push(['MIME-Version', '1.0']);
  return parseEntity(concatBytes([...kept.map(fieldBytes), content.raw]));
}
