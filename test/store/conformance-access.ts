/** AccessStore and TokenLookup behaviour (src/store/access.ts), part of the conformance suite. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ApiTokenRecord } from '../../src/store/access.ts';
import { rejectsWith, type SuiteContext } from './suite.ts';
import { T0, at } from './fixtures.ts';

export function tokenRecord(id: string, overrides: Partial<ApiTokenRecord> = {}): ApiTokenRecord {
  return { id, name: `token ${id}`, role: 'helpDesk', secretHash: `hash-${id}-${Math.random()}`, createdAt: T0, lastUsedAt: undefined, revokedAt: undefined, ...overrides };
}

export function accessConformance(ctx: SuiteContext): void {
  describe('AccessStore', () => {
    test('tokens round-trip, are found by hash across tenants, and revoke once', async () => {
      const t = await ctx.newTenant();
      const tok = tokenRecord('t1', { role: 'administrator' });
      await t.access.putToken(tok);
      assert.deepEqual(await t.access.getToken('t1'), tok);
      assert.deepEqual(await t.access.listTokens(), [tok]);
      assert.deepEqual(await ctx.store().tokens.findByHash(tok.secretHash), { tenantId: t.tenantId, token: tok });
      assert.equal(await ctx.store().tokens.findByHash('nope'), undefined);
      assert.equal(await ctx.store().tokens.anyTokens(), true);
      await rejectsWith(t.access.putToken({ ...tokenRecord('t2'), secretHash: tok.secretHash }), 'KF_CONFLICT');
      assert.equal(await t.access.revokeToken('t1', at(5)), true);
      assert.equal(await t.access.revokeToken('t1', at(6)), false);
      assert.deepEqual((await t.access.getToken('t1'))?.revokedAt, at(5));
    });

    test('markUsed writes only when the stored time is older than the granularity', async () => {
      const t = await ctx.newTenant();
      await t.access.putToken(tokenRecord('t1'));
      const lookup = ctx.store().tokens;
      await lookup.markUsed(t.tenantId, 't1', at(1000), 60_000);
      assert.deepEqual((await t.access.getToken('t1'))?.lastUsedAt, at(1000));
      await lookup.markUsed(t.tenantId, 't1', at(30_000), 60_000);
      assert.deepEqual((await t.access.getToken('t1'))?.lastUsedAt, at(1000));
      await lookup.markUsed(t.tenantId, 't1', at(70_000), 60_000);
      assert.deepEqual((await t.access.getToken('t1'))?.lastUsedAt, at(70_000));
    });

    test('an unknown role is refused by the database', async () => {
      const t = await ctx.newTenant();
      await assert.rejects(t.access.putToken(tokenRecord('bad', { role: 'root' as 'helpDesk' })));
    });
  });
}
