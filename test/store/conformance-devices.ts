/** DeviceStore behaviour (src/store/devices.ts), part of the conformance suite. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DeviceCertificateRecord, DevicePolicyStateRecord, ManagedDeviceRecord } from '../../src/store/devices.ts';
import type { Page } from '../../src/store/directory.ts';
import type { TenantStore } from '../../src/store/store.ts';
import { rejectsWith, type SuiteContext } from './suite.ts';
import { T0, at, bytesOf } from './fixtures.ts';

/** A lower-case hex SHA-256 whose value follows `n`. */
const identity = (n: number): string => n.toString(16).padStart(64, '0');

export function deviceRecord(id: string, overrides: Partial<ManagedDeviceRecord> = {}): ManagedDeviceRecord {
  return {
    id,
    userId: 'u1',
    deviceName: `iPhone ${id}`,
    operatingSystem: 'iOS',
    osVersion: '18.5',
    model: 'iPhone16,2',
    serialNumber: undefined,
    portalUrl: undefined,
    managementState: 'managed',
    enrolledAt: T0,
    lastSyncAt: undefined,
    identityThumbprint: undefined,
    identityCertificate: undefined,
    desiredStateHash: undefined, recheckAt: undefined,
    version: 1,
    createdAt: T0,
    updatedAt: T0,
    ...overrides,
  };
}

export function policyState(deviceId: string, policyId: string, overrides: Partial<DevicePolicyStateRecord> = {}): DevicePolicyStateRecord {
  return { deviceId, policyId, status: 'unknown', detail: undefined, reportedAt: T0, ...overrides };
}

export function certificateState(id: string, deviceId: string, overrides: Partial<DeviceCertificateRecord> = {}): DeviceCertificateRecord {
  return {
    id,
    deviceId,
    profileId: 'scep-1',
    source: 'scep',
    pfxId: undefined,
    state: 'pending',
    thumbprint: undefined,
    serialNumber: undefined,
    issuer: undefined,
    subject: undefined,
    expiresAt: undefined,
    errorCode: undefined,
    stateChangedAt: T0,
    createdAt: T0,
    ...overrides,
  };
}

/** Every item of a paged list, following nextCursor `limit` at a time. */
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

