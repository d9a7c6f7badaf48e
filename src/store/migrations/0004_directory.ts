/** The directory: users, groups and static memberships (src/store/directory.ts). */
import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import { columnTypes, type SqlFlavor } from './flavor.ts';

export function directory(flavor: SqlFlavor): Migration {
  const t = columnTypes(flavor);
  return {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('users')
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        // Pagination orders by id: byte order on both databases.
        .addColumn('id', t.orderedText, (c) => c.notNull())
        .addColumn('user_principal_name', 'text', (c) => c.notNull())
        // UPNs are case-insensitive (Entra ID, and SCIM's userName: RFC 7643 §4.1.1 caseExact false): the
        // lower-cased form is what uniqueness and the userName filter compare. Lower-cased by the store, so
        // both databases agree regardless of their locale.
        .addColumn('upn_key', 'text', (c) => c.notNull())
        .addColumn('mail', 'text')
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('is_exchange_online', 'integer', (c) => c.notNull())
        .addColumn('account_enabled', 'integer', (c) => c.notNull())
        .addColumn('external_id', 'text')
        .addColumn('created_at', t.int64, (c) => c.notNull())
        .addColumn('updated_at', t.int64, (c) => c.notNull())
        .addPrimaryKeyConstraint('users_pk', ['tenant_id', 'id'])
        .addUniqueConstraint('users_upn', ['tenant_id', 'upn_key'])
        .execute();
      await db.schema.createIndex('users_external_id').on('users').columns(['tenant_id', 'external_id']).execute();
      await db.schema.createIndex('users_display_name').on('users').columns(['tenant_id', 'display_name']).execute();
      await db.schema.createIndex('users_mail').on('users').columns(['tenant_id', 'mail']).execute();

      await db.schema
        .createTable('groups')
        .addColumn('tenant_id', 'text', (c) => c.notNull().references('tenants.id'))
        .addColumn('id', t.orderedText, (c) => c.notNull())
        .addColumn('display_name', 'text', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('external_id', 'text')
        .addColumn('created_at', t.int64, (c) => c.notNull())
        .addColumn('updated_at', t.int64, (c) => c.notNull())
        .addPrimaryKeyConstraint('groups_pk', ['tenant_id', 'id'])
        .execute();
      await db.schema.createIndex('groups_external_id').on('groups').columns(['tenant_id', 'external_id']).execute();
      await db.schema.createIndex('groups_display_name').on('groups').columns(['tenant_id', 'display_name']).execute();

      // Two membership tables rather than one polymorphic one, so that each member is a real foreign key and
      // deleting a user or group removes its memberships (ON DELETE CASCADE) on both databases.
      await db.schema
        .createTable('group_user_members')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('group_id', t.orderedText, (c) => c.notNull())
        .addColumn('user_id', t.orderedText, (c) => c.notNull())
        .addPrimaryKeyConstraint('group_user_members_pk', ['tenant_id', 'group_id', 'user_id'])
        .addForeignKeyConstraint('group_user_members_group', ['tenant_id', 'group_id'], 'groups', ['tenant_id', 'id'], (fk) => fk.onDelete('cascade'))
        .addForeignKeyConstraint('group_user_members_user', ['tenant_id', 'user_id'], 'users', ['tenant_id', 'id'], (fk) => fk.onDelete('cascade'))
        .execute();
      // memberOf: the groups a user is in, the start of every effective-policy evaluation.
      await db.schema.createIndex('group_user_members_user').on('group_user_members').columns(['tenant_id', 'user_id']).execute();

      await db.schema
        .createTable('group_group_members')
        .addColumn('tenant_id', 'text', (c) => c.notNull())
        .addColumn('group_id', t.orderedText, (c) => c.notNull())
        .addColumn('member_group_id', t.orderedText, (c) => c.notNull())
        .addPrimaryKeyConstraint('group_group_members_pk', ['tenant_id', 'group_id', 'member_group_id'])
        .addForeignKeyConstraint('group_group_members_group', ['tenant_id', 'group_id'], 'groups', ['tenant_id', 'id'], (fk) => fk.onDelete('cascade'))
        .addForeignKeyConstraint('group_group_members_member', ['tenant_id', 'member_group_id'], 'groups', ['tenant_id', 'id'], (fk) => fk.onDelete('cascade'))
        .execute();
      await db.schema.createIndex('group_group_members_member').on('group_group_members').columns(['tenant_id', 'member_group_id']).execute();
    },
  };
}
