/** AccessStore and TokenLookup (src/store/access.ts) on Kysely. */
import type { Kysely, Selectable } from 'kysely';
import { ADMIN_ROLES, type AccessStore, type AdminRole, type ApiTokenRecord, type FoundToken, type TokenLookup } from '../access.ts';
import { guarded } from './errors.ts';
import type { ApiTokensTable, Database } from './schema.ts';
import { fromMs, optionalDate, optionalMs, toMs } from './values.ts';

export class KyselyAccessStore implements AccessStore {
  readonly #db: Kysely<Database>;
  readonly #tenantId: string;

  constructor(db: Kysely<Database>, tenantId: string) {
    this.#db = db;
    this.#tenantId = tenantId;
  }

  putToken(record: ApiTokenRecord): Promise<void> {
    const row = {
      tenant_id: this.#tenantId,
      id: record.id,
      name: record.name,
      role: record.role,
      secret_hash: record.secretHash,
      created_at: toMs(record.createdAt, 'createdAt'),
      last_used_at: optionalMs(record.lastUsedAt, 'lastUsedAt'),
      revoked_at: optionalMs(record.revokedAt, 'revokedAt'),
    };
    return guarded(
      async () => {
        await this.#db.insertInto('api_tokens').values(row).execute();
      },
      { conflict: 'a token with this id or secret already exists', missing: 'the tenant does not exist' },
    );
  }

  getToken(id: string): Promise<ApiTokenRecord | undefined> {
    return guarded(async () => {
      const row = await this.#db.selectFrom('api_tokens').selectAll().where('tenant_id', '=', this.#tenantId).where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : tokenFromRow(row);
    });
  }

  listTokens(): Promise<ApiTokenRecord[]> {
    return guarded(async () => {
      const rows = await this.#db.selectFrom('api_tokens').selectAll().where('tenant_id', '=', this.#tenantId).orderBy('created_at').orderBy('id').execute();
      return rows.map(tokenFromRow);
    });
  }

  revokeToken(id: string, at: Date): Promise<boolean> {
    const ms = toMs(at, 'at');
    return guarded(async () => {
      const result = await this.#db
        .updateTable('api_tokens')
        .set({ revoked_at: ms })
        .where('tenant_id', '=', this.#tenantId)
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }
}

export class KyselyTokenLookup implements TokenLookup {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  findByHash(secretHash: string): Promise<FoundToken | undefined> {
    return guarded(async () => {
      const row = await this.#db.selectFrom('api_tokens').selectAll().where('secret_hash', '=', secretHash).executeTakeFirst();
      return row === undefined ? undefined : { tenantId: row.tenant_id, token: tokenFromRow(row) };
    });
  }

  markUsed(tenantId: string, id: string, at: Date, coarserThanMs: number): Promise<void> {
    const ms = toMs(at, 'at');
    return guarded(async () => {
      await this.#db
        .updateTable('api_tokens')
        .set({ last_used_at: ms })
        .where('tenant_id', '=', tenantId)
        .where('id', '=', id)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', ms - coarserThanMs)]))
        .execute();
    });
  }

  anyTokens(): Promise<boolean> {
    return guarded(async () => {
      const row = await this.#db.selectFrom('api_tokens').select('id').limit(1).executeTakeFirst();
      return row !== undefined;
    });
  }
}

function tokenFromRow(row: Selectable<ApiTokensTable>): ApiTokenRecord {
  if (!(ADMIN_ROLES as readonly string[]).includes(row.role)) throw new Error('api_tokens.role holds an unknown value');
  return {
    id: row.id,
    name: row.name,
    role: row.role as AdminRole,
    secretHash: row.secret_hash,
    createdAt: fromMs(row.created_at),
    lastUsedAt: optionalDate(row.last_used_at),
    revokedAt: optionalDate(row.revoked_at),
  };
}
