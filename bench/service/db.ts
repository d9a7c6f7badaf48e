/**
 * The two databases bench:service seeds and measures: SQLite in a fresh
 * temporary directory, and PostgreSQL in a freshly created schema of the
 * `test` database on 127.0.0.1:5432 (as test/store/backends.ts does),
 * dropped afterwards. Bulk rows go in below the store, which has no bulk
 * insert: on SQLite through one prepared statement per table inside one
 * transaction (node:sqlite, before the store opens the file), on PostgreSQL
 * as multi-row INSERTs over a few connections at once.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import pg from 'pg';
import { SQLITE_FILE_NAME, openStore } from '../../src/store/open.ts';
import { processCpuSeconds } from '../pki/servers.ts';
import type { Store } from '../../src/store/store.ts';

export type DbName = 'sqlite' | 'postgres';
export type Row = readonly SQLInputValue[];

export interface BulkTable {
  readonly table: string;
  readonly columns: readonly string[];
  readonly rows: Iterable<Row>;
}

export interface BenchDb {
  readonly name: DbName;
  readonly label: string;
  /** Creates the schema (migrations), then closes it again: bulk loading comes next. */
  create(): Promise<void>;
  bulkLoad(tables: readonly BulkTable[], progress: (text: string) => void): Promise<void>;
  /** Refreshes the planner's statistics of these tables after the bulk load. */
  analyze(tables: readonly string[]): Promise<void>;
  open(): Promise<Store>;
  /**
   * CPU seconds of each of the database's own processes serving this run (PostgreSQL's backends, found by
   * their application_name); undefined for SQLite, which runs in the process that queries it.
   */
  readonly backendCpu?: () => Promise<ReadonlyMap<number, number>>;
  /**
   * One bare round trip to the database (`select 1` on a connection of its own): the floor under any query's
   * latency on this machine at this moment. Undefined for SQLite, which has no round trip.
   */
  readonly ping?: () => Promise<void>;
  /** What a server child needs to open the same database: `--data DIR` or a URL. */
  readonly location: { readonly dataDir?: string; readonly url?: string };
  drop(): Promise<void>;
}

