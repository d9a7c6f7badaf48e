/**
 * Users, groups and tokens as JSON, in Microsoft Graph's names
 * (`createdDateTime`, absent values as null): what the admin API returns and
 * what the audit log records as before/after. Token views never carry the
 * secret or its hash.
 */
import type { ApiTokenRecord } from '../store/access.ts';
import type { JsonValue } from '../store/audit.ts';
import type { GroupRecord, MemberRef, UserRecord } from '../store/directory.ts';

export interface UserView {
  [key: string]: JsonValue;
  id: string;
  userPrincipalName: string;
  mail: string | null;
  displayName: string;
  isExchangeOnline: boolean;
  accountEnabled: boolean;
  externalId: string | null;
  createdDateTime: string;
  lastModifiedDateTime: string;
}

export interface GroupView {
  [key: string]: JsonValue;
  id: string;
  displayName: string;
  description: string | null;
  externalId: string | null;
  createdDateTime: string;
  lastModifiedDateTime: string;
}

export interface TokenView {
  [key: string]: JsonValue;
  id: string;
  name: string;
  role: string;
  createdDateTime: string;
  lastUsedDateTime: string | null;
  revokedDateTime: string | null;
}

export interface MemberView {
  [key: string]: JsonValue;
  type: 'user' | 'group';
  id: string;
}

export function userView(u: UserRecord): UserView {
  return {
    id: u.id,
    userPrincipalName: u.userPrincipalName,
    mail: u.mail ?? null,
    displayName: u.displayName,
    isExchangeOnline: u.isExchangeOnline,
    accountEnabled: u.accountEnabled,
    externalId: u.externalId ?? null,
    createdDateTime: u.createdAt.toISOString(),
    lastModifiedDateTime: u.updatedAt.toISOString(),
  };
}

export function groupView(g: GroupRecord): GroupView {
  return {
    id: g.id,
    displayName: g.displayName,
    description: g.description ?? null,
    externalId: g.externalId ?? null,
    createdDateTime: g.createdAt.toISOString(),
    lastModifiedDateTime: g.updatedAt.toISOString(),
  };
}

export function tokenView(t: ApiTokenRecord): TokenView {
  return {
    id: t.id,
    name: t.name,
    role: t.role,
    createdDateTime: t.createdAt.toISOString(),
    lastUsedDateTime: t.lastUsedAt?.toISOString() ?? null,
    revokedDateTime: t.revokedAt?.toISOString() ?? null,
  };
}

export function memberView(m: MemberRef): MemberView {
  return { type: m.type, id: m.id };
}
