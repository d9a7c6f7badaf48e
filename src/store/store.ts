/**
 * The store as a whole: tenants, and one TenantStore per tenant through which
 * every tenant-scoped query goes. Tenant isolation lives here, in the store,
 * not in each HTTP handler: a TenantStore cannot name another tenant's rows.
 *
 * Domain code should depend on the narrow interface it needs (CaStore,
 * ScepStore, DirectoryStore, AccessStore, AuditStore, ResourcesStore, DeviceStore), not on these.
 */
import type { AccessStore, TokenLookup } from './access.ts';
import type { AuditStore } from './audit.ts';
import type { CaStore } from './ca.ts';
import type { DeviceStore } from './devices.ts';
import type { DeliveryLookup, DeliveryStore } from './delivery.ts';
import type { DirectoryStore } from './directory.ts';
import type { ResourcesStore } from './resources.ts';
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
  readonly directory: DirectoryStore;
  readonly access: AccessStore;
  readonly audit: AuditStore;
  readonly resources: ResourcesStore;
  readonly devices: DeviceStore;
  readonly delivery: DeliveryStore;
  /**
   * Runs `fn` in one database transaction: if it throws, none of its writes
   * remain. Inside `fn` use only `tx`: on SQLite the transaction holds the
   * only connection, so a call through the outer store would wait for ever.
   * Nested calls join the outer transaction.
   */
  transaction<T>(fn: (tx: TenantStore) => Promise<T>): Promise<T>;
  /**
   * Inside a transaction, runs `fn` under a savepoint: if it throws, only its own writes are undone and
   * the transaction goes on (many small changes, each all-or-nothing, under one commit). Outside a
   * transaction it is transaction().
   */
  attempt<T>(fn: (tx: TenantStore) => Promise<T>): Promise<T>;
}

export interface Store {
  readonly flavor: 'sqlite' | 'postgres';
  forTenant(tenantId: string): TenantStore;
  /** API tokens by their hash, across tenants: the one lookup that comes before a tenant is known. */
  readonly tokens: TokenLookup;
  /** Enrollment tokens and connectors by secret hash, devices and notifications by id, across tenants. */
  readonly deliveryLookup: DeliveryLookup;
  /** Creates the tenant unless it exists (the name of an existing one is left as it is); true when created. */
  ensureTenant(id: string, name: string): Promise<boolean>;
  getTenant(id: string): Promise<TenantRecord | undefined>;
  listTenants(): Promise<TenantRecord[]>;
  /** Closes the database (the pool on PostgreSQL). */
  close(): Promise<void>;
}
