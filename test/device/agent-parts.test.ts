/**
 * The agent's parts that need no service: the event-stream parser, the
 * checks on the service's answers, and the push listener's reconnecting
 * and check-in scheduling (against a scripted target).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ListenEvent, type ListenTarget, listen, reconnectDelay } from '../../src/device/agent-listen.ts';
import type { CheckinSummary } from '../../src/device/agent.ts';
import { SseParser } from '../../src/device/api-client.ts';
import { PortalProgress } from '../../src/device/portal.ts';
import { parseDesiredState, parseDeviceEvent, parseReportResponse } from '../../src/device/wire.ts';
import { KeyfleetError, isKeyfleetError } from '../../src/errors.ts';
import type { DeviceEvent } from '../../src/protocol/device-api.ts';

describe('SseParser', () => {
  test('events split anywhere across chunks, CRLF or LF, comments and unknown fields ignored', () => {
    const p = new SseParser();
    const text = ': heartbeat\r\nretry: 5000\r\n\r\nevent: changed\r\ndata: {"type":"changed",\r\ndata: "version":"\\"a.1\\""}\r\nid: 7\r\n\r\n: hb\n\nevent: notification\ndata: x\n\n';
    const events = [];
    for (let i = 0; i < text.length; i += 3) events.push(...p.push(text.slice(i, i + 3)));
    assert.deepEqual(events, [
      { event: 'message', data: undefined, retry: 5000 },
      { event: 'changed', data: '{"type":"changed",\n"version":"\\"a.1\\""}', retry: undefined },
      { event: 'notification', data: 'x', retry: undefined },
    ]);
  });

  test('a line without end past 64 KiB ends the stream', () => {
    const p = new SseParser();
    assert.throws(() => p.push(`data: ${'x'.repeat(70_000)}`), (e) => isKeyfleetError(e, 'KF_SERVICE_UNREACHABLE'));
  });

  test('event data is checked: a changed event must say so, unknown types are skipped', () => {
    assert.deepEqual(parseDeviceEvent('changed', '{"type":"changed","version":"\\"h.3\\""}'), { type: 'changed', version: '"h.3"' });
    assert.equal(parseDeviceEvent('hello', '{}'), undefined);
    assert.throws(() => parseDeviceEvent('changed', '{"type":"notification"}'), (e) => isKeyfleetError(e, 'KF_SERVICE_UNREACHABLE'));
    assert.throws(() => parseDeviceEvent('notification', 'not json'), (e) => isKeyfleetError(e, 'KF_SERVICE_UNREACHABLE'));
  });
});

describe('answers from the service are checked before use', () => {
  const state = () => ({
    deviceId: 'd-1', managementState: 'managed', version: '"h.1"', trustedRoots: [], appConfigurations: [], imported: [], remove: [], policies: [],
    scep: [{ id: 's-1', profileId: 'p', purpose: 'smimeSigning', state: 'challengeIssued', request: { url: 'https://k.example/scep/p', challenge: 'c', expiresAt: '2030-01-01T00:00:00.000Z', subject: 'CN=a', keySize: 2048, keyUsage: ['digitalSignature'], caFingerprint: 'ab'.repeat(32) } }],
  });

  const IMPORTED = { id: 'i-1', profileId: 'p', pfxId: 'x-1', intendedPurpose: 'smimeEncryption', thumbprint: 'ab'.repeat(20), state: 'enrollmentNotNeeded', deliveryId: 'd-9', payload: 'MIIB' };

  test('a well-formed state is kept, with only the fields the protocol names; hex upper-cased', () => {
    const parsed = parseDesiredState({ ...state(), imported: [IMPORTED], extra: 'dropped' });
    assert.equal('extra' in parsed, false);
    assert.equal(parsed.scep[0]!.request!.caFingerprint, 'AB'.repeat(32));
    assert.deepEqual(parsed.imported[0], { ...IMPORTED, thumbprint: 'AB'.repeat(20) });
  });

  for (const [what, change] of [
    ['an unknown management state', (s: Record<string, unknown>) => ({ ...s, managementState: 'gone' })],
    ['a SCEP URL that is not http(s)', (s: Record<string, unknown>) => ({ ...s, scep: [{ ...(s['scep'] as object[])[0], request: { ...((s['scep'] as { request: object }[])[0]!.request), url: 'file:///etc/passwd' } }] })],
    ['a key size no profile has', (s: Record<string, unknown>) => ({ ...s, scep: [{ ...(s['scep'] as object[])[0], request: { ...((s['scep'] as { request: object }[])[0]!.request), keySize: 512 } }] })],
    ['a malformed thumbprint', (s: Record<string, unknown>) => ({ ...s, remove: [{ id: 'r', kind: 'scep', thumbprint: 'xyz', reason: 'retired' }] })],
    ['a removal of no known kind', (s: Record<string, unknown>) => ({ ...s, remove: [{ id: 'r', kind: 'wifi', thumbprint: 'A'.repeat(40), reason: 'retired' }] })],
    ['too many items', (s: Record<string, unknown>) => ({ ...s, remove: Array.from({ length: 1001 }, (_, i) => ({ id: `r${i}`, kind: 'scep', thumbprint: 'A'.repeat(40), reason: 'retired' })) })],
    ['an inline delivery payload without its delivery id', (s: Record<string, unknown>) => ({ ...s, imported: [{ ...IMPORTED, deliveryId: undefined }] })],
    ['an inline delivery payload that is not base64', (s: Record<string, unknown>) => ({ ...s, imported: [{ ...IMPORTED, payload: 'not base64!' }] })],
    ['an inline delivery payload past the size limit', (s: Record<string, unknown>) => ({ ...s, imported: [{ ...IMPORTED, payload: 'A'.repeat(Math.ceil((64 * 1024) / 3) * 4 + 4) }] })],
    ['not an object', () => []],
  ] as const) {
    test(`refused: ${what}`, () => {
      assert.throws(() => parseDesiredState(change(state() as Record<string, unknown>)), (e) => isKeyfleetError(e, 'KF_SERVICE_UNREACHABLE') && /not the protocol/.test(e.message));
    });
  }

  test('a report answer must have one result per item', () => {
    assert.deepEqual(parseReportResponse({ results: [{ ok: true }, { ok: false, code: 'KF_USAGE', detail: 'no' }] }, 2).results[1], { ok: false, code: 'KF_USAGE', detail: 'no' });
    assert.throws(() => parseReportResponse({ results: [{ ok: true }] }, 2), (e) => isKeyfleetError(e, 'KF_SERVICE_UNREACHABLE'));
  });
});

describe('the push listener', () => {
  test('reconnect delays double with jitter up to the cap', () => {
    assert.equal(reconnectDelay(0, 100, 1000, () => 0), 50);
    assert.equal(reconnectDelay(0, 100, 1000, () => 0.999999), 100);
    assert.equal(reconnectDelay(3, 100, 1000, () => 0.5), 600);
    assert.equal(reconnectDelay(40, 100, 1000, () => 0.5), 750);
  });

  test('reconnects after failures, checks in on connect and on a changed version only, shows notifications', async () => {
    const summary = { result: 'unchanged' } as CheckinSummary;
    const reasons: string[] = [];
    const events: ListenEvent[] = [];
    const progress = new PortalProgress();
    const etag = '"h.1"';
    let connects = 0;
    let release: () => void = () => {};
    const target: ListenTarget = {
      async events(signal, hooks) {
        connects++;
        if (connects <= 2) throw new KeyfleetError('KF_SERVICE_UNREACHABLE', `down ${connects}`);
        hooks.onOpen();
        const script: DeviceEvent[] = [
          { type: 'changed', version: '"h.1"' },
          { type: 'notification', notification: { id: 'n-1', title: 'Set up S/MIME', body: 'Open the portal', createdDateTime: '2025-01-01T00:00:00.000Z', read: false } },
          { type: 'changed', version: '"h.2"' },
        ];
        return (async function* () {
          for (const e of script) yield e;
          // Then silence until stopped.
          if (!signal.aborted) {
            await new Promise<void>((resolve) => {
              release = resolve;
              signal.addEventListener('abort', () => resolve(), { once: true });
            });
          }
        })();
      },
      async checkin() {
        reasons.push('checkin');
        await new Promise((r) => setTimeout(r, 5));
        return summary;
      },
      currentEtag: () => etag,
      enrolled: () => true,
      progress,
      deviceId: 'd-1',
    };
    const listener = listen(target, { backoff: { initialMs: 10, maxMs: 40 }, random: () => 0.5, checkinAtStart: false, onEvent: (e) => events.push(e) });
    const deadline = Date.now() + 5000;
    while (!events.some((e) => e.type === 'checkin' && e.reason === 'changed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    release();
    await listener.stop();

    const delays = events.flatMap((e) => (e.type === 'disconnected' ? [e.retryInMs] : []));
    assert.deepEqual(delays, [8, 15], 'two failures, backing off');
    assert.ok(events.some((e) => e.type === 'connected'));
    const checkins = events.flatMap((e) => (e.type === 'checkin' ? [e.reason] : []));
    assert.deepEqual(checkins, ['connected', 'changed'], 'the changed event naming the version already held asked for nothing');
    assert.deepEqual(progress.snapshot().notifications.map((n) => n.id), ['n-1']);
    assert.equal(events.at(-1)?.type, 'stopped');
  });

  test('stops by itself once the device is no longer enrolled', async () => {
    let enrolled = true;
    const target: ListenTarget = {
      async events(signal) {
        return (async function* (): AsyncGenerator<DeviceEvent> {
          if (!signal.aborted) await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        })();
      },
      async checkin() {
        enrolled = false;
        return { result: 'retired' } as CheckinSummary;
      },
      currentEtag: () => undefined,
      enrolled: () => enrolled,
      progress: undefined,
      deviceId: 'd-1',
    };
    const events: ListenEvent[] = [];
    const listener = listen(target, { onEvent: (e) => events.push(e) });
    await listener.done;
    assert.deepEqual(events.at(-1), { type: 'stopped', why: 'the device is no longer enrolled' });
  });
});
