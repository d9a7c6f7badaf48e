/**
 * Making an entity 7-bit safe before it is signed (RFC 8551 §3.1.2, RFC 1847
 * §2.1): a gateway that converts 8bit or binary content on the way breaks
 * the signature, so every leaf is first given a transfer encoding whose
 * bytes survive any transport: US-ASCII without NUL, CRLF line breaks,
 * lines of at most 998 characters (RFC 5322 §2.1.1).
 *
 * - 8bit/binary text becomes quoted-printable (readable, RFC 8551 §3.1.3),
 *   after its line breaks are made canonical (§3.1.1);
 * - 8bit/binary anything else becomes base64 (its bytes exactly);
 * - a leaf whose bytes are already safe but labelled 8bit/binary is
 *   relabelled 7bit (an MTA converts by label);
 * - multiparts are rebuilt from their converted parts, message/rfc822
 *   parts are converted inside (RFC 2046 §5.2.1 forbids encoding them);
 * - non-ASCII Content-Type/-Disposition parameters become RFC 2231 values.
 *
 * Other header fields are kept as they are: 8-bit text in, say, a
 * Content-Description would need RFC 2047 words, which this layer does not
 * write.
 */
import { isAscii } from 'node:buffer';
import { CR, CRLF, LF, asBuffer, concatBytes, malformed, sameName } from './bytes.ts';
import { fieldBytes, randomBoundary } from './build.ts';
import { isCanonicalCrlf, toCanonicalCrlf } from './canonical.ts';
import { type MimeEntity, parsePart } from './entity.ts';
import { type HeaderField, canonicalFieldBytes } from './headers.ts';
import { hasBoundaryLine } from './multipart.ts';
import { formatParameterized, parseContentDisposition, parseContentType } from './params.ts';
import {
  IDENTITY_ENCODINGS,
  decodeBase64,
  decodeQuotedPrintable,
  encodeBase64,
  encodeQuotedPrintable,
} from './transfer-encoding.ts';

/** RFC 5322 §2.1.1: at most 998 characters before the CRLF. */
const MAX_LINE = 998;
/** Nesting through message/rfc822 parts; each level is parsed afresh. */
const MAX_DEPTH = 32;

/**
 * True when the bytes are US-ASCII without NUL and every line, measured to
 * its LF, has at most 998 characters before the CRLF. Line breaks are not
 * checked here (see isCanonicalCrlf). Each step jumps to the last LF within
 * the next 1000 bytes, so dense line breaks cost no more than sparse ones.
 */
export function isSevenBitClean(bytes: Uint8Array): boolean {
  const b = asBuffer(bytes);
  if (!isAscii(b) || b.indexOf(0) >= 0) return false;
  const n = b.length;
  // Invariant: s is 0 or follows an LF, so the backward searches below stop within one window.
  let s = 0;
  while (n - s > MAX_LINE + 1) {
    const lf = b.lastIndexOf(LF, s + MAX_LINE + 1);
    if (lf < s) return false;
    // A line filling the whole window is too long unless a CR ends it.
    if (lf - s > MAX_LINE && b[lf - 1] !== CR && b.lastIndexOf(LF, lf - 1) < s) return false;
    s = lf + 1;
  }
  const last = n > s ? b.lastIndexOf(LF, n - 1) : -1;
  const lineStart = last >= s ? last + 1 : s;
  return n - lineStart <= MAX_LINE || (b[n - 1] === CR && n - lineStart <= MAX_LINE + 1);
}

type LeafPlan =
  | { readonly action: 'keep' | 'relabel'; readonly body: Uint8Array }
  | { readonly action: 'encode'; readonly encoding: 'base64' | 'quoted-printable'; readonly content: Uint8Array };

/**
 * What a leaf needs: keep its body (with CRLF line breaks), relabel it 7bit,
 * or encode `content` (the decoded content) afresh.
 */
