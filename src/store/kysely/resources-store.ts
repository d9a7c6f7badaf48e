/** ResourcesStore (src/store/resources.ts) on Kysely, for one tenant. */
import type { Insertable, Kysely, Selectable } from 'kysely';
import { KeyfleetError } from '../../errors.ts';
import type { Page, PageOptions } from '../directory.ts';
import type {
  AssignableCollection,
  AssignmentIntent,
  AssignmentRecord,
  DirectorySnapshot,
  JsonObject,
  ResourceCollection,
  ResourceRecord,
  ResourcesStore,
  UserPfxCertificateRecord,
  UserPfxCertificateRef,
} from '../resources.ts';
import { guarded } from './errors.ts';
import type { Database } from './schema.ts';
import { inTransaction } from './transaction.ts';
import { type Int64, bytes, decodeCursor, encodeCursor, fromMs, pageSize, toMs } from './values.ts';

/** The tables of migration 0006 (kept here, beside their only user, rather than in schema.ts). */
interface ResourcesTable {
  tenant_id: string;
  collection: string;
  id: string;
  kind: string;
  display_name: string;
  body_json: string;
  created_at: Int64;
  updated_at: Int64;
}

interface ResourceAssignmentsTable {
  tenant_id: string;
  collection: string;
  resource_id: string;
  group_id: string;
  intent: string;
}

interface UserPfxCertificatesTable {
  tenant_id: string;
  id: string;
  user_principal_name: string;
  upn_key: string;
  thumbprint: string;
  intended_purpose: string;
  start_at: Int64;
  expiration_at: Int64;
  provider_name: string;
  key_name: string;
  padding_scheme: string;
  encrypted_pfx_blob: Uint8Array;
  encrypted_pfx_password: Uint8Array;
  created_at: Int64;
}

interface ResourcesDatabase extends Database {
  resources: ResourcesTable;
  resource_assignments: ResourceAssignmentsTable;
  user_pfx_certificates: UserPfxCertificatesTable;
}

/** 14 parameters a row; a row carries up to 256 KiB of PFX, so a statement stays at a few tens of MiB at most. */
const PFX_ROWS_PER_STATEMENT = 100;

export class KyselyResourcesStore implements ResourcesStore {
  readonly #db: Kysely<ResourcesDatabase>;
  readonly #tenantId: string;

  constructor(db: Kysely<Database>, tenantId: string) {
    this.#db = db as unknown as Kysely<ResourcesDatabase>;
    this.#tenantId = tenantId;
  }

  putResource(record: ResourceRecord): Promise<void> {
    return guarded(
      async () => {
        await this.#db
          .insertInto('resources')
          .values({
            tenant_id: this.#tenantId,
            collection: record.collection,
            id: record.id,
            kind: record.kind,
            display_name: record.displayName,
            body_json: JSON.stringify(record.body),
            created_at: toMs(record.createdAt, 'createdAt'),
            updated_at: toMs(record.updatedAt, 'updatedAt'),
          })
          .execute();
      },
      { conflict: `a ${record.collection} with id "${record.id}" already exists`, missing: 'the tenant does not exist' },
    );
  }

  getResource(collection: ResourceCollection, id: string): Promise<ResourceRecord | undefined> {
    return guarded(async () => {
      const row = await this.#db
        .selectFrom('resources')
        .selectAll()
        .where('tenant_id', '=', this.#tenantId)
        .where('collection', '=', collection)
        .where('id', '=', id)
        .executeTakeFirst();
      return row === undefined ? undefined : resourceFromRow(row);
    });
  }

  listResources(collection: ResourceCollection, options: PageOptions & { readonly kind?: string } = {}): Promise<Page<ResourceRecord>> {
    return guarded(async () => {
      const limit = pageSize(options.limit);
      const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor, 1)[0];
      let query = this.#db.selectFrom('resources').selectAll().where('tenant_id', '=', this.#tenantId).where('collection', '=', collection);
      if (options.kind !== undefined) query = query.where('kind', '=', options.kind);
      if (after !== undefined) query = query.where('id', '>', after);
      const rows = await query.orderBy('id').limit(limit + 1).execute();
      return page(rows.map(resourceFromRow), limit);
    });
  }