export function devicesConformance(ctx: SuiteContext): void {
  describe('DeviceStore', () => {
    test('devices round-trip and are found by identity; ids and identity thumbprints are unique per tenant', async () => {
      const t = await ctx.newTenant();
      const full = deviceRecord('d1', {
        operatingSystem: 'iPadOS',
        serialNumber: 'F2LXK0ABCD',
        managementState: 'retirePending',
        lastSyncAt: at(5),
        identityThumbprint: identity(1),
        identityCertificate: bytesOf(0x30, 0x82, 0x01, 0x00, 0xff),
        desiredStateHash: 'h1',
        version: 7,
        updatedAt: at(6),
      });
      const bare = deviceRecord('d2');
      await t.devices.putDevice(full);
      await t.devices.putDevice(bare);
      // Several devices may have no identity yet.
      await t.devices.putDevice(deviceRecord('d3'));
      assert.deepEqual(await t.devices.getDevice('d1'), full);
      assert.deepEqual(await t.devices.getDevice('d2'), bare);
      assert.equal(await t.devices.getDevice('nope'), undefined);
      assert.deepEqual(await t.devices.getDeviceByIdentity(identity(1)), full);
      assert.equal(await t.devices.getDeviceByIdentity(identity(2)), undefined);

      await rejectsWith(t.devices.putDevice(deviceRecord('d1', { userId: 'u2' })), 'KF_CONFLICT');
      await rejectsWith(t.devices.putDevice(deviceRecord('d4', { identityThumbprint: identity(1) })), 'KF_CONFLICT');
      assert.equal(await t.devices.getDevice('d4'), undefined);
      await rejectsWith(ctx.store().forTenant('ghost').devices.putDevice(deviceRecord('d1')), 'KF_NOT_FOUND');
    });

    test('listDevices pages in byte order of id and filters by user and management state; countDevices agrees', async () => {
      const t = await ctx.newTenant();
      // Byte order puts upper case before lower case, unlike most locale collations.
      const ids = ['b', 'Z', 'a', 'B-2', 'B-10', 'c'];
      for (const [i, id] of ids.entries()) {
        await t.devices.putDevice(deviceRecord(id, { userId: i % 2 === 0 ? 'u1' : 'u2', managementState: i < 4 ? 'managed' : 'wipePending' }));
      }
      const sorted = [...ids].sort();
      assert.deepEqual(sorted, ['B-10', 'B-2', 'Z', 'a', 'b', 'c']);
      const paged = await collect((cursor) => t.devices.listDevices({ limit: 4, ...cursorOf(cursor) }));
      assert.deepEqual(paged.map((d) => d.id), sorted);
      const first = await t.devices.listDevices({ limit: 6 });
      assert.equal(first.items.length, 6);
      assert.equal(first.nextCursor, undefined);

      const u1 = await collect((cursor) => t.devices.listDevices({ userId: 'u1', limit: 1, ...cursorOf(cursor) }));
      assert.deepEqual(u1.map((d) => d.id), ['B-10', 'a', 'b']);
      assert.deepEqual((await t.devices.listDevices({ managementState: 'wipePending' })).items.map((d) => d.id), ['B-10', 'c']);
      assert.deepEqual((await t.devices.listDevices({ userId: 'u2', managementState: 'wipePending' })).items.map((d) => d.id), ['c']);
      assert.deepEqual((await t.devices.listDevices({ offset: 4 })).items.map((d) => d.id), ['b', 'c']);

      assert.equal(await t.devices.countDevices(), 6);
      assert.equal(await t.devices.countDevices({ userId: 'u2' }), 3);
      assert.equal(await t.devices.countDevices({ managementState: 'wipePending' }), 2);
      assert.equal(await t.devices.countDevices({ userId: 'u3' }), 0);
      await rejectsWith(t.devices.listDevices({ cursor: 'not a cursor' }), 'KF_USAGE');
      await rejectsWith(t.devices.listDevices({ limit: 0 }), 'KF_USAGE');
    });

    test('listDeviceRefs walks every device in id order, in batches, with only the columns re-evaluation needs', async () => {
      const t = await ctx.newTenant();
      for (let n = 1; n <= 7; n++) {
        await t.devices.putDevice(deviceRecord(`d${n}`, { userId: `u${n % 3}`, identityCertificate: bytesOf(n), desiredStateHash: n === 3 ? 'h3' : undefined }));
      }
      await t.devices.updateDevice('d5', { managementState: 'retired' }, at(1));
      const batches: string[][] = [];
      let after: string | undefined;
      for (;;) {
        const batch = await t.devices.listDeviceRefs(after, 3);
        if (batch.length === 0) break;
        batches.push(batch.map((r) => r.id));
        after = batch[batch.length - 1]!.id;
      }
      assert.deepEqual(batches, [['d1', 'd2', 'd3'], ['d4', 'd5', 'd6'], ['d7']]);
      const refs = await t.devices.listDeviceRefs('d2', 3);
      assert.deepEqual(refs, [
        { id: 'd3', userId: 'u0', managementState: 'managed', desiredStateHash: 'h3' },
        { id: 'd4', userId: 'u1', managementState: 'managed', desiredStateHash: undefined },
        { id: 'd5', userId: 'u2', managementState: 'retired', desiredStateHash: undefined },
      ]);
      await rejectsWith(t.devices.listDeviceRefs(undefined, 0), 'KF_USAGE');
    });

    test('updateDevice applies the patch, increments version and refuses a stale expectedVersion', async () => {
      const t = await ctx.newTenant();
      const original = deviceRecord('d1', { serialNumber: 'S1', version: 1 });
      await t.devices.putDevice(original);
      await t.devices.putDevice(deviceRecord('d2', { identityThumbprint: identity(2) }));

      const patched = await t.devices.updateDevice('d1', { osVersion: '18.6', lastSyncAt: at(10), identityThumbprint: identity(1), identityCertificate: bytesOf(1, 2, 3) }, at(11));
      const expected: ManagedDeviceRecord = {
        ...original,
        osVersion: '18.6',
        lastSyncAt: at(10),
        identityThumbprint: identity(1),
        identityCertificate: bytesOf(1, 2, 3),
        version: 2,
        updatedAt: at(11),
      };
      assert.deepEqual(patched, expected);
      assert.deepEqual(await t.devices.getDevice('d1'), expected);
      assert.deepEqual(await t.devices.getDeviceByIdentity(identity(1)), expected);

      const third = await t.devices.updateDevice('d1', { deviceName: 'Work phone', managementState: 'wipePending', desiredStateHash: 'h' }, at(12), 2);
      assert.equal(third?.version, 3);
      assert.equal(third?.deviceName, 'Work phone');
      assert.equal(third?.managementState, 'wipePending');
      assert.equal(third?.desiredStateHash, 'h');
      // An empty patch is still an update: a new version, a new updatedAt.
      assert.equal((await t.devices.updateDevice('d1', {}, at(13)))?.version, 4);

      await rejectsWith(t.devices.updateDevice('d1', { deviceName: 'stale' }, at(14), 3), 'KF_CONFLICT');
      assert.equal((await t.devices.getDevice('d1'))?.deviceName, 'Work phone');
      assert.equal((await t.devices.getDevice('d1'))?.version, 4);
      await rejectsWith(t.devices.updateDevice('d1', { identityThumbprint: identity(2) }, at(15)), 'KF_CONFLICT');
      assert.equal((await t.devices.getDevice('d1'))?.version, 4);

      assert.equal(await t.devices.updateDevice('nope', { deviceName: 'x' }, at(16)), undefined);
      assert.equal(await t.devices.updateDevice('nope', { deviceName: 'x' }, at(16), 1), undefined);
    });

    test('touchDevice records a check-in without moving version or updatedAt; the portal URL round-trips', async () => {
      const t = await ctx.newTenant();
      const original = deviceRecord('d1', { portalUrl: 'http://127.0.0.1:7777/', version: 4 });
      await t.devices.putDevice(original);
      assert.equal(await t.devices.touchDevice('d1', at(20)), true);
      assert.deepEqual(await t.devices.getDevice('d1'), { ...original, lastSyncAt: at(20) });
      assert.equal(await t.devices.touchDevice('nope', at(20)), false);
      const other = await ctx.newTenant();
      assert.equal(await other.devices.touchDevice('d1', at(30)), false, 'another tenant cannot touch it');
      const due = await t.devices.updateDevice('d1', { recheckAt: at(99) }, at(21));
      assert.deepEqual(due?.recheckAt, at(99));
      assert.equal((await t.devices.updateDevice('d1', { recheckAt: null }, at(22)))?.recheckAt, undefined, 'null clears it');
    });

    test('of concurrent updates expecting the same version exactly one succeeds', async () => {
      const t = await ctx.newTenant();
      await t.devices.putDevice(deviceRecord('d1'));
      const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => t.devices.updateDevice('d1', { deviceName: `n${i}` }, at(i), 1)));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code?: string }).code, 'KF_CONFLICT');
      assert.equal((await t.devices.getDevice('d1'))?.version, 2);
    });

    test('setDesiredStateHashes changes only differing hashes and returns those ids', async () => {
      const t = await ctx.newTenant();
      await t.devices.putDevice(deviceRecord('d1', { desiredStateHash: 'same', version: 5 }));
      await t.devices.putDevice(deviceRecord('d2', { desiredStateHash: 'old', version: 5 }));
      await t.devices.putDevice(deviceRecord('d3', { version: 5 }));
      const changed = await t.devices.setDesiredStateHashes(
        [
          { id: 'd3', hash: 'new3' },
          { id: 'd1', hash: 'same' },
          { id: 'ghost', hash: 'x' },
          { id: 'd2', hash: 'new2' },
        ],
        at(20),
      );
      assert.deepEqual(changed, ['d3', 'd2']);
      const d1 = await t.devices.getDevice('d1');
      assert.equal(d1?.version, 5);
      assert.deepEqual(d1?.updatedAt, T0);
      assert.deepEqual(await t.devices.getDevice('d2'), deviceRecord('d2', { desiredStateHash: 'new2', version: 6, updatedAt: at(20) }));
      assert.equal((await t.devices.getDevice('d3'))?.desiredStateHash, 'new3');
      assert.equal((await t.devices.getDevice('d3'))?.version, 6);
      assert.equal(await t.devices.getDevice('ghost'), undefined);
      assert.deepEqual(await t.devices.setDesiredStateHashes([{ id: 'd2', hash: 'new2' }], at(21)), []);
      assert.deepEqual(await t.devices.setDesiredStateHashes([], at(21)), []);
      // The same id twice: the later hash is the one kept.
      assert.deepEqual(await t.devices.setDesiredStateHashes([{ id: 'd1', hash: 'a' }, { id: 'd1', hash: 'b' }], at(22)), ['d1']);
      assert.equal((await t.devices.getDevice('d1'))?.desiredStateHash, 'b');
    });

    test('setDesiredStateHashes reaches ids of any characters, in any order', async () => {
      const t = await ctx.newTenant();
      // UTF-16 order puts U+1F600 before U+FFFD; the byte order the database compares puts it after.
      const ids = ['\u{1F600}', '\uFFFD', 'Z', 'a', 'é', "it's"];
      for (const id of ids) await t.devices.putDevice(deviceRecord(id));
      const changed = await t.devices.setDesiredStateHashes(ids.map((id) => ({ id, hash: `h-${id}` })), at(1));
      assert.deepEqual(changed, ids);
      for (const id of ids) assert.equal((await t.devices.getDevice(id))?.desiredStateHash, `h-${id}`);
    });

    test('setDesiredStateHashes handles batches larger than one statement, and joins a transaction', async () => {
      const t = await ctx.newTenant();
      const n = 2500;
      const ids = Array.from({ length: n }, (_, i) => `dev-${String(i).padStart(5, '0')}`);
      await t.transaction(async (tx) => {
        for (const id of ids) await tx.devices.putDevice(deviceRecord(id, { desiredStateHash: 'h0' }));
      });
      const updates = ids.map((id, i) => ({ id, hash: i % 5 === 0 ? 'h0' : `h-${id}` }));
      const changed = await t.devices.setDesiredStateHashes(updates, at(30));
      assert.deepEqual(changed, ids.filter((_, i) => i % 5 !== 0));
      const refs = await t.devices.listDeviceRefs(undefined, n);
      assert.deepEqual(refs.map((r) => r.desiredStateHash), updates.map((u) => u.hash));
      await assert.rejects(
        t.transaction(async (tx) => {
          assert.equal((await tx.devices.setDesiredStateHashes([{ id: ids[0]!, hash: 'rolled back' }], at(31))).length, 1);
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal((await t.devices.getDevice(ids[0]!))?.desiredStateHash, 'h0');
      assert.equal((await t.devices.getDevice(ids[0]!))?.version, 1);
    });

    test('policy states are upserted, listed by device, policy and user in order, and deleted', async () => {
      const t = await ctx.newTenant();
      await t.devices.putDevice(deviceRecord('d1', { userId: 'alice' }));
      await t.devices.putDevice(deviceRecord('d2', { userId: 'bob' }));
      await t.devices.putDevice(deviceRecord('d3', { userId: 'alice' }));
      await t.devices.putPolicyState(policyState('d1', 'p2'));
      await t.devices.putPolicyState(policyState('d1', 'p1', { status: 'error', detail: 'no certificate' }));
      await t.devices.putPolicyState(policyState('d2', 'p1'));
      await t.devices.putPolicyState(policyState('d3', 'p1'));
      await t.devices.putPolicyState(policyState('d3', 'p2'));
      const replaced = policyState('d1', 'p2', { status: 'compliant', reportedAt: at(9) });
      await t.devices.putPolicyState(replaced);
      await t.devices.putPolicyState(policyState('d1', 'p1', { status: 'nonCompliant' }));

      const keys = (states: DevicePolicyStateRecord[]) => states.map((s) => `${s.deviceId}/${s.policyId}`);
      const all = await collect((cursor) => t.devices.listPolicyStates({}, { limit: 2, ...cursorOf(cursor) }));
      assert.deepEqual(keys(all), ['d1/p1', 'd1/p2', 'd2/p1', 'd3/p1', 'd3/p2']);
      assert.deepEqual(all[0], policyState('d1', 'p1', { status: 'nonCompliant' }));
      assert.deepEqual(all[1], replaced);
      assert.deepEqual(keys((await t.devices.listPolicyStates({ deviceId: 'd3' })).items), ['d3/p1', 'd3/p2']);
      const byPolicy = await collect((cursor) => t.devices.listPolicyStates({ policyId: 'p1' }, { limit: 1, ...cursorOf(cursor) }));
      assert.deepEqual(keys(byPolicy), ['d1/p1', 'd2/p1', 'd3/p1']);
      const alice = await collect((cursor) => t.devices.listPolicyStates({ userId: 'alice' }, { limit: 3, ...cursorOf(cursor) }));
      assert.deepEqual(keys(alice), ['d1/p1', 'd1/p2', 'd3/p1', 'd3/p2']);
      assert.deepEqual(keys((await t.devices.listPolicyStates({ userId: 'alice', policyId: 'p2' })).items), ['d1/p2', 'd3/p2']);
      assert.deepEqual((await t.devices.listPolicyStates({ userId: 'nobody' })).items, []);

      await rejectsWith(t.devices.putPolicyState(policyState('ghost', 'p1')), 'KF_NOT_FOUND');
      assert.equal(await t.devices.deletePolicyState('d3', 'p1'), true);
      assert.equal(await t.devices.deletePolicyState('d3', 'p1'), false);
      assert.deepEqual(keys((await t.devices.listPolicyStates({ deviceId: 'd3' })).items), ['d3/p2']);
    });

    test('certificate states are upserted by id, listed by device, profile, user and PFX in order, and deleted', async () => {
      const t = await ctx.newTenant();
      await t.devices.putDevice(deviceRecord('d1', { userId: 'alice' }));
      await t.devices.putDevice(deviceRecord('d2', { userId: 'bob' }));
      const issued = certificateState('c3', 'd1', {
        state: 'installed',
        thumbprint: 'A'.repeat(40),
        serialNumber: '7f01',
        issuer: 'CN=Keyfleet Issuing CA',
        subject: 'CN=alice@example.com',
        expiresAt: at(365 * 86_400_000),
        stateChangedAt: at(3),
      });
      await t.devices.putCertificateState(certificateState('c3', 'd1'));
      await t.devices.putCertificateState(issued);
      await t.devices.putCertificateState(certificateState('c1', 'd2', { source: 'pkcsImported', profileId: 'pfx-profile', pfxId: 'pfx-1' }));
      await t.devices.putCertificateState(certificateState('c2', 'd1', { state: 'enrollmentFailed', errorCode: 'scepFailed' }));
      await t.devices.putCertificateState(certificateState('c0', 'd2', { source: 'pkcsImported', profileId: 'pfx-profile', pfxId: 'pfx-2' }));
      assert.deepEqual(await t.devices.getCertificateState('c3'), issued);
      assert.equal(await t.devices.getCertificateState('nope'), undefined);

      const ids = (states: DeviceCertificateRecord[]) => states.map((c) => c.id);
      const all = await collect((cursor) => t.devices.listCertificateStates({}, { limit: 3, ...cursorOf(cursor) }));
      assert.deepEqual(ids(all), ['c2', 'c3', 'c0', 'c1']);
      assert.deepEqual(ids((await t.devices.listCertificateStates({ deviceId: 'd2' })).items), ['c0', 'c1']);
      assert.deepEqual(ids((await t.devices.listCertificateStates({ profileId: 'scep-1' })).items), ['c2', 'c3']);
      const bob = await collect((cursor) => t.devices.listCertificateStates({ userId: 'bob' }, { limit: 1, ...cursorOf(cursor) }));
      assert.deepEqual(ids(bob), ['c0', 'c1']);
      assert.deepEqual(ids((await t.devices.listCertificateStates({ pfxId: 'pfx-1' })).items), ['c1']);
      assert.deepEqual(ids((await t.devices.listCertificateStates({ userId: 'alice', profileId: 'pfx-profile' })).items), []);

      await rejectsWith(t.devices.putCertificateState(certificateState('c9', 'ghost')), 'KF_NOT_FOUND');
      assert.equal(await t.devices.deleteCertificateState('c3'), true);
      assert.equal(await t.devices.deleteCertificateState('c3'), false);
      assert.equal(await t.devices.getCertificateState('c3'), undefined);
    });

    test('deleting a device deletes its policy and certificate states', async () => {
      const t = await ctx.newTenant();
      await t.devices.putDevice(deviceRecord('d1', { identityThumbprint: identity(1) }));
      await t.devices.putDevice(deviceRecord('d2'));
      await t.devices.putPolicyState(policyState('d1', 'p1'));
      await t.devices.putPolicyState(policyState('d2', 'p1'));
      await t.devices.putCertificateState(certificateState('c1', 'd1'));
      await t.devices.putCertificateState(certificateState('c2', 'd2'));
      assert.equal(await t.devices.deleteDevice('d1'), true);
      assert.equal(await t.devices.deleteDevice('d1'), false);
      assert.equal(await t.devices.getDevice('d1'), undefined);
      assert.deepEqual((await t.devices.listPolicyStates({})).items.map((s) => s.deviceId), ['d2']);
      assert.deepEqual((await t.devices.listCertificateStates({})).items.map((c) => c.id), ['c2']);
      // Its identity is free again.
      await t.devices.putDevice(deviceRecord('d3', { identityThumbprint: identity(1) }));
    });

    test("tenant A's devices and states are invisible and untouchable through tenant B", async () => {
      const a = await ctx.newTenant();
      const b = await ctx.newTenant();
      await a.devices.putDevice(deviceRecord('d1', { identityThumbprint: identity(1), desiredStateHash: 'h' }));
      await a.devices.putPolicyState(policyState('d1', 'p1'));
      await a.devices.putCertificateState(certificateState('c1', 'd1'));

      await expectEmpty(b);
      assert.equal(await b.devices.updateDevice('d1', { deviceName: 'b' }, at(1)), undefined);
      assert.equal(await b.devices.updateDevice('d1', { deviceName: 'b' }, at(1), 1), undefined);
      assert.deepEqual(await b.devices.setDesiredStateHashes([{ id: 'd1', hash: 'b' }], at(1)), []);
      assert.equal(await b.devices.deletePolicyState('d1', 'p1'), false);
      assert.equal(await b.devices.deleteCertificateState('c1'), false);
      assert.equal(await b.devices.deleteDevice('d1'), false);
      // B cannot hang states on A's device.
      await rejectsWith(b.devices.putPolicyState(policyState('d1', 'p2')), 'KF_NOT_FOUND');
      await rejectsWith(b.devices.putCertificateState(certificateState('c2', 'd1')), 'KF_NOT_FOUND');

      // B's own device may reuse A's id and identity; A's stays as it was.
      await b.devices.putDevice(deviceRecord('d1', { identityThumbprint: identity(1), deviceName: 'B phone' }));
      await b.devices.putCertificateState(certificateState('c1', 'd1', { state: 'installed' }));
      assert.deepEqual(await a.devices.getDevice('d1'), deviceRecord('d1', { identityThumbprint: identity(1), desiredStateHash: 'h' }));
      assert.equal((await a.devices.getDeviceByIdentity(identity(1)))?.deviceName, 'iPhone d1');
      assert.equal((await a.devices.getCertificateState('c1'))?.state, 'pending');
      assert.equal((await a.devices.listPolicyStates({})).items.length, 1);
    });
  });
}

async function expectEmpty(t: TenantStore): Promise<void> {
  assert.equal(await t.devices.getDevice('d1'), undefined);
  assert.equal(await t.devices.getDeviceByIdentity(identity(1)), undefined);
  assert.deepEqual((await t.devices.listDevices()).items, []);
  assert.equal(await t.devices.countDevices(), 0);
  assert.deepEqual(await t.devices.listDeviceRefs(undefined, 10), []);
  assert.deepEqual((await t.devices.listPolicyStates({})).items, []);
  assert.deepEqual((await t.devices.listPolicyStates({ deviceId: 'd1' })).items, []);
  assert.deepEqual((await t.devices.listPolicyStates({ userId: 'u1' })).items, []);
  assert.equal(await t.devices.getCertificateState('c1'), undefined);
  assert.deepEqual((await t.devices.listCertificateStates({})).items, []);
  assert.deepEqual((await t.devices.listCertificateStates({ userId: 'u1' })).items, []);
}
