/**
 * A Kysely dialect for Node's built-in SQLite (`node:sqlite`, DatabaseSync),
 * so that the embedded database needs no native module (better-sqlite3 cannot
 * be built on these machines, REFERENCE.md "Node 24 ... checked").
 *
 * Kysely 0.29 ships only a better-sqlite3 driver. Its query compiler,
 * adapter and introspector are reused as they are; this file supplies the
 * driver. Differences from Kysely's SqliteDriver, and why:
 *
 * - node:sqlite statements have no `reader` flag; a statement returns rows
 *   when it has result columns (`columns().length > 0`), which also covers
 *   INSERT/UPDATE ... RETURNING.
 * - Integers past 2^53 come back as exact bigints, others as numbers.
 *   node:sqlite reading them as numbers throws ERR_OUT_OF_RANGE *after* the
 *   statement ran (an INSERT ... RETURNING would already have inserted), so
 *   only SELECTs read numbers first (and are re-run on that error); other
 *   statements read bigints, narrowed to numbers where safe.
 * - Transactions start with BEGIN IMMEDIATE: the write lock is taken up front,
 *   so a read-then-write transaction cannot deadlock against another process
 *   on the same file (a CLI beside the server); busy_timeout makes that
 *   process wait instead of failing at once.
 * - The adapter reports transactional DDL (SQLite has it; Kysely's adapter
 *   says no), so each migration is applied whole or not at all.
 *
 * One connection per database file per process serves everything, however
 * many Kysely instances (stores) open that file: node:sqlite is synchronous,
 * so a second connection of the same thread waiting on busy_timeout for the
 * first one's write lock would block the event loop the first one needs to
 * finish, and both would stall until the timeout. Instead the instances share
 * the handle, and a transaction holds it (through a mutex) until it ends.
 * busy_timeout is left for other processes (a CLI beside the server).
 */
import { existsSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import {
  CompiledQuery,
  SelectQueryNode,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
} from 'kysely';

export interface NodeSqliteDialectConfig {
  /** A file path, or ":memory:". */
  readonly path: string;
  /** How long to wait for another process's write lock, in ms (default 5000). */
  readonly busyTimeoutMs?: number;
}

export class NodeSqliteDialect implements Dialect {
  readonly #config: NodeSqliteDialectConfig;

  constructor(config: NodeSqliteDialectConfig) {
    this.#config = { ...config };
  }

  createDriver(): Driver {
    return new NodeSqliteDriver(this.#config);
  }

  createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }

  createAdapter(): DialectAdapter {
    return new NodeSqliteAdapter();
  }

  // Kysely's own signature takes Kysely<any>.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }
}

class NodeSqliteAdapter extends SqliteAdapter {
  // SQLite runs CREATE/ALTER inside transactions (https://www.sqlite.org/lang_transaction.html).
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

/** A FIFO lock: the holder of the shared connection, in the order they asked. */
class Mutex {
  #tail: Promise<void> = Promise.resolve();
  #release: (() => void) | undefined;

  async acquire(): Promise<void> {
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((r) => (release = r));
    await previous;
    this.#release = release;
  }

  release(): void {
    const release = this.#release;
    this.#release = undefined;
    release?.();
  }
}

interface SharedDatabase {
  readonly key: string;
  readonly db: DatabaseSync;
  readonly connection: NodeSqliteConnection;
  readonly mutex: Mutex;
  refs: number;
}

/** The open database files of this process, by real path. */
const openFiles = new Map<string, SharedDatabase>();

function fileKey(path: string): string | undefined {
  if (path === ':memory:' || path === '') return undefined; // private to each opener
  const full = resolve(path);
  return existsSync(full) ? realpathSync(full) : full;
}

function openDatabase(config: NodeSqliteDialectConfig): DatabaseSync {
  const db = new DatabaseSync(config.path, { enableForeignKeyConstraints: true });
  try {
    db.exec(`PRAGMA busy_timeout = ${Math.trunc(config.busyTimeoutMs ?? 5000)}`);
    // WAL: readers in other processes do not block the writer; NORMAL sync is durable in WAL mode except for the
    // last transactions before a power loss (https://www.sqlite.org/pragma.html#pragma_synchronous).
    if (config.path !== ':memory:') db.exec('PRAGMA journal_mode = WAL');
    db.exec('PRAGMA synchronous = NORMAL');
    db.exec('PRAGMA foreign_keys = ON');
    // One connection serves the whole process: a 64 MiB page cache (the default is 2 MiB) keeps a large
    // tenant's device rows and indexes in memory rather than re-reading them from the file.
    db.exec('PRAGMA cache_size = -65536');
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

class NodeSqliteDriver implements Driver {
  readonly #config: NodeSqliteDialectConfig;
  #shared: SharedDatabase | undefined;

  constructor(config: NodeSqliteDialectConfig) {
    this.#config = config;
  }

  async init(): Promise<void> {
    const key = fileKey(this.#config.path);
    let shared = key === undefined ? undefined : openFiles.get(key);
    if (shared === undefined) {
      const db = openDatabase(this.#config);
      shared = { key: key ?? '', db, connection: new NodeSqliteConnection(db), mutex: new Mutex(), refs: 0 };
      if (key !== undefined) openFiles.set(key, shared);
    }
    shared.refs++;
    this.#shared = shared;
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const shared = this.#shared;
    if (shared === undefined) throw new Error('SQLite driver used before init or after destroy');
    await shared.mutex.acquire();
    return shared.connection;
  }

  async releaseConnection(): Promise<void> {
    this.#shared?.mutex.release();
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    // A failed COMMIT and some errors (SQLITE_FULL, SQLITE_IOERR) end the transaction themselves.
    if (this.#shared?.db.isTransaction !== true) return;
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  async destroy(): Promise<void> {
    const shared = this.#shared;
    this.#shared = undefined;
    if (shared === undefined || --shared.refs > 0) return;
    if (openFiles.get(shared.key) === shared) openFiles.delete(shared.key);
    if (shared.db.isOpen) shared.db.close();
  }
}

/** Prepared statements are cached by SQL text: Kysely compiles the same text for the same query shape. */
const STATEMENT_CACHE_LIMIT = 256;

class NodeSqliteConnection implements DatabaseConnection {
  readonly #db: DatabaseSync;
  /** Statements reading integers as numbers (SELECTs) and as bigints (everything else, and retried SELECTs). */
  readonly #statements = { number: new Map<string, StatementSync>(), bigint: new Map<string, StatementSync>() };

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const params = compiledQuery.parameters.map(toSqlite);
    if (SelectQueryNode.is(compiledQuery.query)) {
      // Read as numbers, the fast path; a SELECT has no effects, so one that meets an integer past 2^53 is
      // simply run again reading bigints.
      try {
        return { rows: this.#prepare(compiledQuery.sql, 'number').all(...params) as R[] };
      } catch (e) {
        if ((e as { code?: unknown }).code !== 'ERR_OUT_OF_RANGE') throw e;
      }
    }
    const stmt = this.#prepare(compiledQuery.sql, 'bigint');
    if (stmt.columns().length > 0) {
      return { rows: stmt.all(...params).map(narrowIntegers) as R[] };
    }
    const { changes, lastInsertRowid } = stmt.run(...params);
    return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
  }

  async *streamQuery<R>(compiledQuery: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    if (!SelectQueryNode.is(compiledQuery.query)) {
      throw new Error('the SQLite driver streams only SELECT queries');
    }
    const stmt = this.#prepare(compiledQuery.sql, 'bigint');
    for (const row of stmt.iterate(...compiledQuery.parameters.map(toSqlite))) {
      yield { rows: [narrowIntegers(row) as R] };
    }
  }

  #prepare(sql: string, integers: 'number' | 'bigint'): StatementSync {
    const cache = this.#statements[integers];
    let stmt = cache.get(sql);
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql);
      stmt.setReadBigInts(integers === 'bigint');
      if (cache.size >= STATEMENT_CACHE_LIMIT) cache.clear();
      cache.set(sql, stmt);
    }
    return stmt;
  }
}

/** node:sqlite binds null, numbers, bigints, strings and byte arrays; booleans become 0/1 as SQLite stores them. */
function toSqlite(value: unknown): SQLInputValue {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value === undefined) return null;
  return value as SQLInputValue;
}

/**
 * Integers read as bigints narrowed to numbers where safe, in place. Rows stay the null-prototype objects
 * node:sqlite makes: copying 100,000 of them into plain objects would triple the time to read them.
 */
function narrowIntegers(row: unknown): unknown {
  const record = row as Record<string, unknown>;
  for (const key in record) {
    const v = record[key];
    if (typeof v === 'bigint' && v >= MIN_SAFE && v <= MAX_SAFE) record[key] = Number(v);
  }
  return record;
}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
