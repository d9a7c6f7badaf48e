/**
 * The agent's push channel (docs/delivery.md "Notifications"): a signed
 * GET /device/v1/events kept open, a check-in on every `changed` whose
 * version is not the one applied, each `notification` shown on the portal
 * page, and a check-in on (re)connecting — a change may have come while the
 * stream was down — and on a timer, which covers a push channel that is
 * down for long.
 *
 * The stream reconnects with exponential backoff and jitter (capped), reset
 * once a stream has been established. Check-ins never overlap: a request
 * while one runs queues exactly one more.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DeviceEvent, NotificationItem } from '../protocol/device-api.ts';
import type { PortalProgress } from './portal.ts';
import type { CheckinSummary } from './agent.ts';

export type ListenEvent =
  | { readonly type: 'connected' }
  | { readonly type: 'disconnected'; readonly error: string; readonly retryInMs: number }
  | { readonly type: 'changed'; readonly version: string }
  | { readonly type: 'notification'; readonly notification: NotificationItem }
  | { readonly type: 'checkin'; readonly reason: CheckinReason; readonly summary: CheckinSummary }
  | { readonly type: 'checkin-failed'; readonly reason: CheckinReason; readonly error: string }
  | { readonly type: 'stopped'; readonly why: string };

export type CheckinReason = 'start' | 'connected' | 'changed' | 'timer';

export interface ListenOptions {
  /** Check in this often whatever the push channel says (default 15 minutes). */
  readonly intervalMs?: number;
  /** Reconnect delays: doubling from initialMs up to maxMs (defaults 1 s, 60 s). */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  /** A stream silent (not even a heartbeat) this long is reconnected (default 45 s). */
  readonly idleMs?: number;
  /** Check in once at start, before the stream is up (default true). */
  readonly checkinAtStart?: boolean;
  readonly onEvent?: (event: ListenEvent) => void;
  /** A number in [0, 1) for jitter; default Math.random. */
  readonly random?: () => number;
}

export interface AgentListener {
  /** Ends the stream and the timer, and waits for a check-in under way. */
  stop(): Promise<void>;
  /** Settles when the listener has stopped (stop(), or the device is no longer enrolled). */
  readonly done: Promise<void>;
}

/** What the listener needs of the agent. */
export interface ListenTarget {
  events(signal: AbortSignal, hooks: { readonly idleMs?: number; readonly onOpen: () => void }): Promise<AsyncGenerator<DeviceEvent>>;
  checkin(): Promise<CheckinSummary>;
  currentEtag(): string | undefined;
  enrolled(): boolean;
  readonly progress: PortalProgress | undefined;
  readonly deviceId: string;
}

export function reconnectDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export function listen(target: ListenTarget, options: ListenOptions = {}): AgentListener {
  const stopping = new AbortController();
  const emit = (e: ListenEvent) => options.onEvent?.(e);
  const backoff = options.backoff ?? { initialMs: 1000, maxMs: 60_000 };
  let running: Promise<void> | undefined;
  let again: CheckinReason | undefined;
  /** The version the last 'changed' announced: a check-in already under way often fetches exactly it. */
  let announced: string | undefined;

  const stopFor = (why: string) => {
    if (stopping.signal.aborted) return;
    emit({ type: 'stopped', why });
    stopping.abort();
  };

  const checkin = (reason: CheckinReason): void => {
    if (stopping.signal.aborted) return;
    if (running !== undefined) {
      again ??= reason;
      return;
    }
    running = (async () => {
      let next: CheckinReason | undefined = reason;
      while (next !== undefined && !stopping.signal.aborted) {
        const why = next;
        again = undefined;
        if (why === 'changed' && announced !== undefined && announced === target.currentEtag()) {
          next = again;
          continue;
        }
        try {
          emit({ type: 'checkin', reason: why, summary: await target.checkin() });
        } catch (e) {
          emit({ type: 'checkin-failed', reason: why, error: e instanceof Error ? e.message : String(e) });
        }
        if (!target.enrolled()) stopFor('the device is no longer enrolled');
        next = again;
      }
    })().finally(() => (running = undefined));
  };

  const timer = setInterval(() => checkin('timer'), options.intervalMs ?? 15 * 60_000);
  timer.unref();

  const loop = async (): Promise<void> => {
    let attempt = 0;
    while (!stopping.signal.aborted) {
      let error = 'the service ended the stream';
      try {
        const stream = await target.events(stopping.signal, {
          ...(options.idleMs === undefined ? {} : { idleMs: options.idleMs }),
          onOpen: () => {
            attempt = 0;
            emit({ type: 'connected' });
            checkin('connected');
          },
        });
        for await (const event of stream) {
          if (event.type === 'changed') {
            emit({ type: 'changed', version: event.version });
            announced = event.version;
            if (event.version !== target.currentEtag()) checkin('changed');
          } else {
            emit({ type: 'notification', notification: event.notification });
            const n = event.notification;
            target.progress?.addNotification({ id: n.id, title: n.title, body: n.body, createdAt: n.createdDateTime });
          }
        }
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
      }
      if (stopping.signal.aborted) break;
      if (!target.enrolled()) {
        stopFor('the device is no longer enrolled');
        break;
      }
      const delay = reconnectDelay(attempt++, backoff.initialMs, backoff.maxMs, options.random);
      emit({ type: 'disconnected', error, retryInMs: delay });
      await sleep(delay, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
  };

  if (options.checkinAtStart !== false) checkin('start');
  const done = loop().finally(async () => {
    clearInterval(timer);
    await running;
  });
  return {
    async stop() {
      stopFor('stopped');
      await done;
    },
    done,
  };
}
