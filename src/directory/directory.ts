/**
 * The directory of one tenant: users and groups with static, nested
 * memberships. Reads go straight to the store; every write is one
 * transaction together with its audit entry (audit.ts). Inputs arrive
 * validated by the edge (the API's JSON schemas, SCIM's mapping); what is
 * checked here is what no schema can see: existence, uniqueness, cycles.
 */
import { randomUUID } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import type { GroupFilter, GroupRecord, MemberRef, Page, PageOptions, UserFilter, UserRecord } from '../store/directory.ts';
import type { TenantStore } from '../store/store.ts';
import { recorded, type Actor } from './audit.ts';
import { groupView, userView } from './views.ts';

export interface NewUser {
  readonly userPrincipalName: string;
  readonly displayName: string;
  readonly mail?: string | undefined;
  readonly isExchangeOnline?: boolean | undefined;
  readonly accountEnabled?: boolean | undefined;
  readonly externalId?: string | undefined;
}

/** A partial update; null clears an optional field. */
export interface UserChanges {
  readonly userPrincipalName?: string;
  readonly displayName?: string;
  readonly mail?: string | null;
  readonly isExchangeOnline?: boolean;
  readonly accountEnabled?: boolean;
  readonly externalId?: string | null;
}

export interface NewGroup {
  readonly displayName: string;
  readonly description?: string | undefined;
  readonly externalId?: string | undefined;
}

export interface GroupChanges {
  readonly displayName?: string;
  readonly description?: string | null;
  readonly externalId?: string | null;
}

export interface DirectoryOptions {
  readonly clock?: () => Date;
  readonly newId?: () => string;
}

export class Directory {
  readonly #tenant: TenantStore;
  readonly #actor: Actor;
  readonly #clock: () => Date;
  readonly #newId: () => string;

  constructor(tenant: TenantStore, actor: Actor, options: DirectoryOptions = {}) {
    this.#tenant = tenant;
    this.#actor = actor;
    this.#clock = options.clock ?? (() => new Date());
    this.#newId = options.newId ?? randomUUID;
  }

