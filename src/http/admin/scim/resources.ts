/**
 * SCIM 2.0 User and Group resources (RFC 7643 §4) and how they map onto the
 * directory: userName ↔ userPrincipalName, active ↔ accountEnabled, the
 * primary (else first) email ↔ mail; the Exchange Online flag travels in a
 * Keyfleet extension schema. Attributes we do not keep (name parts, phone
 * numbers, the enterprise extension…) are accepted and ignored, as
 * identity providers send them unasked (RFC 7644 §3.3).
 */
import { KeyfleetError } from '../../../errors.ts';
import type { GroupRecord, MemberRef, UserRecord } from '../../../store/directory.ts';
import type { TenantStore } from '../../../store/store.ts';

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const KEYFLEET_USER_SCHEMA = 'urn:keyfleet:params:scim:schemas:extension:2.0:User';
export const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

export interface ScimEmail {
  value?: unknown;
  type?: unknown;
  primary?: unknown;
}

export interface ScimUserInput {
  userName: string;
  externalId?: string;
  displayName?: string;
  name?: { formatted?: string; givenName?: string; familyName?: string };
  active?: boolean | string;
  emails?: ScimEmail[];
  [KEYFLEET_USER_SCHEMA]?: { isExchangeOnline?: boolean };
}

export interface ScimMemberInput {
  value: string;
  type?: string;
}

export interface ScimGroupInput {
  displayName: string;
  externalId?: string;
  members?: ScimMemberInput[];
}

const text = { type: 'string', maxLength: 256 } as const;
const member = { type: 'object', properties: { value: { type: 'string', minLength: 1, maxLength: 128 }, type: { type: 'string', maxLength: 16 } }, required: ['value'] } as const;

/** Body schemas: the attributes we keep are typed and bounded; other attributes pass (see above). */
export const scimUserBody = {
  type: 'object',
  properties: {
    schemas: { type: 'array', items: { type: 'string' } },
    userName: { type: 'string', minLength: 3, maxLength: 256, pattern: '^[^@\\s]+@[^@\\s]+$' },
    externalId: { type: 'string', minLength: 1, maxLength: 256 },
    displayName: { type: 'string', minLength: 1, maxLength: 256 },
    name: { type: 'object', properties: { formatted: text, givenName: text, familyName: text } },
    active: { type: ['boolean', 'string'] },
    emails: { type: 'array', maxItems: 20, items: { type: 'object', properties: { value: text, type: { type: 'string', maxLength: 32 }, primary: {} } } },
    [KEYFLEET_USER_SCHEMA]: { type: 'object', properties: { isExchangeOnline: { type: 'boolean' } } },
  },
  required: ['userName'],
} as const;

export const scimGroupBody = {
  type: 'object',
  properties: {
    schemas: { type: 'array', items: { type: 'string' } },
    displayName: { type: 'string', minLength: 1, maxLength: 256 },
    externalId: { type: 'string', minLength: 1, maxLength: 256 },
    members: { type: 'array', maxItems: 10_000, items: member },
  },
  required: ['displayName'],
} as const;

export const scimPatchBody = {
  type: 'object',
  properties: {
    schemas: { type: 'array', items: { type: 'string', const: PATCH_SCHEMA } },
    Operations: {
      type: 'array',
      minItems: 1,
      maxItems: 1000,
      items: {
        type: 'object',
        properties: { op: { type: 'string', pattern: '^([Aa][Dd][Dd]|[Rr][Ee][Mm][Oo][Vv][Ee]|[Rr][Ee][Pp][Ll][Aa][Cc][Ee])$' }, path: { type: 'string', maxLength: 512 }, value: {} },
        required: ['op'],
      },
    },
  },
  required: ['schemas', 'Operations'],
} as const;

export function invalidValue(message: string): KeyfleetError {
  return new KeyfleetError('KF_USAGE', message, { detail: 'invalidValue' });
}

