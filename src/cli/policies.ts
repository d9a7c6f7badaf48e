/** `keyfleet policies create|update|settings|list|show|delete`: the S/MIME app configuration policy over the admin API. */
import { KeyfleetError } from '../errors.ts';
import { apiRequest, helpRequested, listAll, parseCommand, printResult, unknownVerb } from './admin.ts';
import { patchBody, readJsonFile } from './profiles.ts';

const USAGE = `Usage:
  keyfleet policies create --file POLICY.json [--json]    (the seed's steps 2–12 as JSON; see /openapi.json)
  keyfleet policies update ID (--file PATCH.json | --name NAME) [--json]   (a JSON merge patch, RFC 7396; validated again as a whole)
  keyfleet policies settings ID [--plist] [--json]        Outlook's managed app configuration (key/values, or the plist)
  keyfleet policies list [--limit N] [--all] [--json]
  keyfleet policies show ID [--json]
  keyfleet policies delete ID
Reaches the service at KEYFLEET_URL with the API token in KEYFLEET_TOKEN.`;

const COLUMNS = ['id', 'displayName', 'platform', 'enableSmime', 'deploySmimeCertificates'] as const;

export async function policiesCommand(argv: string[]): Promise<number> {
  if (helpRequested(argv, USAGE)) return 0;
  const [verb, ...rest] = argv;
  const { values, positionals } = parseCommand(
    rest,
    { json: { type: 'boolean' }, all: { type: 'boolean' }, limit: { type: 'string' }, file: { type: 'string' }, name: { type: 'string' }, plist: { type: 'boolean' } },
    USAGE,
  );
  const json = values.json === true;
  const id = () => {
    if (positionals[0] === undefined) throw new KeyfleetError('KF_USAGE', `a policy id is required\n${USAGE}`);
    return encodeURIComponent(positionals[0]);
  };
  switch (verb) {
    case 'create':
      if (values.file === undefined) throw new KeyfleetError('KF_USAGE', `--file is required\n${USAGE}`);
      printResult((await apiRequest('POST', 'api/v1/policies', readJsonFile(values.file))) as Record<string, unknown>, json, COLUMNS);
      return 0;
    case 'update':
      printResult((await apiRequest('PATCH', `api/v1/policies/${id()}`, patchBody(values.file, { displayName: values.name }, USAGE))) as Record<string, unknown>, json, COLUMNS);
      return 0;
    case 'settings': {
      const compiled = (await apiRequest('GET', `api/v1/policies/${id()}/settings`)) as { settings: Record<string, unknown>[]; plist: string };
      if (values.plist) process.stdout.write(compiled.plist);
      else if (json) printResult(compiled as unknown as Record<string, unknown>, true, []);
      else printResult(compiled.settings, false, ['appConfigKey', 'appConfigKeyType', 'appConfigKeyValue']);
      return 0;
    }
    case 'list':
      printResult(await listAll('api/v1/policies', values.all === true, values.limit), json, COLUMNS);
      return 0;
    case 'show':
      printResult((await apiRequest('GET', `api/v1/policies/${id()}`)) as Record<string, unknown>, json, COLUMNS);
      return 0;
    case 'delete':
      await apiRequest('DELETE', `api/v1/policies/${id()}`);
      return 0;
    default:
      throw unknownVerb(verb, USAGE);
  }
}
