/** The contract between the conformance suite, its parts and the backends that run it. */
import assert from 'node:assert/strict';
import { isKeyfleetError, type ErrorCode } from '../../src/errors.ts';
import type { Store, TenantStore } from '../../src/store/store.ts';

export interface StoreBackend {
  readonly name: string;
  /** Why this backend cannot run here, when it cannot: the suite is then reported as skipped with this reason. */
  readonly skip?: string;
  /** Prepares a fresh, empty database for this run. */
  setUp(): Promise<void>;
  /** Opens a store on that database; called more than once (a reopen, a second connection). */
  open(): Promise<Store>;
  /** Removes the database. */
  tearDown(): Promise<void>;
}

/** What each part of the suite gets: the open store, and fresh tenants that no other test touches. */
export interface SuiteContext {
  readonly store: () => Store;
  readonly backend: StoreBackend;
  newTenant(): Promise<TenantStore>;
}

export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(isKeyfleetError(e, code), `expected ${code}, got ${String(e)}`);
    return true;
  });
}

