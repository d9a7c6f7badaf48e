/**
 * The device event hub and its SSE writer: fan-out per (tenant, device),
 * unsubscribe on close, the per-subscriber bound (a slow subscriber keeps
 * the latest 'changed' and at most bufferSize events), and a real HTTP
 * server on loopback read by streaming clients: events arrive as they are
 * published, heartbeats flow, a client that goes away is unsubscribed, and
 * a client that stops reading costs bounded memory and still gets the
 * latest 'changed' when it reads again.
 */
import assert from 'node:assert/strict';
import { createServer, get, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeviceEventHub, sseFrame, streamDeviceEvents, type DeviceEventSubscription } from '../../src/delivery/events.ts';
import type { DeviceEvent } from '../../src/protocol/device-api.ts';

const changed = (version: string): DeviceEvent => ({ type: 'changed', version });
const note = (id: string, body = 'Open the Company Portal'): DeviceEvent => ({
  type: 'notification',
  notification: { id, title: 'Set up S/MIME', body, createdDateTime: '2025-01-01T00:00:00.000Z', read: false },
});

async function waitFor(what: string, check: () => boolean, ms = 3_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('DeviceEventHub', () => {
  it('delivers to every subscriber of the device and to no other device or tenant', async () => {
    const hub = new DeviceEventHub();
    const a1 = hub.subscribe('t1', 'dev-a');
    const a2 = hub.subscribe('t1', 'dev-a');
    const b = hub.subscribe('t1', 'dev-b');
    const otherTenant = hub.subscribe('t2', 'dev-a');
    assert.equal(hub.publish('t1', 'dev-a', changed('"h1.1"')), 2);
    assert.equal(hub.publish('t1', 'dev-c', changed('"h1.1"')), 0);
    assert.deepEqual(await a1.next(), { value: changed('"h1.1"'), done: false });
    assert.deepEqual(await a2.next(), { value: changed('"h1.1"'), done: false });
    hub.publish('t1', 'dev-b', note('n1'));
    assert.deepEqual((await b.next()).value, note('n1'));
    assert.equal(hub.subscriberCount(), 4);
    otherTenant.close();
    assert.equal(hub.subscriberCount('t2', 'dev-a'), 0);
    hub.close();
    assert.equal(hub.subscriberCount(), 0);
    assert.equal((await a1.next()).done, true);
  });

  it('a waiting reader gets the event as it is published; close() ends a pending next()', async () => {
    const hub = new DeviceEventHub();
    const s = hub.subscribe('t', 'd');
    const pending = s.next();
    hub.publish('t', 'd', note('n1'));
    assert.deepEqual((await pending).value, note('n1'));
    const ending = s.next();
    s.close();
    assert.deepEqual(await ending, { value: undefined, done: true });
    assert.equal(hub.publish('t', 'd', note('n2')), 0, 'a closed subscription is no longer a subscriber');
  });

  it('for-await with break, and an aborted signal, unsubscribe', async () => {
    const hub = new DeviceEventHub();
    const s = hub.subscribe('t', 'd');
    hub.publish('t', 'd', changed('v1'));
    for await (const e of s) {
      assert.deepEqual(e, changed('v1'));
      break;
    }
    assert.equal(s.closed, true);
    const ac = new AbortController();
    const t = hub.subscribe('t', 'd', { signal: ac.signal });
    assert.equal(hub.subscriberCount('t', 'd'), 1);
    ac.abort();
    assert.equal(t.closed, true);
    assert.equal(hub.subscriberCount('t', 'd'), 0);
    assert.equal(hub.subscribe('t', 'd', { signal: AbortSignal.abort() }).closed, true);
  });

  it('a slow subscriber keeps only the latest changed and at most bufferSize events', async () => {
    const hub = new DeviceEventHub({ bufferSize: 8 });
    const slow = hub.subscribe('t', 'd');
    const fast = hub.subscribe('t', 'd');
    const fastGot: DeviceEvent[] = [];
    for (let i = 0; i < 1_000; i++) {
      hub.publish('t', 'd', changed(`v${i}`));
      if (i % 100 === 0) hub.publish('t', 'd', note(`n${i}`));
      fastGot.push((await fast.next()).value as DeviceEvent);
      if (i % 100 === 0) fastGot.push((await fast.next()).value as DeviceEvent);
    }
    assert.equal(fastGot.length, 1_010, 'a reader that keeps up loses nothing');

    const queued: DeviceEvent[] = [];
    for (;;) {
      const r = await Promise.race([slow.next(), sleep(20).then(() => undefined)]);
      if (r === undefined || r.done === true) break;
      queued.push(r.value);
    }
    assert.ok(queued.length <= 8, `queued ${queued.length}`);
    assert.deepEqual(queued.filter((e) => e.type === 'changed'), [changed('v999')], 'one changed, the latest');
    // 10 notifications, 7 fit beside the changed: the oldest 3 were dropped, the rest kept in order.
    assert.deepEqual(
      queued.filter((e) => e.type === 'notification').map((e) => (e.type === 'notification' ? e.notification.id : '')),
      ['n300', 'n400', 'n500', 'n600', 'n700', 'n800', 'n900'],
    );
    assert.equal(slow.dropped, 3);
    hub.close();
  });

  it('sseFrame splits multi-line data into data: fields', () => {
    assert.equal(sseFrame('changed', '{"a":1}'), 'event: changed\ndata: {"a":1}\n\n');
    assert.equal(sseFrame('x', 'one\ntwo\r\nthree'), 'event: x\ndata: one\ndata: two\ndata: three\n\n');
    assert.throws(() => sseFrame('a\nb', ''), RangeError);
  });
});

/** A minimal SSE reader (WHATWG "Server-sent events" parsing, enough for these streams). */
interface SseMessage {
  readonly event: string;
  readonly data: string;
}
function parseSse(text: string): { messages: SseMessage[]; comments: string[]; rest: string } {
  const messages: SseMessage[] = [];
  const comments: string[] = [];
  const blocks = text.split('\n\n');
  const rest = blocks.pop() ?? '';
  for (const block of blocks) {
    let event = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) comments.push(line.slice(1).trim());
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length > 0) messages.push({ event, data: data.join('\n') });
  }
  return { messages, comments, rest };
}

