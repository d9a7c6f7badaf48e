/**
 * The column types that differ between the two databases. Migrations are one
 * list for both; each asks this table instead of naming a type itself.
 */
import { sql, type ColumnDataType, type Expression } from 'kysely';

export type SqlFlavor = 'sqlite' | 'postgres';

export interface ColumnTypes {
  /** Byte strings (DER, sealed keys). */
  readonly bytes: ColumnDataType;
  /** 64-bit integers: instants as ms since the epoch, CRL numbers. */
  readonly int64: ColumnDataType;
  /**
   * Text compared byte by byte: keys that pagination orders by (hex serials).
   * PostgreSQL would otherwise order by the database's locale collation.
   */
  readonly orderedText: ColumnDataType | Expression<unknown>;
  /** An auto-incrementing 64-bit surrogate key. */
  readonly serialKey: ColumnDataType;
}

export function columnTypes(flavor: SqlFlavor): ColumnTypes {
  return flavor === 'postgres'
    ? { bytes: 'bytea', int64: 'bigint', orderedText: sql`text collate "C"`, serialKey: 'bigserial' }
    : // SQLite compares text with BINARY unless told otherwise; INTEGER PRIMARY KEY is the rowid.
      { bytes: 'blob', int64: 'integer', orderedText: 'text', serialKey: 'integer' };
}
