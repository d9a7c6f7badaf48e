/**
 * SCIM PATCH (RFC 7644 §3.5.2): add, remove and replace operations, with or
 * without a path, on the attributes the directory keeps. Operation names are
 * case-insensitive (Entra ID sends "Replace"); paths to attributes we do not
 * keep (name.givenName, title…) are accepted and ignored, like those
 * attributes in POST and PUT. All operations of one request apply in one
 * transaction: one bad operation and none of them remain.
 */
import { KeyfleetError, isKeyfleetError } from '../../../errors.ts';
import type { Directory, GroupChanges, UserChanges } from '../../../directory/directory.ts';
import type { TenantStore } from '../../../store/store.ts';
import { KEYFLEET_USER_SCHEMA, boundedString, invalidValue, primaryEmail, resolveMember, toBoolean, type ScimEmail, type ScimMemberInput } from './resources.ts';

export interface PatchOperation {
  op: string;
  path?: string;
  value?: unknown;
}

const CORE_PREFIX = /^urn:ietf:params:scim:schemas:core:2\.0:(user|group):/i;
const EXT = KEYFLEET_USER_SCHEMA.toLowerCase();

function normalisePath(path: string | undefined): string | undefined {
  return path === undefined ? undefined : path.trim().replace(CORE_PREFIX, '').toLowerCase();
}

function noTarget(message: string): KeyfleetError {
  return new KeyfleetError('KF_USAGE', message, { detail: 'noTarget' });
}

/** The user's changes from the operations (applied in order). */
export function userChanges(operations: readonly PatchOperation[]): UserChanges {
  const changes: { -readonly [K in keyof UserChanges]: UserChanges[K] } = {};
  const set = (path: string, value: unknown) => {
    if (path === 'username') changes.userPrincipalName = checkUpn(value);
    else if (path === 'displayname' || path === 'name.formatted') changes.displayName = boundedString(value, 'displayName');
    else if (path === 'active') changes.accountEnabled = toBoolean(value, 'active');
    else if (path === 'externalid') changes.externalId = boundedString(value, 'externalId');
    else if (path === 'emails') changes.mail = primaryEmail(asArray<ScimEmail>(value, 'emails')) ?? null;
    else if (/^emails(\[.*\])?\.value$/.test(path)) changes.mail = boundedString(value, 'emails.value');
    else if (path === `${EXT}:isexchangeonline`) changes.isExchangeOnline = toBoolean(value, 'isExchangeOnline');
    else if (path === EXT && isObject(value) && value['isExchangeOnline'] !== undefined) changes.isExchangeOnline = toBoolean(value['isExchangeOnline'], 'isExchangeOnline');
    // Anything else is an attribute we do not keep.
  };
  for (const operation of operations) {
    const op = operation.op.toLowerCase();
    const path = normalisePath(operation.path);
    if (op === 'remove') {
      if (path === undefined) throw noTarget('remove needs a path');
      if (path === 'externalid') changes.externalId = null;
      else if (path === 'emails' || path.startsWith('emails[') || path === 'emails.value') changes.mail = null;
      else if (path === 'username' || path === 'displayname' || path === 'active') throw new KeyfleetError('KF_USAGE', `${operation.path} cannot be removed`, { detail: 'mutability' });
      continue;
    }
    if (path !== undefined) {
      set(path, operation.value);
      continue;
    }
    if (!isObject(operation.value)) throw invalidValue(`${operation.op} without a path needs an object value`);
    for (const [key, value] of Object.entries(operation.value)) {
      const k = normalisePath(key)!;
      if (k === 'name' && isObject(value) && value['formatted'] !== undefined) set('name.formatted', value['formatted']);
      else set(k, value);
    }
  }
  return changes;
}

/** Applies the operations to a group through `directory` (bound to the request's transaction). */
export async function applyGroupPatch(directory: Directory, tenant: TenantStore, groupId: string, operations: readonly PatchOperation[]): Promise<void> {
  const changes: { -readonly [K in keyof GroupChanges]: GroupChanges[K] } = {};
  const members = async (value: unknown) => Promise.all(asArray<ScimMemberInput>(value, 'members').map((m) => resolveMember(tenant, m)));
  const set = async (op: string, path: string, value: unknown) => {
    if (path === 'displayname') changes.displayName = boundedString(value, 'displayName');
    else if (path === 'externalid') changes.externalId = boundedString(value, 'externalId');
    else if (path === 'members') {
      const refs = await members(value);
      if (op === 'replace') await directory.replaceMembers(groupId, refs);
      else for (const m of refs) await directory.addMember(groupId, m);
    }
  };
  for (const operation of operations) {
    const op = operation.op.toLowerCase();
    const path = normalisePath(operation.path);
    if (op === 'remove') {
      if (path === undefined) throw noTarget('remove needs a path');
      const filtered = /^members\[\s*value\s+eq\s+("(?:[^"\\]|\\.)*")\s*\]$/.exec(path === undefined ? '' : operation.path!.trim().replace(CORE_PREFIX, ''));
      if (filtered !== null) {
        await removeQuietly(directory, groupId, JSON.parse(filtered[1]!) as string);
      } else if (path === 'members') {
        // With a value: remove those members (Entra ID's form); without: remove them all (RFC 7644 §3.5.2.2).
        if (operation.value === undefined) await directory.replaceMembers(groupId, []);
        else for (const m of asArray<ScimMemberInput>(operation.value, 'members')) await removeQuietly(directory, groupId, boundedString(m.value, 'members.value', 128));
      } else if (path === 'externalid') changes.externalId = null;
      else if (path === 'displayname') throw new KeyfleetError('KF_USAGE', 'displayName cannot be removed', { detail: 'mutability' });
      else throw new KeyfleetError('KF_USAGE', `unsupported path "${operation.path}"`, { detail: 'invalidPath' });
      continue;
    }
    if (path !== undefined) {
      await set(op, path, operation.value);
      continue;
    }
    if (!isObject(operation.value)) throw invalidValue(`${operation.op} without a path needs an object value`);
    for (const [key, value] of Object.entries(operation.value)) await set(op, normalisePath(key)!, value);
  }
  if (Object.keys(changes).length > 0) await directory.updateGroup(groupId, changes);
}

/** Removing a member that is not one is not an error in SCIM: the end state is what was asked for. */
async function removeQuietly(directory: Directory, groupId: string, memberId: string): Promise<void> {
  try {
    await directory.removeMemberById(groupId, memberId);
  } catch (e) {
    if (!isKeyfleetError(e, 'KF_NOT_FOUND')) throw e;
  }
}

function checkUpn(value: unknown): string {
  const upn = boundedString(value, 'userName');
  if (!/^[^@\s]+@[^@\s]+$/.test(upn)) throw invalidValue('userName must look like user@domain');
  return upn;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function asArray<T>(value: unknown, attribute: string): T[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length > 10_000 || !list.every(isObject)) throw invalidValue(`${attribute} must be a list of objects`);
  return list as T[];
}