  updateResource(record: ResourceRecord, expectedUpdatedAt: Date): Promise<void> {
    const what = `${record.collection} "${record.id}"`;
    return guarded(async () => {
      const result = await this.#db
        .updateTable('resources')
        .set({ display_name: record.displayName, body_json: JSON.stringify(record.body), updated_at: toMs(record.updatedAt, 'updatedAt') })
        .where('tenant_id', '=', this.#tenantId)
        .where('collection', '=', record.collection)
        .where('id', '=', record.id)
        .where('kind', '=', record.kind)
        .where('updated_at', '=', toMs(expectedUpdatedAt, 'expectedUpdatedAt'))
        .executeTakeFirst();
      if (result.numUpdatedRows > 0n) return;
      const current = await this.getResource(record.collection, record.id);
      if (current === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no ${what}`);
      throw new KeyfleetError('KF_CONFLICT', `${what} was changed meanwhile; read it again and retry`);
    });
  }

  deleteResource(collection: ResourceCollection, id: string): Promise<boolean> {
    return guarded(async () => {
      const result = await this.#db
        .deleteFrom('resources')
        .where('tenant_id', '=', this.#tenantId)
        .where('collection', '=', collection)
        .where('id', '=', id)
        .executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  replaceAssignments(collection: AssignableCollection, resourceId: string, include: readonly string[], exclude: readonly string[]): Promise<void> {
    const excluded = new Set(exclude);
    const rows = [
      // A group both included and excluded is excluded: exclusion wins (src/policy/assignments.ts).
      ...[...new Set(include)].filter((g) => !excluded.has(g)).map((g) => ({ group: g, intent: 'include' as const })),
      ...[...excluded].map((g) => ({ group: g, intent: 'exclude' as const })),
    ].map((r) => ({ tenant_id: this.#tenantId, collection, resource_id: resourceId, group_id: r.group, intent: r.intent }));
    return guarded(
      () =>
        inTransaction(this.#db, async (tx) => {
          const exists = await tx
            .selectFrom('resources')
            .select('id')
            .where('tenant_id', '=', this.#tenantId)
            .where('collection', '=', collection)
            .where('id', '=', resourceId)
            .executeTakeFirst();
          if (exists === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no ${collection} with id "${resourceId}"`);
          await tx
            .deleteFrom('resource_assignments')
            .where('tenant_id', '=', this.#tenantId)
            .where('collection', '=', collection)
            .where('resource_id', '=', resourceId)
            .execute();
          if (rows.length > 0) await tx.insertInto('resource_assignments').values(rows).execute();
        }),
      { missing: `no ${collection} with id "${resourceId}"` },
    );
  }

  listAssignments(collection?: AssignableCollection, resourceId?: string): Promise<AssignmentRecord[]> {
    return guarded(async () => {
      let query = this.#db.selectFrom('resource_assignments').selectAll().where('tenant_id', '=', this.#tenantId);
      if (collection !== undefined) query = query.where('collection', '=', collection);
      if (resourceId !== undefined) query = query.where('resource_id', '=', resourceId);
      const rows = await query.orderBy('collection').orderBy('resource_id').orderBy('group_id').execute();
      return rows.map((r) => ({
        collection: r.collection as AssignableCollection,
        resourceId: r.resource_id,
        groupId: r.group_id,
        intent: r.intent as AssignmentIntent,
      }));
    });
  }

  putUserPfxCertificate(record: UserPfxCertificateRecord): Promise<void> {
    return guarded(
      async () => {
        await this.#db.insertInto('user_pfx_certificates').values(this.#pfxRow(record)).execute();
      },
      { conflict: `certificate ${record.thumbprint} is already imported for ${record.userPrincipalName}`, missing: 'the tenant does not exist' },
    );
  }

  putUserPfxCertificates(records: readonly UserPfxCertificateRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    const t = this.#tenantId;
    return guarded(
      () =>
        inTransaction(this.#db, async (tx) => {
          const rows = records.map((r) => this.#pfxRow(r));
          const index = new Map<string, number>();
          for (const [i, r] of rows.entries()) {
            const key = `${r.upn_key}\n${r.thumbprint}`;
            const first = index.get(key);
            if (first !== undefined) throw new KeyfleetError('KF_CONFLICT', `record ${i}: certificate ${r.thumbprint} for ${r.user_principal_name} repeats record ${first}`);
            index.set(key, i);
          }
          // Stored duplicates are looked for first, so the refusal can name the record; the unique constraint
          // still catches one imported concurrently (with the generic message below).
          let clash: number | undefined;
          for (let i = 0; i < rows.length; i += PFX_ROWS_PER_STATEMENT) {
            const chunk = rows.slice(i, i + PFX_ROWS_PER_STATEMENT);
            const found = await tx
              .selectFrom('user_pfx_certificates')
              .select(['upn_key', 'thumbprint'])
              .where('tenant_id', '=', t)
              .where('upn_key', 'in', [...new Set(chunk.map((r) => r.upn_key))])
              .where('thumbprint', 'in', [...new Set(chunk.map((r) => r.thumbprint))])
              .execute();
            for (const f of found) {
              const at = index.get(`${f.upn_key}\n${f.thumbprint}`);
              if (at !== undefined && (clash === undefined || at < clash)) clash = at;
            }
          }
          if (clash !== undefined) {
            const r = rows[clash]!;
            throw new KeyfleetError('KF_CONFLICT', `record ${clash}: certificate ${r.thumbprint} is already imported for ${r.user_principal_name}`);
          }
          for (let i = 0; i < rows.length; i += PFX_ROWS_PER_STATEMENT) await tx.insertInto('user_pfx_certificates').values(rows.slice(i, i + PFX_ROWS_PER_STATEMENT)).execute();
        }),
      { conflict: 'a certificate of the batch was imported concurrently; nothing of the batch was stored', missing: 'the tenant does not exist' },
    );
  }

  #pfxRow(record: UserPfxCertificateRecord): Insertable<UserPfxCertificatesTable> {
    return {
      tenant_id: this.#tenantId,
      id: record.id,
      user_principal_name: record.userPrincipalName,
      upn_key: record.userPrincipalName.toLowerCase(),
      thumbprint: record.thumbprint,
      intended_purpose: record.intendedPurpose,
      start_at: toMs(record.startDateTime, 'startDateTime'),
      expiration_at: toMs(record.expirationDateTime, 'expirationDateTime'),
      provider_name: record.providerName,
      key_name: record.keyName,
      padding_scheme: record.paddingScheme,
      encrypted_pfx_blob: record.encryptedPfxBlob,
      encrypted_pfx_password: record.encryptedPfxPassword,
      created_at: toMs(record.createdAt, 'createdAt'),
    };
  }

