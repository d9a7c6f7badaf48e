/**
 * The device's HTTP client for /device/v1 (docs/delivery.md "Device
 * identity and request signing"): enrolment with the one-time token, then
 * every request signed by the identity key (src/protocol/request-signing.ts)
 * over exactly the path, query and body bytes sent.
 *
 * Every answer is read up to a bound and within a timeout, and checked for
 * shape (wire.ts) before anything uses it. Errors keep the server's code
 * (problem+json `code`); what could go better on a later try (no
 * connection, a timeout, 5xx, 429, an answer that is not the protocol) is
 * KF_SERVICE_UNREACHABLE, which `retryable` recognises.
 */
import type { KeyObject } from 'node:crypto';
import { KeyfleetError, errorCatalogue, isKeyfleetError, type ErrorCode } from '../errors.ts';
import { MAX_RESULT_PAYLOAD } from '../protocol/connector-api.ts';
import { DEVICE_API, type DeliveryResponse, type DesiredState, type DeviceEvent, type EnrollRequest, type EnrollResponse, type NotificationItem, type ReportItem, type ReportResponse } from '../protocol/device-api.ts';
import { DEVICE_AUTH_HEADER, signRequest } from '../protocol/request-signing.ts';
import { parseDeliveryResponse, parseDesiredState, parseDeviceEvent, parseEnrollResponse, parseNotifications, parseReportResponse } from './wire.ts';

export const DEFAULT_TIMEOUT_MS = 30_000;
/** A desired state with a thousand imported certificates is well under this. */
const MAX_CHECKIN_RESPONSE = 8 * 1024 * 1024;
const MAX_SMALL_RESPONSE = 256 * 1024;
const MAX_NOTIFICATIONS_RESPONSE = 2 * 1024 * 1024;
/** One server-sent event line; events are small JSON documents. */
const MAX_SSE_LINE = 64 * 1024;
/** The server sends a heartbeat every 15 s; a stream silent for this long is dead. */
export const DEFAULT_EVENTS_IDLE_MS = 45_000;
/** The server's report limit (src/delivery/service.ts MAX_REPORT_ITEMS). */
export const MAX_REPORT_ITEMS = 200;

export interface HttpOptions {
  /** Per request (default 30 s). */
  readonly timeoutMs?: number;
  /** Injected by tests; default the global fetch. */
  readonly fetch?: typeof fetch;
}

