/**
 * What the directory (src/directory) needs from storage: users, groups and
 * static, possibly nested, group memberships. Tenant-scoped like every store
 * interface: no method takes a tenant id. Field names follow Microsoft
 * Graph's user and group resources.
 */

export interface UserRecord {
  /** Opaque, assigned by the directory; unique per tenant. */
  readonly id: string;
  /** Unique per tenant, compared case-insensitively. */
  readonly userPrincipalName: string;
  readonly mail: string | undefined;
  readonly displayName: string;
  /** The mailbox is an Exchange Online (Office 365) one: the only kind the seed deploys S/MIME to. */
  readonly isExchangeOnline: boolean;
  readonly accountEnabled: boolean;
  /** The identity provider's id for the user (SCIM externalId, RFC 7643 §3.1). */
  readonly externalId: string | undefined;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** What evaluating effective state needs of a user: no names, mail or timestamps. */
export interface UserRef {
  readonly id: string;
  readonly userPrincipalName: string;
  readonly isExchangeOnline: boolean;
}

export interface GroupRecord {
  readonly id: string;
  readonly displayName: string;
  readonly description: string | undefined;
  readonly externalId: string | undefined;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export type MemberType = 'user' | 'group';

export interface MemberRef {
  readonly type: MemberType;
  readonly id: string;
}

/** One page of a list in a stable order; `nextCursor` is opaque and undefined on the last page. */
export interface Page<T> {
  readonly items: T[];
  readonly nextCursor: string | undefined;
}

export interface PageOptions {
  /** A `nextCursor` from the previous page. */
  readonly cursor?: string;
  /** 1–1000, default 100. */
  readonly limit?: number;
  /** Rows to skip (SCIM's startIndex − 1); cursors are the efficient way, this is for SCIM clients. */
  readonly offset?: number;
}

/** Equality on one attribute (SCIM `attr eq "value"`); userPrincipalName compares case-insensitively. */
export interface UserFilter {
  readonly attribute: 'userPrincipalName' | 'mail' | 'displayName' | 'externalId';
  readonly value: string;
}

export interface GroupFilter {
  readonly attribute: 'displayName' | 'externalId';
  readonly value: string;
}

export interface DirectoryStore {
  /** Inserts; a UPN already in use (in any case) is KF_CONFLICT. */
  putUser(record: UserRecord): Promise<void>;
  /** Replaces every field but id and createdAt; KF_NOT_FOUND when there is no such user, KF_CONFLICT for a taken UPN. */
  replaceUser(record: UserRecord): Promise<void>;
  getUser(id: string): Promise<UserRecord | undefined>;
  /** Ordered by id. */
  listUsers(options?: PageOptions & { readonly filter?: UserFilter }): Promise<Page<UserRecord>>;
  countUsers(filter?: UserFilter): Promise<number>;
  /** Every user of the tenant as a UserRef, ordered by id: the evaluator's read, one query however many. */
  listUserRefs(): Promise<UserRef[]>;
  /** Deletes the user and its memberships; false when there was none. */
  deleteUser(id: string): Promise<boolean>;

  putGroup(record: GroupRecord): Promise<void>;
  replaceGroup(record: GroupRecord): Promise<void>;
  getGroup(id: string): Promise<GroupRecord | undefined>;
  listGroups(options?: PageOptions & { readonly filter?: GroupFilter }): Promise<Page<GroupRecord>>;
  countGroups(filter?: GroupFilter): Promise<number>;
  /** Deletes the group, its memberships and its membership in other groups; false when there was none. */
  deleteGroup(id: string): Promise<boolean>;

  /**
   * Adds a direct member; false when it already was one. KF_NOT_FOUND when the group or member does not
   * exist; KF_GROUP_CYCLE when a group would (transitively) contain itself. Atomic against concurrent adds.
   */
  addMember(groupId: string, member: MemberRef): Promise<boolean>;
  /** False when it was not a direct member. */
  removeMember(groupId: string, member: MemberRef): Promise<boolean>;
  /** Direct members, ordered by type then id. */
  listMembers(groupId: string, options?: PageOptions): Promise<Page<MemberRef>>;
  /** Every user and group reachable through nested groups (each once), ordered by type then id. */
  listTransitiveMembers(groupId: string, options?: PageOptions): Promise<Page<MemberRef>>;
  /** Ids of every group the member is in, directly or through nested groups (Graph's transitiveMemberOf). */
  listTransitiveGroupsOf(member: MemberRef): Promise<string[]>;
}