function planLeaf(e: MimeEntity, canonical = false): LeafPlan {
  // Known canonical (the whole entity was checked once): skip the per-leaf passes.
  const crlf = canonical ? (b: Uint8Array) => b : toCanonicalCrlf;
  const cte = e.transferEncoding;
  const isText = e.contentType.type === 'text';
  if (cte === 'base64' || cte === 'quoted-printable') {
    // Line breaks between encoded lines carry no data: canonicalising is safe.
    if (isSevenBitClean(e.body)) return { action: 'keep', body: crlf(e.body) };
    // Damaged encoding (8-bit bytes, long lines): decode and encode again.
    return cte === 'base64'
      ? { action: 'encode', encoding: 'base64', content: decodeBase64(e.body) }
      : { action: 'encode', encoding: 'quoted-printable', content: decodeQuotedPrintable(e.body) };
  }
  if (!IDENTITY_ENCODINGS.has(cte)) {
    if (isSevenBitClean(e.body)) return { action: 'keep', body: crlf(e.body) };
    throw malformed(`cannot make a part with Content-Transfer-Encoding ${JSON.stringify(cte)} 7-bit safe`);
  }
  if (isText) {
    // Text is canonicalised anyway (RFC 8551 §3.1.1): judge its canonical form.
    const text = crlf(e.body);
    if (isSevenBitClean(text)) return { action: cte === '7bit' ? 'keep' : 'relabel', body: text };
    return { action: 'encode', encoding: 'quoted-printable', content: text };
  }
  // Other types keep their exact bytes: bare CR or LF would be changed by canonicalisation.
  if (isSevenBitClean(e.body) && (canonical || isCanonicalCrlf(e.body))) return { action: cte === '7bit' ? 'keep' : 'relabel', body: e.body };
  return { action: 'encode', encoding: 'base64', content: e.body };
}

function headerNeedsRewrite(h: HeaderField): boolean {
  if (isAscii(asBuffer(h.raw))) return false;
  if (sameName(h.name, 'content-type')) return parseContentType(h.value) !== undefined;
  if (sameName(h.name, 'content-disposition')) return parseContentDisposition(h.value) !== undefined;
  return false;
}

function isRfc822(e: MimeEntity): boolean {
  return e.contentType.mediaType === 'message/rfc822' && IDENTITY_ENCODINGS.has(e.transferEncoding);
}

/**
 * True when make7bitSafe would change more than line breaks: some leaf
 * needs a transfer encoding or a 7bit label, or a parameter needs RFC 2231.
 */
export function needsTransferEncoding(entity: MimeEntity): boolean {
  return needs(entity, 0, false);
}

/** `canonical`: the entity's bytes are known to have CRLF line breaks only. */
function needs(e: MimeEntity, depth: number, canonical: boolean): boolean {
  if (depth > MAX_DEPTH) throw malformed(`message nesting deeper than ${MAX_DEPTH}`);
  if (e.headers.some(headerNeedsRewrite)) return true;
  if (e.multipart) {
    const { preamble, epilogue } = e.multipart;
    return !isSevenBitClean(preamble) || !isSevenBitClean(epilogue) || e.parts.some((p) => needs(p, depth + 1, canonical));
  }
  if (isRfc822(e)) {
    const inner = tryParse(e.body);
    // Its label must say 7bit, and its bytes be 7-bit: 8-bit header fields inside force base64.
    if (inner) return e.transferEncoding !== '7bit' || !isSevenBitClean(e.body) || needs(inner, depth + 1, false);
  }
  return planLeaf(e, canonical).action !== 'keep';
}

function tryParse(body: Uint8Array): MimeEntity | undefined {
  try {
    return parsePart(body);
  } catch {
    return undefined;
  }
}

/**
 * A new entity, canonical (CRLF) throughout, whose bytes are all below 128
 * with lines of at most 998 characters wherever this layer can ensure it
 * (see the module comment for header fields). Returns the entity itself
 * when it is already so. Give it the entity as received, not a
 * canonicalised copy: canonicalising binary content first would corrupt it.
 */
export function make7bitSafe(entity: MimeEntity, random?: (n: number) => Uint8Array): MimeEntity {
  if (isCanonicalCrlf(entity.raw) && !needs(entity, 0, true)) return entity;
  return parsePart(concatBytes(convert(entity, 0, random)));
}

