/**
 * The Company Portal landing page the device agent serves on loopback
 * (docs/delivery.md "The agent and the mail side"): the page the user
 * reaches from a push notification, the in-app list or the link in
 * notification mail, showing each certificate as it is retrieved and then
 * "Ready to use in Outlook".
 *
 * The agent owns a PortalProgress and updates it as it works; every change
 * is pushed to open pages over server-sent events. The agent should put the
 * whole assignment in at once (upsertItems, all `waiting`) after a check-in,
 * so that the page never says ready while items it has not heard of yet
 * are still to come.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KeyfleetError } from '../errors.ts';
import { PORTAL_PAGE_CSP, portalPageHtml, type PortalFocus } from './portal-page.ts';

export type PortalItemKind = 'trustedRoot' | 'signingCertificate' | 'encryptionCertificate' | 'configuration';
export type PortalItemState = 'waiting' | 'retrieving' | 'installed' | 'failed' | 'removed';

export interface PortalItem {
  /** Stable across updates: the desired-state item id or a thumbprint. */
  readonly id: string;
  readonly kind: PortalItemKind;
  readonly label: string;
  readonly state: PortalItemState;
  /** Why it failed, or other detail the user should see. Never a secret. */
  readonly detail?: string;
}

export interface PortalNotification {
  readonly id: string;
  readonly title: string;
  readonly body: string;
  /** ISO 8601. */
  readonly createdAt: string;
}

export interface PortalSummary {
  /** Items not removed. */
  readonly total: number;
  readonly installed: number;
  readonly failed: number;
  /** Something is assigned and all of it is installed. */
  readonly ready: boolean;
}

export interface PortalSnapshot {
  /** Grows by one with every change. */
  readonly version: number;
  readonly deviceName?: string;
  /** Roots first, then signing and encryption certificates, then configuration; in arrival order within each. */
  readonly items: readonly PortalItem[];
  /** Newest first, at most MAX_PORTAL_NOTIFICATIONS. */
  readonly notifications: readonly PortalNotification[];
  readonly summary: PortalSummary;
}

export const MAX_PORTAL_NOTIFICATIONS = 50;
const MAX_TEXT = 2_000;
const KIND_ORDER: readonly PortalItemKind[] = ['trustedRoot', 'signingCertificate', 'encryptionCertificate', 'configuration'];
const STATES: ReadonlySet<string> = new Set<PortalItemState>(['waiting', 'retrieving', 'installed', 'failed', 'removed']);

export class PortalProgress {
  readonly #deviceName: string | undefined;
  readonly #items = new Map<string, PortalItem>();
  #notifications: PortalNotification[] = [];
  readonly #listeners = new Set<(s: PortalSnapshot) => void>();
  #version = 0;
  #snapshot: PortalSnapshot | undefined;

  constructor(options: { readonly deviceName?: string } = {}) {
    this.#deviceName = options.deviceName;
  }

  upsertItem(item: PortalItem): void {
    this.upsertItems([item]);
  }

  /** Several items in one change: one push to open pages. */
  upsertItems(items: readonly PortalItem[]): void {
    let changed = false;
    for (const item of items) {
      const clean = checkedItem(item);
      if (sameItem(this.#items.get(clean.id), clean)) continue;
      this.#items.set(clean.id, clean);
      changed = true;
    }
    if (changed) this.#changed();
  }

  /** Forgets an item (to show it as removed instead, upsert it with state `removed`). */
  removeItem(id: string): boolean {
    const had = this.#items.delete(id);
    if (had) this.#changed();
    return had;
  }

  /** Adds a notification, or replaces the one with the same id. */
  addNotification(n: { readonly id: string; readonly title: string; readonly body: string; readonly createdAt?: string | Date }): void {
    if (n.id === '') throw new KeyfleetError('KF_USAGE', 'a notification needs an id');
    const createdAt = n.createdAt === undefined ? new Date() : new Date(n.createdAt);
    if (Number.isNaN(createdAt.getTime())) throw new KeyfleetError('KF_USAGE', 'a notification needs a valid createdAt');
    const clean: PortalNotification = { id: n.id, title: bounded(n.title), body: bounded(n.body), createdAt: createdAt.toISOString() };
    const others = this.#notifications.filter((x) => x.id !== n.id);
    this.#notifications = [clean, ...others]
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0))
      .slice(0, MAX_PORTAL_NOTIFICATIONS);
    this.#changed();
  }

  getNotification(id: string): PortalNotification | undefined {
    return this.#notifications.find((n) => n.id === id);
  }

