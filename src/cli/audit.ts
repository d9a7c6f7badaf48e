/**
 * `keyfleet audit list|verify`: the audit log over the admin API, or with
 * --data straight from the database (an operator's check that does not
 * trust the running service).
 */
import { verifyAuditChain } from '../directory/audit.ts';
import type { AuditChainResult } from '../store/audit.ts';
import { apiRequest, helpRequested, listAll, parseCommand, printResult, unknownVerb } from './admin.ts';
import { DEFAULT_TENANT, openContext } from './context.ts';

const USAGE = `Usage:
  keyfleet audit list [--resource-type T] [--resource-id ID] [--limit N] [--all] [--json]
  keyfleet audit verify [--json] [--data DIR [--tenant T]]
list and verify use KEYFLEET_URL and KEYFLEET_TOKEN; verify --data reads the database directly.
verify exits 1 when the chain is broken.`;

export async function auditCommand(argv: string[]): Promise<number> {
  if (helpRequested(argv, USAGE)) return 0;
  const [verb, ...rest] = argv;
  const { values } = parseCommand(
    rest,
    {
      json: { type: 'boolean' },
      all: { type: 'boolean' },
      limit: { type: 'string' },
      'resource-type': { type: 'string' },
      'resource-id': { type: 'string' },
      data: { type: 'string' },
      tenant: { type: 'string' },
    },
    USAGE,
  );
  const json = values.json === true;
  if (verb === 'list') {
    const query = new URLSearchParams();
    if (values['resource-type'] !== undefined) query.set('resourceType', values['resource-type']);
    if (values['resource-id'] !== undefined) query.set('resourceId', values['resource-id']);
    const rows = await listAll(`api/v1/auditEvents${query.size === 0 ? '' : `?${query}`}`, values.all === true, values.limit);
    printResult(
      json ? rows : rows.map((r) => ({ ...r, actor: (r['actor'] as { name?: string } | undefined)?.name })),
      json,
      ['id', 'activityDateTime', 'actor', 'action', 'resourceType', 'resourceId'],
    );
    return 0;
  }
  if (verb === 'verify') {
    let result: AuditChainResult;
    if (values.data !== undefined) {
      const ctx = await openContext(values.data);
      try {
        result = await verifyAuditChain(ctx.store.forTenant(values.tenant ?? DEFAULT_TENANT));
      } finally {
        await ctx.close();
      }
    } else {
      result = (await apiRequest('GET', 'api/v1/auditEvents/verification')) as AuditChainResult;
    }
    if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else if (result.ok) process.stdout.write(`audit chain intact: ${result.entries} entries, head ${result.headHash}\n`);
    else process.stdout.write(`audit chain BROKEN at entry ${result.brokenAt} (${result.reason}); ${result.entries} entries before it check out\n`);
    return result.ok ? 0 : 1;
  }
  throw unknownVerb(verb, USAGE);
}
