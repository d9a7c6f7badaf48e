/** Store and TenantStore (src/store/store.ts) over one Kysely instance, for either database. */
import { sql, type Kysely } from 'kysely';
import type { AccessStore, TokenLookup } from '../access.ts';
import type { AuditStore } from '../audit.ts';
import type { CaStore } from '../ca.ts';
import type { DeviceStore } from '../devices.ts';
import type { DeliveryLookup, DeliveryStore } from '../delivery.ts';
import type { DirectoryStore } from '../directory.ts';
import type { SqlFlavor } from '../migrations/flavor.ts';
import type { ResourcesStore } from '../resources.ts';
import type { ScepStore } from '../scep.ts';
import type { Store, TenantRecord, TenantStore } from '../store.ts';
import { KyselyAccessStore, KyselyTokenLookup } from './access-store.ts';
import { KyselyAuditStore } from './audit-store.ts';
import { KyselyCaStore } from './ca-store.ts';
import { KyselyDeviceStore } from './devices-store.ts';
import { KyselyDeliveryLookup } from './delivery-lookup.ts';
import { KyselyDeliveryStore } from './delivery-store.ts';
import { KyselyDirectoryStore } from './directory-store.ts';
import { guarded } from './errors.ts';
import { KyselyResourcesStore } from './resources-store.ts';
import { KyselyScepStore } from './scep-store.ts';
import type { Database } from './schema.ts';
import { inTransaction } from './transaction.ts';
import { fromMs, toMs } from './values.ts';

class KyselyTenantStore implements TenantStore {
  readonly tenantId: string;
  readonly ca: CaStore;
  readonly scep: ScepStore;
  readonly directory: DirectoryStore;
  readonly access: AccessStore;
  readonly audit: AuditStore;
  readonly resources: ResourcesStore;
  readonly devices: DeviceStore;
  readonly delivery: DeliveryStore;
  readonly #db: Kysely<Database>;
  readonly #flavor: SqlFlavor;

  constructor(db: Kysely<Database>, tenantId: string, flavor: SqlFlavor) {
    this.#db = db;
    this.#flavor = flavor;
    this.tenantId = tenantId;
    this.ca = new KyselyCaStore(db, tenantId);
    this.scep = new KyselyScepStore(db, tenantId);
    this.directory = new KyselyDirectoryStore(db, tenantId);
    this.access = new KyselyAccessStore(db, tenantId);
    this.audit = new KyselyAuditStore(db, tenantId);
    this.resources = new KyselyResourcesStore(db, tenantId);
    this.devices = new KyselyDeviceStore(db, tenantId, flavor);
    this.delivery = new KyselyDeliveryStore(db, tenantId, flavor);
  }

  transaction<T>(fn: (tx: TenantStore) => Promise<T>): Promise<T> {
    if (this.#db.isTransaction) return fn(this);
    return guarded(() => inTransaction(this.#db, (tx) => fn(new KyselyTenantStore(tx, this.tenantId, this.#flavor))));
  }

  async attempt<T>(fn: (tx: TenantStore) => Promise<T>): Promise<T> {
    if (!this.#db.isTransaction) return this.transaction(fn);
    // Savepoint names are identifiers, not parameters: a counter makes each one unique in its transaction.
    const name = `kf_attempt_${++savepoints}`;
    await guarded(() => sql.raw(`savepoint ${name}`).execute(this.#db));
    let result: T;
    try {
      result = await fn(this);
    } catch (e) {
      await guarded(() => sql.raw(`rollback to savepoint ${name}`).execute(this.#db));
      await guarded(() => sql.raw(`release savepoint ${name}`).execute(this.#db));
      throw e;
    }
    await guarded(() => sql.raw(`release savepoint ${name}`).execute(this.#db));
    return result;
  }
}

let savepoints = 0;

export class KyselyStore implements Store {
  readonly flavor: 'sqlite' | 'postgres';
  readonly tokens: TokenLookup;
  readonly deliveryLookup: DeliveryLookup;
  readonly #db: Kysely<Database>;
  readonly #now: () => Date;

  constructor(db: Kysely<Database>, flavor: 'sqlite' | 'postgres', now: () => Date) {
    this.#db = db;
    this.flavor = flavor;
    this.#now = now;
    this.tokens = new KyselyTokenLookup(db);
    this.deliveryLookup = new KyselyDeliveryLookup(db);
  }

  forTenant(tenantId: string): TenantStore {
    return new KyselyTenantStore(this.#db, tenantId, this.flavor);
  }

  ensureTenant(id: string, name: string): Promise<boolean> {
    return guarded(async () => {
      const inserted = await this.#db
        .insertInto('tenants')
        .values({ id, name, created_at: toMs(this.#now(), 'now') })
        .onConflict((oc) => oc.column('id').doNothing())
        .executeTakeFirst();
      return (inserted.numInsertedOrUpdatedRows ?? 0n) > 0n;
    });
  }

  getTenant(id: string): Promise<TenantRecord | undefined> {
    return guarded(async () => {
      const row = await this.#db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : { id: row.id, name: row.name, createdAt: fromMs(row.created_at) };
    });
  }

  listTenants(): Promise<TenantRecord[]> {
    return guarded(async () => {
      const rows = await this.#db.selectFrom('tenants').selectAll().orderBy('created_at').orderBy('id').execute();
      return rows.map((row) => ({ id: row.id, name: row.name, createdAt: fromMs(row.created_at) }));
    });
  }

  close(): Promise<void> {
    return this.#db.destroy();
  }
}