  snapshot(): PortalSnapshot {
    if (this.#snapshot !== undefined) return this.#snapshot;
    const items = [...this.#items.values()].sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind));
    const live = items.filter((i) => i.state !== 'removed');
    const installed = live.filter((i) => i.state === 'installed').length;
    const summary: PortalSummary = {
      total: live.length,
      installed,
      failed: live.filter((i) => i.state === 'failed').length,
      ready: live.length > 0 && installed === live.length,
    };
    this.#snapshot = {
      version: this.#version,
      ...(this.#deviceName === undefined ? {} : { deviceName: this.#deviceName }),
      items,
      notifications: [...this.#notifications],
      summary,
    };
    return this.#snapshot;
  }

  /** Calls `listener` with the new snapshot after every change; returns the unsubscribe. */
  subscribe(listener: (s: PortalSnapshot) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    this.#version++;
    this.#snapshot = undefined;
    const s = this.snapshot();
    for (const l of [...this.#listeners]) l(s);
  }
}

function checkedItem(item: PortalItem): PortalItem {
  if (item.id === '') throw new KeyfleetError('KF_USAGE', 'a portal item needs an id');
  if (!KIND_ORDER.includes(item.kind)) throw new KeyfleetError('KF_USAGE', `unknown portal item kind "${String(item.kind)}"`);
  if (!STATES.has(item.state)) throw new KeyfleetError('KF_USAGE', `unknown portal item state "${String(item.state)}"`);
  const base = { id: item.id, kind: item.kind, label: bounded(item.label), state: item.state };
  return item.detail === undefined || item.detail === '' ? base : { ...base, detail: bounded(item.detail) };
}

function sameItem(a: PortalItem | undefined, b: PortalItem): boolean {
  return a !== undefined && a.kind === b.kind && a.label === b.label && a.state === b.state && a.detail === b.detail;
}

function bounded(s: string): string {
  return s.length <= MAX_TEXT ? s : `${s.slice(0, MAX_TEXT - 1)}\u2026`;
}

export interface PortalServerOptions {
  readonly progress: PortalProgress;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  /** Milliseconds between SSE heartbeat comments. Default 15 s. */
  readonly heartbeatMs?: number;
}

export interface PortalServer {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /** Ends open event streams and stops listening. */
  close(): Promise<void>;
}

const NOTIFICATION_ID = /^[A-Za-z0-9._~-]{1,128}$/;

/** Serves the landing page on 127.0.0.1: GET /, /open/{notificationId}, /state, /events. */
export async function startPortal(options: PortalServerOptions): Promise<PortalServer> {
  const { progress } = options;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const streams = new Set<ServerResponse>();
  let port = 0;

  const server = createServer((req, res) => {
    try {
      route(req, res);
    } catch {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    }
  });

  function route(req: IncomingMessage, res: ServerResponse): void {
    // A web page elsewhere could reach a loopback port through DNS rebinding; its requests name another host.
    const host = (req.headers.host ?? '').toLowerCase();
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) return send(res, 421, 'text/plain; charset=utf-8', 'misdirected request\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    }
    const path = new URL(req.url ?? '/', 'http://portal').pathname;
    if (path === '/') return page(res, 200);
    if (path === '/state') return send(res, 200, 'application/json; charset=utf-8', JSON.stringify(progress.snapshot()));
    if (path === '/events') return req.method === 'HEAD' ? send(res, 200, 'text/event-stream; charset=utf-8', '') : events(res);
    const open = /^\/open\/([^/]+)$/.exec(path);
    if (open !== null) {
      const id = decodeSegment(open[1]!);
      const n = id === undefined || !NOTIFICATION_ID.test(id) ? undefined : progress.getNotification(id);
      return page(res, n === undefined ? 404 : 200, n ?? 'missing');
    }
    send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  }

  function page(res: ServerResponse, status: number, focus?: PortalFocus): void {
    res.setHeader('content-security-policy', PORTAL_PAGE_CSP);
    res.setHeader('referrer-policy', 'no-referrer');
    send(res, status, 'text/html; charset=utf-8', portalPageHtml(focus));
  }

  /** One state snapshot at once, then each change; a slow page gets only the latest snapshot, never a backlog. */
  function events(res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.write('retry: 2000\n\n');
    streams.add(res);
    let pending: PortalSnapshot | undefined = progress.snapshot();
    const flush = (): void => {
      while (pending !== undefined && !res.writableNeedDrain && !res.writableEnded) {
        const s = pending;
        pending = undefined;
        res.write(`event: state\ndata: ${JSON.stringify(s)}\n\n`);
      }
    };
    const unsubscribe = progress.subscribe((s) => {
      pending = s;
      flush();
    });
    const heartbeat = setInterval(() => {
      if (!res.writableNeedDrain && !res.writableEnded) res.write(': heartbeat\n\n');
    }, heartbeatMs);
    res.on('drain', flush);
    res.once('close', () => {
      clearInterval(heartbeat);
      unsubscribe();
      streams.delete(res);
    });
    flush();
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new KeyfleetError('KF_LISTEN_FAILED', `the Company Portal cannot listen on 127.0.0.1:${options.port ?? 0}`, { cause: e })));
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of streams) res.end();
        server.close(() => resolve());
        // Open pages reconnect at once; their keep-alive sockets must not hold close() open.
        server.closeAllConnections();
      }),
  };
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function decodeSegment(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}