/** `active` as a boolean; Entra ID has been seen sending "True"/"False" strings. */
export function toBoolean(value: unknown, attribute: string): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  throw invalidValue(`${attribute} must be a boolean`);
}

export function boundedString(value: unknown, attribute: string, max = 256): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) throw invalidValue(`${attribute} must be a string of 1 to ${max} characters`);
  return value;
}

export function primaryEmail(emails: readonly ScimEmail[] | undefined): string | undefined {
  if (emails === undefined || emails.length === 0) return undefined;
  const chosen = emails.find((e) => e.primary === true || e.primary === 'true') ?? emails[0]!;
  return chosen.value === undefined || chosen.value === null ? undefined : boundedString(chosen.value, 'emails.value');
}

export interface UserFields {
  userPrincipalName: string;
  displayName: string;
  mail: string | undefined;
  accountEnabled: boolean;
  externalId: string | undefined;
  isExchangeOnline: boolean;
}

/** The directory's fields from a SCIM User (POST and PUT: absent attributes take their defaults). */
export function userFields(input: ScimUserInput): UserFields {
  const n = input.name;
  const fromParts = [n?.givenName, n?.familyName].filter((p) => p !== undefined && p !== '').join(' ');
  return {
    userPrincipalName: input.userName,
    displayName: input.displayName ?? (n?.formatted || fromParts || input.userName),
    mail: primaryEmail(input.emails),
    accountEnabled: input.active === undefined ? true : toBoolean(input.active, 'active'),
    externalId: input.externalId,
    isExchangeOnline: input[KEYFLEET_USER_SCHEMA]?.isExchangeOnline ?? false,
  };
}

function meta(resourceType: 'User' | 'Group', created: Date, updated: Date, location: string) {
  return { resourceType, created: created.toISOString(), lastModified: updated.toISOString(), location, version: `W/"${updated.getTime()}"` };
}

export function scimUser(u: UserRecord, base: string) {
  return {
    schemas: [USER_SCHEMA, KEYFLEET_USER_SCHEMA],
    id: u.id,
    ...(u.externalId === undefined ? {} : { externalId: u.externalId }),
    userName: u.userPrincipalName,
    displayName: u.displayName,
    name: { formatted: u.displayName },
    active: u.accountEnabled,
    emails: u.mail === undefined ? [] : [{ value: u.mail, type: 'work', primary: true }],
    [KEYFLEET_USER_SCHEMA]: { isExchangeOnline: u.isExchangeOnline },
    meta: meta('User', u.createdAt, u.updatedAt, `${base}/Users/${encodeURIComponent(u.id)}`),
  };
}

export function scimGroup(g: GroupRecord, members: readonly MemberRef[], base: string) {
  return {
    schemas: [GROUP_SCHEMA],
    id: g.id,
    ...(g.externalId === undefined ? {} : { externalId: g.externalId }),
    displayName: g.displayName,
    members: members.map((m) => {
      const kind = m.type === 'user' ? 'User' : 'Group';
      return { value: m.id, type: kind, $ref: `${base}/${kind}s/${encodeURIComponent(m.id)}` };
    }),
    meta: meta('Group', g.createdAt, g.updatedAt, `${base}/Groups/${encodeURIComponent(g.id)}`),
  };
}

/** A SCIM member reference as a directory member: its `type` when given, else whichever resource has the id. */
export async function resolveMember(tenant: TenantStore, input: ScimMemberInput): Promise<MemberRef> {
  const id = boundedString(input.value, 'members.value', 128);
  const type = typeof input.type === 'string' ? input.type.toLowerCase() : undefined;
  if (type !== undefined && type !== 'user' && type !== 'group') throw invalidValue('members.type must be User or Group');
  if (type !== 'group' && (await tenant.directory.getUser(id)) !== undefined) return { type: 'user', id };
  if (type !== 'user' && (await tenant.directory.getGroup(id)) !== undefined) return { type: 'group', id };
  throw new KeyfleetError('KF_NOT_FOUND', `no ${type ?? 'user or group'} with id "${id}"`, { detail: 'invalidValue' });
}