function headerChunks(e: MimeEntity, set: ReadonlyMap<string, string>): Uint8Array[] {
  const out: Uint8Array[] = [];
  const done = new Set<string>();
  for (const h of e.headers) {
    const key = h.name.toLowerCase();
    const replacement = set.get(key);
    if (replacement !== undefined) {
      if (!done.has(key)) out.push(fieldBytes([h.name, replacement]));
      done.add(key);
    } else if (headerNeedsRewrite(h)) {
      out.push(fieldBytes([h.name, rewriteParams(h)]));
    } else {
      out.push(canonicalFieldBytes(h));
    }
  }
  for (const [key, value] of set) if (!done.has(key)) out.push(fieldBytes([canonicalName(key), value]));
  return out;
}

function canonicalName(key: string): string {
  return key === 'content-transfer-encoding' ? 'Content-Transfer-Encoding' : key === 'content-type' ? 'Content-Type' : key;
}

/** The field's value with its parameters re-encoded (RFC 2231 for non-ASCII values). */
function rewriteParams(h: HeaderField): string {
  if (sameName(h.name, 'content-type')) {
    const ct = parseContentType(h.value)!;
    return formatParameterized(ct.mediaType, ct.params);
  }
  const cd = parseContentDisposition(h.value)!;
  return formatParameterized(cd.type, cd.params);
}

function convert(e: MimeEntity, depth: number, random: ((n: number) => Uint8Array) | undefined): Uint8Array[] {
  if (depth > MAX_DEPTH) throw malformed(`message nesting deeper than ${MAX_DEPTH}`);
  if (e.multipart) return convertMultipart(e, depth, random);
  if (isRfc822(e)) {
    const inner = tryParse(e.body);
    if (inner) {
      const body = concatBytes(convert(inner, depth + 1, random));
      if (isSevenBitClean(body)) {
        const set = new Map(e.transferEncoding === '7bit' ? [] : [['content-transfer-encoding', '7bit']]);
        return [...headerChunks(e, set), CRLF, body];
      }
      // 8-bit header fields inside: base64 is the only way to keep it intact.
    }
    return encodedLeaf(e, 'base64', e.body);
  }
  const plan = planLeaf(e);
  if (plan.action === 'encode') return encodedLeaf(e, plan.encoding, plan.content);
  const set = new Map(plan.action === 'relabel' ? [['content-transfer-encoding', '7bit']] : []);
  return [...headerChunks(e, set), CRLF, plan.body];
}

function encodedLeaf(e: MimeEntity, encoding: 'base64' | 'quoted-printable', content: Uint8Array): Uint8Array[] {
  const body = encoding === 'base64' ? encodeBase64(content) : encodeQuotedPrintable(content);
  return [...headerChunks(e, new Map([['content-transfer-encoding', encoding]])), CRLF, body];
}

function convertMultipart(e: MimeEntity, depth: number, random: ((n: number) => Uint8Array) | undefined): Uint8Array[] {
  const info = e.multipart!;
  const parts = e.parts.map((p) => concatBytes(convert(p, depth + 1, random)));
  let boundary = info.boundary;
  const set = new Map<string, string>();
  if (parts.some((p) => hasBoundaryLine(p, boundary))) {
    // Re-encoding produced a line starting with the old boundary: choose a new one.
    for (let attempt = 0; ; attempt++) {
      if (attempt === 8) throw malformed('could not choose a boundary absent from the parts (is the random source constant?)');
      boundary = randomBoundary(random);
      if (!parts.some((p) => asBuffer(p).indexOf(boundary) >= 0)) break;
    }
    const params = new Map(e.contentType.params);
    params.set('boundary', boundary);
    set.set('content-type', formatParameterized(e.contentType.mediaType, params));
  }
  const chunks = headerChunks(e, set);
  chunks.push(CRLF);
  // The preamble and epilogue are ignored by readers; 8-bit ones are dropped rather than encoded.
  const preamble = toCanonicalCrlf(info.preamble);
  if (preamble.length > 0 && isSevenBitClean(preamble)) chunks.push(preamble, CRLF);
  for (const p of parts) chunks.push(Buffer.from(`--${boundary}\r\n`, 'utf8'), p, CRLF);
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'utf8'));
  const epilogue = toCanonicalCrlf(info.epilogue);
  if (epilogue.length > 0 && isSevenBitClean(epilogue)) chunks.push(epilogue);
  return chunks;
}
