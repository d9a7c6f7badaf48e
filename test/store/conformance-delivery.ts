/** DeliveryStore and DeliveryLookup (src/store/delivery.ts) on a backend: the same behaviour on SQLite and PostgreSQL. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { ConnectorRecord, DeliveryRequestRecord, EnrollmentTokenRecord, NotificationRecord } from '../../src/store/delivery.ts';
import { MAX_DELIVERY_ATTEMPTS } from '../../src/store/delivery.ts';
import type { Page } from '../../src/store/directory.ts';
import type { Store, TenantStore } from '../../src/store/store.ts';
import { deviceRecord } from './conformance-devices.ts';
import { userRecord } from './conformance-directory.ts';
import { HOUR, T0, at, bytesOf } from './fixtures.ts';
import { rejectsWith, type StoreBackend } from './suite.ts';

let secrets = 0;
/** A fresh SHA-256, lower-case hex: secret hashes are unique across every tenant of the database. */
const newHash = (): string => createHash('sha256').update(`secret ${++secrets}`).digest('hex');

export function tokenRecord(id: string, userId: string, secretHash: string, overrides: Partial<EnrollmentTokenRecord> = {}): EnrollmentTokenRecord {
  return { id, userId, secretHash, createdAt: T0, expiresAt: at(24 * HOUR), usedAt: undefined, deviceId: undefined, ...overrides };
}

export function connectorRecord(id: string, secretHash: string, overrides: Partial<ConnectorRecord> = {}): ConnectorRecord {
  return { id, name: `Connector ${id}`, secretHash, version: undefined, lastSeenAt: undefined, createdAt: T0, revokedAt: undefined, ...overrides };
}

