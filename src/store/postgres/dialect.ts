/**
 * PostgreSQL through Kysely's PostgresDialect over a `pg` Pool, with the value
 * mapping the store relies on being the same as on SQLite.
 */
import pg from 'pg';
import { PostgresDialect } from 'kysely';

/** int8 (bigint) columns: timestamps in ms and CRL numbers. pg hands them over as strings by default. */
const INT8_OID = 20;

function parseInt8(text: string): number | bigint {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return parseInt8;
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

export interface PostgresConnection {
  readonly dialect: PostgresDialect;
  readonly pool: pg.Pool;
}

export function createPostgresDialect(url: string, options?: { readonly maxConnections?: number }): PostgresConnection {
  const pool = new pg.Pool({
    connectionString: url,
    max: options?.maxConnections ?? 10,
    types,
    // Fail fast when the server is unreachable instead of waiting for the OS connect timeout.
    connectionTimeoutMillis: 10_000,
  });
  // An idle client whose server connection drops emits 'error' on the pool; unhandled, it would end the process.
  // pg discards that client, and the next query opens a fresh connection (or fails with a coded error).
  pool.on('error', () => {});
  return { dialect: new PostgresDialect({ pool }), pool };
}
