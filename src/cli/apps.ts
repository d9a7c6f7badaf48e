/** `keyfleet apps add-outlook|sync-vpp|list|show|update|delete`: mobile apps over the admin API (KEYFLEET_URL, KEYFLEET_TOKEN). */
import { KeyfleetError } from '../errors.ts';
import { OUTLOOK_IOS_BUNDLE_ID } from '../policy/index.ts';
import { apiRequest, helpRequested, listAll, parseCommand, printResult, unknownVerb } from './admin.ts';
import { patchBody } from './profiles.ts';

const USAGE = `Usage:
  keyfleet apps add-outlook [--name NAME] [--json]   Outlook for iOS from the App Store (${OUTLOOK_IOS_BUNDLE_ID})
  keyfleet apps sync-vpp [--json]                    iosVppApp apps from the Apple VPP token configured on the server
  keyfleet apps list [--limit N] [--all] [--json]
  keyfleet apps show ID [--json]
  keyfleet apps update ID (--file PATCH.json | --name NAME) [--json]   (a JSON merge patch, RFC 7396)
  keyfleet apps delete ID
Reaches the service at KEYFLEET_URL with the API token in KEYFLEET_TOKEN.`;

const COLUMNS = ['id', 'kind', 'displayName', 'bundleId'] as const;

export async function appsCommand(argv: string[]): Promise<number> {
  if (helpRequested(argv, USAGE)) return 0;
  const [verb, ...rest] = argv;
  const { values, positionals } = parseCommand(rest, { json: { type: 'boolean' }, all: { type: 'boolean' }, limit: { type: 'string' }, name: { type: 'string' }, file: { type: 'string' } }, USAGE);
  const json = values.json === true;
  const id = () => {
    if (positionals[0] === undefined) throw new KeyfleetError('KF_USAGE', `an app id is required\n${USAGE}`);
    return encodeURIComponent(positionals[0]);
  };
  switch (verb) {
    case 'add-outlook': {
      const body = {
        kind: 'iosStoreApp',
        displayName: values.name ?? 'Microsoft Outlook',
        publisher: 'Microsoft Corporation',
        bundleId: OUTLOOK_IOS_BUNDLE_ID,
        appStoreUrl: 'https://apps.apple.com/app/microsoft-outlook/id951937596',
      };
      printResult((await apiRequest('POST', 'api/v1/apps', body)) as Record<string, unknown>, json, COLUMNS);
      return 0;
    }
    case 'sync-vpp': {
      const synced = (await apiRequest('POST', 'api/v1/apps/syncVpp')) as { value: Record<string, unknown>[] };
      printResult(synced.value, json, ['id', 'change', 'displayName', 'bundleId', 'usedLicenseCount', 'totalLicenseCount']);
      return 0;
    }
    case 'list':
      printResult(await listAll('api/v1/apps', values.all === true, values.limit), json, COLUMNS);
      return 0;
    case 'update':
      printResult((await apiRequest('PATCH', `api/v1/apps/${id()}`, patchBody(values.file, { displayName: values.name }, USAGE))) as Record<string, unknown>, json, COLUMNS);
      return 0;
    case 'show':
      printResult((await apiRequest('GET', `api/v1/apps/${id()}`)) as Record<string, unknown>, json, COLUMNS);
      return 0;
    case 'delete':
      await apiRequest('DELETE', `api/v1/apps/${id()}`);
      return 0;
    default:
      throw unknownVerb(verb, USAGE);
  }
}
