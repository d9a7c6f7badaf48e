/**
 * The connector loop (src/connector/run.ts) against a scripted client: the
 * real re-wrap runs, the server is a list of answers. What it must do:
 * deliver each claimed request once, stay within its concurrency, back off
 * (exponentially, capped) while the server is down, keep trying to post a
 * result only while its lease lasts, give up on refusals, stop for good on a
 * revoked credential or an outdated version, and on stop finish the work in
 * hand. Over real HTTP and processes: e2e.test.ts.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import type { ClaimResult, ConnectorClient } from '../../src/connector/client.ts';
import { type ConnectorKey, connectorKeyFrom } from '../../src/connector/keystore.ts';
import { type ConnectorEvent, backoffDelay, runConnector } from '../../src/connector/run.ts';
import { KeyfleetError, isKeyfleetError } from '../../src/errors.ts';
import { writePkcs12 } from '../../src/pkcs12/write.ts';
import type { ClaimedRequest, ResultRequest } from '../../src/protocol/connector-api.ts';
import { decryptContent } from '../../src/smime/cms/enveloped-data.ts';
import { decodeKeyDelivery } from '../../src/protocol/key-delivery.ts';
import type { UserPfxCertificateRecord } from '../../src/store/resources.ts';
import { type DeviceIdentity, claimedRequest, createDeviceCa, importedPfx, rsaKey } from './support.ts';

let connectorKey: KeyObject;
let device: DeviceIdentity;
let pfx: UserPfxCertificateRecord;

before(async () => {
  connectorKey = rsaKey(2048);
  const ca = await createDeviceCa();
  device = await ca.issueDevice('device-1');
  const holder = await ca.issueSmime('bob@example.com');
  pfx = importedPfx('pfx-1', writePkcs12([{ key: holder.key, certificate: holder.certificate }], 'pw', { profile: 'legacy' }), 'pw', connectorKey, 'oaepSha256');
});

function request(n: number, leaseMs = 60_000, overrides: { thumbprint?: string } = {}): ClaimedRequest {
  return { ...claimedRequest(device.certificate, pfx, overrides), requestId: `r${n}`, claimToken: `t${n}`, leaseExpiresAt: new Date(Date.now() + leaseMs).toISOString() };
}

type ClaimStep = ClaimedRequest[] | KeyfleetError;
type PostStep = 'ok' | KeyfleetError;

/** A server made of scripts: claims answer in turn (then nothing, after a short wait); posts too (then ok). */
class ScriptedClient implements Pick<ConnectorClient, 'claim' | 'postResult'> {
  readonly claims: ClaimStep[];
  readonly posts: PostStep[];
  readonly posted: { requestId: string; result: ResultRequest; at: number }[] = [];
  postAttempts = 0;
  readonly attempts: { requestId: string; at: number }[] = [];
  claimCalls: { max: number; at: number }[] = [];

  constructor(claims: ClaimStep[], posts: PostStep[] = []) {
    this.claims = claims;
    this.posts = posts;
  }

  async claim(max: number, _wait: number, signal?: AbortSignal): Promise<ClaimResult> {
    this.claimCalls.push({ max, at: Date.now() });
    const step = this.claims.shift();
    if (step instanceof KeyfleetError) throw step;
    if (step === undefined) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 20);
        signal?.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        });
      });
      if (signal?.aborted) throw new KeyfleetError('KF_SERVICE_UNREACHABLE', 'stopped');
      return { requests: [], receivedAt: Date.now(), serverDate: undefined };
    }
    // What did not fit stays queued, as on the server.
    if (step.length > max) this.claims.unshift(step.slice(max));
    return { requests: step.slice(0, max), receivedAt: Date.now(), serverDate: undefined };
  }

  async postResult(requestId: string, result: ResultRequest): Promise<void> {
    this.postAttempts++;
    this.attempts.push({ requestId, at: Date.now() });
    const step = this.posts.shift() ?? 'ok';
    if (step instanceof KeyfleetError) throw step;
    this.posted.push({ requestId, result, at: Date.now() });
  }
}

const down = () => new KeyfleetError('KF_SERVICE_UNREACHABLE', 'connection refused');
const fast = { initialMs: 10, maxMs: 40 };

