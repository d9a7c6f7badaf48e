/** CaStore behaviour (src/store/ca.ts), part of the conformance suite. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { CrlRecord } from '../../src/store/ca.ts';
import { rejectsWith, type SuiteContext } from './suite.ts';
import { HOUR, T0, at, bytesOf, caRecord, issuedRecord, serial } from './fixtures.ts';

function crlBody(n: bigint): Omit<CrlRecord, 'caId' | 'crlNumber'> {
  return { thisUpdate: at(Number(n)), nextUpdate: at(Number(n) + 7 * 24 * HOUR), der: bytesOf(0x30, Number(n) & 0xff) };
}

export function caConformance(ctx: SuiteContext): void {
  describe('CaStore', () => {
    test('putCa and getCa round-trip every field; listCas lists them', async () => {
      const t = await ctx.newTenant();
      const root = caRecord('root', { role: 'root', chainDer: [], sealedKey: undefined, keyRef: 'pkcs11:token=x' });
      const issuing = caRecord('issuing', { createdAt: at(1) });
      await t.ca.putCa(root);
      await t.ca.putCa(issuing);
      assert.deepEqual(await t.ca.getCa('root'), root);
      assert.deepEqual(await t.ca.getCa('issuing'), issuing);
      assert.equal(await t.ca.getCa('nope'), undefined);
      assert.deepEqual(
        (await t.ca.listCas()).map((c) => c.id),
        ['root', 'issuing'],
      );
    });

    test('a second CA with the same id is refused with KF_CONFLICT and the first stays', async () => {
      const t = await ctx.newTenant();
      await t.ca.putCa(caRecord('issuing'));
      await rejectsWith(t.ca.putCa(caRecord('issuing', { keyRef: 'file:other' })), 'KF_CONFLICT');
      assert.equal((await t.ca.getCa('issuing'))?.keyRef, 'file:issuing');
    });

    test('recordIssued and getIssued round-trip good and revoked records', async () => {
      const t = await ctx.newTenant();
      await t.ca.putCa(caRecord('issuing'));
      const good = issuedRecord('issuing', serial(1));
      const revoked = issuedRecord('issuing', serial(2), {
        profile: undefined,
        requester: undefined,
        emailAddresses: [],
        status: 'revoked',
        revokedAt: at(5),
        revocationReason: 4,
      });
      await t.ca.recordIssued(good);
      await t.ca.recordIssued(revoked);
      assert.deepEqual(await t.ca.getIssued('issuing', serial(1)), good);
      assert.deepEqual(await t.ca.getIssued('issuing', serial(2)), revoked);
      assert.equal(await t.ca.getIssued('issuing', serial(3)), undefined);
    });

    test('a duplicate serial for the CA is KF_CONFLICT; the same serial under another CA is not', async () => {
      const t = await ctx.newTenant();
      await t.ca.putCa(caRecord('issuing'));
      await t.ca.putCa(caRecord('other'));
      await t.ca.recordIssued(issuedRecord('issuing', serial(1)));
      await rejectsWith(t.ca.recordIssued(issuedRecord('issuing', serial(1), { subject: 'CN=x' })), 'KF_CONFLICT');
      await t.ca.recordIssued(issuedRecord('other', serial(1)));
      assert.equal((await t.ca.getIssued('issuing', serial(1)))?.subject, 'CN=alice@example.com');
    });

    test('recordIssued refuses an unknown CA, a serial not in lower-case hex, and an inconsistent status', async () => {
      const t = await ctx.newTenant();
      await t.ca.putCa(caRecord('issuing'));
      await rejectsWith(t.ca.recordIssued(issuedRecord('missing', serial(1))), 'KF_NOT_FOUND');
      await rejectsWith(t.ca.recordIssued(issuedRecord('issuing', 'ABCDEF')), 'KF_USAGE');
      await rejectsWith(t.ca.recordIssued(issuedRecord('issuing', "01'; drop table cas; --")), 'KF_USAGE');
      await rejectsWith(t.ca.recordIssued(issuedRecord('issuing', serial(1), { status: 'revoked' })), 'KF_USAGE');
      assert.deepEqual(await t.ca.listIssued('issuing'), []);
    });

    test('revoke succeeds once; the first revocation stands; unknown serials are false', async () => {
      const t = await ctx.newTenant();
      await t.ca.putCa(caRecord('issuing'));
      await t.ca.recordIssued(issuedRecord('issuing', serial(1)));
      assert.equal(await t.ca.revoke('issuing', serial(1), 1, at(10)), true);
      assert.equal(await t.ca.revoke('issuing', serial(1), 4, at(20)), false);
      assert.equal(await t.ca.revoke('issuing', serial(9), 1, at(10)), false);
      assert.equal(await t.ca.revoke('other', serial(1), 1, at(10)), false);
      const rec = await t.ca.getIssued('issuing', serial(1));
      assert.equal(rec?.status, 'revoked');
      assert.deepEqual(rec.revokedAt, at(10));
      assert.equal(rec.revocationReason, 1);
      assert.deepEqual(await t.ca.listRevoked('issuing'), [{ serialHex: serial(1), revokedAt: at(10), reason: 1 }]);
    });

    test('concurrent revocations of one certificate: exactly one wins', async () => {
      const t = await ctx.newTenant();
      await t.ca.putCa(caRecord('issuing'));
      await t.ca.recordIssued(issuedRecord('issuing', serial(1)));
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => t.ca.revoke('issuing', serial(1), i, at(i))));
      assert.equal(results.filter(Boolean).length, 1);
    });

    test('listRevoked lists only revoked entries of that CA, in serial order, reason optional', async () => {
      const t = await ctx.newTenant();
      await t.ca.putCa(caRecord('issuing'));
      await t.ca.putCa(caRecord('other'));
      for (let i = 0; i < 6; i++) await t.ca.recordIssued(issuedRecord('issuing', serial(i)));
      await t.ca.recordIssued(issuedRecord('other', serial(1)));
      await t.ca.revoke('issuing', serial(4), undefined, at(4));
      await t.ca.revoke('issuing', serial(1), 5, at(1));
      await t.ca.revoke('other', serial(1), 1, at(1));
      assert.deepEqual(await t.ca.listRevoked('issuing'), [
        { serialHex: serial(1), revokedAt: at(1), reason: 5 },
        { serialHex: serial(4), revokedAt: at(4), reason: undefined },
      ]);
      assert.deepEqual(await t.ca.listRevoked('missing'), []);
    });

    test('listIssued pages by serial with a cursor, with and without a status filter', async () => {
      const t = await ctx.newTenant();
      await t.ca.putCa(caRecord('issuing'));
      // Inserted out of order; serials of different lengths sort as text.
      const serials = Array.from({ length: 25 }, (_, i) => serial((i * 7) % 25));
      serials.push('00', '0a', 'ff');
      await t.transaction(async (tx) => {
        for (const s of serials) await tx.ca.recordIssued(issuedRecord('issuing', s));
      });
      for (const s of [serial(3), serial(10), '0a']) await t.ca.revoke('issuing', s, 0, T0);

      const seen: string[] = [];
      let after: string | undefined;
      for (;;) {
        const page = await t.ca.listIssued('issuing', { limit: 10, ...(after === undefined ? {} : { afterSerialHex: after }) });
        if (page.length === 0) break;
        assert.ok(page.length <= 10);
        seen.push(...page.map((r) => r.serialHex));
        after = page.at(-1)?.serialHex;
      }
      const sorted = [...serials].sort();
      assert.deepEqual(seen, sorted);

      const revoked = await t.ca.listIssued('issuing', { status: 'revoked' });
      assert.deepEqual(revoked.map((r) => r.serialHex), ['0a', serial(3), serial(10)]);
      const good = await t.ca.listIssued('issuing', { status: 'good', afterSerialHex: serial(20), limit: 1000 });
      assert.deepEqual(good.map((r) => r.serialHex), sorted.filter((s) => s > serial(20)));
      assert.equal((await t.ca.listIssued('issuing')).length, 28); // default page (100) holds them all
    });

    test('listIssued filters by requester, with the status filter and the cursor', async () => {
      const t = await ctx.newTenant();
      await t.ca.putCa(caRecord('issuing'));
      const owners: [string, string | undefined][] = [['01', 'device-a'], ['02', 'device-b'], ['03', 'device-a'], ['04', undefined], ['05', 'device-a']];
      for (const [s, requester] of owners) await t.ca.recordIssued(issuedRecord('issuing', s, { requester }));
      await t.ca.revoke('issuing', '03', 5, T0);
      assert.deepEqual((await t.ca.listIssued('issuing', { requester: 'device-a' })).map((r) => r.serialHex), ['01', '03', '05']);
      assert.deepEqual((await t.ca.listIssued('issuing', { requester: 'device-a', status: 'good' })).map((r) => r.serialHex), ['01', '05']);
      assert.deepEqual((await t.ca.listIssued('issuing', { requester: 'device-a', afterSerialHex: '01', limit: 1 })).map((r) => r.serialHex), ['03']);
      assert.deepEqual(await t.ca.listIssued('issuing', { requester: 'device-c' }), []);
    });

    test('listIssued refuses a limit outside 1..1000', async () => {
      const t = await ctx.newTenant();
      for (const limit of [0, -1, 1.5, 1001, Number.NaN]) {
        await rejectsWith(t.ca.listIssued('issuing', { limit }), 'KF_USAGE');
      }
    });

    test('putCrl numbers CRLs 1, 2, 3 per CA and getLatestCrl returns the newest', async () => {
      const t = await ctx.newTenant();
      await t.ca.putCa(caRecord('issuing'));
      await t.ca.putCa(caRecord('other'));
      assert.equal(await t.ca.getLatestCrl('issuing'), undefined);
      const numbers: bigint[] = [];
      for (let i = 0; i < 3; i++) numbers.push((await t.ca.putCrl('issuing', crlBody)).crlNumber);
      assert.deepEqual(numbers, [1n, 2n, 3n]);
      assert.equal((await t.ca.putCrl('other', crlBody)).crlNumber, 1n);
      assert.deepEqual(await t.ca.getLatestCrl('issuing'), { caId: 'issuing', crlNumber: 3n, ...crlBody(3n) });
    });

    test('a failing build rolls back its CRL number and keeps the previous CRL', async () => {
      const t = await ctx.newTenant();
      await t.ca.putCa(caRecord('issuing'));
      await t.ca.putCrl('issuing', crlBody);
      await assert.rejects(
        t.ca.putCrl('issuing', () => {
          throw new Error('signing failed');
        }),
        /signing failed/,
      );
      assert.equal((await t.ca.getLatestCrl('issuing'))?.crlNumber, 1n);
      assert.equal((await t.ca.putCrl('issuing', crlBody)).crlNumber, 2n);
    });

    test('putCrl for an unknown CA is KF_NOT_FOUND', async () => {
      const t = await ctx.newTenant();
      await rejectsWith(t.ca.putCrl('missing', crlBody), 'KF_NOT_FOUND');
    });

    test('concurrent putCrl, over two connections, allocates distinct consecutive numbers; the latest is the highest', async () => {
      const t = await ctx.newTenant();
      await t.ca.putCa(caRecord('issuing'));
      const second = await ctx.backend.open();
      try {
        const t2 = second.forTenant(t.tenantId);
        const runs = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? t : t2).ca.putCrl('issuing', crlBody));
        const numbers = (await Promise.all(runs)).map((c) => c.crlNumber).sort((x, y) => (x < y ? -1 : 1));
        assert.deepEqual(numbers, Array.from({ length: 20 }, (_, i) => BigInt(i + 1)));
        assert.equal((await t.ca.getLatestCrl('issuing'))?.crlNumber, 20n);
      } finally {
        await second.close();
      }
    });
  });
}
