/**
 * Recognising S/MIME entities (RFC 8551 §3.2-3.5) as real clients send them
 * (REFERENCE.md pitfall 6): the legacy `application/x-pkcs7-*` types (RFC
 * 8551 §3.2.1 asks receivers to accept them), a p7m sent as
 * application/octet-stream, multipart/signed without its `protocol`
 * parameter, and micalg spelled `sha1`, `sha-1`, `SHA-256` or left out.
 */
import type { MimeEntity } from './entity.ts';
import { getHeader } from './headers.ts';
import { parseContentDisposition } from './params.ts';

/**
 * - `signed-multipart`: multipart/signed (RFC 1847, RFC 8551 §3.5.3);
 * - `opaque`: application/pkcs7-mime carrying signed-data, enveloped-data,
 *   authEnveloped-data or compressed-data (RFC 8551 §3.2.2), or a p7m
 *   without smime-type, whose CMS content type then decides;
 * - `none`: anything else, certs-only included.
 */
export type SmimeKind = 'signed-multipart' | 'opaque' | 'none';

/** The smime-type parameter values of RFC 8551 §3.2.2, in its spelling. */
export type SmimeType = 'signed-data' | 'enveloped-data' | 'authEnveloped-data' | 'compressed-data' | 'certs-only';

export interface SmimeClassification {
  readonly kind: SmimeKind;
  /** The smime-type parameter, normalised; undefined when absent or not one of RFC 8551's. */
  readonly smimeType: SmimeType | undefined;
  /**
   * multipart/signed micalg values, normalised (`sha1` → `sha-1`, `SHA256` →
   * `sha-256`), one per digest algorithm in the signature; empty when the
   * parameter is absent or the entity is not multipart/signed.
   */
  readonly micalg: readonly string[];
  /** True when a legacy spelling was used: x-pkcs7 types, octet-stream p7m, or a missing protocol. */
  readonly legacy: boolean;
}

const SMIME_TYPES: ReadonlyMap<string, SmimeType> = new Map(
  (['signed-data', 'enveloped-data', 'authEnveloped-data', 'compressed-data', 'certs-only'] as const).map((t) => [t.toLowerCase(), t]),
);

const SIGNATURE_TYPES = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature']);
const MIME_TYPES = new Set(['application/pkcs7-mime', 'application/x-pkcs7-mime']);

/** The file name of an entity: Content-Disposition filename, else Content-Type name (the older convention). */
function fileName(e: MimeEntity): string | undefined {
  const cd = getHeader(e.headers, 'content-disposition');
  const fromDisposition = cd === undefined ? undefined : parseContentDisposition(cd)?.params.get('filename');
  return fromDisposition ?? e.contentType.params.get('name');
}

function hasExtension(e: MimeEntity, ext: string): boolean {
  return fileName(e)?.trim().toLowerCase().endsWith(ext) ?? false;
}

function isSignaturePart(e: MimeEntity): boolean {
  const t = e.contentType.mediaType;
  return SIGNATURE_TYPES.has(t) || (t === 'application/octet-stream' && hasExtension(e, '.p7s'));
}

/** Classifies an entity (a whole message or its content entity) by its Content-Type. */
export function classifySmime(entity: MimeEntity): SmimeClassification {
  const ct = entity.contentType;
  const smimeParam = ct.params.get('smime-type');
  const smimeType = smimeParam === undefined ? undefined : SMIME_TYPES.get(smimeParam.trim().toLowerCase());
  if (ct.mediaType === 'multipart/signed') {
    const protocol = ct.params.get('protocol')?.trim().toLowerCase();
    const micalg = normaliseMicalgList(ct.params.get('micalg'));
    if (protocol !== undefined && SIGNATURE_TYPES.has(protocol)) {
      return { kind: 'signed-multipart', smimeType: undefined, micalg, legacy: protocol.includes('x-pkcs7') };
    }
    // RFC 1847 requires protocol; some clients leave it out. The signature part then tells.
    const second = entity.parts[1];
    if (protocol === undefined && second !== undefined && isSignaturePart(second)) {
      return { kind: 'signed-multipart', smimeType: undefined, micalg, legacy: true };
    }
    return { kind: 'none', smimeType: undefined, micalg, legacy: false };
  }
  if (MIME_TYPES.has(ct.mediaType)) {
    const opaque = smimeParam === undefined || (smimeType !== undefined && smimeType !== 'certs-only');
    return { kind: opaque ? 'opaque' : 'none', smimeType, micalg: [], legacy: ct.subtype.startsWith('x-') };
  }
  if (ct.mediaType === 'application/octet-stream' && hasExtension(entity, '.p7m')) {
    return { kind: 'opaque', smimeType: smimeType === 'certs-only' ? undefined : smimeType, micalg: [], legacy: true };
  }
  return { kind: 'none', smimeType, micalg: [], legacy: false };
}

/** Node digest names for the micalg values of RFC 8551 §3.5.3.2 (and RFC 3851's md5/sha-1). */
const MICALG_DIGESTS: ReadonlyMap<string, string> = new Map([
  ['md5', 'md5'],
  ['sha-1', 'sha1'],
  ['sha-224', 'sha224'],
  ['sha-256', 'sha256'],
  ['sha-384', 'sha384'],
  ['sha-512', 'sha512'],
]);

/**
 * One micalg value in RFC 8551 §3.5.3.2 spelling: lower case, and `sha1`,
 * `sha256`… (written by older clients) with the hyphen.
 */
export function normaliseMicalg(value: string): string {
  const v = value.trim().toLowerCase();
  const m = /^sha-?(1|224|256|384|512)$/.exec(v);
  return m ? `sha-${m[1]}` : v;
}

/** The comma-separated micalg parameter (RFC 1847 §2.1 allows one per signer's algorithm), normalised. */
export function normaliseMicalgList(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value
    .split(',')
    .map(normaliseMicalg)
    .filter((v) => v !== '');
}

/** The node:crypto digest name for a micalg value (any spelling), or undefined for unknown ones. */
export function digestForMicalg(value: string): string | undefined {
  return MICALG_DIGESTS.get(normaliseMicalg(value));
}

export type SigningDigest = 'sha256' | 'sha384' | 'sha512';

/** The micalg value to write for a digest (RFC 8551 §3.5.3.2). */
export function micalgFor(digest: SigningDigest): 'sha-256' | 'sha-384' | 'sha-512' {
  switch (digest) {
    case 'sha256':
      return 'sha-256';
    case 'sha384':
      return 'sha-384';
    case 'sha512':
      return 'sha-512';
  }
}
