/**
 * The connector's HTTP client for /connector/v1 (src/protocol/connector-api.ts).
 * Every request carries the bearer credential and the connector's version;
 * every response is read up to a bound and checked for shape before anything
 * uses it, since a connector holds the key to every imported PFX and should
 * trust its server no further than the protocol requires.
 *
 * Errors keep the server's code (problem+json `code`); anything the server
 * could answer differently on a later try (no connection, a timeout, 5xx,
 * 429, an answer that is not the protocol) is KF_SERVICE_UNREACHABLE, which
 * `retryable` recognises.
 */
import { KeyfleetError, errorCatalogue, isKeyfleetError, type ErrorCode } from '../errors.ts';
import {
  CONNECTOR_API,
  CONNECTOR_VERSION_HEADER,
  MAX_RESULT_PAYLOAD,
  type ClaimedRequest,
  type ResultRequest,
} from '../protocol/connector-api.ts';

export interface ConnectorClientOptions {
  /** The service's base URL (http://host:port). */
  readonly url: string;
  /** kfc_… from `keyfleet connector register`. */
  readonly credential: string;
  readonly version: string;
  /** Per request, on top of a claim's long-poll wait (default 30 s). */
  readonly timeoutMs?: number;
  /** Injected by tests; default the global fetch. */
  readonly fetch?: typeof fetch;
}

export interface ClaimResult {
  readonly requests: readonly ClaimedRequest[];
  /** Local time (ms) the answer arrived. */
  readonly receivedAt: number;
  /** The server's clock (ms) from its Date header, to measure leases in the server's time; undefined without one. */
  readonly serverDate: number | undefined;
}

/** One ClaimedRequest's largest honest size in JSON: a 256 KiB PFX in base64, a certificate, a password. */
const MAX_CLAIMED_REQUEST_JSON = 400 * 1024;
/** Problem documents and result acknowledgements are small. */
const MAX_SMALL_RESPONSE = 64 * 1024;
const DEFAULT_TIMEOUT_MS = 30_000;

export class ConnectorClient {
  readonly #base: URL;
  readonly #credential: string;
  readonly #version: string;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;

  constructor(options: ConnectorClientOptions) {
    let base: URL;
    try {
      base = new URL(options.url.endsWith('/') ? options.url : `${options.url}/`);
    } catch {
      throw new KeyfleetError('KF_USAGE', `"${options.url}" is not a URL`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new KeyfleetError('KF_USAGE', 'the service URL must be http:// or https://');
    if (!/^kfc_[A-Za-z0-9_-]{43}$/.test(options.credential)) throw new KeyfleetError('KF_USAGE', 'the connector credential must be kfc_ and 43 base64url characters (from `keyfleet connector register`)');
    this.#base = base;
    this.#credential = options.credential;
    this.#version = options.version;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#fetch = options.fetch ?? fetch;
  }

  /** Leases up to `max` requests, waiting up to `waitSeconds` for work when there is none. */
  async claim(max: number, waitSeconds: number, signal?: AbortSignal): Promise<ClaimResult> {
    const timeout = waitSeconds * 1000 + this.#timeoutMs;
    const { body, response } = await this.#call('claim', { max, waitSeconds }, timeout, max * MAX_CLAIMED_REQUEST_JSON + MAX_SMALL_RESPONSE, signal);
    const receivedAt = Date.now();
    const date = Date.parse(response.headers.get('date') ?? '');
    return { requests: parseClaimResponse(body, max), receivedAt, serverDate: Number.isNaN(date) ? undefined : date };
  }

  /** Posts a request's result; KF_CONFLICT when the lease is no longer this connector's. */
  async postResult(requestId: string, result: ResultRequest, signal?: AbortSignal): Promise<void> {
    if ('payload' in result && result.payload.length > Math.ceil(MAX_RESULT_PAYLOAD / 3) * 4) {
      throw new KeyfleetError('KF_INPUT_TOO_LARGE', `a delivery payload is at most ${MAX_RESULT_PAYLOAD} bytes`);
    }
    await this.#call(`requests/${encodeURIComponent(requestId)}/result`, result, this.#timeoutMs, MAX_SMALL_RESPONSE, signal);
  }

  async #call(path: string, json: unknown, timeoutMs: number, maxResponse: number, signal: AbortSignal | undefined): Promise<{ body: unknown; response: Response }> {
    const url = new URL(`${CONNECTOR_API.slice(1)}/${path}`, this.#base);
    const timeout = AbortSignal.timeout(timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await this.#fetch(url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${this.#credential}`,
          [CONNECTOR_VERSION_HEADER]: this.#version,
          'content-type': 'application/json',
          accept: 'application/json, application/problem+json',
        },
        body: JSON.stringify(json),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      text = await readBounded(response, maxResponse);
    } catch (e) {
      if (isKeyfleetError(e)) throw e;
      const why = timeout.aborted ? `no answer within ${timeoutMs / 1000} s` : signal?.aborted ? 'stopped' : 'no connection';
      throw new KeyfleetError('KF_SERVICE_UNREACHABLE', `cannot reach ${this.#base.origin} (${why})`, { cause: e });
    }
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new KeyfleetError('KF_SERVICE_UNREACHABLE', `${this.#base.origin} answered ${response.status} with something other than JSON`);
    }
    if (response.ok) return { body, response };
    throw problemError(response.status, body);
  }
}

