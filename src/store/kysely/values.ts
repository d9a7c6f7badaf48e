/** Conversions between the store's record types and column values, the same on both databases. */
import { KeyfleetError } from '../../errors.ts';

export type Int64 = number | bigint;

export function toMs(d: Date, field: string): number {
  const ms = d.getTime();
  if (!Number.isFinite(ms)) throw new KeyfleetError('KF_USAGE', `${field} is not a valid date`);
  return ms;
}

export function fromMs(v: Int64): Date {
  return new Date(Number(v));
}

export function optionalMs(d: Date | undefined, field: string): number | null {
  return d === undefined ? null : toMs(d, field);
}

export function optionalDate(v: Int64 | null): Date | undefined {
  return v === null ? undefined : fromMs(v);
}

export function orNull<T>(v: T | undefined): T | null {
  return v === undefined ? null : v;
}

export function orUndefined<T>(v: T | null): T | undefined {
  return v === null ? undefined : v;
}

/** pg returns Buffer, node:sqlite Uint8Array: hand out plain Uint8Array views either way, without copying. */
export function bytes(v: Uint8Array): Uint8Array {
  return v.constructor === Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

export function optionalBytes(v: Uint8Array | null): Uint8Array | undefined {
  return v === null ? undefined : bytes(v);
}

/**
 * A CA's issuer chain in one column: each certificate as a 4-byte big-endian
 * length and its DER. (Concatenated DER would do too, but reading it back
 * would need the ASN.1 codec, which the store does not import.)
 */
export function encodeChain(chain: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chain.reduce((n, c) => n + 4 + c.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const c of chain) {
    view.setUint32(at, c.length);
    out.set(c, at + 4);
    at += 4 + c.length;
  }
  return out;
}

export function decodeChain(encoded: Uint8Array): Uint8Array[] {
  const view = new DataView(encoded.buffer, encoded.byteOffset, encoded.byteLength);
  const chain: Uint8Array[] = [];
  let at = 0;
  while (at < encoded.length) {
    if (at + 4 > encoded.length) throw new Error('stored CA chain is truncated');
    const len = view.getUint32(at);
    if (at + 4 + len > encoded.length) throw new Error('stored CA chain is truncated');
    chain.push(encoded.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  return chain;
}

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

export function pageSize(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_PAGE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new KeyfleetError('KF_USAGE', `limit must be an integer from 1 to ${MAX_PAGE}`);
  }
  return limit;
}

/** Rows to skip before a page (SCIM startIndex); bounded so that a huge offset cannot become a long scan by accident. */
export function pageOffset(offset: number | undefined): number {
  if (offset === undefined) return 0;
  if (!Number.isInteger(offset) || offset < 0 || offset > 10_000_000) throw new KeyfleetError('KF_USAGE', 'offset must be a non-negative integer');
  return offset;
}

/**
 * Cursors are the sort key of the last row handed out, as base64url JSON: opaque to clients (they may not
 * build one), stable under inserts and deletes (no offsets), and checked when they come back.
 */
export function encodeCursor(key: readonly string[]): string {
  return Buffer.from(JSON.stringify(key)).toString('base64url');
}

export function decodeCursor(cursor: string, parts: number): string[] {
  let key: unknown;
  try {
    if (cursor.length > 4096 || !/^[A-Za-z0-9_-]*$/.test(cursor)) throw new Error('not base64url');
    key = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new KeyfleetError('KF_USAGE', 'the cursor is not valid: pass back a nextCursor unchanged');
  }
  if (!Array.isArray(key) || key.length !== parts || !key.every((k) => typeof k === 'string')) {
    throw new KeyfleetError('KF_USAGE', 'the cursor is not valid: pass back a nextCursor unchanged');
  }
  return key as string[];
}
