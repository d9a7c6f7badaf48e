/**
 * The cached per-tenant evaluator (src/delivery) on the real SQLite store:
 * nested groups, exclusion, applicability for users without Exchange
 * Online, the PFX history in the desired items, when desiredStateHash
 * changes and when it must not, the cache's rebuilds and how long it may
 * reuse a head read, and re-evaluating every device.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { EMPTY_DESIRED_STATE, canonicalDesiredState, desiredStateHash } from '../../src/delivery/desired-state.ts';
import { EvaluatorCache, loadEvaluator } from '../../src/delivery/evaluator-cache.ts';
import type { SnapshotSource } from '../../src/delivery/snapshot.ts';
import { TenantEvaluator, policySummary } from '../../src/delivery/evaluator.ts';
import { reevaluateAllDevices } from '../../src/delivery/reevaluate.ts';
import { ALL_DEVICES } from '../../src/policy/index.ts';
import { seedPolicy } from '../policy/helpers.ts';
import { assign, device, evaluatorOf, openWorld, putPfx, putPolicy, seedResources, type World } from './support.ts';

interface People {
  alice: string;
  bob: string;
  carol: string;
  dave: string;
  groups: Record<'everyone' | 'sales' | 'salesEu' | 'contractors' | 'temps' | 'other', string>;
}

/**
 * Alice is in Sales EU ⊂ Sales ⊂ Everyone; Bob is in Everyone and in Temps ⊂ Contractors, which is excluded;
 * Carol is in Everyone without an Exchange Online mailbox; Dave is in a group nothing is assigned to.
 * Outlook, the profiles and policy p-seed go to Everyone except Contractors; Teams goes to Sales.
 */
async function populate(w: World): Promise<People> {
  const user = async (name: string, exo = true) =>
    (await w.directory.createUser({ userPrincipalName: `${name}@acme.example`, displayName: name, isExchangeOnline: exo })).id;
  const people = { alice: await user('alice'), bob: await user('bob'), carol: await user('carol', false), dave: await user('dave') };
  const group = async (name: string) => (await w.directory.createGroup({ displayName: name })).id;
  const groups = { everyone: await group('Everyone'), sales: await group('Sales'), salesEu: await group('Sales EU'), contractors: await group('Contractors'), temps: await group('Temps'), other: await group('Other') };
  const add = (g: string, type: 'user' | 'group', id: string) => w.directory.addMember(g, { type, id });
  await add(groups.everyone, 'group', groups.sales);
  await add(groups.sales, 'group', groups.salesEu);
  await add(groups.contractors, 'group', groups.temps);
  await add(groups.salesEu, 'user', people.alice);
  await add(groups.everyone, 'user', people.bob);
  await add(groups.temps, 'user', people.bob);
  await add(groups.everyone, 'user', people.carol);
  await add(groups.other, 'user', people.dave);

  await seedResources(w.tenant);
  const everyone = [groups.everyone];
  const contractors = [groups.contractors];
  await assign(w.tenant, 'app', 'app-outlook', everyone, contractors);
  await assign(w.tenant, 'app', 'app-teams', [groups.sales]);
  for (const p of ['root', 'scep-sign', 'pfx-smimeEncryption', 'pfx-wifi']) await assign(w.tenant, 'certificateProfile', p, everyone, contractors);
  await assign(w.tenant, 'policy', 'p-seed', everyone, contractors);
  return { ...people, groups };
}

