/** AuditStore behaviour (src/store/audit.ts), part of the conformance suite. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GENESIS_HASH, auditHash, canonicalJson, type AuditEntry } from '../../src/store/audit.ts';
import type { SuiteContext } from './suite.ts';
import { at } from './fixtures.ts';

export function auditEntry(n: number, overrides: Partial<AuditEntry> = {}): AuditEntry {
  return {
    actorId: 'tok-1',
    actorName: 'admin',
    action: 'user.update',
    resourceType: 'user',
    resourceId: `u${n % 3}`,
    before: { n, nested: { b: [1, 'x'], a: null } },
    after: { n: n + 1, text: `it's "quoted" ü` },
    at: at(n),
    ...overrides,
  };
}

export function auditConformance(ctx: SuiteContext): void {
  describe('AuditStore', () => {
    test('appends form a hash chain from the genesis hash; list pages oldest first and filters by resource', async () => {
      const t = await ctx.newTenant();
      const first = await t.audit.append(auditEntry(1, { before: null }));
      assert.equal(first.seq, 1);
      assert.equal(first.prevHash, GENESIS_HASH);
      assert.equal(first.hash, auditHash(t.tenantId, 1, GENESIS_HASH, auditEntry(1, { before: null })));
      for (let n = 2; n <= 7; n++) await t.audit.append(auditEntry(n));
      const seqs: number[] = [];
      let cursor: string | undefined;
      do {
        const page = await t.audit.list({ limit: 3, ...(cursor === undefined ? {} : { cursor }) });
        seqs.push(...page.items.map((r) => r.seq));
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7]);
      const all = (await t.audit.list()).items;
      for (let i = 1; i < all.length; i++) assert.equal(all[i]!.prevHash, all[i - 1]!.hash);
      assert.deepEqual(all[1]!.before, auditEntry(2).before);
      assert.deepEqual((await t.audit.list({ resourceType: 'user', resourceId: 'u1' })).items.map((r) => r.seq), [1, 4, 7]);
      assert.deepEqual(await t.audit.verifyChain(), { ok: true, entries: 7, headHash: all[6]!.hash });
    });

    test('each tenant has its own chain', async () => {
      const a = await ctx.newTenant();
      const b = await ctx.newTenant();
      await a.audit.append(auditEntry(1));
      await a.audit.append(auditEntry(2));
      const firstB = await b.audit.append(auditEntry(3));
      assert.equal(firstB.seq, 1);
      assert.equal(firstB.prevHash, GENESIS_HASH);
      assert.deepEqual((await b.audit.list()).items.map((r) => r.seq), [1]);
      assert.equal((await a.audit.verifyChain()).ok, true);
    });

    test('concurrent appends queue rather than fork the chain', async () => {
      const t = await ctx.newTenant();
      await Promise.all(Array.from({ length: 8 }, (_, i) => t.audit.append(auditEntry(i))));
      const result = await t.audit.verifyChain();
      assert.equal(result.ok, true);
      assert.equal(result.entries, 8);
    });

    test('an append inside a failed transaction vanishes with it', async () => {
      const t = await ctx.newTenant();
      await t.audit.append(auditEntry(1));
      await assert.rejects(
        t.transaction(async (tx) => {
          await tx.audit.append(auditEntry(2));
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.deepEqual((await t.audit.list()).items.map((r) => r.seq), [1]);
      assert.equal((await t.audit.append(auditEntry(3))).seq, 2);
      assert.equal((await t.audit.verifyChain()).ok, true);
    });

    test('head is the newest entry of the tenant\'s own chain, undefined while it is empty', async () => {
      const a = await ctx.newTenant();
      const b = await ctx.newTenant();
      assert.equal(await a.audit.head(), undefined);
      const first = await a.audit.append(auditEntry(1));
      assert.deepEqual(await a.audit.head(), { seq: 1, hash: first.hash });
      await a.audit.append(auditEntry(2));
      const third = await a.audit.append(auditEntry(3));
      assert.deepEqual(await a.audit.head(), { seq: 3, hash: third.hash });
      assert.equal(await b.audit.head(), undefined);
      await b.audit.append(auditEntry(4));
      assert.equal((await b.audit.head())?.seq, 1);
      assert.deepEqual(await a.audit.head(), { seq: 3, hash: third.hash });
      // A rolled-back append leaves the head where it was.
      await assert.rejects(
        a.transaction(async (tx) => {
          await tx.audit.append(auditEntry(5));
          assert.equal((await tx.audit.head())?.seq, 4);
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.deepEqual(await a.audit.head(), { seq: 3, hash: third.hash });
    });

    test('appendMany extends the chain exactly as appends one by one would, after and before single appends', async () => {
      const one = await ctx.newTenant();
      const many = await ctx.newTenant();
      for (let n = 1; n <= 6; n++) await one.audit.append(auditEntry(n));
      assert.deepEqual(await many.audit.appendMany([]), []);
      await many.audit.append(auditEntry(1));
      const batch = await many.audit.appendMany([2, 3, 4, 5].map((n) => auditEntry(n)));
      assert.deepEqual(batch.map((r) => r.seq), [2, 3, 4, 5]);
      const last = await many.audit.append(auditEntry(6));
      assert.equal(last.seq, 6);
      const expected = (await one.audit.list()).items;
      const got = (await many.audit.list()).items;
      // The tenant id is hashed in, so the two chains differ; each must hold up on its own and carry the same entries.
      assert.deepEqual(got.map(({ hash: _h, prevHash: _p, ...e }) => e), expected.map(({ hash: _h, prevHash: _p, ...e }) => e));
      let prev = GENESIS_HASH;
      for (const r of got) {
        assert.equal(r.prevHash, prev);
        assert.equal(r.hash, auditHash(many.tenantId, r.seq, prev, r));
        prev = r.hash;
      }
      assert.deepEqual(batch, got.slice(1, 5), 'appendMany returns the records as stored');
      assert.deepEqual(await many.audit.verifyChain(), { ok: true, entries: 6, headHash: last.hash });
      assert.deepEqual(await many.audit.head(), { seq: 6, hash: last.hash });
    });

    test('appendMany: hundreds at once; inside a failed transaction all of them vanish', async () => {
      const t = await ctx.newTenant();
      const records = await t.audit.appendMany(Array.from({ length: 1203 }, (_, i) => auditEntry(i)));
      assert.equal(records.length, 1203);
      assert.equal(records[1202]!.seq, 1203);
      await assert.rejects(
        t.transaction(async (tx) => {
          await tx.audit.appendMany([auditEntry(1), auditEntry(2)]);
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.deepEqual(await t.audit.verifyChain(), { ok: true, entries: 1203, headHash: records[1202]!.hash });
      const other = await ctx.newTenant();
      assert.equal((await other.audit.appendMany([auditEntry(1)]))[0]!.prevHash, GENESIS_HASH, 'each tenant has its own chain');
    });

    test('concurrent appendMany calls queue rather than fork the chain', async () => {
      const t = await ctx.newTenant();
      await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? t.audit.appendMany([auditEntry(i), auditEntry(i + 10)]) : t.audit.append(auditEntry(i)))));
      assert.deepEqual(await t.audit.verifyChain().then((r) => [r.ok, r.entries]), [true, 9]);
    });

    test('canonical JSON sorts keys at every depth', () => {
      assert.equal(canonicalJson({ b: 1, a: [{ d: true, c: null }, 'x'] }), '{"a":[{"c":null,"d":true},"x"],"b":1}');
    });
  });
}
