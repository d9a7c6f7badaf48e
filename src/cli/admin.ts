/**
 * `keyfleet admin token create|list|revoke`: API tokens made directly in the
 * database under --data (like the ca commands), for the first administrator
 * and for recovery. Also the plumbing the API-wrapping commands (users,
 * groups, audit) share: the client for KEYFLEET_URL/KEYFLEET_TOKEN, options
 * with positionals, and table output.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { KeyfleetError, errorCatalogue, type ErrorCode } from '../errors.ts';
import { LOCAL_OPERATOR, bootstrapFirstAdmin, createToken, revokeToken } from '../directory/access.ts';
import { tokenView } from '../directory/views.ts';
import { ADMIN_ROLES, type AdminRole } from '../store/access.ts';
import type { Store } from '../store/store.ts';
import { DEFAULT_TENANT, openContext } from './context.ts';

const USAGE = `Usage:
  keyfleet admin token create --role administrator|policyManager|helpDesk --name NAME [--tenant T] [--data DIR] [--json]
  keyfleet admin token list [--tenant T] [--data DIR] [--json]
  keyfleet admin token revoke ID [--tenant T] [--data DIR]
The secret of a new token is printed once; only its hash is stored.`;

type Options = NonNullable<ParseArgsConfig['options']>;

/** `--help` anywhere: prints the usage (the caller returns 0). */
export function helpRequested(argv: readonly string[], usage: string): boolean {
  if (!argv.includes('--help') && !argv.includes('-h')) return false;
  process.stdout.write(`${usage}\n`);
  return true;
}

/** A missing or unknown subcommand, as a one-line usage error. */
export function unknownVerb(verb: string | undefined, usage: string): KeyfleetError {
  return new KeyfleetError('KF_USAGE', verb === undefined ? `a subcommand is required\n${usage}` : `unknown subcommand "${verb}"\n${usage}`);
}

/** node:util parseArgs with positionals, usage errors as KF_USAGE. */
export function parseCommand<T extends Options>(argv: string[], options: T, usage: string) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (e) {
    throw new KeyfleetError('KF_USAGE', `${e instanceof Error ? e.message.split('\n')[0] : String(e)}\n${usage}`);
  }
}

export async function adminCommand(argv: string[]): Promise<number> {
  if (helpRequested(argv, USAGE)) return 0;
  const [noun, verb, ...rest] = argv;
  if (noun !== 'token') throw unknownVerb(noun, USAGE);
  if (verb === undefined) throw unknownVerb(undefined, USAGE);
  const { values, positionals } = parseCommand(
    rest,
    { role: { type: 'string' }, name: { type: 'string' }, tenant: { type: 'string' }, data: { type: 'string' }, json: { type: 'boolean' } },
    USAGE,
  );
  const ctx = await openContext(values.data ?? './data');
  try {
    const tenantId = values.tenant ?? DEFAULT_TENANT;
    if (verb === 'create') {
      const role = values.role;
      if (role === undefined || !(ADMIN_ROLES as readonly string[]).includes(role)) throw new KeyfleetError('KF_USAGE', `--role must be one of ${ADMIN_ROLES.join(', ')}\n${USAGE}`);
      if (values.name === undefined || values.name.length === 0 || values.name.length > 256) throw new KeyfleetError('KF_USAGE', `--name is required (1–256 characters)\n${USAGE}`);
      // A token for a new tenant id is how a second tenant comes to exist.
      await ctx.store.ensureTenant(tenantId, tenantId);
      const created = await createToken(ctx.store.forTenant(tenantId), LOCAL_OPERATOR, values.name, role as AdminRole);
      if (values.json) process.stdout.write(`${JSON.stringify({ ...tokenView(created.token), tenant: tenantId, secret: created.secret })}\n`);
      else process.stdout.write(`${created.secret}\n`);
      process.stderr.write(`keyfleet: ${role} token "${values.name}" (${created.token.id}) for tenant ${tenantId}; the secret above is shown once\n`);
      return 0;
    }
    if (verb === 'list') {
      const tokens = (await ctx.store.forTenant(tenantId).access.listTokens()).map(tokenView);
      printResult(tokens, values.json === true, ['id', 'name', 'role', 'createdDateTime', 'lastUsedDateTime', 'revokedDateTime']);
      return 0;
    }
    if (verb === 'revoke') {
      const id = positionals[0];
      if (id === undefined) throw new KeyfleetError('KF_USAGE', `token id missing\n${USAGE}`);
      await revokeToken(ctx.store.forTenant(tenantId), LOCAL_OPERATOR, id);
      return 0;
    }
    throw new KeyfleetError('KF_USAGE', `unknown subcommand "token ${verb}"\n${USAGE}`);
  } finally {
    await ctx.close();
  }
}