/** Server errors and rate limits may pass; so may a server that is not answering the protocol (a proxy's error page). */
export function retryable(e: unknown): boolean {
  return isKeyfleetError(e) && (e.code === 'KF_SERVICE_UNREACHABLE' || e.code === 'KF_STORE_UNAVAILABLE');
}

function problemError(status: number, body: unknown): KeyfleetError {
  const problem = (typeof body === 'object' && body !== null ? body : {}) as { code?: unknown; detail?: unknown };
  const detail = typeof problem.detail === 'string' ? problem.detail.slice(0, 500) : `the service answered ${status}`;
  if (status >= 500 || status === 429) return new KeyfleetError(status === 503 && problem.code === 'KF_STORE_UNAVAILABLE' ? 'KF_STORE_UNAVAILABLE' : 'KF_SERVICE_UNREACHABLE', detail);
  const code = typeof problem.code === 'string' && Object.hasOwn(errorCatalogue, problem.code) ? (problem.code as ErrorCode) : undefined;
  return new KeyfleetError(code ?? 'KF_SERVICE_UNREACHABLE', detail);
}

async function readBounded(response: Response, limit: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > limit) {
    await response.body?.cancel();
    throw new KeyfleetError('KF_SERVICE_UNREACHABLE', `the service's answer (${declared} bytes) is larger than ${limit} bytes`);
  }
  if (response.body === null) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel();
      throw new KeyfleetError('KF_SERVICE_UNREACHABLE', `the service's answer is larger than ${limit} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const shapeError = (why: string) => new KeyfleetError('KF_SERVICE_UNREACHABLE', `the service's claim answer is not the protocol: ${why}`);

function text(o: Record<string, unknown>, key: string, max: number, pattern?: RegExp): string {
  const v = o[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > max || (pattern !== undefined && !pattern.test(v))) throw shapeError(`${key} is missing or malformed`);
  return v;
}

function object(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw shapeError(`${what} is not an object`);
  return v as Record<string, unknown>;
}

/** Checks a ClaimResponse field by field; only the fields the protocol names are kept. */
export function parseClaimResponse(body: unknown, max: number): ClaimedRequest[] {
  const requests = object(body, 'the answer')['requests'];
  if (!Array.isArray(requests) || requests.length > max) throw shapeError(`requests is not a list of at most ${max}`);
  return requests.map((item: unknown): ClaimedRequest => {
    const r = object(item, 'a request');
    const pfx = object(r['pfx'], 'pfx');
    const leaseExpiresAt = text(r, 'leaseExpiresAt', 40);
    if (Number.isNaN(Date.parse(leaseExpiresAt))) throw shapeError('leaseExpiresAt is not a date');
    return {
      requestId: text(r, 'requestId', 128, /^[A-Za-z0-9_.:-]+$/),
      claimToken: text(r, 'claimToken', 128),
      leaseExpiresAt,
      deviceId: text(r, 'deviceId', 128),
      deviceCertificate: text(r, 'deviceCertificate', 32 * 1024, BASE64),
      pfx: {
        id: text(pfx, 'id', 128),
        thumbprint: text(pfx, 'thumbprint', 40, /^[0-9A-Fa-f]{40}$/),
        paddingScheme: text(pfx, 'paddingScheme', 32),
        encryptedPfxBlob: text(pfx, 'encryptedPfxBlob', 360 * 1024, BASE64),
        encryptedPfxPassword: text(pfx, 'encryptedPfxPassword', 4096, BASE64),
      },
    };
  });
}