describe('streamDeviceEvents over HTTP on loopback', { timeout: 30_000 }, () => {
  const hub = new DeviceEventHub({ bufferSize: 16 });
  const ended: string[] = [];
  const subs = new Map<string, DeviceEventSubscription>();
  let server: Server;
  let origin: string;

  before(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const device = url.searchParams.get('device') ?? 'none';
      const sub = hub.subscribe('t', device);
      subs.set(device, sub);
      void streamDeviceEvents(res, sub, { heartbeatMs: Number(url.searchParams.get('hb') ?? 15_000) }).then(() => ended.push(device));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    hub.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('streams events as published, with heartbeats; the client leaving unsubscribes', async () => {
    const ac = new AbortController();
    const res = await fetch(`${origin}/?device=live&hb=40`, { signal: ac.signal });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    await waitFor('the subscription', () => hub.subscriberCount('t', 'live') === 1);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    const readUntil = async (check: () => boolean): Promise<void> => {
      while (!check()) {
        const chunk = await reader.read();
        if (chunk.done) assert.fail('the stream ended early');
        text += chunk.value;
      }
    };
    hub.publish('t', 'live', changed('"abc.1"'));
    hub.publish('t', 'live', note('n1', 'line one'));
    await readUntil(() => parseSse(text).messages.length >= 2);
    const { messages } = parseSse(text);
    assert.deepEqual(messages.map((m) => m.event), ['changed', 'notification']);
    assert.deepEqual(JSON.parse(messages[0]!.data), changed('"abc.1"'));
    assert.deepEqual(JSON.parse(messages[1]!.data), note('n1', 'line one'));
    assert.match(text, /^retry: \d+\n\n/);
    await readUntil(() => parseSse(text).comments.includes('heartbeat'));

    ac.abort();
    await waitFor('the unsubscribe', () => hub.subscriberCount('t', 'live') === 0 && ended.includes('live'));
  });

  it('the subscription closing (the device retired, the server stopping) ends the stream cleanly', async () => {
    const res = await fetch(`${origin}/?device=closing`);
    await waitFor('the subscription', () => subs.has('closing'));
    hub.publish('t', 'closing', changed('v1'));
    const body = res.text();
    await sleep(20);
    subs.get('closing')!.close();
    assert.deepEqual(parseSse(await body).messages.map((m) => JSON.parse(m.data) as unknown), [changed('v1')]);
    await waitFor('the writer to finish', () => ended.includes('closing'));
  });

  it('a client that stops reading: bounded buffering, and the latest changed once it reads again', async () => {
    const big = 'x'.repeat(64 * 1024);
    let response: IncomingMessage | undefined;
    const req = get(`${origin}/?device=slow`, (res) => {
      response = res;
      res.pause();
    });
    await waitFor('the response', () => response !== undefined && hub.subscriberCount('t', 'slow') === 1);
    // 400 notifications of 64 KiB (25 MiB) and a changed after each: far more than the socket buffers hold.
    for (let i = 0; i < 400; i++) {
      hub.publish('t', 'slow', note(`n${i}`, big));
      hub.publish('t', 'slow', changed(`v${i}`));
      if (i % 20 === 0) await sleep(1);
    }
    let text = '';
    response!.setEncoding('utf8');
    response!.on('data', (s: string) => (text += s));
    response!.resume();
    await waitFor('the latest changed', () => text.includes('data: {"type":"changed","version":"v399"}'), 10_000);
    const { messages } = parseSse(text);
    const notes = messages.filter((m) => m.event === 'notification');
    const dropped = subs.get('slow')!.dropped;
    assert.ok(dropped > 0, 'the slow client got every notification: nothing was bounded');
    assert.equal(notes.length + dropped, 400, 'each notification was either sent or counted as dropped');
    const ids = notes.map((m) => (JSON.parse(m.data) as { notification: { id: string } }).notification.id);
    assert.equal(ids.at(-1), 'n399', 'the newest notifications are kept');
    assert.deepEqual([...ids].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))), ids, 'in order');
    req.destroy();
    await waitFor('the unsubscribe', () => hub.subscriberCount('t', 'slow') === 0);
  });
});
