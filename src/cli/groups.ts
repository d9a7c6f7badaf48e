/** `keyfleet groups list|show|create|update|delete|members|add-member|remove-member` over the admin API. */
import { KeyfleetError } from '../errors.ts';
import { apiRequest, helpRequested, listAll, parseCommand, printResult, unknownVerb } from './admin.ts';
import { resolveUserId } from './users.ts';

const USAGE = `Usage:
  keyfleet groups list [--limit N] [--all] [--json]
  keyfleet groups show GROUP [--json]
  keyfleet groups create --name NAME [--description D] [--json]
  keyfleet groups update GROUP [--name NAME] [--description D] [--json]
  keyfleet groups delete GROUP
  keyfleet groups members GROUP [--transitive] [--all] [--json]
  keyfleet groups add-member GROUP (--user ID|UPN | --group ID)
  keyfleet groups remove-member GROUP (--user ID|UPN | --group ID)
Reaches the service at KEYFLEET_URL with the API token in KEYFLEET_TOKEN.`;

const GROUP_COLUMNS = ['id', 'displayName', 'description'] as const;

export async function groupsCommand(argv: string[]): Promise<number> {
  if (helpRequested(argv, USAGE)) return 0;
  const [verb, ...rest] = argv;
  const { values, positionals } = parseCommand(
    rest,
    {
      json: { type: 'boolean' },
      all: { type: 'boolean' },
      limit: { type: 'string' },
      name: { type: 'string' },
      description: { type: 'string' },
      transitive: { type: 'boolean' },
      user: { type: 'string' },
      group: { type: 'string' },
    },
    USAGE,
  );
  const json = values.json === true;
  const group = () => {
    const id = positionals[0];
    if (id === undefined) throw new KeyfleetError('KF_USAGE', `a group id is required\n${USAGE}`);
    return encodeURIComponent(id);
  };
  const member = async () => {
    if ((values.user === undefined) === (values.group === undefined)) throw new KeyfleetError('KF_USAGE', `give one of --user or --group\n${USAGE}`);
    return values.user !== undefined ? { type: 'user', id: await resolveUserId(values.user) } : { type: 'group', id: values.group! };
  };
  switch (verb) {
    case 'list':
      printResult(await listAll('api/v1/groups', values.all === true, values.limit), json, GROUP_COLUMNS);
      return 0;
    case 'show':
      printResult((await apiRequest('GET', `api/v1/groups/${group()}`)) as Record<string, unknown>, json, GROUP_COLUMNS);
      return 0;
    case 'create': {
      if (values.name === undefined) throw new KeyfleetError('KF_USAGE', `--name is required\n${USAGE}`);
      const body = { displayName: values.name, ...(values.description === undefined ? {} : { description: values.description }) };
      printResult((await apiRequest('POST', 'api/v1/groups', body)) as Record<string, unknown>, json, GROUP_COLUMNS);
      return 0;
    }
    case 'update': {
      const body: Record<string, unknown> = {};
      if (values.name !== undefined) body['displayName'] = values.name;
      if (values.description !== undefined) body['description'] = values.description === '' ? null : values.description;
      if (Object.keys(body).length === 0) throw new KeyfleetError('KF_USAGE', `nothing to change\n${USAGE}`);
      printResult((await apiRequest('PATCH', `api/v1/groups/${group()}`, body)) as Record<string, unknown>, json, GROUP_COLUMNS);
      return 0;
    }
    case 'delete':
      await apiRequest('DELETE', `api/v1/groups/${group()}`);
      return 0;
    case 'members': {
      const path = `api/v1/groups/${group()}/${values.transitive ? 'transitiveMembers' : 'members'}`;
      printResult(await listAll(path, values.all === true, values.limit), json, ['type', 'id']);
      return 0;
    }
    case 'add-member':
      await apiRequest('POST', `api/v1/groups/${group()}/members`, await member());
      return 0;
    case 'remove-member':
      await apiRequest('DELETE', `api/v1/groups/${group()}/members/${encodeURIComponent((await member()).id)}`);
      return 0;
    default:
      throw unknownVerb(verb, USAGE);
  }
}
