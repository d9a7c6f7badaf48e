/**
 * ReadyPush (src/delivery/ready-push.ts) on the real SQLite store: a
 * completed re-wrap moves the device's ETag at once, but the "changed" push
 * waits until none of the device's other requests is with a connector, so
 * one check-in fetches the whole history; a request that stays pending
 * holds the push back only up to the delay; other devices are not held up.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeviceEventHub } from '../../src/delivery/events.ts';
import { ReadyPush } from '../../src/delivery/ready-push.ts';
import { etagOf } from '../../src/delivery/service.ts';
import type { DeviceEvent } from '../../src/protocol/device-api.ts';
import type { DeliveryRequestRecord } from '../../src/store/delivery.ts';
import { TENANT, type World, device, openWorld } from './support.ts';

class RecordingHub extends DeviceEventHub {
  readonly sent: { deviceId: string; event: DeviceEvent }[] = [];
  override publish(tenantId: string, deviceId: string, event: DeviceEvent): number {
    this.sent.push({ deviceId, event });
    return super.publish(tenantId, deviceId, event);
  }
}

describe('ReadyPush', () => {
  let w: World;
  before(async () => {
    w = await openWorld();
  });
  after(async () => {
    await w.close();
  });

  let made = 0;
  /**
   * A device with one delivery request per PFX, the first `claim` of them claimed by one connector. Each
   * device's requests are queued as older than every earlier one, so the claim takes this device's.
   */
  async function deviceWithRequests(pfx: number, claim: number = pfx): Promise<{ deviceId: string; requests: DeliveryRequestRecord[] }> {
    const deviceId = randomUUID();
    await w.tenant.devices.putDevice(device(deviceId, 'u-1'));
    const now = new Date(Date.parse('2020-01-01T00:00:00Z') - ++made * 60_000);
    for (let i = 0; i < pfx; i++) {
      await w.tenant.delivery.ensureDeliveryRequest({
        id: randomUUID(), deviceId, pfxId: `pfx-${i}`, status: 'pending', claimHash: undefined, connectorId: undefined, leaseUntil: undefined,
        attempts: 0, payload: undefined, errorCode: undefined, errorDetail: undefined, createdAt: now, updatedAt: now,
      });
    }
    const hashes = Array.from({ length: claim }, () => randomUUID());
    const claimed = claim === 0 ? [] : await w.tenant.delivery.claimDeliveryRequests('c-1', claim, hashes, new Date(Date.now() + 60_000), new Date());
    return { deviceId, requests: claimed.filter((r) => r.deviceId === deviceId) };
  }

  async function complete(r: DeliveryRequestRecord): Promise<void> {
    assert.ok(await w.tenant.delivery.completeDeliveryRequest(r.id, r.claimHash!, { payload: new Uint8Array([1]) }, new Date()));
  }

  it('pushes once, after the last of the device’s requests is done, with the ETag the device now has', async () => {
    const hub = new RecordingHub();
    const push = new ReadyPush({ store: w.store, events: hub, maxDelayMs: 60_000 });
    const { deviceId, requests } = await deviceWithRequests(3);
    assert.equal(requests.length, 3);
    const versions: number[] = [];
    for (const r of requests) {
      await complete(r);
      await push.completed(TENANT, r);
      versions.push((await w.tenant.devices.getDevice(deviceId))!.version);
    }
    assert.deepEqual(versions, [2, 3, 4], 'each completion moves the ETag at once');
    const current = (await w.tenant.devices.getDevice(deviceId))!;
    assert.deepEqual(hub.sent, [{ deviceId, event: { type: 'changed', version: etagOf(current) } }]);
    assert.equal(push.held, 0);
    push.close();
  });

  it('a request still pending holds the push back only up to the delay; other devices are pushed at once', async () => {
    const hub = new RecordingHub();
    const push = new ReadyPush({ store: w.store, events: hub, maxDelayMs: 100 });
    // Two requests queued, only the first claimed: the second waits for a connector.
    const slow = await deviceWithRequests(2, 1);
    assert.equal(slow.requests.length, 1);
    await complete(slow.requests[0]!);
    await push.completed(TENANT, slow.requests[0]!);
    assert.equal(hub.sent.length, 0);
    assert.equal(push.held, 1);

    const quick = await deviceWithRequests(1);
    await complete(quick.requests[0]!);
    await push.completed(TENANT, quick.requests[0]!);
    assert.deepEqual(hub.sent.map((x) => x.deviceId), [quick.deviceId]);

    const until = Date.now() + 5_000;
    while (hub.sent.length < 2 && Date.now() < until) await sleep(10);
    const current = (await w.tenant.devices.getDevice(slow.deviceId))!;
    assert.deepEqual(hub.sent[1], { deviceId: slow.deviceId, event: { type: 'changed', version: etagOf(current) } });
    assert.equal(push.held, 0);
    push.close();
  });

  it('a failed re-wrap counts as done; close() drops what is held and nothing is sent after', async () => {
    const hub = new RecordingHub();
    const push = new ReadyPush({ store: w.store, events: hub, maxDelayMs: 50 });
    const { deviceId, requests } = await deviceWithRequests(2);
    assert.ok(await w.tenant.delivery.completeDeliveryRequest(requests[0]!.id, requests[0]!.claimHash!, { errorCode: 'pfx-unreadable', errorDetail: 'bad password' }, new Date()));
    await push.completed(TENANT, requests[0]!);
    assert.equal(push.held, 1);
    push.close();
    await sleep(120);
    assert.equal(hub.sent.length, 0, 'the held push was dropped');
    await complete(requests[1]!);
    await push.completed(TENANT, requests[1]!);
    assert.deepEqual(hub.sent.map((x) => x.deviceId), [deviceId]);
  });

  it('a device deleted meanwhile is simply not told', async () => {
    const hub = new RecordingHub();
    const push = new ReadyPush({ store: w.store, events: hub });
    const { deviceId, requests } = await deviceWithRequests(1);
    await complete(requests[0]!);
    assert.ok(await w.tenant.devices.deleteDevice(deviceId));
    await push.completed(TENANT, requests[0]!);
    assert.deepEqual(hub.sent, []);
    push.close();
  });
});