describe('TenantEvaluator', () => {
  let w: World;
  let p: People;
  let ev: TenantEvaluator;
  const thumbprints = new Map<string, string>();

  before(async () => {
    w = await openWorld();
    p = await populate(w);
    // Alice's history: two old encryption certificates and the current one (one stored with her UPN in
    // upper case), a signing one and a Wi-Fi one; Dave's and Carol's certificates are theirs.
    await putPfx(w.tenant, 'alice@acme.example', 'smimeEncryption', 'pfx-a1');
    await putPfx(w.tenant, 'ALICE@acme.example', 'smimeEncryption', 'pfx-a2');
    await putPfx(w.tenant, 'alice@acme.example', 'smimeEncryption', 'pfx-a0');
    await putPfx(w.tenant, 'alice@acme.example', 'smimeSigning', 'pfx-a3');
    await putPfx(w.tenant, 'alice@acme.example', 'wifi', 'pfx-a4');
    await putPfx(w.tenant, 'dave@acme.example', 'smimeEncryption', 'pfx-d1');
    await putPfx(w.tenant, 'carol@acme.example', 'smimeEncryption', 'pfx-c1');
    await putPfx(w.tenant, 'carol@acme.example', 'wifi', 'pfx-c2');
    for (const r of (await w.tenant.resources.listUserPfxCertificates()).items) thumbprints.set(r.id, r.thumbprint);
    ev = await evaluatorOf(w.tenant);
  });
  after(() => w.close());

  test('the snapshot holds the whole tenant', () => {
    assert.deepEqual(ev.stats, { users: 4, groups: 6, memberships: 8, assignmentTargets: 7, policies: 1, certificateProfiles: 5, pfxCertificates: 8 });
  });

  test('nested groups: Alice, three levels down from Everyone, gets what Everyone and Sales get', () => {
    const e = ev.evaluateDevice({ id: 'dev-a', userId: p.alice, managementState: 'managed' });
    assert.deepEqual(e.state.policies, ['p-seed']);
    assert.deepEqual(e.desired.apps, ['app-outlook', 'app-teams']);
    assert.deepEqual(e.state.certificateProfiles, ['pfx-smimeEncryption', 'pfx-wifi', 'root', 'scep-sign']);
    assert.deepEqual(e.policies, [{ id: 'p-seed', status: 'applicable' }]);
    assert.equal(e.desired.appConfigurations.length, 1);
    const config = e.desired.appConfigurations[0]!;
    assert.equal(config.appId, 'app-outlook');
    assert.ok(config.settings.some((s) => s.appConfigKey === 'com.microsoft.outlook.Mail.SMIMEEnabled' && s.appConfigKeyValue === 'true'));
    const keys = config.settings.map((s) => s.appConfigKey);
    assert.deepEqual(keys, [...keys].sort(), 'settings in key order');
  });

  test('exclusion wins: Bob, included through Everyone and excluded through Temps ⊂ Contractors, gets nothing of theirs', () => {
    const e = ev.evaluateDevice({ id: 'dev-b', userId: p.bob, managementState: 'managed' });
    assert.deepEqual(e.state.policies, []);
    assert.deepEqual(e.state.certificateProfiles, []);
    assert.deepEqual(e.desired, EMPTY_DESIRED_STATE);
    assert.equal(e.desiredStateHash, desiredStateHash(EMPTY_DESIRED_STATE));
  });

  test('Carol has no Exchange Online mailbox: the policy and the S/MIME profiles are notApplicable, the rest still arrives', () => {
    const e = ev.evaluateDevice({ id: 'dev-c', userId: p.carol, managementState: 'managed' });
    assert.deepEqual(e.policies, [{ id: 'p-seed', status: 'notApplicable', reason: 'no-exchange-online-mailbox' }]);
    assert.deepEqual(e.certificateProfiles, [
      { id: 'pfx-smimeEncryption', status: 'notApplicable', reason: 'no-exchange-online-mailbox' },
      { id: 'pfx-wifi', status: 'applicable' },
      { id: 'root', status: 'applicable' },
      { id: 'scep-sign', status: 'notApplicable', reason: 'no-exchange-online-mailbox' },
    ]);
    assert.deepEqual(e.desired.apps, ['app-outlook']);
    assert.deepEqual(e.desired.appConfigurations, []);
    assert.deepEqual(e.desired.certificates, [
      { kind: 'pkcsImported', profileId: 'pfx-wifi', intendedPurpose: 'wifi', pfx: [{ id: 'pfx-c2', thumbprint: thumbprints.get('pfx-c2'), intendedPurpose: 'wifi' }] },
      { kind: 'trustedRoot', profileId: 'root' },
    ]);
    assert.deepEqual(policySummary(e), { policyIds: ['p-seed'], notApplicablePolicyIds: ['p-seed'], conflictingPolicyIds: [] });
  });

  test('a device whose user is gone: what reaches all devices is notApplicable with reason user-unknown', () => {
    const snapshot = {
      seq: 1,
      groupIds: [],
      memberships: [],
      targets: [{ kind: 'policy', id: 'p-all', include: [ALL_DEVICES], exclude: [] }, { kind: 'app', id: 'app-outlook', include: [ALL_DEVICES], exclude: [] }],
      policies: [{ id: 'p-all', policy: seedPolicy({ signingCertificateProfileType: 'derivedCredential', signingCertificateProfileId: undefined, encryptionCertificateProfileType: undefined, encryptionCertificateProfileId: undefined }) }],
      profiles: [],
      users: [],
      pfx: [],
    } as const;
    const orphan = new TenantEvaluator(snapshot).evaluateDevice({ id: 'dev-x', userId: 'deleted-user', managementState: 'managed' });
    assert.deepEqual(orphan.policies, [{ id: 'p-all', status: 'notApplicable', reason: 'user-unknown' }]);
    assert.deepEqual(new TenantEvaluator(snapshot).evaluateUser('deleted-user').state.policies, [], 'all devices is not all users');
    assert.deepEqual(orphan.desired, { apps: ['app-outlook'], appConfigurations: [], certificates: [] });
    assert.deepEqual(ev.evaluateDevice({ id: 'dev-x', userId: 'deleted-user', managementState: 'managed' }).state.policies, [], 'no groups, no Everyone');
  });

  test("the PFX history: every one of Alice's imported certificates of the profile's purpose, in id order, and no one else's", () => {
    const e = ev.evaluateDevice({ id: 'dev-a', userId: p.alice, managementState: 'managed' });
    const imported = e.desired.certificates.filter((c) => c.kind === 'pkcsImported');
    assert.deepEqual(imported.map((c) => [c.profileId, c.pfx.map((x) => x.id)]), [
      ['pfx-smimeEncryption', ['pfx-a0', 'pfx-a1', 'pfx-a2']],
      ['pfx-wifi', ['pfx-a4']],
    ]);
    assert.deepEqual(e.desired.certificates.filter((c) => c.kind !== 'pkcsImported'), [{ kind: 'trustedRoot', profileId: 'root' }, { kind: 'scep', profileId: 'scep-sign' }]);
  });

  test('the hash is SHA-256 of the canonical form, the same for every device of the user and on every evaluation', () => {
    const a1 = ev.evaluateDevice({ id: 'dev-a1', userId: p.alice, managementState: 'managed' });
    const a2 = ev.evaluateDevice({ id: 'dev-a2', userId: p.alice, managementState: 'managed' });
    assert.equal(a1.desiredStateHash, createHash('sha256').update(canonicalDesiredState(a1.desired)).digest('hex'));
    assert.equal(a1.desiredStateHash, a2.desiredStateHash);
    assert.equal(ev.desiredStateHashOf({ id: 'dev-a1', userId: p.alice, managementState: 'managed' }), a1.desiredStateHash);
    assert.match(a1.desiredStateHash, /^[0-9a-f]{64}$/);
  });

  test('desiredStateHashOf (memoised per user) agrees with evaluateDevice, with assignments to all devices too', async () => {
    await assign(w.tenant, 'app', 'app-teams', [p.groups.sales, ALL_DEVICES]);
    try {
      const withAllDevices = await evaluatorOf(w.tenant);
      for (const e of [ev, withAllDevices]) {
        for (const userId of [p.alice, p.bob, p.carol, p.dave, 'deleted-user']) {
          for (const d of [{ id: 'd1', userId, managementState: 'managed' }, { id: 'd2', userId, managementState: 'wipePending' }] as const) {
            assert.equal(e.desiredStateHashOf(d), e.evaluateDevice(d).desiredStateHash, `${userId} ${d.managementState}`);
          }
        }
      }
      assert.deepEqual(withAllDevices.evaluateDevice({ id: 'd1', userId: p.bob, managementState: 'managed' }).desired.apps, ['app-teams']);
    } finally {
      await assign(w.tenant, 'app', 'app-teams', [p.groups.sales]);
    }
  });

  test('a retired or wiped device, or one with either pending, should have nothing', () => {
    const managed = ev.evaluateDevice({ id: 'dev-a', userId: p.alice, managementState: 'managed' });
    for (const state of ['retirePending', 'retired', 'wipePending', 'wiped'] as const) {
      const e = ev.evaluateDevice({ id: 'dev-a', userId: p.alice, managementState: state });
      assert.deepEqual(e.desired, EMPTY_DESIRED_STATE, state);
      assert.equal(e.desiredStateHash, desiredStateHash(EMPTY_DESIRED_STATE));
      assert.notEqual(e.desiredStateHash, managed.desiredStateHash);
      assert.deepEqual(e.policies, [{ id: 'p-seed', status: 'notApplicable', reason: 'device-not-managed' }]);
    }
  });
});

