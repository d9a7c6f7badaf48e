/**
 * Bearer-token authentication for the admin API and SCIM. Each route names
 * the permission it needs; the hook runs before the body is read, so an
 * unauthenticated or forbidden request costs no parsing. Tenant isolation is
 * not checked here: handlers reach storage only through the principal's
 * TenantStore, which cannot see another tenant's rows (→ 404).
 */
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import { KeyfleetError } from '../../errors.ts';
import { allows, authenticate, type Permission, type Principal } from '../../directory/access.ts';
import type { Store } from '../../store/store.ts';

const principals = new WeakMap<FastifyRequest, Principal>();

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** An onRequest hook: authenticates, then checks the role's permission (KF_UNAUTHENTICATED / KF_FORBIDDEN). */
export function requirePermission(store: Store, permission: Permission, clock: () => Date): onRequestHookHandler {
  return async (request: FastifyRequest, _reply: FastifyReply) => {
    const principal = await authenticate(store, bearerToken(request), clock());
    if (!allows(principal.role, permission)) {
      throw new KeyfleetError('KF_FORBIDDEN', `the ${principal.role} role may not do this (${permission})`);
    }
    principals.set(request, principal);
  };
}

/** The principal the route's hook authenticated. */
export function principalOf(request: FastifyRequest): Principal {
  const p = principals.get(request);
  if (p === undefined) throw new Error('route registered without requirePermission');
  return p;
}