/**
 * For `keyfleet serve`: on the first start (no token anywhere) creates the default tenant's first
 * administrator token and prints it to stdout, once.
 */
export async function announceFirstAdmin(store: Store, write: (line: string) => void = (l) => process.stdout.write(l)): Promise<boolean> {
  const created = await bootstrapFirstAdmin(store, DEFAULT_TENANT, 'Default');
  if (created === undefined) return false;
  write(
    `keyfleet: first start: administrator API token for tenant "${DEFAULT_TENANT}" (shown once; keep it safe):\n` +
      `${created.secret}\n` +
      `keyfleet: use it as KEYFLEET_TOKEN; \`keyfleet admin token create\` makes more\n`,
  );
  return true;
}

/** Calls the admin API at KEYFLEET_URL with KEYFLEET_TOKEN; problems become coded errors. */
export async function apiRequest(method: string, path: string, body?: unknown, env: Readonly<Record<string, string | undefined>> = process.env): Promise<unknown> {
  const base = env['KEYFLEET_URL'];
  const token = env['KEYFLEET_TOKEN'];
  if (!base) throw new KeyfleetError('KF_USAGE', 'set KEYFLEET_URL to the service (e.g. http://127.0.0.1:8080)');
  if (!token) throw new KeyfleetError('KF_USAGE', 'set KEYFLEET_TOKEN to an API token (kf_…)');
  let response: Response;
  try {
    response = await fetch(new URL(path, base.endsWith('/') ? base : `${base}/`), {
      method,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(60_000),
    });
  } catch (e) {
    throw new KeyfleetError('KF_SERVICE_UNREACHABLE', `cannot reach ${base}`, { cause: e });
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch (e) {
    throw new KeyfleetError('KF_SERVICE_UNREACHABLE', `${base} answered ${response.status} with something other than JSON`, { cause: e });
  }
  if (response.ok) return parsed;
  const problem = (parsed ?? {}) as { code?: unknown; detail?: unknown };
  const code: ErrorCode = typeof problem.code === 'string' && problem.code in errorCatalogue ? (problem.code as ErrorCode) : 'KF_SERVICE_UNREACHABLE';
  throw new KeyfleetError(code, typeof problem.detail === 'string' ? problem.detail : `the service answered ${response.status}`);
}

/** A list page's items, following nextCursor when `all` is set. */
export async function listAll(path: string, all: boolean, limit: string | undefined): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  let cursor: string | undefined;
  do {
    const query = new URLSearchParams();
    if (limit !== undefined) query.set('limit', limit);
    if (cursor !== undefined) query.set('cursor', cursor);
    const sep = path.includes('?') ? '&' : '?';
    const page = (await apiRequest('GET', query.size === 0 ? path : `${path}${sep}${query}`)) as { value: Record<string, unknown>[]; nextCursor?: string };
    out.push(...page.value);
    cursor = all ? page.nextCursor : undefined;
  } while (cursor !== undefined);
  return out;
}

/** JSON (one document) with --json, else an aligned table of the columns. */
export function printResult(rows: readonly Record<string, unknown>[] | Record<string, unknown>, json: boolean, columns: readonly string[]): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  const list = Array.isArray(rows) ? rows : [rows];
  const cell = (v: unknown) => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v)).replace(/[\r\n\t]/g, ' ');
  const widths = columns.map((c) => Math.max(c.length, ...list.map((r) => cell(r[c]).length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write(`${[line([...columns]), ...list.map((r) => line(columns.map((c) => cell(r[c]))))].join('\n')}\n`);
}
