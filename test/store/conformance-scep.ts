/** ScepStore behaviour (src/store/scep.ts), part of the conformance suite. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TenantStore } from '../../src/store/store.ts';
import { rejectsWith, type SuiteContext } from './suite.ts';
import { HOUR, T0, at, caRecord, challengeRecord, profileRecord, serial, transactionRecord } from './fixtures.ts';

async function withProfile(ctx: SuiteContext): Promise<TenantStore> {
  const t = await ctx.newTenant();
  await t.ca.putCa(caRecord('issuing'));
  await t.scep.putProfile(profileRecord('default'));
  return t;
}

export function scepConformance(ctx: SuiteContext): void {
  describe('ScepStore', () => {
    test('profiles round-trip with their JSON template; listProfiles is ordered by name', async () => {
      const t = await ctx.newTenant();
      await t.ca.putCa(caRecord('issuing'));
      const b = profileRecord('b-profile');
      const a = { ...profileRecord('a-profile'), template: 'just a string' };
      await t.scep.putProfile(b);
      await t.scep.putProfile(a);
      assert.deepEqual(await t.scep.getProfile('b-profile'), b);
      assert.deepEqual(await t.scep.listProfiles(), [a, b]);
      assert.equal(await t.scep.getProfile('c'), undefined);
    });

    test('a duplicate profile name is KF_CONFLICT; a profile for an unknown CA is KF_NOT_FOUND', async () => {
      const t = await withProfile(ctx);
      await rejectsWith(t.scep.putProfile({ ...profileRecord('default'), template: { changed: true } }), 'KF_CONFLICT');
      assert.deepEqual((await t.scep.getProfile('default'))?.template, profileRecord('default').template);
      await rejectsWith(t.scep.putProfile(profileRecord('x', 'missing')), 'KF_NOT_FOUND');
    });

    test('a challenge is consumed once: ok with its record, then used', async () => {
      const t = await withProfile(ctx);
      const ch = challengeRecord('h1', 'default', { deviceId: undefined, sanEmail: undefined, sanUpn: 'alice@corp' });
      await t.scep.putChallenge(ch);
      assert.deepEqual(await t.scep.consumeChallenge('h1', at(1)), { outcome: 'ok', challenge: ch });
      assert.deepEqual(await t.scep.consumeChallenge('h1', at(2)), { outcome: 'used' });
      assert.deepEqual(await t.scep.consumeChallenge('h1', at(2 * HOUR)), { outcome: 'used' });
      assert.deepEqual(await t.scep.consumeChallenge('nope', at(1)), { outcome: 'unknown' });
    });

    test('withdrawChallenges uses up a device’s unused challenges, of every profile or of one profile prefix', async () => {
      const t = await withProfile(ctx);
      await t.scep.putProfile(profileRecord('p-x-1'));
      await t.scep.putChallenge(challengeRecord('a', 'default', { deviceId: 'd1' }));
      await t.scep.putChallenge(challengeRecord('b', 'p-x-1', { deviceId: 'd1' }));
      await t.scep.putChallenge(challengeRecord('c', 'p-x-1', { deviceId: 'd2' }));
      await t.scep.putChallenge(challengeRecord('d', 'p-x-1', { deviceId: 'd1' }));
      assert.equal((await t.scep.consumeChallenge('d', at(1))).outcome, 'ok');
      // A prefix is compared as text, not as a LIKE pattern.
      assert.equal(await t.scep.withdrawChallenges('d1', 'p_x', at(2)), 0);
      assert.equal(await t.scep.withdrawChallenges('d1', 'p-x-', at(2)), 1, 'only b: d was used already, a is another profile');
      assert.equal((await t.scep.consumeChallenge('b', at(3))).outcome, 'used');
      assert.equal((await t.scep.consumeChallenge('c', at(3))).outcome, 'ok', 'another device’s challenge stands');
      assert.equal(await t.scep.withdrawChallenges('d1', undefined, at(4)), 1);
      assert.equal((await t.scep.consumeChallenge('a', at(5))).outcome, 'used');
      const other = await ctx.newTenant();
      assert.equal(await other.scep.withdrawChallenges('d2', undefined, at(6)), 0);
    });

    test('an expired challenge is refused, at and after expiresAt, and stays unusable', async () => {
      const t = await withProfile(ctx);
      await t.scep.putChallenge(challengeRecord('h1', 'default', { expiresAt: at(HOUR) }));
      assert.deepEqual(await t.scep.consumeChallenge('h1', at(HOUR)), { outcome: 'expired' });
      assert.deepEqual(await t.scep.consumeChallenge('h1', at(2 * HOUR)), { outcome: 'expired' });
      // A clock set back does not make it "used": it was never consumed.
      assert.equal((await t.scep.consumeChallenge('h1', at(HOUR - 1))).outcome, 'ok');
    });

    test('a duplicate challenge is KF_CONFLICT; one for an unknown profile is KF_NOT_FOUND', async () => {
      const t = await withProfile(ctx);
      await t.scep.putChallenge(challengeRecord('h1', 'default'));
      await rejectsWith(t.scep.putChallenge(challengeRecord('h1', 'default')), 'KF_CONFLICT');
      await rejectsWith(t.scep.putChallenge(challengeRecord('h2', 'missing')), 'KF_NOT_FOUND');
    });

    test('concurrent consumers over two connections: exactly one gets the challenge', async () => {
      const t = await withProfile(ctx);
      await t.scep.putChallenge(challengeRecord('race', 'default'));
      const second = await ctx.backend.open();
      try {
        const t2 = second.forTenant(t.tenantId);
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? t : t2).scep.consumeChallenge('race', at(i))),
        );
        assert.equal(results.filter((r) => r.outcome === 'ok').length, 1);
        assert.equal(results.filter((r) => r.outcome === 'used').length, 19);
      } finally {
        await second.close();
      }
    });

    test('transactions: getTransaction gives the latest record of an id; listTransactions is newest first', async () => {
      const t = await ctx.newTenant();
      const pending = transactionRecord('tx-1', { outcome: 'pending', serialHex: undefined, createdAt: at(0) });
      const issued = transactionRecord('tx-1', { messageType: 'GetCertInitial', createdAt: at(1000) });
      const failed = transactionRecord('tx-2', {
        outcome: 'failure',
        failInfo: 'badRequest',
        serialHex: undefined,
        profile: 'unknown-profile',
        createdAt: at(500),
      });
      await t.scep.recordTransaction(pending);
      await t.scep.recordTransaction(failed);
      await t.scep.recordTransaction(issued);
      assert.deepEqual(await t.scep.getTransaction('tx-1'), issued);
      assert.deepEqual(await t.scep.getTransaction('tx-2'), failed);
      assert.equal(await t.scep.getTransaction('tx-3'), undefined);
      assert.deepEqual(await t.scep.listTransactions(), [issued, failed, pending]);
      assert.deepEqual(await t.scep.listTransactions({ limit: 1 }), [issued]);
      await rejectsWith(t.scep.listTransactions({ limit: 0 }), 'KF_USAGE');
    });

    test('strings with SQL metacharacters and non-ASCII are stored as given', async () => {
      const t = await ctx.newTenant();
      const odd = `x'); drop table scep_transactions; -- "é" \\ %_ \u{1F510}`;
      await t.scep.recordTransaction(transactionRecord(odd, { requester: odd, serialHex: serial(1), createdAt: T0 }));
      assert.equal((await t.scep.getTransaction(odd))?.requester, odd);
    });
  });
}