describe('desiredStateHash changes exactly when what the device should have changes', () => {
  let w: World;
  let p: People;
  const hashes = async () => {
    const ev = await evaluatorOf(w.tenant);
    const of = (userId: string) => ev.desiredStateHashOf({ id: `dev-${userId}`, userId, managementState: 'managed' });
    return { alice: of(p.alice), bob: of(p.bob), carol: of(p.carol), dave: of(p.dave) };
  };

  before(async () => {
    w = await openWorld();
    p = await populate(w);
  });
  after(() => w.close());

  test('unrelated changes leave Alice alone', async () => {
    const start = await hashes();
    await putPfx(w.tenant, 'dave@acme.example', 'smimeEncryption');
    await w.directory.addMember(p.groups.everyone, { type: 'user', id: p.dave });
    await w.directory.updateUser(p.carol, { displayName: 'Carol C.' });
    const now = await hashes();
    assert.equal(now.alice, start.alice);
    assert.equal(now.carol, start.carol, 'a display name is nothing the device has');
    assert.notEqual(now.dave, start.dave, 'Dave joined Everyone');
  });

  test('a second policy with the same settings changes nothing the device has', async () => {
    const start = await hashes();
    await putPolicy(w.tenant, 'p-same', { signingCertificateProfileId: 'scep-sign', encryptionCertificateProfileId: 'pfx-smimeEncryption' });
    await assign(w.tenant, 'policy', 'p-same', [p.groups.everyone]);
    const ev = await evaluatorOf(w.tenant);
    assert.deepEqual(ev.evaluateUser(p.alice).state.policies, ['p-same', 'p-seed']);
    assert.equal((await hashes()).alice, start.alice);
  });

  test('a new imported certificate of hers changes it', async () => {
    const start = await hashes();
    await putPfx(w.tenant, 'alice@acme.example', 'smimeEncryption');
    const now = await hashes();
    assert.notEqual(now.alice, start.alice);
    assert.equal(now.carol, start.carol, "Carol's S/MIME certificates are withheld anyway");
  });

  test('a setting that changes, or that two policies now disagree on, changes it', async () => {
    const start = await hashes();
    await putPolicy(w.tenant, 'p-sign-all', { signingCertificateProfileId: 'scep-sign', encryptionCertificateProfileId: 'pfx-smimeEncryption', signAllMail: true });
    await assign(w.tenant, 'policy', 'p-sign-all', [p.groups.sales]);
    const withKey = await hashes();
    assert.notEqual(withKey.alice, start.alice);
    assert.equal(withKey.dave, start.dave, 'Dave is not in Sales');
    await putPolicy(w.tenant, 'p-sign-none', { signingCertificateProfileId: 'scep-sign', encryptionCertificateProfileId: 'pfx-smimeEncryption', signAllMail: false });
    await assign(w.tenant, 'policy', 'p-sign-none', [p.groups.salesEu]);
    const ev = await evaluatorOf(w.tenant);
    const e = ev.evaluateUser(p.alice);
    assert.deepEqual(e.state.conflicts.map((c) => c.appConfigKey), ['com.microsoft.outlook.Mail.SMIMEEnabled.SignAllMail']);
    const outlook = e.desired.appConfigurations.find((c) => c.appId === 'app-outlook')!;
    assert.ok(!outlook.settings.some((s) => s.appConfigKey === 'com.microsoft.outlook.Mail.SMIMEEnabled.SignAllMail'), 'neither value is delivered');
    assert.deepEqual(policySummary(e).conflictingPolicyIds, ['p-sign-all', 'p-sign-none']);
    const conflicted = await hashes();
    assert.notEqual(conflicted.alice, withKey.alice, 'the conflicting key is withheld');
  });

  test('a membership change that takes her out changes it, and Bob excluded stays empty', async () => {
    const start = await hashes();
    await w.directory.removeMember(p.groups.salesEu, { type: 'user', id: p.alice });
    const now = await hashes();
    assert.notEqual(now.alice, start.alice);
    assert.equal(now.alice, desiredStateHash(EMPTY_DESIRED_STATE));
    assert.equal(now.bob, start.bob);
  });
});