/** The service's base URL, checked: http(s), no query or fragment, with a trailing slash for joining. */
export function serviceBase(url: string): URL {
  let base: URL;
  try {
    base = new URL(url.endsWith('/') ? url : `${url}/`);
  } catch {
    throw new KeyfleetError('KF_USAGE', `"${url}" is not a URL`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new KeyfleetError('KF_USAGE', 'the service URL must be http:// or https://');
  if (base.search !== '' || base.hash !== '' || base.username !== '' || base.password !== '') throw new KeyfleetError('KF_USAGE', 'the service URL must have no query, fragment or credentials');
  return base;
}

function endpoint(base: URL, path: string): URL {
  return new URL(`${DEVICE_API.slice(1)}/${path}`, base);
}

/** POST /device/v1/enroll: the only unsigned call (the device has no identity yet). */
export async function requestEnrolment(serverUrl: string, request: EnrollRequest, options: HttpOptions = {}): Promise<EnrollResponse> {
  const base = serviceBase(serverUrl);
  const { body } = await call(base, endpoint(base, 'enroll'), { method: 'POST', json: request }, MAX_SMALL_RESPONSE, options);
  return parseEnrollResponse(body);
}

export type CheckinAnswer = { readonly status: 304; readonly etag: string } | { readonly status: 200; readonly etag: string; readonly state: DesiredState };

export interface DeviceApiClientOptions extends HttpOptions {
  readonly serverUrl: string;
  readonly deviceId: string;
  /** The device identity key (P-256). */
  readonly key: KeyObject;
  /** Milliseconds since the epoch, for the signature's timestamp. */
  readonly clock?: () => number;
}

export class DeviceApiClient {
  readonly base: URL;
  readonly deviceId: string;
  readonly #key: KeyObject;
  readonly #options: HttpOptions;
  readonly #clock: () => number;

  constructor(options: DeviceApiClientOptions) {
    this.base = serviceBase(options.serverUrl);
    this.deviceId = options.deviceId;
    this.#key = options.key;
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
  }

  #signed(method: string, url: URL, body?: string): Record<string, string> {
    return { [DEVICE_AUTH_HEADER]: signRequest(this.deviceId, this.#key, method, url.pathname + url.search, body, this.#clock()) };
  }

  async #call(method: 'GET' | 'POST', path: string, json: unknown, limit: number, headers: Record<string, string> = {}) {
    const url = endpoint(this.base, path);
    const body = json === undefined ? undefined : JSON.stringify(json);
    return call(this.base, url, { method, ...(body === undefined ? {} : { body }), headers: { ...headers, ...this.#signed(method, url, body) } }, limit, this.#options);
  }

  /** GET /device/v1/checkin, conditional on the ETag of the last state applied. */
  async checkin(etag?: string): Promise<CheckinAnswer> {
    const { body, response } = await this.#call('GET', 'checkin', undefined, MAX_CHECKIN_RESPONSE, etag === undefined ? {} : { 'if-none-match': etag });
    const served = response.headers.get('etag');
    if (served === null || served.length > 256) throw new KeyfleetError('KF_SERVICE_UNREACHABLE', 'the service answered a check-in without an ETag');
    if (response.status === 304) return { status: 304, etag: served };
    return { status: 200, etag: served, state: parseDesiredState(body) };
  }

  /**
   * POST /device/v1/reports: one result per item, in order. `basedOn`, the ETag of the check-in the items
   * answer, lets the service hand back the device's new ETag (ReportResponse.etag).
   */
  async report(items: readonly ReportItem[], basedOn?: string): Promise<ReportResponse> {
    if (items.length === 0 || items.length > MAX_REPORT_ITEMS) throw new KeyfleetError('KF_USAGE', `a report carries 1–${MAX_REPORT_ITEMS} items`);
    const { body } = await this.#call('POST', 'reports', basedOn === undefined ? { items } : { items, basedOn }, MAX_SMALL_RESPONSE);
    return parseReportResponse(body, items.length);
  }

  /** GET /device/v1/deliveries/{id}: a re-wrapped PFX for this device. */
  async delivery(id: string): Promise<DeliveryResponse> {
    const { body } = await this.#call('GET', `deliveries/${encodeURIComponent(id)}`, undefined, Math.ceil(MAX_RESULT_PAYLOAD / 3) * 4 + 4096);
    return parseDeliveryResponse(body, MAX_RESULT_PAYLOAD);
  }

  async notifications(): Promise<NotificationItem[]> {
    return parseNotifications((await this.#call('GET', 'notifications', undefined, MAX_NOTIFICATIONS_RESPONSE)).body);
  }

  async markRead(id: string): Promise<void> {
    await this.#call('POST', `notifications/${encodeURIComponent(id)}/read`, undefined, MAX_SMALL_RESPONSE);
  }

  /**
   * GET /device/v1/events as a stream of DeviceEvents, until the server ends it, `signal` aborts, or
   * nothing (not even a heartbeat) arrives for `idleMs`; then the iteration ends or throws
   * KF_SERVICE_UNREACHABLE. `onOpen` is told when the stream is established, with the server's `retry:`.
   */
  async *events(options: { readonly signal?: AbortSignal; readonly idleMs?: number; readonly onOpen?: () => void; readonly onRetry?: (ms: number) => void } = {}): AsyncGenerator<DeviceEvent> {
    const url = endpoint(this.base, 'events');
    const idleMs = options.idleMs ?? DEFAULT_EVENTS_IDLE_MS;
    const idle = new AbortController();
    let timer = setTimeout(() => idle.abort(), this.#options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const signal = options.signal ? AbortSignal.any([options.signal, idle.signal]) : idle.signal;
    const fetchImpl = this.#options.fetch ?? fetch;
    let response: Response;
    try {
      response = await fetchImpl(url, { headers: { accept: 'text/event-stream', ...this.#signed('GET', url) }, signal, redirect: 'error' });
    } catch (e) {
      clearTimeout(timer);
      if (options.signal?.aborted) return;
      throw unreachable(this.base, idle.signal.aborted ? 'no answer in time' : 'no connection', e);
    }
    try {
      if (!response.ok) {
        const text = await readBounded(response, MAX_SMALL_RESPONSE).catch(() => '');
        throw problemError(response.status, jsonOrUndefined(text));
      }
      if (!(response.headers.get('content-type') ?? '').startsWith('text/event-stream')) throw new KeyfleetError('KF_SERVICE_UNREACHABLE', `${this.base.origin} answered the event stream with something other than text/event-stream`);
      if (response.body === null) return;
      options.onOpen?.();
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => idle.abort(), idleMs);
      };
      arm();
      const parser = new SseParser();
      const decoder = new TextDecoder('utf-8');
      const reader = response.body.getReader();
      try {
        for (;;) {
          let chunk: Awaited<ReturnType<typeof reader.read>>;
          try {
            chunk = await reader.read();
          } catch (e) {
            if (options.signal?.aborted) return;
            throw unreachable(this.base, idle.signal.aborted ? `the event stream was silent for ${idleMs / 1000} s` : 'the event stream broke', e);
          }
          if (chunk.done) return;
          arm();
          for (const raw of parser.push(decoder.decode(chunk.value, { stream: true }))) {
            if (raw.retry !== undefined) options.onRetry?.(raw.retry);
            if (raw.data === undefined) continue;
            const event = parseDeviceEvent(raw.event, raw.data);
            if (event !== undefined) yield event;
          }
        }
      } finally {
        await reader.cancel().catch(() => undefined);
      }
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Server errors and rate limits may pass; so may a server that is not answering the protocol. */
export function retryable(e: unknown): boolean {
  return isKeyfleetError(e) && (e.code === 'KF_SERVICE_UNREACHABLE' || e.code === 'KF_STORE_UNAVAILABLE');
}

interface RawEvent {
  readonly event: string;
  readonly data: string | undefined;
  readonly retry: number | undefined;
}

/**
 * The event-stream format (WHATWG HTML "Server-sent events"): lines of
 * `field: value`, an empty line dispatches; comments start with a colon.
 * A line longer than MAX_SSE_LINE ends the stream (a server gone wrong).
 */
export class SseParser {
  #buffer = '';
  #event = '';
  #data: string[] = [];
  #retry: number | undefined;

  push(text: string): RawEvent[] {
    this.#buffer += text;
    const out: RawEvent[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.#buffer);
      if (m === null) break;
      // A lone CR at the very end may be the first half of CRLF: wait for more.
      if (m[0] === '\r' && m.index === this.#buffer.length - 1) break;
      const line = this.#buffer.slice(0, m.index);
      this.#buffer = this.#buffer.slice(m.index + m[0].length);
      const e = this.#line(line);
      if (e !== undefined) out.push(e);
    }
    if (this.#buffer.length > MAX_SSE_LINE) throw new KeyfleetError('KF_SERVICE_UNREACHABLE', `an event-stream line is longer than ${MAX_SSE_LINE} characters`);
    return out;
  }

  #line(line: string): RawEvent | undefined {
    if (line === '') {
      const e: RawEvent = { event: this.#event || 'message', data: this.#data.length === 0 ? undefined : this.#data.join('\n'), retry: this.#retry };
      this.#event = '';
      this.#data = [];
      this.#retry = undefined;
      return e.data === undefined && e.retry === undefined ? undefined : e;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') this.#event = value;
    else if (field === 'data') {
      this.#data.push(value);
      if (this.#data.reduce((n, d) => n + d.length, 0) > MAX_SSE_LINE) throw new KeyfleetError('KF_SERVICE_UNREACHABLE', 'an event is larger than the agent accepts');
    } else if (field === 'retry' && /^\d{1,9}$/.test(value)) this.#retry = Number(value);
    return undefined;
  }
}

// ------------------------------------------------------------------ plumbing

interface CallInit {
  readonly method: 'GET' | 'POST';
  readonly json?: unknown;
  readonly body?: string;
  readonly headers?: Record<string, string>;
}

async function call(base: URL, url: URL, init: CallInit, limit: number, options: HttpOptions): Promise<{ body: unknown; response: Response }> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const body = init.body ?? (init.json === undefined ? undefined : JSON.stringify(init.json));
  let response: Response;
  let text: string;
  try {
    response = await (options.fetch ?? fetch)(url, {
      method: init.method,
      headers: { accept: 'application/json, application/problem+json', ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers },
      ...(body === undefined ? {} : { body }),
      signal: timeout,
      redirect: 'error',
    });
    text = await readBounded(response, limit);
  } catch (e) {
    if (isKeyfleetError(e)) throw e;
    throw unreachable(base, timeout.aborted ? `no answer within ${timeoutMs / 1000} s` : 'no connection', e);
  }
  if (response.status === 304 || response.status === 204) return { body: undefined, response };
  const parsed = jsonOrUndefined(text);
  if (response.ok) {
    if (parsed === undefined) throw new KeyfleetError('KF_SERVICE_UNREACHABLE', `${base.origin} answered ${response.status} with something other than JSON`);
    return { body: parsed, response };
  }
  throw problemError(response.status, parsed);
}

function jsonOrUndefined(text: string): unknown {
  try {
    return text === '' ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

function unreachable(base: URL, why: string, cause: unknown): KeyfleetError {
  return new KeyfleetError('KF_SERVICE_UNREACHABLE', `cannot reach ${base.origin} (${why})`, { cause });
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
