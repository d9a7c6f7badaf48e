/**
 * Admin API tokens and what each role may do. A token is `kf_` and 32
 * random bytes in base64url, shown once; the store keeps only its SHA-256
 * (see ApiTokenRecord.secretHash for why a plain hash suffices).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import type { AdminRole, ApiTokenRecord } from '../store/access.ts';
import type { Store, TenantStore } from '../store/store.ts';
import { recorded, type Actor } from './audit.ts';
import { tokenView } from './views.ts';

export const TOKEN_PREFIX = 'kf_';
/** kf_ and 43 base64url characters; anything else is refused before any lookup. */
const TOKEN_SHAPE = /^kf_[A-Za-z0-9_-]{43}$/;
/** lastUsed is kept to the minute: a write per request would serialise every read on SQLite. */
const LAST_USED_GRANULARITY_MS = 60_000;

/**
 * `resources:*` covers what an administrator sets up for devices (issue 4 "Resources"): apps and their
 * VPP sync, certificate profiles, S/MIME policies, derived-credential settings, assignments, imported
 * PFX certificates, and reading a user's effective state. `devices:manage` (retire, wipe, delete a device,
 * enrollment tokens) is the administrator's: the help desk is read-only, and Intune's Policy and
 * Profile Manager has no remote actions.
 */
export type Permission =
  | 'directory:read'
  | 'directory:write'
  | 'tokens:manage'
  | 'audit:read'
  | 'resources:read'
  | 'resources:write'
  | 'devices:read'
  | 'devices:manage';

/**
 * The roles, after Intune's built-in ones: the administrator does everything; the policy manager (Intune's
 * Policy and Profile Manager) reads the directory and writes policies, profiles, apps and assignments; the
 * help desk only reads.
 */
const PERMISSIONS: Record<AdminRole, ReadonlySet<Permission>> = {
  administrator: new Set(['directory:read', 'directory:write', 'tokens:manage', 'audit:read', 'resources:read', 'resources:write', 'devices:read', 'devices:manage']),
  policyManager: new Set(['directory:read', 'audit:read', 'resources:read', 'resources:write', 'devices:read']),
  helpDesk: new Set(['directory:read', 'resources:read', 'devices:read']),
};

export function allows(role: AdminRole, permission: Permission): boolean {
  return PERMISSIONS[role].has(permission);
}

export function hashToken(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** The caller behind a request. */
export interface Principal extends Actor {
  readonly tenantId: string;
  readonly role: AdminRole;
}

/**
 * The principal for a bearer token, or KF_UNAUTHENTICATED — one message for unknown, malformed and revoked
 * tokens alike, so the answer tells an attacker nothing.
 */
export async function authenticate(store: Store, secret: string | undefined, now: Date = new Date()): Promise<Principal> {
  if (secret === undefined || !TOKEN_SHAPE.test(secret)) throw unauthenticated();
  // Looked up by hash: the comparison is on the digest, so response timing says nothing about the secret.
  const found = await store.tokens.findByHash(hashToken(secret));
  if (found === undefined || found.token.revokedAt !== undefined) throw unauthenticated();
  // The store compares too, but running its UPDATE at all takes SQLite's write lock: skip the statement while
  // the use this lookup read is recent enough.
  const lastUsed = found.token.lastUsedAt?.getTime();
  if (lastUsed === undefined || now.getTime() - lastUsed > LAST_USED_GRANULARITY_MS) {
    await store.tokens.markUsed(found.tenantId, found.token.id, now, LAST_USED_GRANULARITY_MS);
  }
  return { tenantId: found.tenantId, id: found.token.id, name: found.token.name, role: found.token.role };
}

/** Made only when refusing: an error's stack trace costs more than the rest of a successful authentication. */
function unauthenticated(): KeyfleetError {
  return new KeyfleetError('KF_UNAUTHENTICATED', 'a valid API token is required (Authorization: Bearer kf_…)');
}

export interface CreatedToken {
  readonly token: ApiTokenRecord;
  /** Shown to the user once; not recoverable afterwards. */
  readonly secret: string;
}

export function newTokenRecord(name: string, role: AdminRole, now: Date): CreatedToken {
  const secret = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const token: ApiTokenRecord = {
    id: randomUUID(),
    name,
    role,
    secretHash: hashToken(secret),
    createdAt: new Date(Math.floor(now.getTime())),
    lastUsedAt: undefined,
    revokedAt: undefined,
  };
  return { token, secret };
}

export function createToken(tenant: TenantStore, actor: Actor, name: string, role: AdminRole, now: Date = new Date()): Promise<CreatedToken> {
  const created = newTokenRecord(name, role, now);
  return recorded(tenant, actor, created.token.createdAt, async (tx) => {
    await tx.access.putToken(created.token);
    return { result: created, action: 'token.create', resourceType: 'token', resourceId: created.token.id, before: null, after: tokenView(created.token) };
  });
}

export function revokeToken(tenant: TenantStore, actor: Actor, id: string, now: Date = new Date()): Promise<ApiTokenRecord> {
  const at = new Date(Math.floor(now.getTime()));
  return recorded(tenant, actor, at, async (tx) => {
    const before = await tx.access.getToken(id);
    if (before === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no token with id "${id}"`);
    if (before.revokedAt !== undefined) throw new KeyfleetError('KF_CONFLICT', `token "${id}" is already revoked`);
    await tx.access.revokeToken(id, at);
    const after = { ...before, revokedAt: at };
    return { result: after, action: 'token.revoke', resourceType: 'token', resourceId: id, before: tokenView(before), after: tokenView(after) };
  });
}

/** The local operator: `keyfleet admin …` and the first start, which act on the database directly. */
export const LOCAL_OPERATOR: Actor = { id: 'local', name: 'local operator (keyfleet command)' };

/**
 * On a first start (no token in any tenant): makes sure the tenant exists and creates its first
 * administrator token. Returns the secret to print once, or undefined when tokens already exist.
 */
export async function bootstrapFirstAdmin(store: Store, tenantId: string, tenantName: string, now: Date = new Date()): Promise<CreatedToken | undefined> {
  if (await store.tokens.anyTokens()) return undefined;
  await store.ensureTenant(tenantId, tenantName);
  return createToken(store.forTenant(tenantId), LOCAL_OPERATOR, 'first administrator', 'administrator', now);
}