export function sqliteDb(): BenchDb {
  const dir = mkdtempSync(join(tmpdir(), 'keyfleet-bench-service-'));
  const dataDir = join(dir, 'data');
  const file = join(dataDir, SQLITE_FILE_NAME);
  return {
    name: 'sqlite',
    label: 'SQLite (node:sqlite, WAL)',
    location: { dataDir },
    async create() {
      await (await openStore({ dataDir, env: {} })).close();
    },
    async bulkLoad(tables, progress) {
      const db = new DatabaseSync(file, { enableForeignKeyConstraints: true });
      try {
        db.exec('PRAGMA journal_mode = WAL');
        db.exec('PRAGMA synchronous = NORMAL');
        db.exec('BEGIN');
        for (const t of tables) {
          const started = performance.now();
          const insert = db.prepare(`insert into ${t.table} (${t.columns.join(', ')}) values (${t.columns.map(() => '?').join(', ')})`);
          let n = 0;
          for (const row of t.rows) {
            insert.run(...row);
            n++;
          }
          progress(`${t.table}: ${n.toLocaleString('en-US')} rows in ${((performance.now() - started) / 1000).toFixed(1)} s`);
        }
        db.exec('COMMIT');
      } finally {
        db.close();
      }
    },
    async analyze() {
      const db = new DatabaseSync(file);
      try {
        db.exec('ANALYZE');
      } finally {
        db.close();
      }
    },
    open: () => openStore({ dataDir, env: {} }),
    async drop() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Where the test PostgreSQL lives (test/store/backends.ts's candidates); KEYFLEET_TEST_DATABASE_URL overrides. */
const CANDIDATE_URLS = process.env['KEYFLEET_TEST_DATABASE_URL']
  ? [process.env['KEYFLEET_TEST_DATABASE_URL']]
  : ['postgres://postgres@127.0.0.1:5432/test', 'postgres://root@127.0.0.1:5432/test'];

async function reachable(): Promise<string> {
  const reasons: string[] = [];
  for (const url of CANDIDATE_URLS) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.query('select 1');
      return url;
    } catch (e) {
      reasons.push(e instanceof Error ? e.message : String(e));
    } finally {
      await client.end().catch(() => {});
    }
  }
  throw new Error(`PostgreSQL is not reachable (${reasons.join('; ')})`);
}

const PG_ROWS_PER_INSERT = 1000;
const PG_PARALLEL = 3;

export async function postgresDb(): Promise<BenchDb> {
  const base = await reachable();
  const schema = `kf_bench_${process.pid}_${randomBytes(4).toString('hex')}`;
  const url = new URL(base);
  url.searchParams.set('options', `-c search_path=${schema}`);
  // Names this run's backends in pg_stat_activity, so their CPU time can be read (backendCpu).
  url.searchParams.set('application_name', schema);
  const scoped = url.toString();
  let watcher: pg.Client | undefined;
  let pinger: pg.Client | undefined;
  const admin = async (statement: string): Promise<void> => {
    const client = new pg.Client({ connectionString: base });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  return {
    name: 'postgres',
    label: `PostgreSQL (${url.host}${url.pathname}, schema ${schema})`,
    location: { url: scoped },
    async create() {
      await admin(`create schema ${schema}`);
      await (await openStore({ url: scoped, env: {} })).close();
    },
    async bulkLoad(tables, progress) {
      const pool = new pg.Pool({ connectionString: scoped, max: PG_PARALLEL });
      try {
        for (const t of tables) {
          const started = performance.now();
          const n = await insertAll(pool, t);
          progress(`${t.table}: ${n.toLocaleString('en-US')} rows in ${((performance.now() - started) / 1000).toFixed(1)} s`);
        }
      } finally {
        await pool.end();
      }
    },
    async analyze(tables) {
      const client = new pg.Client({ connectionString: scoped });
      await client.connect();
      try {
        await client.query(`analyze ${tables.join(', ')}`);
      } finally {
        await client.end();
      }
    },
    open: () => openStore({ url: scoped, env: {} }),
    async ping() {
      if (pinger === undefined) {
        pinger = new pg.Client({ connectionString: scoped });
        pinger.on('error', () => {});
        await pinger.connect();
      }
      await pinger.query('select 1');
    },
    async backendCpu() {
      if (watcher === undefined) {
        watcher = new pg.Client({ connectionString: base });
        watcher.on('error', () => {});
        await watcher.connect();
      }
      const { rows } = await watcher.query<{ pid: number }>('select pid from pg_stat_activity where application_name = $1', [schema]);
      const out = new Map<number, number>();
      for (const { pid } of rows) {
        const seconds = processCpuSeconds(pid);
        if (seconds !== undefined) out.set(pid, seconds);
      }
      return out;
    },
    async drop() {
      await watcher?.end().catch(() => {});
      await pinger?.end().catch(() => {});
      watcher = undefined;
      pinger = undefined;
      await admin(`drop schema if exists ${schema} cascade`);
    },
  };
}

/** Multi-row INSERTs of PG_ROWS_PER_INSERT rows, PG_PARALLEL at a time. */
async function insertAll(pool: pg.Pool, t: BulkTable): Promise<number> {
  const width = t.columns.length;
  const head = `insert into ${t.table} (${t.columns.join(', ')}) values `;
  const statement = (rows: number) =>
    head + Array.from({ length: rows }, (_, r) => `(${Array.from({ length: width }, (_, c) => `$${r * width + c + 1}`).join(', ')})`).join(', ');
  const full = statement(PG_ROWS_PER_INSERT);
  const inFlight = new Set<Promise<unknown>>();
  let batch: unknown[] = [];
  let rows = 0;
  let total = 0;
  const flush = async () => {
    if (rows === 0) return;
    const text = rows === PG_ROWS_PER_INSERT ? full : statement(rows);
    const values = batch;
    batch = [];
    rows = 0;
    const p = pool.query(text, values.map(pgValue)).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= PG_PARALLEL) await Promise.race(inFlight);
  };
  for (const row of t.rows) {
    batch.push(...row);
    rows++;
    total++;
    if (rows === PG_ROWS_PER_INSERT) await flush();
  }
  await flush();
  await Promise.all(inFlight);
  return total;
}

/** pg sends Uint8Array as bytea only when it is a Buffer. */
function pgValue(v: unknown): unknown {
  return v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v;
}
