/** DirectoryStore (src/store/directory.ts) on Kysely, for one tenant. */
import { sql, type Kysely, type RawBuilder, type Selectable } from 'kysely';
import { KeyfleetError } from '../../errors.ts';
import type {
  DirectoryStore,
  GroupFilter,
  GroupRecord,
  MemberRef,
  Page,
  PageOptions,
  UserFilter,
  UserRecord,
  UserRef,
} from '../directory.ts';
import { guarded } from './errors.ts';
import type { Database, GroupsTable, UsersTable } from './schema.ts';
import { lockTenant } from './tenant-lock.ts';
import { inTransaction } from './transaction.ts';
import { decodeCursor, encodeCursor, fromMs, orNull, orUndefined, pageOffset, pageSize, toMs } from './values.ts';

const USER_COLUMNS = {
  userPrincipalName: 'upn_key',
  mail: 'mail',
  displayName: 'display_name',
  externalId: 'external_id',
} as const;

const GROUP_COLUMNS = { displayName: 'display_name', externalId: 'external_id' } as const;

export class KyselyDirectoryStore implements DirectoryStore {
  readonly #db: Kysely<Database>;
  readonly #tenantId: string;

  constructor(db: Kysely<Database>, tenantId: string) {
    this.#db = db;
    this.#tenantId = tenantId;
  }

  putUser(record: UserRecord): Promise<void> {
    const row = this.#userRow(record);
    return guarded(
      async () => {
        await this.#db.insertInto('users').values(row).execute();
      },
      { conflict: `the userPrincipalName "${record.userPrincipalName}" is already in use`, missing: 'the tenant does not exist' },
    );
  }

  replaceUser(record: UserRecord): Promise<void> {
    const { tenant_id, id, created_at: _created, ...changes } = this.#userRow(record);
    return guarded(
      async () => {
        const result = await this.#db.updateTable('users').set(changes).where('tenant_id', '=', tenant_id).where('id', '=', id).executeTakeFirst();
        if (result.numUpdatedRows === 0n) throw new KeyfleetError('KF_NOT_FOUND', `no user with id "${id}"`);
      },
      { conflict: `the userPrincipalName "${record.userPrincipalName}" is already in use` },
    );
  }

