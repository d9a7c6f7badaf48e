/**
 * OCSP over HTTP (RFC 6960 Appendix A.1), without an HTTP library: the
 * server's route hands over method, path and body and writes back what
 * this returns.
 *
 * - POST <prefix> with an application/ocsp-request body.
 * - GET <prefix>/<url-encoding of base64(DER request)>. The base64 may
 *   contain '/', so everything after the prefix is the request; clients
 *   escape '+', '/' and '=' as %2B, %2F, %3D, or not at all.
 *
 * OCSP errors travel inside a 200 response (malformedRequest etc.); only a
 * wrong method or path gets an HTTP error. GET answers to requests without a
 * nonce carry the RFC 5019 §6.2 caching headers when the responder caches.
 */
import { OcspResponseStatus } from '../x509/ocsp-client.ts';
import type { OcspAnswer, OcspResponder } from './ocsp.ts';

export interface OcspHttpRequest {
  readonly method: string;
  /** The request target's path (a query string is ignored). */
  readonly path: string;
  readonly body?: Uint8Array;
}

export interface OcspHttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

export interface OcspHttpOptions {
  /** Mount point; default "/ocsp". */
  readonly prefix?: string;
  /** max-age for GET answers without a nonce; default 0 (no-cache). Use the responder's cacheSeconds. */
  readonly maxAgeSeconds?: number;
}

/** Largest GET path we decode: base64 of the responder's 64 KB request limit, with escapes. */
const MAX_GET_CHARS = 3 * Math.ceil((65_536 * 4) / 3);

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/**
 * The DER request in a GET path, or undefined when the path is not under
 * `prefix` or does not hold base64 (the caller answers malformedRequest).
 */
export function ocspRequestFromGetPath(path: string, prefix = '/ocsp'): Uint8Array | undefined {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  const base = prefix.endsWith('/') ? prefix : `${prefix}/`;
  if (!p.startsWith(base) || p.length - base.length > MAX_GET_CHARS) return undefined;
  let b64: string;
  try {
    b64 = decodeURIComponent(p.slice(base.length));
  } catch {
    return undefined;
  }
  if (b64.length === 0 || !BASE64.test(b64)) return undefined;
  // Some clients use the URL-safe alphabet; Node's decoder accepts both.
  return Buffer.from(b64, b64.includes('-') || b64.includes('_') ? 'base64url' : 'base64');
}

const EMPTY = new Uint8Array(0);

function ocspBody(answer: OcspAnswer, cacheHeaders: Record<string, string>): OcspHttpResponse {
  return { status: 200, headers: { 'content-type': 'application/ocsp-response', ...cacheHeaders }, body: answer.der };
}

/** Maps one HTTP request to the responder. Never rejects. */
export async function handleOcspHttp(responder: OcspResponder, request: OcspHttpRequest, options: OcspHttpOptions = {}): Promise<OcspHttpResponse> {
  const prefix = (options.prefix ?? '/ocsp').replace(/\/+$/, '');
  const q = request.path.indexOf('?');
  const path = q < 0 ? request.path : request.path.slice(0, q);
  if (request.method === 'POST') {
    if (path !== prefix && path !== `${prefix}/`) return { status: 404, headers: {}, body: EMPTY };
    return ocspBody(await responder.answer(request.body ?? EMPTY), { 'cache-control': 'no-store' });
  }
  if (request.method === 'GET' || request.method === 'HEAD') {
    if (!path.startsWith(`${prefix}/`)) return { status: 404, headers: {}, body: EMPTY };
    const der = ocspRequestFromGetPath(path, prefix);
    // An undecodable GET is still an OCSP request: answer malformedRequest, as for a bad POST body.
    const answer = await responder.answer(der ?? EMPTY);
    const maxAge = options.maxAgeSeconds ?? 0;
    const cacheable = answer.responseStatus === OcspResponseStatus.successful && !answer.nonce && maxAge > 0 && answer.producedAt !== undefined;
    const headers: Record<string, string> = cacheable
      ? {
          'cache-control': `max-age=${maxAge}, public, no-transform, must-revalidate`,
          'last-modified': answer.producedAt!.toUTCString(),
          expires: new Date(answer.producedAt!.getTime() + maxAge * 1000).toUTCString(),
        }
      : { 'cache-control': 'no-cache' };
    const response = ocspBody(answer, headers);
    return request.method === 'HEAD' ? { ...response, body: EMPTY } : response;
  }
  return { status: 405, headers: { allow: 'GET, HEAD, POST' }, body: EMPTY };
}
