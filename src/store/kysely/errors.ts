/**
 * Database errors as Keyfleet's coded errors. Both drivers report the same
 * conditions differently: node:sqlite by SQLite's extended result code
 * (https://www.sqlite.org/rescode.html), pg by SQLSTATE
 * (https://www.postgresql.org/docs/current/errcodes-appendix.html) or a
 * Node socket error code.
 */
import { KeyfleetError } from '../../errors.ts';

export type DatabaseFailure = 'unique' | 'foreign-key' | 'unavailable';

const SQLITE_BUSY = 5;
const SQLITE_LOCKED = 6;
const SQLITE_CANTOPEN = 14;
const SQLITE_CONSTRAINT_FOREIGNKEY = 787;
const SQLITE_CONSTRAINT_PRIMARYKEY = 1555;
const SQLITE_CONSTRAINT_UNIQUE = 2067;

const SOCKET_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'EPIPE']);

export function classify(e: unknown): DatabaseFailure | undefined {
  if (!(e instanceof Error)) return undefined;
  const { code, errcode } = e as { code?: unknown; errcode?: unknown };
  if (code === 'ERR_SQLITE_ERROR' && typeof errcode === 'number') {
    if (errcode === SQLITE_CONSTRAINT_PRIMARYKEY || errcode === SQLITE_CONSTRAINT_UNIQUE) return 'unique';
    if (errcode === SQLITE_CONSTRAINT_FOREIGNKEY) return 'foreign-key';
    const primary = errcode & 0xff;
    if (primary === SQLITE_BUSY || primary === SQLITE_LOCKED || primary === SQLITE_CANTOPEN) return 'unavailable';
    return undefined;
  }
  if (typeof code === 'string') {
    if (code === '23505') return 'unique';
    if (code === '23503') return 'foreign-key';
    // 08: connection exception; 57P01-57P03: server shutting down or starting; 53300: too many connections.
    if (code.startsWith('08') || /^57P0[123]$/.test(code) || code === '53300' || SOCKET_ERRORS.has(code)) {
      return 'unavailable';
    }
  }
  // pg's own errors when the pool cannot connect or the socket closes carry no code.
  if (/timeout exceeded when trying to connect|Connection terminated/i.test(e.message)) return 'unavailable';
  return undefined;
}

export interface ErrorMessages {
  /** Message for a duplicate key (KF_CONFLICT). */
  readonly conflict?: string;
  /** Message for a reference to a row that does not exist (KF_NOT_FOUND). */
  readonly missing?: string;
}

/** The coded error for a database error, or the error itself when it is not one we recognise (a bug). */
export function storeError(e: unknown, messages: ErrorMessages = {}): unknown {
  if (e instanceof KeyfleetError) return e;
  const failure = classify(e);
  if (failure === 'unique' && messages.conflict !== undefined) {
    return new KeyfleetError('KF_CONFLICT', messages.conflict, { cause: e });
  }
  if (failure === 'foreign-key' && messages.missing !== undefined) {
    return new KeyfleetError('KF_NOT_FOUND', messages.missing, { cause: e });
  }
  if (failure === 'unavailable') {
    return new KeyfleetError('KF_STORE_UNAVAILABLE', 'the database cannot be reached or is busy', { cause: e });
  }
  return e;
}

/** Runs a database call, rethrowing database errors as coded ones. */
export async function guarded<T>(run: () => Promise<T>, messages?: ErrorMessages): Promise<T> {
  try {
    return await run();
  } catch (e) {
    throw storeError(e, messages);
  }
}