  #userRow(record: UserRecord) {
    return {
      tenant_id: this.#tenantId,
      id: record.id,
      user_principal_name: record.userPrincipalName,
      upn_key: record.userPrincipalName.toLowerCase(),
      mail: orNull(record.mail),
      display_name: record.displayName,
      is_exchange_online: record.isExchangeOnline ? 1 : 0,
      account_enabled: record.accountEnabled ? 1 : 0,
      external_id: orNull(record.externalId),
      created_at: toMs(record.createdAt, 'createdAt'),
      updated_at: toMs(record.updatedAt, 'updatedAt'),
    };
  }

  getUser(id: string): Promise<UserRecord | undefined> {
    return guarded(async () => {
      const row = await this.#db.selectFrom('users').selectAll().where('tenant_id', '=', this.#tenantId).where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : userFromRow(row);
    });
  }

  listUsers(options: PageOptions & { readonly filter?: UserFilter } = {}): Promise<Page<UserRecord>> {
    return guarded(async () => {
      const limit = pageSize(options.limit);
      const offset = pageOffset(options.offset);
      const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor, 1)[0];
      let query = this.#db.selectFrom('users').selectAll().where('tenant_id', '=', this.#tenantId);
      if (options.filter !== undefined) query = query.where(USER_COLUMNS[options.filter.attribute], '=', userFilterValue(options.filter));
      if (after !== undefined) query = query.where('id', '>', after);
      const rows = await query.orderBy('id').limit(limit + 1).offset(offset).execute();
      return page(rows.map(userFromRow), limit, (u) => [u.id]);
    });
  }

  countUsers(filter?: UserFilter): Promise<number> {
    return guarded(async () => {
      let query = this.#db.selectFrom('users').select((eb) => eb.fn.countAll().as('n')).where('tenant_id', '=', this.#tenantId);
      if (filter !== undefined) query = query.where(USER_COLUMNS[filter.attribute], '=', userFilterValue(filter));
      const row = await query.executeTakeFirstOrThrow();
      return Number(row.n);
    });
  }

  listUserRefs(): Promise<UserRef[]> {
    return guarded(async () => {
      const rows = await this.#db
        .selectFrom('users')
        .select(['id', 'user_principal_name', 'is_exchange_online'])
        .where('tenant_id', '=', this.#tenantId)
        .orderBy('id')
        .execute();
      return rows.map((r) => ({ id: r.id, userPrincipalName: r.user_principal_name, isExchangeOnline: Number(r.is_exchange_online) !== 0 }));
    });
  }

  deleteUser(id: string): Promise<boolean> {
    return guarded(async () => {
      const result = await this.#db.deleteFrom('users').where('tenant_id', '=', this.#tenantId).where('id', '=', id).executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  putGroup(record: GroupRecord): Promise<void> {
    const row = this.#groupRow(record);
    return guarded(
      async () => {
        await this.#db.insertInto('groups').values(row).execute();
      },
      { conflict: `a group with id "${record.id}" already exists`, missing: 'the tenant does not exist' },
    );
  }

  replaceGroup(record: GroupRecord): Promise<void> {
    const { tenant_id, id, created_at: _created, ...changes } = this.#groupRow(record);
    return guarded(async () => {
      const result = await this.#db.updateTable('groups').set(changes).where('tenant_id', '=', tenant_id).where('id', '=', id).executeTakeFirst();
      if (result.numUpdatedRows === 0n) throw new KeyfleetError('KF_NOT_FOUND', `no group with id "${id}"`);
    });
  }

  #groupRow(record: GroupRecord) {
    return {
      tenant_id: this.#tenantId,
      id: record.id,
      display_name: record.displayName,
      description: orNull(record.description),
      external_id: orNull(record.externalId),
      created_at: toMs(record.createdAt, 'createdAt'),
      updated_at: toMs(record.updatedAt, 'updatedAt'),
    };
  }

  getGroup(id: string): Promise<GroupRecord | undefined> {
    return guarded(async () => {
      const row = await this.#db.selectFrom('groups').selectAll().where('tenant_id', '=', this.#tenantId).where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : groupFromRow(row);
    });
  }

  listGroups(options: PageOptions & { readonly filter?: GroupFilter } = {}): Promise<Page<GroupRecord>> {
    return guarded(async () => {
      const limit = pageSize(options.limit);
      const offset = pageOffset(options.offset);
      const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor, 1)[0];
      let query = this.#db.selectFrom('groups').selectAll().where('tenant_id', '=', this.#tenantId);
      if (options.filter !== undefined) query = query.where(GROUP_COLUMNS[options.filter.attribute], '=', options.filter.value);
      if (after !== undefined) query = query.where('id', '>', after);
      const rows = await query.orderBy('id').limit(limit + 1).offset(offset).execute();
      return page(rows.map(groupFromRow), limit, (g) => [g.id]);
    });
  }

  countGroups(filter?: GroupFilter): Promise<number> {
    return guarded(async () => {
      let query = this.#db.selectFrom('groups').select((eb) => eb.fn.countAll().as('n')).where('tenant_id', '=', this.#tenantId);
      if (filter !== undefined) query = query.where(GROUP_COLUMNS[filter.attribute], '=', filter.value);
      const row = await query.executeTakeFirstOrThrow();
      return Number(row.n);
    });
  }

  deleteGroup(id: string): Promise<boolean> {
    return guarded(async () => {
      const result = await this.#db.deleteFrom('groups').where('tenant_id', '=', this.#tenantId).where('id', '=', id).executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  addMember(groupId: string, member: MemberRef): Promise<boolean> {
    const t = this.#tenantId;
    return guarded(() =>
      inTransaction(this.#db, async (db) => {
        if (member.type === 'group') {
          // Two concurrent adds (A into B, B into A) must not both pass the cycle check.
          await lockTenant(db, t);
        }
        const group = await db.selectFrom('groups').select('id').where('tenant_id', '=', t).where('id', '=', groupId).executeTakeFirst();
        if (group === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no group with id "${groupId}"`);
        if (member.type === 'user') {
          const user = await db.selectFrom('users').select('id').where('tenant_id', '=', t).where('id', '=', member.id).executeTakeFirst();
          if (user === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no user with id "${member.id}"`);
          const inserted = await db
            .insertInto('group_user_members')
            .values({ tenant_id: t, group_id: groupId, user_id: member.id })
            .onConflict((oc) => oc.columns(['tenant_id', 'group_id', 'user_id']).doNothing())
            .executeTakeFirst();
          return (inserted.numInsertedOrUpdatedRows ?? 0n) > 0n;
        }
        const child = await db.selectFrom('groups').select('id').where('tenant_id', '=', t).where('id', '=', member.id).executeTakeFirst();
        if (child === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no group with id "${member.id}"`);
        // A cycle appears exactly when the new parent is already among the child's (transitive) subgroups.
        const { rows } = await sql<{ id: string }>`
          with recursive sub(id) as (
            select id from "groups" where tenant_id = ${t} and id = ${member.id}
            union
            select m.member_group_id from group_group_members m join sub on m.group_id = sub.id where m.tenant_id = ${t}
          )
          select id from sub where id = ${groupId} limit 1`.execute(db);
        if (rows.length > 0) {
          throw new KeyfleetError(
            'KF_GROUP_CYCLE',
            member.id === groupId ? 'a group cannot be a member of itself' : `group "${groupId}" is already (transitively) a member of group "${member.id}"`,
          );
        }
        const inserted = await db
          .insertInto('group_group_members')
          .values({ tenant_id: t, group_id: groupId, member_group_id: member.id })
          .onConflict((oc) => oc.columns(['tenant_id', 'group_id', 'member_group_id']).doNothing())
          .executeTakeFirst();
        return (inserted.numInsertedOrUpdatedRows ?? 0n) > 0n;
      }),
    );
  }

  removeMember(groupId: string, member: MemberRef): Promise<boolean> {
    const t = this.#tenantId;
    return guarded(async () => {
      const result =
        member.type === 'user'
          ? await this.#db.deleteFrom('group_user_members').where('tenant_id', '=', t).where('group_id', '=', groupId).where('user_id', '=', member.id).executeTakeFirst()
          : await this.#db
              .deleteFrom('group_group_members')
              .where('tenant_id', '=', t)
              .where('group_id', '=', groupId)
              .where('member_group_id', '=', member.id)
              .executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  listMembers(groupId: string, options: PageOptions = {}): Promise<Page<MemberRef>> {
    const t = this.#tenantId;
    return this.#memberPage(
      sql`select 'group' as type, member_group_id as id from group_group_members where tenant_id = ${t} and group_id = ${groupId}
          union all
          select 'user' as type, user_id as id from group_user_members where tenant_id = ${t} and group_id = ${groupId}`,
      options,
    );
  }

  listTransitiveMembers(groupId: string, options: PageOptions = {}): Promise<Page<MemberRef>> {
    const t = this.#tenantId;
    // One recursive query: the subgroups reachable from the group (UNION keeps each once), then their users.
    return this.#memberPage(
      sql`select 'group' as type, id from sub where id <> ${groupId}
          union
          select 'user' as type, u.user_id as id from group_user_members u join sub on u.group_id = sub.id where u.tenant_id = ${t}`,
      options,
      sql`with recursive sub(id) as (
            select id from "groups" where tenant_id = ${t} and id = ${groupId}
            union
            select m.member_group_id from group_group_members m join sub on m.group_id = sub.id where m.tenant_id = ${t}
          )`,
    );
  }

  #memberPage(members: RawBuilder<unknown>, options: PageOptions, prefix: RawBuilder<unknown> = sql``): Promise<Page<MemberRef>> {
    return guarded(async () => {
      const limit = pageSize(options.limit);
      const offset = pageOffset(options.offset);
      const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor, 2);
      const where = after === undefined ? sql`` : sql`where m.type > ${after[0]} or (m.type = ${after[0]} and m.id > ${after[1]})`;
      const { rows } = await sql<{ type: string; id: string }>`
        ${prefix}
        select m.type, m.id from (${members}) m ${where}
        order by m.type, m.id limit ${limit + 1} offset ${offset}`.execute(this.#db);
      const refs = rows.map((r): MemberRef => ({ type: r.type === 'group' ? 'group' : 'user', id: r.id }));
      return page(refs, limit, (m) => [m.type, m.id]);
    });
  }

  listTransitiveGroupsOf(member: MemberRef): Promise<string[]> {
    const t = this.#tenantId;
    const start =
      member.type === 'user'
        ? sql`select group_id from group_user_members where tenant_id = ${t} and user_id = ${member.id}`
        : sql`select group_id from group_group_members where tenant_id = ${t} and member_group_id = ${member.id}`;
    return guarded(async () => {
      const { rows } = await sql<{ id: string }>`
        with recursive up(id) as (
          ${start}
          union
          select m.group_id from group_group_members m join up on m.member_group_id = up.id where m.tenant_id = ${t}
        )
        select id from up order by id`.execute(this.#db);
      return rows.map((r) => r.id);
    });
  }
}

function userFilterValue(filter: UserFilter): string {
  return filter.attribute === 'userPrincipalName' ? filter.value.toLowerCase() : filter.value;
}

/** Rows were fetched with limit + 1: the extra one only says whether another page follows. */
function page<T>(rows: T[], limit: number, key: (item: T) => string[]): Page<T> {
  if (rows.length <= limit) return { items: rows, nextCursor: undefined };
  const items = rows.slice(0, limit);
  return { items, nextCursor: encodeCursor(key(items[items.length - 1]!)) };
}

function userFromRow(row: Selectable<UsersTable>): UserRecord {
  return {
    id: row.id,
    userPrincipalName: row.user_principal_name,
    mail: orUndefined(row.mail),
    displayName: row.display_name,
    isExchangeOnline: Number(row.is_exchange_online) !== 0,
    accountEnabled: Number(row.account_enabled) !== 0,
    externalId: orUndefined(row.external_id),
    createdAt: fromMs(row.created_at),
    updatedAt: fromMs(row.updated_at),
  };
}

function groupFromRow(row: Selectable<GroupsTable>): GroupRecord {
  return {
    id: row.id,
    displayName: row.display_name,
    description: orUndefined(row.description),
    externalId: orUndefined(row.external_id),
    createdAt: fromMs(row.created_at),
    updatedAt: fromMs(row.updated_at),
  };
}
