/**
 * Ready deliveries travel inline with the check-in answer (src/delivery/reconcile.ts, docs/delivery.md
 * "Check-in") up to INLINE_PAYLOAD_BUDGET per answer; the rest are named by id for the device to fetch, and
 * an installed one is not sent again. Payloads here are stand-in bytes completed straight into the store:
 * what is checked is what the answer carries, not what the device makes of it (agent.test.ts opens real ones).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { DEFAULT_TENANT } from '../../src/cli/context.ts';
import { DeviceAgent } from '../../src/device/agent.ts';
import { DeviceApiClient } from '../../src/device/api-client.ts';
import { INLINE_PAYLOAD_BUDGET } from '../../src/protocol/device-api.ts';
import { type Seed, type TestService, connectorKey, encryptionCertificate, enrollmentToken, importPfx, seed, startService } from './agent-support.ts';

const PAYLOAD_BYTES = 60 * 1024;
/** More than fit in one answer: 60 KiB of payload is 80 KiB of base64. */
const COUNT = Math.floor(INLINE_PAYLOAD_BUDGET / (PAYLOAD_BYTES * 4 / 3)) + 3;

describe('inline delivery payloads', { timeout: 120_000 }, () => {
  let s: TestService;
  let seeded: Seed;
  let dir: string;
  let api: DeviceApiClient;
  const payloads = new Map<string, Buffer>();

  before(async () => {
    s = await startService();
    seeded = await seed(s);
    dir = mkdtempSync(join(tmpdir(), 'kf-inline-'));
    const connector = connectorKey();
    for (let i = 0; i < COUNT; i++) await importPfx(s, 'bob@contoso.com', await encryptionCertificate(s, 'bob@contoso.com'), connector);
    const bob = new DeviceAgent({ stateDir: dir });
    const { deviceId } = await bob.enroll(s.origin, await enrollmentToken(s, seeded.users.bob), { deviceName: 'Bob’s iPhone', model: 'iPhone15,2', operatingSystem: 'iOS', osVersion: '18.1' });
    const identity = (await (await bob.keystore()).snapshot()).identity!;
    api = new DeviceApiClient({ serverUrl: s.origin, deviceId, key: identity.key });
    // The first check-in queues a request per PFX; no connector runs, so they are completed here.
    const first = await api.checkin();
    assert.equal(first.status, 200);
    const tenant = s.ctx.store.forTenant(DEFAULT_TENANT);
    const claimed = await tenant.delivery.claimDeliveryRequests('test', COUNT, Array.from({ length: COUNT }, () => randomUUID()), new Date(Date.now() + 60_000), new Date());
    assert.equal(claimed.length, COUNT);
    for (const r of claimed) {
      const payload = randomBytes(PAYLOAD_BYTES);
      payloads.set(r.id, payload);
      assert.ok(await tenant.delivery.completeDeliveryRequest(r.id, r.claimHash!, { payload }, new Date()));
    }
  });

  after(async () => {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('as many ready payloads as the budget allows come with the answer, each the stored bytes; the others by id only', async () => {
    const answer = await api.checkin();
    assert.equal(answer.status, 200);
    const imported = answer.status === 200 ? answer.state.imported : [];
    assert.equal(imported.length, COUNT);
    assert.ok(imported.every((i) => i.deliveryId !== undefined && payloads.has(i.deliveryId)), 'every one is ready and named');
    const inline = imported.filter((i) => i.payload !== undefined);
    assert.equal(inline.length, Math.floor(INLINE_PAYLOAD_BUDGET / (Math.ceil(PAYLOAD_BYTES / 3) * 4)));
    assert.ok(inline.reduce((n, i) => n + i.payload!.length, 0) <= INLINE_PAYLOAD_BUDGET);
    for (const i of inline) assert.ok(Buffer.from(i.payload!, 'base64').equals(payloads.get(i.deliveryId!)!), i.id);
    // The rest are fetched by id, as before.
    const rest = imported.find((i) => i.payload === undefined)!;
    assert.ok(Buffer.from((await api.delivery(rest.deliveryId!)).payload, 'base64').equals(payloads.get(rest.deliveryId!)!));
  });

  test('an installed certificate’s payload is not sent again, which makes room for the others', async () => {
    const answer = await api.checkin();
    const imported = answer.status === 200 ? answer.state.imported : [];
    const inline = imported.filter((i) => i.payload !== undefined);
    // The device says it installed those it got inline (the service checks only the thumbprint for imported ones).
    const { results } = await api.report(inline.map((i) => ({ kind: 'imported' as const, id: i.id, state: 'installed', thumbprint: i.thumbprint })));
    assert.ok(results.every((r) => r.ok), JSON.stringify(results));
    const next = await api.checkin();
    const after = next.status === 200 ? next.state.imported : [];
    const installed = new Set(inline.map((i) => i.id));
    assert.ok(after.filter((i) => installed.has(i.id)).every((i) => i.payload === undefined && i.state === 'installed'));
    assert.deepEqual(after.filter((i) => !installed.has(i.id)).map((i) => i.payload !== undefined), Array(COUNT - inline.length).fill(true));
  });
});
