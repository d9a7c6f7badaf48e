/**
 * Push to enrolled devices (docs/delivery.md "Notifications"): an
 * in-process hub the notifier publishes DeviceEvents to, and the writer
 * that turns one device's subscription into a server-sent-events stream
 * for GET /device/v1/events.
 *
 * Memory is bounded per subscriber whatever the subscriber does. A
 * 'changed' event only says "check in, your ETag moved", so a newer one
 * supersedes any older one still queued: a slow device keeps one, the
 * latest. Notifications are kept in order up to the buffer size; beyond it
 * the oldest are dropped, which loses nothing for good, because the device
 * reads the whole list from GET /device/v1/notifications.
 *
 * One process only: with several workers the notifier publishes in each
 * (PostgreSQL LISTEN/NOTIFY or the SQLite poller feeds every hub).
 */
import type { ServerResponse } from 'node:http';
import type { DeviceEvent } from '../protocol/device-api.ts';

export const DEFAULT_SUBSCRIBER_BUFFER = 64;
export const SSE_HEARTBEAT_MS = 15_000;

export interface DeviceEventSubscription extends AsyncIterableIterator<DeviceEvent> {
  readonly tenantId: string;
  readonly deviceId: string;
  /** Events dropped because this subscriber was slow (superseded 'changed' events are not counted). */
  readonly dropped: number;
  readonly closed: boolean;
  /** Unsubscribes; a pending next() resolves done. Idempotent. */
  close(): void;
}

export interface DeviceEventHubOptions {
  /** Most events queued per subscriber. */
  readonly bufferSize?: number;
}

export class DeviceEventHub {
  readonly #bufferSize: number;
  readonly #byDevice = new Map<string, Set<Subscriber>>();

  constructor(options: DeviceEventHubOptions = {}) {
    const size = options.bufferSize ?? DEFAULT_SUBSCRIBER_BUFFER;
    if (!Number.isInteger(size) || size < 2) throw new RangeError('bufferSize must be an integer of at least 2');
    this.#bufferSize = size;
  }