describe('EvaluatorCache', () => {
  let w: World;
  let p: People;

  before(async () => {
    w = await openWorld();
    p = await populate(w);
  });
  after(() => w.close());

  test('built once, reused while the audit head stays, rebuilt after an audited change', async () => {
    const cache = new EvaluatorCache();
    const first = await cache.forTenant(w.tenant);
    assert.equal(first.seq, (await w.tenant.audit.head())!.seq);
    assert.equal(await cache.forTenant(w.tenant), first);
    assert.equal(cache.rebuilds, 1);

    await w.directory.addMember(p.groups.sales, { type: 'user', id: p.dave });
    const second = await cache.forTenant(w.tenant);
    assert.notEqual(second, first);
    assert.equal(cache.rebuilds, 2);
    assert.deepEqual(second.evaluateUser(p.dave).state.policies, ['p-seed']);
    assert.deepEqual(first.evaluateUser(p.dave).state.policies, [], 'an evaluator is an immutable snapshot');
  });

  test('concurrent callers during a rebuild share one snapshot read', async () => {
    let reads = 0;
    const cache = new EvaluatorCache({
      load: async (source) => {
        reads++;
        await new Promise((resolve) => setTimeout(resolve, 20));
        return loadEvaluator(source);
      },
    });
    const all = await Promise.all(Array.from({ length: 8 }, () => cache.forTenant(w.tenant)));
    assert.equal(reads, 1);
    assert.ok(all.every((e) => e === all[0]));
  });

  test('changes during a rebuild queue exactly one more; every caller gets a snapshot read after the change it saw', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let reads = 0;
    const cache = new EvaluatorCache({
      load: async (source) => {
        reads++;
        if (reads === 1) await gate;
        return loadEvaluator(source);
      },
    });
    const first = cache.forTenant(w.tenant);
    await new Promise((resolve) => setTimeout(resolve, 10));
    const waiting: Promise<TenantEvaluator>[] = [];
    for (let i = 0; i < 5; i++) {
      await w.directory.updateUser(p.dave, { displayName: `Dave ${i}` });
      waiting.push(cache.forTenant(w.tenant));
    }
    const seqAfterBurst = (await w.tenant.audit.head())!.seq;
    release();
    await first;
    const results = await Promise.all(waiting);
    assert.equal(reads, 2, 'the running build and one queued behind it');
    for (const e of results) assert.equal(e.seq, seqAfterBurst);
    assert.equal(await cache.forTenant(w.tenant), results[0]);
  });

  test('allowStale: a check-in gets the previous evaluator at once while the rebuild runs', async () => {
    let release!: () => void;
    const gate: { closed?: Promise<void> } = {};
    const cache = new EvaluatorCache({
      load: async (source) => {
        await gate.closed;
        return loadEvaluator(source);
      },
    });
    const before = await cache.forTenant(w.tenant, { allowStale: true });
    gate.closed = new Promise<void>((resolve) => (release = resolve));
    await w.directory.updateUser(p.dave, { displayName: 'Dave again' });
    assert.equal(await cache.forTenant(w.tenant, { allowStale: true }), before, 'not blocked by the rebuild');
    const fresh = cache.forTenant(w.tenant);
    release();
    const after = await fresh;
    assert.notEqual(after, before);
    assert.equal(await cache.forTenant(w.tenant, { allowStale: true }), after);
    assert.equal(cache.rebuilds, 2);
  });

  test('maxHeadAgeMs: a head read is reused while that young, so a change is seen once the bound has passed', async () => {
    let clock = 5_000;
    let heads = 0;
    const source: SnapshotSource = { tenantId: w.tenant.tenantId, audit: { head: () => (heads++, w.tenant.audit.head()) }, directory: w.tenant.directory, resources: w.tenant.resources };
    const cache = new EvaluatorCache({ now: () => clock });
    const ask = (options: { allowStale?: boolean; maxHeadAgeMs?: number } = { maxHeadAgeMs: 1000 }) => cache.forTenant(source, options);
    const first = await ask();
    let read = heads;
    clock += 400;
    assert.equal(await ask(), first);
    assert.equal(heads, read, 'the head read 400 ms ago is reused');

    await w.directory.updateUser(p.dave, { displayName: 'Dave (bounded)' });
    clock += 600;
    assert.equal(await ask({ allowStale: true, maxHeadAgeMs: 1000 }), first, 'a change within the bound may go unseen');
    assert.equal(heads, read);
    assert.equal(cache.rebuilds, 1);

    clock += 1;
    const second = await ask();
    assert.equal(heads, read + 2, 'past the bound: the head is read, and the rebuild reads it');
    assert.notEqual(second, first);
    assert.equal(second.seq, (await w.tenant.audit.head())!.seq);
    read = heads;
    assert.equal(await ask(), second);
    assert.equal(heads, read, 'the new read is reused in turn');
    assert.equal(await ask({}), second);
    assert.equal(await ask({ allowStale: true }), second);
    assert.equal(heads, read + 2, 'without maxHeadAgeMs every call reads the head');
  });

  test('maxHeadAgeMs: a reused head older than the current snapshot does not rebuild it', async () => {
    let clock = 0;
    let changeDuringLoad = true;
    const cache = new EvaluatorCache({
      now: () => clock,
      load: async (source) => {
        // A change lands between forTenant's head read and the build's own: the snapshot is newer than the reused head.
        if (changeDuringLoad) await w.directory.updateUser(p.dave, { displayName: 'Dave (during load)' });
        changeDuringLoad = false;
        return loadEvaluator(source);
      },
    });
    const before = (await w.tenant.audit.head())!.seq;
    const first = await cache.forTenant(w.tenant, { maxHeadAgeMs: 1000 });
    assert.equal(first.seq, before + 1);
    clock += 10;
    assert.equal(await cache.forTenant(w.tenant, { maxHeadAgeMs: 1000 }), first);
    assert.equal(cache.rebuilds, 1);
  });

  test('a change that bypasses the audit log is not seen until invalidate (documented)', async () => {
    const cache = new EvaluatorCache();
    const before = await cache.forTenant(w.tenant);
    await assign(w.tenant, 'policy', 'p-seed', [p.groups.other]);
    assert.equal(await cache.forTenant(w.tenant), before, 'the store was written around the audit log');
    cache.invalidate(w.tenant.tenantId);
    const after = await cache.forTenant(w.tenant);
    assert.notEqual(after, before);
    assert.deepEqual(after.evaluateUser(p.alice).state.policies, []);
  });

  test('a failed rebuild is not kept', async () => {
    let fail = true;
    const cache = new EvaluatorCache({
      load: async (source) => {
        if (fail) throw new Error('database went away');
        return loadEvaluator(source);
      },
    });
    await assert.rejects(cache.forTenant(w.tenant), /went away/);
    fail = false;
    assert.ok((await cache.forTenant(w.tenant)) instanceof TenantEvaluator);
  });
});

