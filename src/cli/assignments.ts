/** `keyfleet assignments add|show`: include and exclude groups of a policy, profile or app, over the admin API. */
import { KeyfleetError } from '../errors.ts';
import { apiRequest, helpRequested, parseCommand, printResult, unknownVerb } from './admin.ts';
import { many } from './io.ts';

const USAGE = `Usage:
  keyfleet assignments add (--policy ID | --profile ID | --app ID) --include GROUP [--include GROUP…] [--exclude GROUP…] [--json]
  keyfleet assignments show (--policy ID | --profile ID | --app ID) [--json]
GROUP is a group id, or allUsers / allDevices. \`add\` sets the assignments (it replaces the previous ones).
Reaches the service at KEYFLEET_URL with the API token in KEYFLEET_TOKEN.`;

export async function assignmentsCommand(argv: string[]): Promise<number> {
  if (helpRequested(argv, USAGE)) return 0;
  const [verb, ...rest] = argv;
  const { values } = parseCommand(
    rest,
    {
      json: { type: 'boolean' },
      policy: { type: 'string' },
      profile: { type: 'string' },
      app: { type: 'string' },
      include: { type: 'string', multiple: true },
      exclude: { type: 'string', multiple: true },
    },
    USAGE,
  );
  const targets = [
    ['policies', values.policy],
    ['profiles', values.profile],
    ['apps', values.app],
  ].filter((t): t is [string, string] => t[1] !== undefined);
  if (verb !== 'add' && verb !== 'show') throw unknownVerb(verb, USAGE);
  if (targets.length !== 1) throw new KeyfleetError('KF_USAGE', `give one of --policy, --profile or --app\n${USAGE}`);
  const [collection, id] = targets[0]!;
  const path = `api/v1/${collection}/${encodeURIComponent(id)}/assignments`;
  const print = (a: { include: string[]; exclude: string[] }) => {
    if (values.json) printResult(a as unknown as Record<string, unknown>, true, []);
    else printResult([...a.include.map((g) => ({ intent: 'include', groupId: g })), ...a.exclude.map((g) => ({ intent: 'exclude', groupId: g }))], false, ['intent', 'groupId']);
  };
  if (verb === 'show') {
    print((await apiRequest('GET', path)) as { include: string[]; exclude: string[] });
    return 0;
  }
  const include = many(values.include);
  if (include.length === 0) throw new KeyfleetError('KF_USAGE', `--include is required\n${USAGE}`);
  print((await apiRequest('POST', path, { include, exclude: many(values.exclude) })) as { include: string[]; exclude: string[] });
  return 0;
}
