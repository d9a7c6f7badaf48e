/**
 * Opening the store: SQLite in `<dataDir>/keyfleet.db` by default, PostgreSQL
 * when a `postgres://` URL is given (or KEYFLEET_DATABASE_URL is set), with
 * the schema migrated to the latest version before anything else runs.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, sql, type Dialect } from 'kysely';
import { Migrator } from 'kysely/migration';
import { KeyfleetError } from '../errors.ts';
import { storeError } from './kysely/errors.ts';
import { KyselyStore } from './kysely/kysely-store.ts';
import type { Database } from './kysely/schema.ts';
import { migrationProvider, type SqlFlavor } from './migrations/index.ts';
import { createPostgresDialect } from './postgres/dialect.ts';
import { NodeSqliteDialect } from './sqlite/dialect.ts';
import type { Store } from './store.ts';

export interface OpenStoreOptions {
  /** A `postgres://` or `postgresql://` URL; default: the environment's KEYFLEET_DATABASE_URL, else SQLite. */
  readonly url?: string;
  /** Where the SQLite file lives (default `./data`, created with mode 0700). */
  readonly dataDir?: string;
  /** The environment to read KEYFLEET_DATABASE_URL from (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The clock for rows the store stamps itself (tenants' createdAt). */
  readonly now?: () => Date;
}

export const SQLITE_FILE_NAME = 'keyfleet.db';

export async function openStore(options: OpenStoreOptions = {}): Promise<Store> {
  const env = options.env ?? process.env;
  const url = options.url ?? (env['KEYFLEET_DATABASE_URL'] || undefined);
  let flavor: SqlFlavor;
  let dialect: Dialect;
  let where: string;
  if (url !== undefined) {
    if (!/^postgres(ql)?:\/\//i.test(url)) {
      throw new KeyfleetError('KF_USAGE', 'the database URL must start with postgres:// (or leave it unset for SQLite)');
    }
    flavor = 'postgres';
    dialect = createPostgresDialect(url).dialect;
    where = `PostgreSQL at ${describeUrl(url)}`;
  } else {
    const dataDir = options.dataDir ?? './data';
    try {
      // 0700: the database holds sealed CA keys and challenge hashes; only the service's user needs it.
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw new KeyfleetError('KF_STORE_UNAVAILABLE', `cannot create the data directory ${dataDir}`, { cause: e });
    }
    flavor = 'sqlite';
    where = join(dataDir, SQLITE_FILE_NAME);
    dialect = new NodeSqliteDialect({ path: where });
  }

  const db = new Kysely<Database>({ dialect });
  try {
    await migrate(db, flavor);
  } catch (e) {
    await db.destroy().catch(() => {});
    if (e instanceof KeyfleetError) throw e;
    throw new KeyfleetError('KF_STORE_UNAVAILABLE', `cannot open the database (${where})`, { cause: e });
  }
  return new KyselyStore(db, flavor, options.now ?? (() => new Date()));
}

async function migrate(db: Kysely<Database>, flavor: SqlFlavor): Promise<void> {
  // Kysely looks for its migration tables in every schema but queries them unqualified: with another schema
  // of the database holding them (a second deployment, a parallel test run) it would skip creating its own.
  // Naming the schema that search_path resolves to keeps each deployment's bookkeeping in its own schema.
  const schema = flavor === 'postgres' ? await currentSchema(db) : undefined;
  const migrator = new Migrator({
    db,
    provider: migrationProvider(flavor),
    ...(schema === undefined ? {} : { migrationTableSchema: schema }),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error === undefined) return;
  const failed = results?.find((r) => r.status === 'Error')?.migrationName;
  const coded = storeError(error);
  if (coded instanceof KeyfleetError) throw coded;
  throw new KeyfleetError(
    'KF_STORE_UNAVAILABLE',
    failed === undefined ? 'the database schema cannot be migrated' : `database migration ${failed} failed`,
    { cause: error },
  );
}

async function currentSchema(db: Kysely<Database>): Promise<string | undefined> {
  const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
  return rows[0]?.schema ?? undefined;
}

/** host:port/database, never the password. */
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port === '' ? '' : `:${u.port}`}${u.pathname}`;
  } catch {
    return 'the configured URL';
  }
}
