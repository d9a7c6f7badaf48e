/** openStore (src/store/open.ts): where the database is, and the coded errors when it cannot be opened. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKeyfleetError } from '../../src/errors.ts';
import { SQLITE_FILE_NAME, openStore } from '../../src/store/open.ts';

const dir = mkdtempSync(join(tmpdir(), 'keyfleet-open-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('SQLite by default: <dataDir>/keyfleet.db, the directory created private (0700)', async () => {
  const dataDir = join(dir, 'nested', 'data');
  const store = await openStore({ dataDir, env: {} });
  try {
    assert.equal(store.flavor, 'sqlite');
    assert.equal(statSync(dataDir).mode & 0o777, 0o700);
    assert.ok(statSync(join(dataDir, SQLITE_FILE_NAME)).isFile());
  } finally {
    await store.close();
  }
});

test('KEYFLEET_DATABASE_URL is read from the environment; only postgres:// URLs are accepted', async () => {
  await assert.rejects(openStore({ dataDir: dir, env: { KEYFLEET_DATABASE_URL: 'mysql://x/y' } }), (e) =>
    isKeyfleetError(e, 'KF_USAGE'),
  );
  await assert.rejects(openStore({ dataDir: dir, url: 'sqlite:///tmp/x', env: {} }), (e) => isKeyfleetError(e, 'KF_USAGE'));
  // An empty variable means unset.
  const store = await openStore({ dataDir: join(dir, 'empty-env'), env: { KEYFLEET_DATABASE_URL: '' } });
  assert.equal(store.flavor, 'sqlite');
  await store.close();
});

test('an unreachable PostgreSQL is KF_STORE_UNAVAILABLE, and the message never shows the password', async () => {
  await assert.rejects(openStore({ url: 'postgres://kf:hunter2@127.0.0.1:1/test', env: {} }), (e: unknown) => {
    assert.ok(isKeyfleetError(e, 'KF_STORE_UNAVAILABLE'), String(e));
    assert.doesNotMatch(e.message, /hunter2/);
    return true;
  });
});

test('a file that is not a SQLite database, or a data directory that cannot be made, is KF_STORE_UNAVAILABLE', async () => {
  const bad = join(dir, 'bad');
  await openStore({ dataDir: bad, env: {} }).then((s) => s.close());
  rmSync(bad, { recursive: true });
  const garbage = join(dir, 'garbage');
  await openStore({ dataDir: garbage, env: {} }).then((s) => s.close());
  rmSync(join(garbage, SQLITE_FILE_NAME));
  rmSync(join(garbage, `${SQLITE_FILE_NAME}-wal`), { force: true });
  rmSync(join(garbage, `${SQLITE_FILE_NAME}-shm`), { force: true });
  writeFileSync(join(garbage, SQLITE_FILE_NAME), 'this is not a database, just text that is long enough'.repeat(100));
  await assert.rejects(openStore({ dataDir: garbage, env: {} }), (e) => isKeyfleetError(e, 'KF_STORE_UNAVAILABLE'));

  const blocker = join(dir, 'a-file');
  writeFileSync(blocker, '');
  await assert.rejects(openStore({ dataDir: join(blocker, 'data'), env: {} }), (e) => isKeyfleetError(e, 'KF_STORE_UNAVAILABLE'));
});