export function requestRecord(id: string, deviceId: string, pfxId: string, overrides: Partial<DeliveryRequestRecord> = {}): DeliveryRequestRecord {
  return {
    id,
    deviceId,
    pfxId,
    status: 'pending',
    claimHash: undefined,
    connectorId: undefined,
    leaseUntil: undefined,
    attempts: 0,
    payload: undefined,
    errorCode: undefined,
    errorDetail: undefined,
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

export function notificationRecord(id: string, deviceId: string, overrides: Partial<NotificationRecord> = {}): NotificationRecord {
  return { id, deviceId, channel: 'companyPortal', title: 'Certificates', body: 'Open the Company Portal', createdAt: T0, readAt: undefined, sentAt: undefined, sendError: undefined, ...overrides };
}

async function collect<T>(list: (cursor: string | undefined) => Promise<Page<T>>): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await list(cursor);
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return out;
}

const cursorOf = (cursor: string | undefined) => (cursor === undefined ? {} : { cursor });
const ids = (records: readonly { readonly id: string }[]): string[] => records.map((r) => r.id);

/** Claims with fresh hashes, leased for a minute from `when`. */
function claim(t: TenantStore, connectorId: string, max: number, when: Date): Promise<DeliveryRequestRecord[]> {
  const hashes = Array.from({ length: max }, newHash);
  return t.delivery.claimDeliveryRequests(connectorId, max, hashes, new Date(when.getTime() + 60_000), when);
}

export function deliveryStoreConformance(backend: StoreBackend): void {
  describe(`DeliveryStore on ${backend.name}`, { skip: backend.skip ?? false }, () => {
    let store: Store;
    let tenants = 0;
    let devices = 0;
    const newTenant = async (): Promise<TenantStore> => {
      const id = `delivery-${++tenants}`;
      assert.equal(await store.ensureTenant(id, id), true);
      return store.forTenant(id);
    };
    /** Devices with ids no other test uses: DeliveryLookup.findDevice searches every tenant. */
    const newDevice = async (t: TenantStore): Promise<string> => {
      const id = `device-${++devices}`;
      await t.devices.putDevice(deviceRecord(id));
      return id;
    };

    before(async () => {
      await backend.setUp();
      store = await backend.open();
    });
    after(async () => {
      await store?.close();
      await backend.tearDown();
    });

    test('enrollment tokens: listed by user; used once; a replay, an expired and an unknown secret are told apart', async () => {
      const t = await newTenant();
      await t.directory.putUser(userRecord('u1'));
      await t.directory.putUser(userRecord('u2'));
      const [h1, h2, h3] = [newHash(), newHash(), newHash()];
      const tk1 = tokenRecord('tk1', 'u1', h1, { createdAt: at(1), expiresAt: at(HOUR) });
      const tk2 = tokenRecord('tk2', 'u1', h2, { createdAt: at(2), expiresAt: at(HOUR) });
      await t.delivery.putEnrollmentToken(tk2);
      await t.delivery.putEnrollmentToken(tk1);
      await t.delivery.putEnrollmentToken(tokenRecord('tk3', 'u2', h3));
      assert.deepEqual(await t.delivery.listEnrollmentTokens('u1'), [tk1, tk2]);
      assert.deepEqual(await t.delivery.listEnrollmentTokens('nobody'), []);

      const used = { ...tk1, usedAt: at(HOUR - 1), deviceId: 'dev-a' };
      assert.deepEqual(await t.delivery.useEnrollmentToken(h1, 'dev-a', at(HOUR - 1)), { outcome: 'ok', token: used });
      assert.deepEqual(await t.delivery.useEnrollmentToken(h1, 'dev-b', at(HOUR - 1)), { outcome: 'used' });
      // Still "used" after it expired: the replay is what happened.
      assert.deepEqual(await t.delivery.useEnrollmentToken(h1, 'dev-b', at(2 * HOUR)), { outcome: 'used' });
      // Expired at expiresAt exactly.
      assert.deepEqual(await t.delivery.useEnrollmentToken(h2, 'dev-c', at(HOUR)), { outcome: 'expired' });
      assert.deepEqual(await t.delivery.useEnrollmentToken(newHash(), 'dev-c', T0), { outcome: 'unknown' });
      assert.deepEqual(await t.delivery.listEnrollmentTokens('u1'), [used, tk2]);

      await rejectsWith(t.delivery.putEnrollmentToken(tokenRecord('tk1', 'u1', newHash())), 'KF_CONFLICT');
      await rejectsWith(t.delivery.putEnrollmentToken(tokenRecord('tk9', 'u1', h2)), 'KF_CONFLICT');
      // The secret is unique across tenants: it alone names the tenant.
      const other = await newTenant();
      await other.directory.putUser(userRecord('u1'));
      await rejectsWith(other.delivery.putEnrollmentToken(tokenRecord('tk1', 'u1', h3)), 'KF_CONFLICT');
      await rejectsWith(t.delivery.putEnrollmentToken(tokenRecord('tk9', 'ghost', newHash())), 'KF_NOT_FOUND');
      // A deleted user's tokens go with it.
      assert.equal(await t.directory.deleteUser('u2'), true);
      assert.deepEqual(await t.delivery.listEnrollmentTokens('u2'), []);
      assert.equal(await store.deliveryLookup.findEnrollmentToken(h3), undefined);
    });

    test('of concurrent uses of one enrollment token exactly one succeeds', async () => {
      const t = await newTenant();
      await t.directory.putUser(userRecord('u1'));
      const hash = newHash();
      await t.delivery.putEnrollmentToken(tokenRecord('tk', 'u1', hash));
      const outcomes = await Promise.all(Array.from({ length: 8 }, (_, i) => t.delivery.useEnrollmentToken(hash, `dev-${i}`, at(i))));
      const winners = outcomes.flatMap((o) => (o.outcome === 'ok' ? [o.token] : []));
      assert.equal(winners.length, 1);
      assert.deepEqual(outcomes.map((o) => o.outcome).sort(), ['ok', ...Array<string>(7).fill('used')]);
      assert.deepEqual((await t.delivery.listEnrollmentTokens('u1'))[0], winners[0]);
    });

    test('connectors: put, get, list in creation order; touch writes at most once a minute unless the version changes; revoke once', async () => {
      const t = await newTenant();
      const hash = newHash();
      const c2 = connectorRecord('c2', newHash(), { createdAt: at(1), version: '6.2105.1.0', lastSeenAt: at(1) });
      const c1 = connectorRecord('c1', hash, { createdAt: at(2) });
      await t.delivery.putConnector(c1);
      await t.delivery.putConnector(c2);
      assert.deepEqual(await t.delivery.getConnector('c1'), c1);
      assert.equal(await t.delivery.getConnector('nope'), undefined);
      assert.deepEqual(await t.delivery.listConnectors(), [c2, c1]);
      await rejectsWith(t.delivery.putConnector(connectorRecord('c1', newHash())), 'KF_CONFLICT');
      await rejectsWith(t.delivery.putConnector(connectorRecord('c3', hash)), 'KF_CONFLICT');
      await rejectsWith(store.forTenant('ghost').delivery.putConnector(connectorRecord('c1', newHash())), 'KF_NOT_FOUND');

      const seen = async () => {
        const c = await t.delivery.getConnector('c1');
        return [c?.version, c?.lastSeenAt?.getTime()];
      };
      await t.delivery.touchConnector('c1', '6.1911.11.0', at(10_000));
      assert.deepEqual(await seen(), ['6.1911.11.0', at(10_000).getTime()]);
      await t.delivery.touchConnector('c1', '6.1911.11.0', at(69_999));
      assert.deepEqual(await seen(), ['6.1911.11.0', at(10_000).getTime()]);
      await t.delivery.touchConnector('c1', '6.1911.11.0', at(70_000));
      assert.deepEqual(await seen(), ['6.1911.11.0', at(70_000).getTime()]);
      await t.delivery.touchConnector('c1', '6.2105.1.0', at(70_001));
      assert.deepEqual(await seen(), ['6.2105.1.0', at(70_001).getTime()]);
      await t.delivery.touchConnector('nope', '1.0', at(1));

      assert.equal(await t.delivery.revokeConnector('c1', at(5)), true);
      assert.equal(await t.delivery.revokeConnector('c1', at(6)), false);
      assert.equal(await t.delivery.revokeConnector('nope', at(6)), false);
      assert.deepEqual((await t.delivery.getConnector('c1'))?.revokedAt, at(5));
      assert.deepEqual(await t.delivery.getConnector('c2'), c2);
    });

    test('ensureDeliveryRequest queues once per (device, PFX), and takes a cancelled request up again', async () => {
      const t = await newTenant();
      const d1 = await newDevice(t);
      const d2 = await newDevice(t);
      const r1 = requestRecord('r1', d1, 'p1');
      assert.deepEqual(await t.delivery.ensureDeliveryRequest(r1), r1);
      assert.deepEqual(await t.delivery.ensureDeliveryRequest(r1), r1);
      assert.deepEqual(await t.delivery.ensureDeliveryRequest(requestRecord('r2', d1, 'p1', { createdAt: at(1) })), r1);
      assert.equal(await t.delivery.getDeliveryRequest('r2'), undefined);
      assert.deepEqual(await t.delivery.ensureDeliveryRequest(requestRecord('r3', d1, 'p2')), requestRecord('r3', d1, 'p2'));
      assert.deepEqual(await t.delivery.ensureDeliveryRequest(requestRecord('r4', d2, 'p1')), requestRecord('r4', d2, 'p1'));
      assert.deepEqual(await t.delivery.getDeliveryRequest('r1'), r1);
      assert.equal(await t.delivery.getDeliveryRequest('nope'), undefined);
      await rejectsWith(t.delivery.ensureDeliveryRequest(requestRecord('r1', d2, 'p2')), 'KF_CONFLICT');
      await rejectsWith(t.delivery.ensureDeliveryRequest(requestRecord('r5', 'ghost', 'p1')), 'KF_NOT_FOUND');

      const [claimed] = await claim(t, 'c1', 1, at(5));
      assert.equal(claimed?.id, 'r1');
      assert.equal(await t.delivery.cancelDeliveryRequests(d1, ['p1'], at(6)), 1);
      // The PFX is assigned again: the same request, pending once more, with its place in the queue and its attempts.
      const again = await t.delivery.ensureDeliveryRequest(requestRecord('r6', d1, 'p1', { createdAt: at(7), updatedAt: at(7) }));
      assert.deepEqual(again, { ...r1, attempts: 1, updatedAt: at(7) });
      assert.equal(await t.delivery.getDeliveryRequest('r6'), undefined);
    });

    test('listDeliveryRequests pages in id order and filters by device and status; countDeliveryRequests agrees', async () => {
      const t = await newTenant();
      const d1 = await newDevice(t);
      const d2 = await newDevice(t);
      for (const [id, device, pfx] of [['rb', d1, 'p1'], ['Ra', d2, 'p1'], ['ra', d1, 'p2'], ['rc', d2, 'p2'], ['r0', d1, 'p3']] as const) {
        await t.delivery.ensureDeliveryRequest(requestRecord(id, device, pfx));
      }
      assert.equal(await t.delivery.cancelDeliveryRequests(d2, ['p2'], at(1)), 1);
      const all = await collect((cursor) => t.delivery.listDeliveryRequests({}, { limit: 2, ...cursorOf(cursor) }));
      assert.deepEqual(ids(all), ['Ra', 'r0', 'ra', 'rb', 'rc']);
      assert.deepEqual(ids((await t.delivery.listDeliveryRequests({ deviceId: d1 })).items), ['r0', 'ra', 'rb']);
      assert.deepEqual(ids((await t.delivery.listDeliveryRequests({ status: 'cancelled' })).items), ['rc']);
      assert.deepEqual(ids((await t.delivery.listDeliveryRequests({ deviceId: d2, status: 'pending' })).items), ['Ra']);
      assert.deepEqual(ids((await t.delivery.listDeliveryRequests({}, { offset: 3 })).items), ['rb', 'rc']);
      assert.equal(await t.delivery.countDeliveryRequests('pending'), 4);
      assert.equal(await t.delivery.countDeliveryRequests('cancelled'), 1);
      assert.equal(await t.delivery.countDeliveryRequests('ready'), 0);
      await rejectsWith(t.delivery.listDeliveryRequests({}, { cursor: 'not a cursor' }), 'KF_USAGE');
      // d2 has one pending request (Ra) beside its cancelled one.
      assert.equal(await t.delivery.hasOpenDeliveryRequests(d2), true);
      assert.equal(await t.delivery.hasOpenDeliveryRequests(d2, 'Ra'), false);
      assert.equal(await t.delivery.hasOpenDeliveryRequests(d1, 'ra'), true);
      const [claimed] = await t.delivery.claimDeliveryRequests('c1', 1, [newHash()], at(HOUR), at(2));
      assert.equal(await t.delivery.hasOpenDeliveryRequests(claimed!.deviceId), true, 'a claimed request is open');
      assert.ok(await t.delivery.completeDeliveryRequest(claimed!.id, claimed!.claimHash!, { payload: bytesOf(1) }, at(3)));
      assert.equal(await t.delivery.hasOpenDeliveryRequests(d2), claimed!.id !== 'Ra', 'a ready request is not');
      assert.equal(await t.delivery.hasOpenDeliveryRequests('no-such-device'), false);
    });

    test('claimDeliveryRequests leases the oldest open requests, up to max, each with its own claim hash', async () => {
      const t = await newTenant();
      const d = await newDevice(t);
      // Creation order differs from id order; two share an instant and then go by id.
      const created: [string, number][] = [['e', 5], ['a', 3], ['d', 1], ['c', 3], ['b', 4], ['f', 6]];
      for (const [id, ms] of created) await t.delivery.ensureDeliveryRequest(requestRecord(id, d, `p-${id}`, { createdAt: at(ms) }));
      assert.equal(await t.delivery.cancelDeliveryRequests(d, ['p-f'], at(7)), 1);
      const hashes = [newHash(), newHash(), newHash(), newHash()];
      const first = await t.delivery.claimDeliveryRequests('c1', 3, hashes, at(HOUR), at(10));
      assert.deepEqual(ids(first), ['d', 'a', 'c']);
      assert.equal(new Set(first.map((r) => r.claimHash)).size, 3);
      for (const r of first) {
        assert.ok(hashes.includes(r.claimHash!));
        assert.deepEqual(r, {
          ...requestRecord(r.id, d, `p-${r.id}`, { createdAt: r.createdAt }),
          status: 'claimed',
          claimHash: r.claimHash,
          connectorId: 'c1',
          leaseUntil: at(HOUR),
          attempts: 1,
          updatedAt: at(10),
        });
        assert.deepEqual(await t.delivery.getDeliveryRequest(r.id), r);
      }
      assert.deepEqual(ids(await claim(t, 'c2', 10, at(11))), ['b', 'e']);
      assert.deepEqual(await claim(t, 'c2', 10, at(12)), []);
      assert.equal(await t.delivery.countDeliveryRequests('claimed'), 5);

      await rejectsWith(t.delivery.claimDeliveryRequests('c1', 0, [], at(HOUR), at(1)), 'KF_USAGE');
      await rejectsWith(t.delivery.claimDeliveryRequests('c1', 2, [newHash()], at(HOUR), at(1)), 'KF_USAGE');
      const twice = newHash();
      await rejectsWith(t.delivery.claimDeliveryRequests('c1', 2, [twice, twice], at(HOUR), at(1)), 'KF_USAGE');
    });

    test('a request whose lease ran out is claimed again with one more attempt; one under a live lease is not', async () => {
      const t = await newTenant();
      const d = await newDevice(t);
      await t.delivery.ensureDeliveryRequest(requestRecord('r1', d, 'p1'));
      const [first] = await t.delivery.claimDeliveryRequests('c1', 1, [newHash()], at(1000), at(0));
      assert.equal(first?.attempts, 1);
      assert.deepEqual(await claim(t, 'c2', 5, at(999)), []);
      const [second] = await claim(t, 'c2', 5, at(1000));
      assert.equal(second?.id, 'r1');
      assert.equal(second.attempts, 2);
      assert.equal(second.connectorId, 'c2');
      assert.notEqual(second.claimHash, first.claimHash);
      // The first connector's late result is refused; the one holding the lease completes it.
      assert.equal(await t.delivery.completeDeliveryRequest('r1', first.claimHash!, { payload: bytesOf(1) }, at(1001)), false);
      assert.equal(await t.delivery.completeDeliveryRequest('r1', second.claimHash!, { payload: bytesOf(2) }, at(1002)), true);
      assert.deepEqual((await t.delivery.getDeliveryRequest('r1'))?.payload, bytesOf(2));
    });

    test('a request whose lease ran out MAX_DELIVERY_ATTEMPTS times is failed, not handed out again; a retry gives it one more lease', async () => {
      const t = await newTenant();
      const d = await newDevice(t);
      await t.delivery.ensureDeliveryRequest(requestRecord('poison', d, 'p1', { createdAt: at(0) }));
      await t.delivery.ensureDeliveryRequest(requestRecord('fine', d, 'p2', { createdAt: at(1) }));
      let now = 10;
      for (let attempt = 1; attempt <= MAX_DELIVERY_ATTEMPTS; attempt++) {
        const [r] = await t.delivery.claimDeliveryRequests(`c${attempt}`, 1, [newHash()], at(now + 100), at(now));
        assert.deepEqual([r?.id, r?.attempts], ['poison', attempt]);
        now += 100; // the lease runs out unanswered
      }
      // The next claim fails the exhausted request and goes on to the next one.
      const next = await claim(t, 'c9', 2, at(now));
      assert.deepEqual(ids(next), ['fine']);
      const failed = await t.delivery.getDeliveryRequest('poison');
      assert.deepEqual(
        [failed?.status, failed?.errorCode, failed?.attempts, failed?.claimHash, failed?.leaseUntil],
        ['failed', 'attempts-exhausted', MAX_DELIVERY_ATTEMPTS, undefined, undefined],
      );
      assert.match(failed?.errorDetail ?? '', /5 leases/);
      assert.deepEqual(await claim(t, 'c9', 2, at(now + 1)), []);
      assert.equal(await t.delivery.retryDeliveryRequest('poison', at(now + 2)), true);
      const [again] = await claim(t, 'c9', 1, at(now + 3));
      assert.deepEqual([again?.id, again?.status, again?.attempts, again?.errorCode], ['poison', 'claimed', MAX_DELIVERY_ATTEMPTS + 1, undefined]);
    });

    test('completeDeliveryRequest succeeds once, for the claim that holds the request', async () => {
      const t = await newTenant();
      const d = await newDevice(t);
      for (const pfx of ['p1', 'p2', 'p3']) await t.delivery.ensureDeliveryRequest(requestRecord(`r-${pfx}`, d, pfx));
      const claimed = await t.delivery.claimDeliveryRequests('c1', 2, [newHash(), newHash()], at(100), at(0));
      const [r1, r2] = claimed as [DeliveryRequestRecord, DeliveryRequestRecord];
      const payload = bytesOf(0x30, 0x80, 0, 0, 0xff);
      assert.equal(await t.delivery.completeDeliveryRequest(r1.id, r2.claimHash!, { payload }, at(1)), false);
      assert.equal(await t.delivery.completeDeliveryRequest(r1.id, r1.claimHash!, { payload }, at(2)), true);
      assert.equal(await t.delivery.completeDeliveryRequest(r1.id, r1.claimHash!, { payload: bytesOf(9) }, at(3)), false);
      assert.deepEqual(await t.delivery.getDeliveryRequest(r1.id), { ...r1, status: 'ready', payload, leaseUntil: undefined, updatedAt: at(2) });
      // A lease that ran out but was taken over by no one still completes: the work is done.
      const failure = { errorCode: 'pfxOpenFailed', errorDetail: 'the PFX password does not open it' };
      assert.equal(await t.delivery.completeDeliveryRequest(r2.id, r2.claimHash!, failure, at(500)), true);
      assert.deepEqual(await t.delivery.getDeliveryRequest(r2.id), { ...r2, status: 'failed', ...failure, leaseUntil: undefined, updatedAt: at(500) });
      // Pending (never claimed) and unknown requests cannot be completed.
      assert.equal(await t.delivery.completeDeliveryRequest('r-p3', r1.claimHash!, { payload }, at(4)), false);
      assert.equal(await t.delivery.completeDeliveryRequest('nope', r1.claimHash!, { payload }, at(4)), false);
      assert.equal(await t.delivery.countDeliveryRequests('ready'), 1);
      assert.equal(await t.delivery.countDeliveryRequests('failed'), 1);
      // Done requests are not claimed again.
      assert.deepEqual(ids(await claim(t, 'c1', 5, at(HOUR))), ['r-p3']);
    });

    test('concurrent claims never hand out the same request', async () => {
      const t = await newTenant();
      const d = await newDevice(t);
      const n = 200;
      await t.transaction(async (tx) => {
        for (let i = 0; i < n; i++) await tx.delivery.ensureDeliveryRequest(requestRecord(`q${String(i).padStart(3, '0')}`, d, `p${i}`, { createdAt: at(i % 17) }));
      });
      // Two stores: on PostgreSQL two pools, so the claimers are separate sessions as separate server processes would be.
      const second = await backend.open();
      try {
        const claimers = Array.from({ length: 8 }, async (_, c) => {
          const tenant = (c % 2 === 0 ? store : second).forTenant(t.tenantId);
          const got: DeliveryRequestRecord[] = [];
          for (;;) {
            const batch = await claim(tenant, `c${c}`, 7, at(1000));
            if (batch.length === 0) return got;
            got.push(...batch);
          }
        });
        const results = await Promise.all(claimers);
        const claimed = results.flat();
        assert.equal(claimed.length, n);
        assert.equal(new Set(ids(claimed)).size, n);
        for (const r of claimed) assert.equal((await t.delivery.getDeliveryRequest(r.id))?.claimHash, r.claimHash);
        assert.equal(await t.delivery.countDeliveryRequests('pending'), 0);
      } finally {
        await second.close();
      }
    });

    test('cancelDeliveryRequests cancels the open requests of a device: all, or those of the given PFX', async () => {
      const t = await newTenant();
      const d1 = await newDevice(t);
      const d2 = await newDevice(t);
      for (const pfx of ['p1', 'p2', 'p3', 'p4', 'p5']) await t.delivery.ensureDeliveryRequest(requestRecord(pfx, d1, pfx, { createdAt: at(Number(pfx[1])) }));
      await t.delivery.ensureDeliveryRequest(requestRecord('other', d2, 'p1', { createdAt: at(9) }));
      const [claimed, failed, ready] = (await claim(t, 'c1', 3, at(10))) as [DeliveryRequestRecord, DeliveryRequestRecord, DeliveryRequestRecord];
      assert.deepEqual(ids([claimed, failed, ready]), ['p1', 'p2', 'p3']);
      assert.equal(await t.delivery.completeDeliveryRequest('p2', failed.claimHash!, { errorCode: 'x', errorDetail: 'y' }, at(11)), true);
      assert.equal(await t.delivery.completeDeliveryRequest('p3', ready.claimHash!, { payload: bytesOf(1) }, at(11)), true);
      const status = async (id: string) => (await t.delivery.getDeliveryRequest(id))?.status;

      assert.equal(await t.delivery.cancelDeliveryRequests(d1, [], at(12)), 0);
      assert.equal(await t.delivery.cancelDeliveryRequests(d1, ['p5', 'p9', 'p5'], at(12)), 1);
      assert.deepEqual(await t.delivery.getDeliveryRequest('p5'), requestRecord('p5', d1, 'p5', { createdAt: at(5), status: 'cancelled', updatedAt: at(12) }));
      // Claimed, failed and pending ones are open; the ready one is done and stays.
      assert.equal(await t.delivery.cancelDeliveryRequests(d1, undefined, at(13)), 3);
      assert.deepEqual(await Promise.all(['p1', 'p2', 'p3', 'p4'].map(status)), ['cancelled', 'cancelled', 'ready', 'cancelled']);
      assert.equal((await t.delivery.getDeliveryRequest('p1'))?.leaseUntil, undefined);
      assert.equal(await status('other'), 'pending');
      assert.equal(await t.delivery.cancelDeliveryRequests(d1, undefined, at(14)), 0);
      // The connector that held the cancelled one cannot complete it, and nothing cancelled is claimed.
      assert.equal(await t.delivery.completeDeliveryRequest('p1', claimed.claimHash!, { payload: bytesOf(1) }, at(15)), false);
      assert.deepEqual(ids(await claim(t, 'c1', 10, at(HOUR))), ['other']);
    });

    test('retryDeliveryRequest returns a failed request to the queue', async () => {
      const t = await newTenant();
      const d = await newDevice(t);
      await t.delivery.ensureDeliveryRequest(requestRecord('r1', d, 'p1'));
      await t.delivery.ensureDeliveryRequest(requestRecord('r2', d, 'p2', { createdAt: at(1) }));
      const [r1] = await claim(t, 'c1', 1, at(10));
      assert.equal(await t.delivery.retryDeliveryRequest('r1', at(11)), false);
      assert.equal(await t.delivery.completeDeliveryRequest('r1', r1!.claimHash!, { errorCode: 'deviceKeyRejected', errorDetail: 'no P-256 key' }, at(12)), true);
      assert.equal(await t.delivery.retryDeliveryRequest('r1', at(13)), true);
      assert.deepEqual(await t.delivery.getDeliveryRequest('r1'), requestRecord('r1', d, 'p1', { attempts: 1, updatedAt: at(13) }));
      assert.equal(await t.delivery.retryDeliveryRequest('r1', at(14)), false);
      assert.equal(await t.delivery.retryDeliveryRequest('r2', at(14)), false);
      assert.equal(await t.delivery.retryDeliveryRequest('nope', at(14)), false);
      const [again] = await claim(t, 'c2', 1, at(20));
      assert.equal(again?.id, 'r1');
      assert.equal(again.attempts, 2);
    });

    test('notifications: newest first in pages; marked read once; the send outcome is recorded', async () => {
      const t = await newTenant();
      const d1 = await newDevice(t);
      const d2 = await newDevice(t);
      const email = notificationRecord('n2', d1, { channel: 'email', createdAt: at(2) });
      await t.delivery.putNotification(notificationRecord('n1', d1, { createdAt: at(1) }));
      await t.delivery.putNotification(email);
      await t.delivery.putNotification(notificationRecord('n4', d1, { createdAt: at(3) }));
      await t.delivery.putNotification(notificationRecord('n3', d1, { createdAt: at(3) }));
      await t.delivery.putNotification(notificationRecord('n0', d1, { createdAt: at(4) }));
      await t.delivery.putNotification(notificationRecord('n5', d2, { createdAt: at(9) }));
      assert.deepEqual(await t.delivery.getNotification('n2'), email);
      assert.equal(await t.delivery.getNotification('nope'), undefined);
      const listed = await collect((cursor) => t.delivery.listNotifications(d1, { limit: 2, ...cursorOf(cursor) }));
      assert.deepEqual(ids(listed), ['n0', 'n4', 'n3', 'n2', 'n1']);
      assert.deepEqual(ids((await t.delivery.listNotifications(d2)).items), ['n5']);
      assert.deepEqual(ids((await t.delivery.listNotifications(d1, { offset: 4 })).items), ['n1']);
      await rejectsWith(t.delivery.listNotifications(d1, { cursor: 'x' }), 'KF_USAGE');
      await rejectsWith(t.delivery.putNotification(notificationRecord('n1', d2)), 'KF_CONFLICT');
      await rejectsWith(t.delivery.putNotification(notificationRecord('n9', 'ghost')), 'KF_NOT_FOUND');

      assert.equal(await t.delivery.markNotificationRead('n1', at(10)), true);
      assert.equal(await t.delivery.markNotificationRead('n1', at(11)), true);
      assert.deepEqual((await t.delivery.getNotification('n1'))?.readAt, at(10));
      assert.equal(await t.delivery.markNotificationRead('nope', at(11)), false);

      await t.delivery.recordNotificationSend('n2', { error: 'SMTP 550 mailbox unavailable' });
      assert.deepEqual(await t.delivery.getNotification('n2'), { ...email, sendError: 'SMTP 550 mailbox unavailable' });
      await t.delivery.recordNotificationSend('n2', { sentAt: at(12) });
      assert.deepEqual(await t.delivery.getNotification('n2'), { ...email, sentAt: at(12) });
      await t.delivery.recordNotificationSend('nope', { sentAt: at(12) });
    });

    test('deleting a device deletes its delivery requests and notifications', async () => {
      const t = await newTenant();
      const d1 = await newDevice(t);
      const d2 = await newDevice(t);
      await t.delivery.ensureDeliveryRequest(requestRecord('r1', d1, 'p1'));
      await t.delivery.ensureDeliveryRequest(requestRecord('r2', d2, 'p1'));
      await t.delivery.putNotification(notificationRecord('n1', d1));
      await t.delivery.putNotification(notificationRecord('n2', d2));
      assert.equal(await t.devices.deleteDevice(d1), true);
      assert.deepEqual(ids((await t.delivery.listDeliveryRequests({})).items), ['r2']);
      assert.equal(await t.delivery.getNotification('n1'), undefined);
      assert.deepEqual(ids((await t.delivery.listNotifications(d2)).items), ['n2']);
    });

    test('DeliveryLookup finds a token, connector, device or notification of any tenant, with its tenant', async () => {
      const a = await newTenant();
      const b = await newTenant();
      await b.directory.putUser(userRecord('u1'));
      const tokenHash = newHash();
      const token = tokenRecord('tk', 'u1', tokenHash);
      await b.delivery.putEnrollmentToken(token);
      const connectorHash = newHash();
      const connector = connectorRecord('c1', connectorHash, { version: '6.2105.1.0' });
      await b.delivery.putConnector(connector);
      const device = deviceRecord(`device-${++devices}`, { identityThumbprint: 'ab'.repeat(32), identityCertificate: bytesOf(0x30, 1, 2) });
      await b.devices.putDevice(device);
      const notification = notificationRecord('n-unique', device.id);
      await b.delivery.putNotification(notification);

      const lookup = store.deliveryLookup;
      assert.deepEqual(await lookup.findEnrollmentToken(tokenHash), { tenantId: b.tenantId, token });
      assert.deepEqual(await lookup.findConnector(connectorHash), { tenantId: b.tenantId, connector });
      // The device without its certificate (read only when a signature check has not parsed its key yet).
      assert.deepEqual(await lookup.findDevice(device.id), { tenantId: b.tenantId, device: { ...device, identityCertificate: undefined } });
      assert.deepEqual(await lookup.findIdentityCertificate(b.tenantId, device.id), bytesOf(0x30, 1, 2));
      assert.equal(await lookup.findIdentityCertificate(a.tenantId, device.id), undefined);
      assert.deepEqual(await lookup.findNotification('n-unique'), { tenantId: b.tenantId, notification });
      assert.equal(await lookup.findEnrollmentToken(newHash()), undefined);
      assert.equal(await lookup.findConnector(tokenHash), undefined);
      assert.equal(await lookup.findDevice('no-such-device'), undefined);
      assert.equal(await lookup.findNotification('nope'), undefined);

      // A used token is still found (the enrolment then says "used"); a revoked connector too (the caller refuses it).
      await b.delivery.useEnrollmentToken(tokenHash, device.id, at(1));
      assert.equal((await lookup.findEnrollmentToken(tokenHash))?.token.deviceId, device.id);
      await b.delivery.revokeConnector('c1', at(1));
      assert.deepEqual((await lookup.findConnector(connectorHash))?.connector.revokedAt, at(1));

      // The same device or notification id in two tenants: which one is meant cannot be told, so neither.
      await a.devices.putDevice(deviceRecord(device.id));
      await a.delivery.putNotification(notificationRecord('n-unique', device.id));
      assert.equal(await lookup.findDevice(device.id), undefined);
      assert.equal(await lookup.findNotification('n-unique'), undefined);
    });

    test("tenant A's delivery records are invisible and untouchable through tenant B", async () => {
      const a = await newTenant();
      const b = await newTenant();
      await a.directory.putUser(userRecord('u1'));
      const tokenHash = newHash();
      await a.delivery.putEnrollmentToken(tokenRecord('tk', 'u1', tokenHash));
      const connector = connectorRecord('c1', newHash());
      await a.delivery.putConnector(connector);
      const d = await newDevice(a);
      await a.delivery.ensureDeliveryRequest(requestRecord('r1', d, 'p1'));
      await a.delivery.ensureDeliveryRequest(requestRecord('r2', d, 'p2'));
      const [claimed] = await claim(a, 'c1', 1, at(1));
      await a.delivery.putNotification(notificationRecord('n1', d));

      assert.deepEqual(await b.delivery.useEnrollmentToken(tokenHash, 'dev', at(2)), { outcome: 'unknown' });
      assert.deepEqual(await b.delivery.listEnrollmentTokens('u1'), []);
      assert.equal(await b.delivery.getConnector('c1'), undefined);
      assert.deepEqual(await b.delivery.listConnectors(), []);
      await b.delivery.touchConnector('c1', '9.9', at(HOUR));
      assert.equal(await b.delivery.revokeConnector('c1', at(2)), false);
      assert.equal(await b.delivery.getDeliveryRequest('r1'), undefined);
      assert.deepEqual((await b.delivery.listDeliveryRequests({})).items, []);
      assert.deepEqual(await claim(b, 'c1', 5, at(HOUR)), []);
      assert.equal(await b.delivery.completeDeliveryRequest('r1', claimed!.claimHash!, { payload: bytesOf(1) }, at(2)), false);
      assert.equal(await b.delivery.cancelDeliveryRequests(d, undefined, at(2)), 0);
      assert.equal(await b.delivery.retryDeliveryRequest('r1', at(2)), false);
      assert.equal(await b.delivery.countDeliveryRequests('pending'), 0);
      assert.equal(await b.delivery.getNotification('n1'), undefined);
      assert.deepEqual((await b.delivery.listNotifications(d)).items, []);
      assert.equal(await b.delivery.markNotificationRead('n1', at(2)), false);
      await b.delivery.recordNotificationSend('n1', { error: 'b' });
      // B cannot hang requests or notifications on A's device.
      await rejectsWith(b.delivery.ensureDeliveryRequest(requestRecord('r3', d, 'p1')), 'KF_NOT_FOUND');
      await rejectsWith(b.delivery.putNotification(notificationRecord('n2', d)), 'KF_NOT_FOUND');

      // Nothing B did reached A.
      assert.equal((await a.delivery.listEnrollmentTokens('u1'))[0]?.usedAt, undefined);
      assert.deepEqual(await a.delivery.getConnector('c1'), connector);
      assert.deepEqual(await a.delivery.getDeliveryRequest('r1'), claimed);
      assert.equal((await a.delivery.getDeliveryRequest('r2'))?.status, 'pending');
      assert.deepEqual(await a.delivery.getNotification('n1'), notificationRecord('n1', d));
    });
  });
}
