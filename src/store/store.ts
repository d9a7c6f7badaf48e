/**
 * The store as a whole: tenants, and one TenantStore per tenant through which
 * every tenant-scoped query goes. Tenant isolation lives here, in the store,
 * not in each HTTP handler: a TenantStore cannot name another tenant's rows.
 *
 * Domain code should depend on the narrow interface it needs (CaStore,
 * ScepStore), not on these.
 */
import type { CaStore } from './ca.ts';
import type { ScepStore } from './scep.ts';

export interface TenantRecord {
  readonly id: string;
  readonly name: string;
  readonly createdAt: Date;
}

export interface TenantStore {
  readonly tenantId: string;
  readonly ca: CaStore;
  readonly scep: ScepStore;
  /**
   * Runs `fn` in one database transaction: if it throws, none of its writes
   * remain. Inside `fn` use only `tx`: on SQLite the transaction holds the
   * only connection, so a call through the outer store would wait for ever.
   * Nested calls join the outer transaction.
   */
  transaction<T>(fn: (tx: TenantStore) => Promise<T>): Promise<T>;
}

export interface Store {
  readonly flavor: 'sqlite' | 'postgres';
  forTenant(tenantId: string): TenantStore;
  /** Creates the tenant unless it exists (the name of an existing one is left as it is); true when created. */
  ensureTenant(id: string, name: string): Promise<boolean>;
  getTenant(id: string): Promise<TenantRecord | undefined>;
  listTenants(): Promise<TenantRecord[]>;
  /** Closes the database (the pool on PostgreSQL). */
  close(): Promise<void>;
}