/** Runs until `until` holds (checked every 10 ms), then stops the loop and returns what it did. */
async function runUntil(client: ScriptedClient, until: () => boolean, options: { key?: ConnectorKey; concurrency?: number; events?: ConnectorEvent[] } = {}) {
  const stop = new AbortController();
  const events = options.events ?? [];
  const running = runConnector({ client, key: options.key ?? connectorKeyFrom(connectorKey), concurrency: options.concurrency ?? 4, signal: stop.signal, backoff: fast, log: (e) => events.push(e) });
  const deadline = Date.now() + 20_000;
  while (!until() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  stop.abort();
  return { summary: await running, events };
}

describe('runConnector', () => {
  test('each claimed request is re-wrapped and its payload posted once; the device opens it', async () => {
    const client = new ScriptedClient([[request(1), request(2)], [request(3)]]);
    const { summary } = await runUntil(client, () => client.posted.length === 3);
    assert.deepEqual(summary, { delivered: 3, failed: 0, dropped: 0 });
    assert.deepEqual(client.posted.map((p) => p.requestId).sort(), ['r1', 'r2', 'r3']);
    for (const p of client.posted) {
      assert.ok('payload' in p.result);
      assert.equal(p.result.claimToken, `t${p.requestId.slice(1)}`);
      const opened = decryptContent(Buffer.from(p.result.payload, 'base64'), [{ certificate: device.certificate, key: device.key }]);
      decodeKeyDelivery(opened.content, { pfxId: pfx.id, thumbprint: pfx.thumbprint });
    }
  });

  test('a request that cannot be re-wrapped is reported with its code', async () => {
    const client = new ScriptedClient([[request(1, 60_000, { thumbprint: 'AB'.repeat(20) })]]);
    const { summary } = await runUntil(client, () => client.posted.length === 1);
    assert.deepEqual(summary, { delivered: 0, failed: 1, dropped: 0 });
    const result = client.posted[0]!.result;
    assert.ok('error' in result);
    assert.equal(result.error.code, 'thumbprint-not-found');
  });

  test('never more than `concurrency` re-wraps at once, and claims ask only for free slots', async () => {
    let active = 0;
    let peak = 0;
    const inner = connectorKeyFrom(connectorKey);
    const slowKey: ConnectorKey = {
      async decryptOaep(c, h) {
        active++;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 30));
        active--;
        return inner.decryptOaep(c, h);
      },
    };
    const batch = (from: number) => Array.from({ length: 5 }, (_, i) => request(from + i));
    const client = new ScriptedClient([batch(0), batch(5), batch(10)]);
    await runUntil(client, () => client.posted.length === 15, { key: slowKey, concurrency: 3 });
    assert.equal(client.posted.length, 15);
    assert.equal(peak, 3);
    assert.ok(client.claimCalls.every((c) => c.max >= 1 && c.max <= 3));
  });

  test('while the server is down, claims back off exponentially up to the cap', async () => {
    const client = new ScriptedClient([down(), down(), down(), down(), down(), [request(1)]]);
    const events: ConnectorEvent[] = [];
    await runUntil(client, () => client.posted.length === 1, { events });
    const delays = events.filter((e) => e.type === 'backoff').map((e) => (e as { ms: number }).ms);
    assert.equal(delays.length, 5);
    // Equal jitter: each delay lies in [cap/2, cap] with cap = 10, 20, 40, 40, 40 ms.
    for (const [i, ms] of delays.entries()) {
      const cap = Math.min(40, 10 * 2 ** i);
      assert.ok(ms >= cap / 2 && ms <= cap, `attempt ${i}: ${ms} ms not in [${cap / 2}, ${cap}]`);
    }
    assert.equal(client.posted.length, 1);
  });

  test('a result that cannot be posted is retried while the lease lasts, then dropped; the loop goes on', async () => {
    // r1's lease (3 s, 2 s margin) leaves 1 s: the server stays down for it. r2 is posted after two failures.
    const r1 = request(1, 3_000);
    const client = new ScriptedClient([[r1], [request(2)]], Array.from({ length: 200 }, down));
    const events: ConnectorEvent[] = [];
    const started = Date.now();
    const stopAfter = async () => {
      while (Date.now() - started < 1_500) await new Promise((r) => setTimeout(r, 20));
      client.posts.length = 2;
    };
    const freeing = stopAfter();
    await runUntil(client, () => client.posted.length === 1 && events.some((e) => e.type === 'dropped'), { events });
    await freeing;
    assert.deepEqual(client.posted.map((p) => p.requestId), ['r2']);
    const dropped = events.find((e) => e.type === 'dropped');
    assert.ok(dropped && dropped.type === 'dropped' && dropped.requestId === 'r1');
    // Dropped, and only dropped: r1 is not also logged as delivered.
    assert.deepEqual(events.filter((e) => e.type === 'delivered').map((e) => (e as { requestId: string }).requestId), ['r2']);
    const r1Attempts = client.attempts.filter((a) => a.requestId === 'r1');
    assert.ok(r1Attempts.length >= 5, `r1 was tried ${r1Attempts.length} times`);
    // Nothing after the lease's end less the 2 s margin (a few ms of timer slack allowed).
    const leaseEnd = Date.parse(r1.leaseExpiresAt) - 2_000;
    for (const a of r1Attempts) assert.ok(a.at <= leaseEnd + 50, `posted ${a.at - leaseEnd} ms after the lease`);
  });

  test('a refused result (KF_CONFLICT: the lease was taken over) is dropped and work continues', async () => {
    const client = new ScriptedClient([[request(1)], [request(2)]], [new KeyfleetError('KF_CONFLICT', 'not yours')]);
    const { summary } = await runUntil(client, () => client.posted.length === 1);
    assert.equal(summary.dropped, 1);
    assert.equal(client.postAttempts, 2);
  });

  test('an outdated version stops the loop with KF_CONNECTOR_OUTDATED and nothing is done', async () => {
    const client = new ScriptedClient([new KeyfleetError('KF_CONNECTOR_OUTDATED', 'too old'), [request(1)]]);
    await assert.rejects(runConnector({ client, key: connectorKeyFrom(connectorKey), backoff: fast }), (e) => isKeyfleetError(e, 'KF_CONNECTOR_OUTDATED'));
    assert.equal(client.claimCalls.length, 1);
    assert.equal(client.postAttempts, 0);
  });

  test('a credential revoked while work is in hand stops claiming; the loop ends with KF_UNAUTHENTICATED', async () => {
    const unauth = () => new KeyfleetError('KF_UNAUTHENTICATED', 'revoked');
    const client = new ScriptedClient([[request(1), request(2)], [request(3)], [request(4)]], [unauth(), unauth()]);
    await assert.rejects(runConnector({ client, key: connectorKeyFrom(connectorKey), concurrency: 2, backoff: fast }), (e) => isKeyfleetError(e, 'KF_UNAUTHENTICATED'));
    assert.equal(client.posted.length, 0);
    assert.ok(client.claimCalls.length <= 2, `claimed ${client.claimCalls.length} times`);
  });

  test('stopping finishes the work in hand: results are posted after the stop', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const inner = connectorKeyFrom(connectorKey);
    const gatedKey: ConnectorKey = { decryptOaep: async (c, h) => (await gate, inner.decryptOaep(c, h)) };
    const client = new ScriptedClient([[request(1), request(2)]]);
    const stop = new AbortController();
    const running = runConnector({ client, key: gatedKey, signal: stop.signal, backoff: fast });
    while (client.claimCalls.length < 2) await new Promise((r) => setTimeout(r, 5));
    stop.abort();
    const stoppedAt = Date.now();
    release();
    const summary = await running;
    assert.equal(summary.delivered, 2);
    assert.ok(client.posted.every((p) => p.at >= stoppedAt));
    assert.equal(client.claimCalls.length, 2);
  });

  test('backoffDelay: doubles from the initial delay, capped, jittered within [cap/2, cap]', () => {
    assert.equal(backoffDelay(0, 500, 30_000, () => 0), 250);
    assert.equal(backoffDelay(0, 500, 30_000, () => 0.999999), 500);
    assert.equal(backoffDelay(3, 500, 30_000, () => 0), 2000);
    assert.equal(backoffDelay(10, 500, 30_000, () => 0), 15_000);
    assert.equal(backoffDelay(1000, 500, 30_000, () => 0.999999), 30_000);
  });
});
