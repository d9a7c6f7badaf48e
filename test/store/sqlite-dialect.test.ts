/** The node:sqlite Kysely dialect (src/store/sqlite/dialect.ts) on its own. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kysely, sql } from 'kysely';
import { NodeSqliteDialect } from '../../src/store/sqlite/dialect.ts';

interface Db {
  t: { id: number | bigint; n: number | bigint | null; b: Uint8Array | null; s: string | null };
}

let dir: string;
const open = (busyTimeoutMs?: number): Kysely<Db> =>
  new Kysely<Db>({
    dialect: new NodeSqliteDialect({ path: join(dir, 'db.sqlite'), ...(busyTimeoutMs === undefined ? {} : { busyTimeoutMs }) }),
  });
let db: Kysely<Db>;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keyfleet-sqlite-'));
  db = open();
  await db.schema
    .createTable('t')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('n', 'integer')
    .addColumn('b', 'blob')
    .addColumn('s', 'text')
    .execute();
});
after(async () => {
  await db.destroy();
  rmSync(dir, { recursive: true, force: true });
});

test('integers past 2^53 come back as exact bigints, safe ones as numbers, also through RETURNING', async () => {
  const big = 2n ** 62n + 7n;
  const inserted = await db.insertInto('t').values({ id: 1, n: big }).returning(['id', 'n']).executeTakeFirstOrThrow();
  assert.deepEqual({ ...inserted }, { id: 1, n: big });
  await db.insertInto('t').values({ id: 2, n: -(2n ** 63n) }).execute();
  await db.insertInto('t').values({ id: 3, n: Number.MAX_SAFE_INTEGER }).execute();
  const rows = await db.selectFrom('t').select(['id', 'n']).orderBy('id').execute();
  assert.deepEqual(rows.map((r) => ({ ...r })), [
    { id: 1, n: big },
    { id: 2, n: -(2n ** 63n) },
    { id: 3, n: Number.MAX_SAFE_INTEGER },
  ]);
});

test('bytes round-trip as Uint8Array, including empty and NUL bytes', async () => {
  const blob = new Uint8Array([0, 1, 2, 0, 255]);
  await db.insertInto('t').values([{ id: 10, b: blob }, { id: 11, b: new Uint8Array() }]).execute();
  const rows = await db.selectFrom('t').select('b').where('id', 'in', [10, 11]).orderBy('id').execute();
  assert.deepEqual(rows.map((r) => r.b), [blob, new Uint8Array()]);
});

test('the database runs in WAL mode with foreign keys enforced', async () => {
  const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(db);
  assert.equal(mode.rows[0]?.journal_mode, 'wal');
  const fk = await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(db);
  assert.equal(fk.rows[0]?.foreign_keys, 1);
});

test('a transaction that throws is rolled back; statements report affected rows', async () => {
  await assert.rejects(
    db.transaction().execute(async (tx) => {
      await tx.insertInto('t').values({ id: 20, s: 'x' }).execute();
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(await db.selectFrom('t').select('id').where('id', '=', 20).executeTakeFirst(), undefined);
  await db.insertInto('t').values({ id: 21, s: 'a' }).execute();
  const updated = await db.updateTable('t').set({ s: 'b' }).where('id', '=', 21).executeTakeFirst();
  assert.equal(updated.numUpdatedRows, 1n);
});

test('two Kysely instances on one file in one process share the connection instead of stalling', async () => {
  // With two connections in one thread, B's synchronous busy wait would block the event loop A needs to commit.
  const other = open(10_000);
  try {
    const started = Date.now();
    const a = db.transaction().execute(async (tx) => {
      await tx.insertInto('t').values({ id: 30, s: 'a' }).execute();
      await sleep(50);
      await tx.insertInto('t').values({ id: 31, s: 'a' }).execute();
    });
    await sleep(10);
    const b = other.insertInto('t').values({ id: 32, s: 'b' }).execute();
    await Promise.all([a, b]);
    assert.ok(Date.now() - started < 2000, 'no busy-timeout stall');
    const ids = await other.selectFrom('t').select('id').where('id', '>=', 30).orderBy('id').execute();
    assert.deepEqual(ids.map((r) => r.id), [30, 31, 32]);
  } finally {
    await other.destroy();
  }
  // The first instance still works after the second closed its share.
  assert.ok(await db.selectFrom('t').select('id').where('id', '=', 32).executeTakeFirst());
});

test('SELECTs can be streamed', async () => {
  const seen: unknown[] = [];
  for await (const row of db.selectFrom('t').select('id').where('id', 'in', [1, 2, 3]).orderBy('id').stream()) {
    seen.push(row.id);
  }
  assert.deepEqual(seen, [1, 2, 3]);
});