  getUserPfxCertificate(id: string): Promise<UserPfxCertificateRecord | undefined> {
    return guarded(async () => {
      const row = await this.#db.selectFrom('user_pfx_certificates').selectAll().where('tenant_id', '=', this.#tenantId).where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : pfxFromRow(row);
    });
  }

  listUserPfxCertificates(options: PageOptions & { readonly userPrincipalName?: string } = {}): Promise<Page<UserPfxCertificateRecord>> {
    return guarded(async () => {
      const limit = pageSize(options.limit);
      const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor, 1)[0];
      let query = this.#db.selectFrom('user_pfx_certificates').selectAll().where('tenant_id', '=', this.#tenantId);
      if (options.userPrincipalName !== undefined) query = query.where('upn_key', '=', options.userPrincipalName.toLowerCase());
      if (after !== undefined) query = query.where('id', '>', after);
      const rows = await query.orderBy('id').limit(limit + 1).execute();
      return page(rows.map(pfxFromRow), limit);
    });
  }

  deleteUserPfxCertificate(id: string): Promise<boolean> {
    return guarded(async () => {
      const result = await this.#db.deleteFrom('user_pfx_certificates').where('tenant_id', '=', this.#tenantId).where('id', '=', id).executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  listUserPfxCertificateRefs(): Promise<UserPfxCertificateRef[]> {
    return guarded(async () => {
      const rows = await this.#db
        .selectFrom('user_pfx_certificates')
        .select(['id', 'user_principal_name', 'thumbprint', 'intended_purpose'])
        .where('tenant_id', '=', this.#tenantId)
        .orderBy('id')
        .execute();
      return rows.map((r) => ({ id: r.id, userPrincipalName: r.user_principal_name, thumbprint: r.thumbprint, intendedPurpose: r.intended_purpose }));
    });
  }

  directorySnapshot(): Promise<DirectorySnapshot> {
    return guarded(async () => {
      const groups = await this.#db.selectFrom('groups').select('id').where('tenant_id', '=', this.#tenantId).execute();
      const users = await this.#db.selectFrom('group_user_members').select(['group_id', 'user_id']).where('tenant_id', '=', this.#tenantId).execute();
      const nested = await this.#db.selectFrom('group_group_members').select(['group_id', 'member_group_id']).where('tenant_id', '=', this.#tenantId).execute();
      return {
        groupIds: groups.map((g) => g.id),
        memberships: [
          ...users.map((m) => ({ groupId: m.group_id, memberId: m.user_id, memberType: 'user' as const })),
          ...nested.map((m) => ({ groupId: m.group_id, memberId: m.member_group_id, memberType: 'group' as const })),
        ],
      };
    });
  }
}

function page<T extends { readonly id: string }>(rows: T[], limit: number): Page<T> {
  if (rows.length <= limit) return { items: rows, nextCursor: undefined };
  const items = rows.slice(0, limit);
  return { items, nextCursor: encodeCursor([items[items.length - 1]!.id]) };
}

function resourceFromRow(row: Selectable<ResourcesTable>): ResourceRecord {
  return {
    collection: row.collection as ResourceCollection,
    id: row.id,
    kind: row.kind,
    displayName: row.display_name,
    body: JSON.parse(row.body_json) as JsonObject,
    createdAt: fromMs(row.created_at),
    updatedAt: fromMs(row.updated_at),
  };
}

function pfxFromRow(row: Selectable<UserPfxCertificatesTable>): UserPfxCertificateRecord {
  return {
    id: row.id,
    userPrincipalName: row.user_principal_name,
    thumbprint: row.thumbprint,
    intendedPurpose: row.intended_purpose,
    startDateTime: fromMs(row.start_at),
    expirationDateTime: fromMs(row.expiration_at),
    providerName: row.provider_name,
    keyName: row.key_name,
    paddingScheme: row.padding_scheme,
    encryptedPfxBlob: bytes(row.encrypted_pfx_blob),
    encryptedPfxPassword: bytes(row.encrypted_pfx_password),
    createdAt: fromMs(row.created_at),
  };
}
