/** What admin routes share: the store, the clock, and the directory of the caller's tenant. */
import type { FastifyRequest } from 'fastify';
// Brings in @fastify/swagger's additions to route schemas (tags, summary, security).
import type {} from '@fastify/swagger';
import type { EvaluateDevice } from '../../delivery/devices.ts';
import type { EvaluatorCache } from '../../delivery/evaluator-cache.ts';
import { policySummary } from '../../delivery/evaluator.ts';
import { Directory } from '../../directory/directory.ts';
import type { Permission } from '../../directory/access.ts';
import type { Store, TenantStore } from '../../store/store.ts';
import { principalOf, requirePermission } from './auth.ts';

export interface AdminContext {
  readonly store: Store;
  readonly clock: () => Date;
  /** Each tenant's evaluator, rebuilt after audited changes (src/delivery/evaluator-cache.ts). */
  readonly evaluators: EvaluatorCache;
  /** What a device should have, for its status view. */
  readonly evaluateDevice: EvaluateDevice;
}

/** The device status view's evaluation, from the cached evaluator of its tenant. */
export function deviceEvaluation(evaluators: EvaluatorCache): EvaluateDevice {
  return async (tenant, device) => policySummary((await evaluators.forTenant(tenant)).evaluateDevice(device));
}

export function tenantOf(ctx: AdminContext, request: FastifyRequest): TenantStore {
  return ctx.store.forTenant(principalOf(request).tenantId);
}

export function directoryOf(ctx: AdminContext, request: FastifyRequest): Directory {
  const principal = principalOf(request);
  return new Directory(ctx.store.forTenant(principal.tenantId), principal, { clock: ctx.clock });
}

export function guard(ctx: AdminContext, permission: Permission) {
  return requirePermission(ctx.store, permission, ctx.clock);
}

/** `?limit` arrives as digits (the schema checked); the store checks the range. */
export function pageOptions(query: { cursor?: string; limit?: string }): { cursor?: string; limit?: number } {
  return {
    ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
    ...(query.limit === undefined ? {} : { limit: Number(query.limit) }),
  };
}

/** The admin API's JSON bodies are small; 64 KiB leaves room and bounds what a request can make us parse. */
export const ADMIN_BODY_LIMIT = 64 * 1024;

export const bearer = [{ bearerAuth: [] }];
