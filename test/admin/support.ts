/** A server with the admin API on a fresh SQLite store, and tokens of every role in two tenants. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { createToken, LOCAL_OPERATOR } from '../../src/directory/access.ts';
import { buildServer } from '../../src/http/server.ts';
import type { AdminRole } from '../../src/store/access.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';

export interface Harness {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly dir: string;
  readonly dbPath: string;
  /** Tokens of tenant "a" (every role) and an administrator of tenant "b". */
  readonly tokens: Record<AdminRole, string> & { readonly otherTenant: string };
  request(method: string, url: string, options?: { token?: string | null; body?: unknown; rawBody?: string; contentType?: string }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'keyfleet-admin-'));
  const store = await openStore({ dataDir: join(dir, 'data'), env: {} });
  await store.ensureTenant('a', 'Tenant A');
  await store.ensureTenant('b', 'Tenant B');
  const a = store.forTenant('a');
  const mk = async (role: AdminRole) => (await createToken(a, LOCAL_OPERATOR, `${role} token`, role)).secret;
  const tokens = {
    administrator: await mk('administrator'),
    policyManager: await mk('policyManager'),
    helpDesk: await mk('helpDesk'),
    otherTenant: (await createToken(store.forTenant('b'), LOCAL_OPERATOR, 'b admin', 'administrator')).secret,
  };
  const app = await buildServer({ admin: { store } });
  return {
    app,
    store,
    dir,
    dbPath: join(dir, 'data', 'keyfleet.db'),
    tokens,
    request(method, url, options = {}) {
      const token = options.token === undefined ? tokens.administrator : options.token;
      const headers: Record<string, string> = {};
      if (token !== null) headers['authorization'] = `Bearer ${token}`;
      let payload: string | undefined;
      if (options.rawBody !== undefined) payload = options.rawBody;
      else if (options.body !== undefined) payload = JSON.stringify(options.body);
      if (payload !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
      return app.inject({ method: method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) });
    },
    async close() {
      await app.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function json<T = Record<string, unknown>>(response: LightMyRequestResponse): T {
  return JSON.parse(response.body) as T;
}