describe('reevaluateAllDevices', () => {
  let w: World;
  let p: People;

  before(async () => {
    w = await openWorld();
    p = await populate(w);
    for (const [id, userId, state] of [
      ['d-alice-1', p.alice, 'managed'], ['d-alice-2', p.alice, 'managed'], ['d-bob', p.bob, 'managed'],
      ['d-carol', p.carol, 'managed'], ['d-dave', p.dave, 'managed'], ['d-retired', p.alice, 'retired'],
    ] as const) {
      await w.tenant.devices.putDevice(device(id, userId, state));
    }
  });
  after(() => w.close());

  test('the first run writes every hash, the next writes none, a membership change writes exactly the affected devices', async () => {
    const cache = new EvaluatorCache();
    const first = await reevaluateAllDevices(w.tenant, await cache.forTenant(w.tenant), { batchSize: 4 });
    assert.equal(first.devices, 6);
    assert.deepEqual(first.changed, ['d-alice-1', 'd-alice-2', 'd-bob', 'd-carol', 'd-dave', 'd-retired']);
    const stored = await w.tenant.devices.getDevice('d-alice-1');
    assert.equal(stored?.desiredStateHash, (await cache.forTenant(w.tenant)).desiredStateHashOf(stored!));
    assert.equal((await w.tenant.devices.getDevice('d-retired'))?.desiredStateHash, desiredStateHash(EMPTY_DESIRED_STATE));

    const again = await reevaluateAllDevices(w.tenant, await cache.forTenant(w.tenant), { batchSize: 4 });
    assert.deepEqual(again.changed, []);
    assert.equal((await w.tenant.devices.getDevice('d-alice-1'))?.version, stored!.version, 'no write, no new version');

    await w.directory.addMember(p.groups.sales, { type: 'user', id: p.dave });
    const afterChange = await reevaluateAllDevices(w.tenant, await cache.forTenant(w.tenant), { batchSize: 4 });
    assert.deepEqual(afterChange.changed, ['d-dave']);
    assert.equal(cache.rebuilds, 2);
  });
});
