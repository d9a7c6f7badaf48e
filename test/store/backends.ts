/**
 * The databases the conformance suite runs on: a SQLite file in a fresh
 * temporary directory, and PostgreSQL in a freshly created schema of the
 * `test` database on 127.0.0.1:5432, dropped afterwards, so that concurrent
 * runs never see each other's rows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openStore } from '../../src/store/open.ts';
import type { StoreBackend } from './suite.ts';

export function sqliteBackend(): StoreBackend {
  let dir: string | undefined;
  return {
    name: 'SQLite (node:sqlite)',
    async setUp() {
      dir = mkdtempSync(join(tmpdir(), 'keyfleet-store-'));
    },
    open() {
      if (dir === undefined) throw new Error('setUp first');
      // env: {} so that a KEYFLEET_DATABASE_URL in the environment (CI) cannot turn this run into PostgreSQL.
      return openStore({ dataDir: join(dir, 'data'), env: {} });
    },
    async tearDown() {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Where the test PostgreSQL lives; KEYFLEET_TEST_DATABASE_URL overrides it. */
const CANDIDATE_URLS = process.env['KEYFLEET_TEST_DATABASE_URL']
  ? [process.env['KEYFLEET_TEST_DATABASE_URL']]
  : ['postgres://postgres@127.0.0.1:5432/test', 'postgres://root@127.0.0.1:5432/test'];

function where(url: string): string {
  const u = new URL(url);
  return `${u.host}${u.pathname}`;
}

/** The first URL that accepts a connection, or why none did. */
export async function reachablePostgres(): Promise<{ url: string } | { reason: string }> {
  const reasons: string[] = [];
  for (const url of CANDIDATE_URLS) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('select 1');
      return { url };
    } catch (e) {
      reasons.push(`${new URL(url).username}: ${e instanceof Error ? e.message || (e as { code?: string }).code : String(e)}`);
    } finally {
      await client.end().catch(() => {});
    }
  }
  return { reason: reasons.join('; ') };
}

export async function postgresBackend(): Promise<StoreBackend> {
  const found = await reachablePostgres();
  const name = 'PostgreSQL';
  if ('reason' in found) {
    return {
      name,
      skip:
        `PostgreSQL is not reachable at ${CANDIDATE_URLS.map(where).join(' or ')} (${found.reason}); ` +
        'these tests run in CI, which has PostgreSQL',
      async setUp() {},
      open: () => Promise.reject(new Error('skipped')),
      async tearDown() {},
    };
  }
  const schema = `kf_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = async (statement: string): Promise<void> => {
    const client = new pg.Client({ connectionString: found.url });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  const url = new URL(found.url);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    name,
    setUp: () => admin(`create schema ${schema}`),
    open: () => openStore({ url: url.toString(), env: {} }),
    tearDown: () => admin(`drop schema if exists ${schema} cascade`),
  };
}
