/**
 * The store's behaviour, written once against Store/TenantStore and run
 * against every backend (sqlite.test.ts always, postgres.test.ts when a
 * server is reachable): a backend that passes behaves the same to the CA and
 * the SCEP server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../../src/store/store.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { caConformance } from './conformance-ca.ts';
import { scepConformance } from './conformance-scep.ts';
import { directoryConformance, groupRecord, userRecord } from './conformance-directory.ts';
import { accessConformance, tokenRecord } from './conformance-access.ts';
import { auditConformance, auditEntry } from './conformance-audit.ts';
import { devicesConformance } from './conformance-devices.ts';
import { rejectsWith, type StoreBackend, type SuiteContext } from './suite.ts';

export type { StoreBackend } from './suite.ts';
import { HOUR, T0, caRecord, challengeRecord, issuedRecord, profileRecord, serial, transactionRecord } from './fixtures.ts';

export function storeConformance(backend: StoreBackend): void {
  if (backend.skip !== undefined) {
    // A skipped test rather than a skipped suite, so the runner's summary counts it.
    test(`store conformance: ${backend.name}`, { skip: backend.skip }, () => {});
    return;
  }
  describe(`store conformance: ${backend.name}`, () => {
    let store: Store | undefined;
    let tenants = 0;
    const ctx: SuiteContext = {
      backend,
      store: () => {
        assert.ok(store !== undefined, 'store opened');
        return store;
      },
      async newTenant() {
        const id = `tenant-${++tenants}`;
        assert.equal(await ctx.store().ensureTenant(id, `Tenant ${tenants}`), true);
        return ctx.store().forTenant(id);
      },
    };

    before(async () => {
      await backend.setUp();
      store = await backend.open();
    });
    after(async () => {
      await store?.close();
      await backend.tearDown();
    });

    describe('tenants', () => {
      test('ensureTenant creates once and keeps the first name', async () => {
        const s = ctx.store();
        assert.equal(await s.ensureTenant('acme', 'Acme'), true);
        assert.equal(await s.ensureTenant('acme', 'Renamed'), false);
        const acme = await s.getTenant('acme');
        assert.equal(acme?.name, 'Acme');
        assert.ok(acme.createdAt instanceof Date && !Number.isNaN(acme.createdAt.getTime()));
        assert.equal(await s.getTenant('nobody'), undefined);
        assert.ok((await s.listTenants()).some((t) => t.id === 'acme'));
      });

      test('writes for a tenant that was never created are refused with KF_NOT_FOUND', async () => {
        const ghost = ctx.store().forTenant('ghost');
        await rejectsWith(ghost.ca.putCa(caRecord()), 'KF_NOT_FOUND');
        await rejectsWith(ghost.scep.recordTransaction(transactionRecord('t')), 'KF_NOT_FOUND');
        assert.deepEqual(await ghost.ca.listCas(), []);
      });
    });

    caConformance(ctx);
    scepConformance(ctx);
    directoryConformance(ctx);
    accessConformance(ctx);
    auditConformance(ctx);
    devicesConformance(ctx);

    describe('tenant isolation', () => {
      test("tenant A's records are invisible and untouchable through tenant B, for every method", async () => {
        const a = await ctx.newTenant();
        const b = await ctx.newTenant();
        const s1 = serial(1);
        const s2 = serial(2);
        await a.ca.putCa(caRecord('issuing'));
        await a.ca.recordIssued(issuedRecord('issuing', s1));
        await a.ca.recordIssued(issuedRecord('issuing', s2));
        await a.ca.revoke('issuing', s2, 1, T0);
        await a.ca.putCrl('issuing', () => ({ thisUpdate: T0, nextUpdate: T0, der: new Uint8Array([1]) }));
        await a.scep.putProfile(profileRecord('default'));
        await a.scep.putChallenge(challengeRecord('h1', 'default'));
        await a.scep.recordTransaction(transactionRecord('tx1'));

        assert.equal(await b.ca.getCa('issuing'), undefined);
        assert.deepEqual(await b.ca.listCas(), []);
        assert.equal(await b.ca.getIssued('issuing', s1), undefined);
        assert.deepEqual(await b.ca.listIssued('issuing'), []);
        assert.equal(await b.ca.revoke('issuing', s1, 0, T0), false);
        assert.deepEqual(await b.ca.listRevoked('issuing'), []);
        await rejectsWith(
          b.ca.putCrl('issuing', () => ({ thisUpdate: T0, nextUpdate: T0, der: new Uint8Array([2]) })),
          'KF_NOT_FOUND',
        );
        assert.equal(await b.ca.getLatestCrl('issuing'), undefined);
        // B cannot point its records at A's CA or profile.
        await rejectsWith(b.ca.recordIssued(issuedRecord('issuing', serial(3))), 'KF_NOT_FOUND');
        await rejectsWith(b.scep.putProfile(profileRecord('other', 'issuing')), 'KF_NOT_FOUND');
        await rejectsWith(b.scep.putChallenge(challengeRecord('h2', 'default')), 'KF_NOT_FOUND');
        assert.equal(await b.scep.getProfile('default'), undefined);
        assert.deepEqual(await b.scep.listProfiles(), []);
        assert.deepEqual(await b.scep.consumeChallenge('h1', T0), { outcome: 'unknown' });
        assert.equal(await b.scep.getTransaction('tx1'), undefined);
        assert.deepEqual(await b.scep.listTransactions(), []);

        // Nothing B did reached A.
        assert.equal((await a.ca.getIssued('issuing', s1))?.status, 'good');
        assert.equal((await a.ca.getLatestCrl('issuing'))?.crlNumber, 1n);
        assert.equal((await a.scep.consumeChallenge('h1', T0)).outcome, 'ok');

        // The same ids in B are B's own records, not conflicts with A's.
        await b.ca.putCa(caRecord('issuing', { keyRef: 'file:b' }));
        await b.ca.recordIssued(issuedRecord('issuing', s1, { subject: 'CN=b' }));
        await b.scep.putProfile(profileRecord('default'));
        await b.scep.putChallenge(challengeRecord('h1', 'default'));
        assert.equal((await b.ca.putCrl('issuing', () => ({ thisUpdate: T0, nextUpdate: T0, der: new Uint8Array() }))).crlNumber, 1n);
        assert.equal((await a.ca.getCa('issuing'))?.keyRef, 'file:issuing');
        assert.equal((await a.ca.getIssued('issuing', s1))?.subject, 'CN=alice@example.com');
        assert.equal((await b.scep.consumeChallenge('h1', T0)).outcome, 'ok');
        assert.deepEqual((await b.ca.listRevoked('issuing')).length, 0);
        assert.deepEqual((await a.ca.listRevoked('issuing')).map((r) => r.serialHex), [s2]);
      });
    });

    describe('tenant isolation (directory, access, audit)', () => {
      test("tenant A's users, groups, memberships, tokens and audit entries are invisible and untouchable through B", async () => {
        const a = await ctx.newTenant();
        const b = await ctx.newTenant();
        await a.directory.putUser(userRecord('u1'));
        await a.directory.putGroup(groupRecord('g1'));
        await a.directory.putGroup(groupRecord('g2'));
        await a.directory.addMember('g1', { type: 'user', id: 'u1' });
        await a.directory.addMember('g1', { type: 'group', id: 'g2' });
        await a.access.putToken(tokenRecord('t1'));
        await a.audit.append(auditEntry(1));

        assert.equal(await b.directory.getUser('u1'), undefined);
        assert.deepEqual((await b.directory.listUsers()).items, []);
        assert.equal(await b.directory.countUsers(), 0);
        assert.equal(await b.directory.getGroup('g1'), undefined);
        assert.deepEqual((await b.directory.listGroups()).items, []);
        assert.deepEqual((await b.directory.listMembers('g1')).items, []);
        assert.deepEqual((await b.directory.listTransitiveMembers('g1')).items, []);
        assert.deepEqual(await b.directory.listTransitiveGroupsOf({ type: 'user', id: 'u1' }), []);
        await rejectsWith(b.directory.replaceUser(userRecord('u1')), 'KF_NOT_FOUND');
        await rejectsWith(b.directory.replaceGroup(groupRecord('g1')), 'KF_NOT_FOUND');
        await rejectsWith(b.directory.addMember('g1', { type: 'user', id: 'u1' }), 'KF_NOT_FOUND');
        assert.equal(await b.directory.removeMember('g1', { type: 'user', id: 'u1' }), false);
        assert.equal(await b.directory.deleteUser('u1'), false);
        assert.equal(await b.directory.deleteGroup('g1'), false);
        assert.equal(await b.access.getToken('t1'), undefined);
        assert.deepEqual(await b.access.listTokens(), []);
        assert.equal(await b.access.revokeToken('t1', T0), false);
        assert.deepEqual((await b.audit.list()).items, []);

        // B's own records may reuse A's ids and UPNs.
        await b.directory.putUser(userRecord('u1'));
        await b.directory.putGroup(groupRecord('g1'));
        await b.directory.addMember('g1', { type: 'user', id: 'u1' });
        assert.deepEqual((await a.directory.listMembers('g1')).items.map((m) => m.id), ['g2', 'u1']);
        assert.equal((await a.access.getToken('t1'))?.revokedAt, undefined);
        assert.equal((await a.audit.verifyChain()).ok, true);
      });
    });

    describe('transactions', () => {
      test('a throw inside transaction() leaves none of its writes behind', async () => {
        const t = await ctx.newTenant();
        await t.ca.putCa(caRecord('issuing'));
        await assert.rejects(
          t.transaction(async (tx) => {
            await tx.ca.putCa(caRecord('second'));
            await tx.ca.recordIssued(issuedRecord('issuing', serial(1)));
            await tx.ca.revoke('issuing', serial(1), 0, T0);
            await tx.ca.putCrl('issuing', () => ({ thisUpdate: T0, nextUpdate: T0, der: new Uint8Array([1]) }));
            await tx.scep.putProfile(profileRecord('default'));
            await tx.scep.putChallenge(challengeRecord('h', 'default'));
            await tx.scep.recordTransaction(transactionRecord('tx'));
            await tx.directory.putUser(userRecord('u1'));
            await tx.directory.putGroup(groupRecord('g1'));
            await tx.directory.addMember('g1', { type: 'user', id: 'u1' });
            await tx.access.putToken(tokenRecord('t1'));
            await tx.audit.append(auditEntry(1));
            throw new Error('boom');
          }),
          /boom/,
        );
        assert.deepEqual((await t.ca.listCas()).map((c) => c.id), ['issuing']);
        assert.equal(await t.ca.getIssued('issuing', serial(1)), undefined);
        assert.deepEqual(await t.ca.listRevoked('issuing'), []);
        assert.equal(await t.ca.getLatestCrl('issuing'), undefined);
        assert.equal(await t.scep.getProfile('default'), undefined);
        assert.deepEqual(await t.scep.listTransactions(), []);
        assert.equal(await t.directory.getUser('u1'), undefined);
        assert.equal(await t.directory.getGroup('g1'), undefined);
        assert.deepEqual(await t.access.listTokens(), []);
        assert.deepEqual((await t.audit.list()).items, []);
        // The rolled-back CRL number is allocated again.
        const crl = await t.ca.putCrl('issuing', () => ({ thisUpdate: T0, nextUpdate: T0, der: new Uint8Array([1]) }));
        assert.equal(crl.crlNumber, 1n);
      });

      test('a coded error inside transaction() rolls back the earlier writes and surfaces unchanged', async () => {
        const t = await ctx.newTenant();
        await t.ca.putCa(caRecord('issuing'));
        await rejectsWith(
          t.transaction(async (tx) => {
            await tx.ca.recordIssued(issuedRecord('issuing', serial(1)));
            await tx.ca.putCa(caRecord('issuing')); // duplicate
          }),
          'KF_CONFLICT',
        );
        assert.equal(await t.ca.getIssued('issuing', serial(1)), undefined);
      });

      test('a committed transaction keeps every write and returns its value; nested calls join it', async () => {
        const t = await ctx.newTenant();
        const value = await t.transaction(async (tx) => {
          await tx.ca.putCa(caRecord('issuing'));
          await tx.transaction(async (inner) => {
            await inner.ca.recordIssued(issuedRecord('issuing', serial(1)));
          });
          await tx.scep.putProfile(profileRecord('default'));
          return 42;
        });
        assert.equal(value, 42);
        assert.ok(await t.ca.getIssued('issuing', serial(1)));
        assert.ok(await t.scep.getProfile('default'));
      });

      test('attempt() inside a transaction undoes only its own writes when it throws, even after a database error; the rest commits', async () => {
        const t = await ctx.newTenant();
        await t.ca.putCa(caRecord('issuing'));
        const outcomes = await t.transaction(async (tx) => {
          const seen: string[] = [];
          for (const n of [1, 2, 3]) {
            try {
              await tx.attempt(async (sp) => {
                await sp.ca.recordIssued(issuedRecord('issuing', serial(n * 10)));
                if (n === 2) await sp.ca.recordIssued(issuedRecord('issuing', serial(10))); // duplicate: the database refuses
                await sp.attempt((inner) => inner.ca.recordIssued(issuedRecord('issuing', serial(n * 10 + 1))));
                if (n === 3) throw new Error('refused after two writes');
              });
              seen.push(`${n} ok`);
            } catch (e) {
              seen.push(`${n} ${isKeyfleetError(e) ? e.code : (e as Error).message}`);
            }
          }
          return seen;
        });
        assert.deepEqual(outcomes, ['1 ok', '2 KF_CONFLICT', '3 refused after two writes']);
        const kept = (await t.ca.listIssued('issuing')).map((r) => r.serialHex);
        assert.deepEqual(kept, [serial(10), serial(11)].sort());
        // Outside a transaction it is one: all or nothing.
        await assert.rejects(t.attempt(async (tx) => {
          await tx.ca.recordIssued(issuedRecord('issuing', serial(50)));
          throw new Error('no');
        }));
        assert.equal(await t.ca.getIssued('issuing', serial(50)), undefined);
      });
    });

    describe('migrations', () => {
      test('reopening an existing database applies nothing twice and keeps the data', async () => {
        const t = await ctx.newTenant();
        await t.ca.putCa(caRecord('issuing'));
        const again = await backend.open();
        try {
          assert.ok(await again.forTenant(t.tenantId).ca.getCa('issuing'));
          assert.ok(await again.getTenant(t.tenantId));
        } finally {
          await again.close();
        }
        const third = await backend.open();
        await third.close();
        assert.ok(await t.ca.getCa('issuing'));
      });
    });

    test('expiry is compared in whole milliseconds on both databases', async () => {
      const t = await ctx.newTenant();
      await t.ca.putCa(caRecord('issuing'));
      await t.scep.putProfile(profileRecord('default'));
      await t.scep.putChallenge(challengeRecord('edge', 'default', { expiresAt: new Date(T0.getTime() + HOUR) }));
      assert.equal((await t.scep.consumeChallenge('edge', new Date(T0.getTime() + HOUR - 1))).outcome, 'ok');
    });
  });
}