  /** A subscription to one device's events from now on; closed by close(), by `signal`, or by the hub's close(). */
  subscribe(tenantId: string, deviceId: string, options: { readonly signal?: AbortSignal } = {}): DeviceEventSubscription {
    const key = deviceKey(tenantId, deviceId);
    const subscriber = new Subscriber(tenantId, deviceId, this.#bufferSize, () => {
      const set = this.#byDevice.get(key);
      set?.delete(subscriber);
      if (set?.size === 0) this.#byDevice.delete(key);
    });
    let set = this.#byDevice.get(key);
    if (set === undefined) this.#byDevice.set(key, (set = new Set()));
    set.add(subscriber);
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) subscriber.close();
      else {
        const onAbort = (): void => subscriber.close();
        signal.addEventListener('abort', onAbort, { once: true });
        subscriber.onClose(() => signal.removeEventListener('abort', onAbort));
      }
    }
    return subscriber;
  }

  /** Queues the event for every current subscriber of the device; returns how many there were. */
  publish(tenantId: string, deviceId: string, event: DeviceEvent): number {
    const set = this.#byDevice.get(deviceKey(tenantId, deviceId));
    if (set === undefined) return 0;
    for (const s of set) s.push(event);
    return set.size;
  }

  /** Subscribers of one device, or of all devices. */
  subscriberCount(tenantId?: string, deviceId?: string): number {
    if (tenantId !== undefined && deviceId !== undefined) return this.#byDevice.get(deviceKey(tenantId, deviceId))?.size ?? 0;
    let n = 0;
    for (const set of this.#byDevice.values()) n += set.size;
    return n;
  }

  /** Ends every subscription (server shutdown): each SSE stream then ends cleanly. */
  close(): void {
    for (const set of [...this.#byDevice.values()]) for (const s of [...set]) s.close();
  }
}

function deviceKey(tenantId: string, deviceId: string): string {
  return `${tenantId}\u0000${deviceId}`;
}

class Subscriber implements DeviceEventSubscription {
  readonly tenantId: string;
  readonly deviceId: string;
  readonly #capacity: number;
  readonly #queue: DeviceEvent[] = [];
  readonly #closeHooks: (() => void)[] = [];
  #waiter: ((r: IteratorResult<DeviceEvent>) => void) | undefined;
  #dropped = 0;
  #closed = false;

  constructor(tenantId: string, deviceId: string, capacity: number, onClose: () => void) {
    this.tenantId = tenantId;
    this.deviceId = deviceId;
    this.#capacity = capacity;
    this.#closeHooks.push(onClose);
  }

  get dropped(): number {
    return this.#dropped;
  }

  get closed(): boolean {
    return this.#closed;
  }

  onClose(hook: () => void): void {
    this.#closeHooks.push(hook);
  }

  push(event: DeviceEvent): void {
    if (this.#closed) return;
    if (this.#waiter !== undefined) {
      const resolve = this.#waiter;
      this.#waiter = undefined;
      resolve({ value: event, done: false });
      return;
    }
    if (event.type === 'changed') {
      const older = this.#queue.findIndex((e) => e.type === 'changed');
      if (older >= 0) this.#queue.splice(older, 1);
    }
    if (this.#queue.length >= this.#capacity) {
      // The queue holds at most one 'changed' (the latest): drop the oldest notification.
      const oldest = this.#queue.findIndex((e) => e.type !== 'changed');
      this.#queue.splice(oldest, 1);
      this.#dropped++;
    }
    this.#queue.push(event);
  }

  next(): Promise<IteratorResult<DeviceEvent>> {
    const event = this.#queue.shift();
    if (event !== undefined) return Promise.resolve({ value: event, done: false });
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter !== undefined) return Promise.reject(new Error('a device event subscription has one reader'));
    return new Promise((resolve) => (this.#waiter = resolve));
  }

  return(): Promise<IteratorResult<DeviceEvent>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.length = 0;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.({ value: undefined, done: true });
    for (const hook of this.#closeHooks.splice(0)) hook();
  }
}

export interface SseOptions {
  /** Milliseconds between heartbeat comments, which keep proxies from closing an idle stream. */
  readonly heartbeatMs?: number;
  /** Sent as the stream's `retry:` field: how soon EventSource clients reconnect. */
  readonly retryMs?: number;
}

/**
 * Writes a subscription to `res` as server-sent events (WHATWG HTML
 * "Server-sent events"): `event: <type>` and `data: <the DeviceEvent as
 * JSON>`, a comment every heartbeatMs. Resolves when the stream has ended:
 * the client went away (the subscription is then closed) or the
 * subscription was closed (the response is then ended). Fastify routes call
 * `reply.hijack()` first and pass `reply.raw`.
 */
export async function streamDeviceEvents(res: ServerResponse, subscription: DeviceEventSubscription, options: SseOptions = {}): Promise<void> {
  const heartbeatMs = options.heartbeatMs ?? SSE_HEARTBEAT_MS;
  const onGone = (): void => subscription.close();
  res.once('close', onGone);
  if (res.destroyed) subscription.close();
  const heartbeat = setInterval(() => {
    if (!res.writableEnded && !res.destroyed && !res.writableNeedDrain) res.write(': heartbeat\n\n');
  }, heartbeatMs);
  try {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // nginx buffers responses unless told not to; SSE needs each event at once.
      'x-accel-buffering': 'no',
    });
    res.write(`retry: ${options.retryMs ?? 5_000}\n\n`);
    for await (const event of subscription) {
      if (!res.write(sseFrame(event.type, JSON.stringify(event)))) await drained(res);
    }
  } finally {
    clearInterval(heartbeat);
    res.off('close', onGone);
    subscription.close();
    if (!res.writableEnded && !res.destroyed) res.end();
  }
}

/** One event: each line of `data` gets its own `data:` field, as the format requires. */
export function sseFrame(event: string, data: string): string {
  if (/[\r\n]/.test(event)) throw new RangeError('an SSE event name is one line');
  return `event: ${event}\n${data.split(/\r\n|\r|\n/).map((line) => `data: ${line}\n`).join('')}\n`;
}

/** Waits for the socket to take more, or to go away (the subscription is then closed and the loop ends). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}