  async getUser(id: string): Promise<UserRecord> {
    const user = await this.#tenant.directory.getUser(id);
    if (user === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no user with id "${id}"`);
    return user;
  }

  listUsers(options: PageOptions & { readonly filter?: UserFilter } = {}): Promise<Page<UserRecord>> {
    return this.#tenant.directory.listUsers(options);
  }

  createUser(input: NewUser): Promise<UserRecord> {
    const now = this.#now();
    const user: UserRecord = {
      id: this.#newId(),
      userPrincipalName: input.userPrincipalName,
      mail: input.mail,
      displayName: input.displayName,
      isExchangeOnline: input.isExchangeOnline ?? false,
      accountEnabled: input.accountEnabled ?? true,
      externalId: input.externalId,
      createdAt: now,
      updatedAt: now,
    };
    return recorded(this.#tenant, this.#actor, now, async (tx) => {
      await tx.directory.putUser(user);
      return { result: user, action: 'user.create', resourceType: 'user', resourceId: user.id, before: null, after: userView(user) };
    });
  }

  updateUser(id: string, changes: UserChanges): Promise<UserRecord> {
    const now = this.#now();
    return recorded(this.#tenant, this.#actor, now, async (tx) => {
      const before = await tx.directory.getUser(id);
      if (before === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no user with id "${id}"`);
      const after: UserRecord = {
        ...before,
        ...defined({ userPrincipalName: changes.userPrincipalName, displayName: changes.displayName, isExchangeOnline: changes.isExchangeOnline, accountEnabled: changes.accountEnabled }),
        mail: changes.mail === undefined ? before.mail : (changes.mail ?? undefined),
        externalId: changes.externalId === undefined ? before.externalId : (changes.externalId ?? undefined),
        updatedAt: now,
      };
      await tx.directory.replaceUser(after);
      return { result: after, action: 'user.update', resourceType: 'user', resourceId: id, before: userView(before), after: userView(after) };
    });
  }

  deleteUser(id: string): Promise<void> {
    return recorded(this.#tenant, this.#actor, this.#now(), async (tx) => {
      const before = await tx.directory.getUser(id);
      if (before === undefined || !(await tx.directory.deleteUser(id))) throw new KeyfleetError('KF_NOT_FOUND', `no user with id "${id}"`);
      return { result: undefined, action: 'user.delete', resourceType: 'user', resourceId: id, before: userView(before), after: null };
    });
  }

  async getGroup(id: string): Promise<GroupRecord> {
    const group = await this.#tenant.directory.getGroup(id);
    if (group === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no group with id "${id}"`);
    return group;
  }

  listGroups(options: PageOptions & { readonly filter?: GroupFilter } = {}): Promise<Page<GroupRecord>> {
    return this.#tenant.directory.listGroups(options);
  }

  /** Creates the group with its first members (SCIM's POST carries them), all in one transaction. */
  createGroup(input: NewGroup, members: readonly MemberRef[] = []): Promise<GroupRecord> {
    const now = this.#now();
    const group: GroupRecord = {
      id: this.#newId(),
      displayName: input.displayName,
      description: input.description,
      externalId: input.externalId,
      createdAt: now,
      updatedAt: now,
    };
    return this.#tenant.transaction(async (tx) => {
      const created = await recorded(tx, this.#actor, now, async (inner) => {
        await inner.directory.putGroup(group);
        return { result: group, action: 'group.create', resourceType: 'group', resourceId: group.id, before: null, after: groupView(group) };
      });
      for (const m of members) await this.#addMember(tx, group.id, m, now);
      return created;
    });
  }

  updateGroup(id: string, changes: GroupChanges): Promise<GroupRecord> {
    const now = this.#now();
    return recorded(this.#tenant, this.#actor, now, async (tx) => {
      const before = await tx.directory.getGroup(id);
      if (before === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no group with id "${id}"`);
      const after: GroupRecord = {
        ...before,
        ...defined({ displayName: changes.displayName }),
        description: changes.description === undefined ? before.description : (changes.description ?? undefined),
        externalId: changes.externalId === undefined ? before.externalId : (changes.externalId ?? undefined),
        updatedAt: now,
      };
      await tx.directory.replaceGroup(after);
      return { result: after, action: 'group.update', resourceType: 'group', resourceId: id, before: groupView(before), after: groupView(after) };
    });
  }

  deleteGroup(id: string): Promise<void> {
    return recorded(this.#tenant, this.#actor, this.#now(), async (tx) => {
      const before = await tx.directory.getGroup(id);
      if (before === undefined || !(await tx.directory.deleteGroup(id))) throw new KeyfleetError('KF_NOT_FOUND', `no group with id "${id}"`);
      return { result: undefined, action: 'group.delete', resourceType: 'group', resourceId: id, before: groupView(before), after: null };
    });
  }

  /** True when added, false when it already was a direct member (nothing recorded then). */
  addMember(groupId: string, member: MemberRef): Promise<boolean> {
    return this.#tenant.transaction((tx) => this.#addMember(tx, groupId, member, this.#now()));
  }

  async #addMember(tx: TenantStore, groupId: string, member: MemberRef, at: Date): Promise<boolean> {
    const added = await tx.directory.addMember(groupId, member);
    if (added) await this.#recordMembership(tx, 'group.member.add', groupId, member, at);
    return added;
  }

  /** KF_NOT_FOUND when the group does not exist or the member was not a direct member. */
  removeMember(groupId: string, member: MemberRef): Promise<void> {
    return this.#tenant.transaction(async (tx) => {
      await this.#requireGroup(tx, groupId);
      if (!(await tx.directory.removeMember(groupId, member))) {
        throw new KeyfleetError('KF_NOT_FOUND', `${member.type} "${member.id}" is not a direct member of group "${groupId}"`);
      }
      await this.#recordMembership(tx, 'group.member.remove', groupId, member, this.#now());
    });
  }

  /** Removes a direct member known only by id (users and groups share one id space: UUIDs). */
  removeMemberById(groupId: string, memberId: string): Promise<MemberRef> {
    return this.#tenant.transaction(async (tx) => {
      await this.#requireGroup(tx, groupId);
      for (const type of ['user', 'group'] as const) {
        const member = { type, id: memberId };
        if (await tx.directory.removeMember(groupId, member)) {
          await this.#recordMembership(tx, 'group.member.remove', groupId, member, this.#now());
          return member;
        }
      }
      throw new KeyfleetError('KF_NOT_FOUND', `"${memberId}" is not a direct member of group "${groupId}"`);
    });
  }

  /** Makes the direct members exactly `members` (SCIM PUT and PATCH replace), recording each change. */
  replaceMembers(groupId: string, members: readonly MemberRef[]): Promise<void> {
    const now = this.#now();
    return this.#tenant.transaction(async (tx) => {
      await this.#requireGroup(tx, groupId);
      const current = await allMembers(tx, groupId);
      const wanted = new Set(members.map(memberKey));
      const have = new Set(current.map(memberKey));
      for (const m of current) {
        if (!wanted.has(memberKey(m))) {
          await tx.directory.removeMember(groupId, m);
          await this.#recordMembership(tx, 'group.member.remove', groupId, m, now);
        }
      }
      for (const m of members) if (!have.has(memberKey(m))) await this.#addMember(tx, groupId, m, now);
    });
  }

  async listMembers(groupId: string, options: PageOptions = {}): Promise<Page<MemberRef>> {
    await this.#requireGroup(this.#tenant, groupId);
    return this.#tenant.directory.listMembers(groupId, options);
  }

  async listTransitiveMembers(groupId: string, options: PageOptions = {}): Promise<Page<MemberRef>> {
    await this.#requireGroup(this.#tenant, groupId);
    return this.#tenant.directory.listTransitiveMembers(groupId, options);
  }

  async #requireGroup(tx: TenantStore, groupId: string): Promise<void> {
    if ((await tx.directory.getGroup(groupId)) === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no group with id "${groupId}"`);
  }

  async #recordMembership(tx: TenantStore, action: string, groupId: string, member: MemberRef, at: Date): Promise<void> {
    const ref = { type: member.type, id: member.id };
    await tx.audit.append({
      actorId: this.#actor.id,
      actorName: this.#actor.name,
      action,
      resourceType: 'group',
      resourceId: groupId,
      before: action.endsWith('.add') ? null : { member: ref },
      after: action.endsWith('.add') ? { member: ref } : null,
      at,
    });
  }

  #now(): Date {
    // Whole milliseconds: what the store keeps, so a record read back equals the one returned.
    return new Date(Math.floor(this.#clock().getTime()));
  }
}

/** Every direct member of a group, page by page. */
export async function allMembers(tenant: TenantStore, groupId: string): Promise<MemberRef[]> {
  const out: MemberRef[] = [];
  let cursor: string | undefined;
  do {
    const p = await tenant.directory.listMembers(groupId, { limit: 1000, ...(cursor === undefined ? {} : { cursor }) });
    out.push(...p.items);
    cursor = p.nextCursor;
  } while (cursor !== undefined);
  return out;
}

function memberKey(m: MemberRef): string {
  return `${m.type}:${m.id}`;
}

/** The entries whose value is not undefined (spreading undefined would erase a field under exactOptionalPropertyTypes). */
function defined<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: Exclude<T[K], undefined> };
}
