/**
 * The MIME layer of the S/MIME engine (RFC 2045-2049, RFC 5322, RFC 8551
 * §3): parsing with exact byte ranges, canonicalisation, transfer
 * encodings, 7-bit safety, builders and S/MIME type recognition. Pure
 * functions over bytes; no CMS here.
 */
export { CRLF } from './bytes.ts';
export type { HeaderField, HeaderLimits } from './headers.ts';
export { canonicalFieldBytes, formatHeaderField, getHeader, getHeaders, isContentField, unfold } from './headers.ts';
export type { ContentDisposition, ContentType } from './params.ts';
export { formatParameter, formatParameterized, parseContentDisposition, parseContentType } from './params.ts';
export type { MimeEntity, MultipartInfo, ParseLimits } from './entity.ts';
export { defaultParseLimits, parseEntity, parsePart } from './entity.ts';
export { hasBoundaryLine } from './multipart.ts';
export { isCanonicalCrlf, toCanonicalCrlf } from './canonical.ts';
export {
  IDENTITY_ENCODINGS,
  decodeBase64,
  decodeQuotedPrintable,
  decodeTransferEncoding,
  encodeBase64,
  encodeQuotedPrintable,
} from './transfer-encoding.ts';
export { isSevenBitClean, make7bitSafe, needsTransferEncoding } from './seven-bit.ts';
export type { EntitySpec, HeaderInput, MultipartOptions, SplitMessage } from './build.ts';
export {
  attachOuterHeaders,
  buildEntity,
  buildMultipart,
  entityChunks,
  fieldBytes,
  randomBoundary,
  splitMessage,
} from './build.ts';
export type { SigningDigest, SmimeClassification, SmimeKind, SmimeType } from './smime-types.ts';
export { classifySmime, digestForMicalg, micalgFor, normaliseMicalg, normaliseMicalgList } from './smime-types.ts';
