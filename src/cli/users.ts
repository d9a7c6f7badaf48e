/** `keyfleet users list|show|create|update|delete`: the admin API's users, for scripts (KEYFLEET_URL, KEYFLEET_TOKEN). */
import { KeyfleetError } from '../errors.ts';
import { apiRequest, helpRequested, listAll, parseCommand, printResult, unknownVerb } from './admin.ts';

const USAGE = `Usage:
  keyfleet users list [--upn U] [--limit N] [--all] [--json]
  keyfleet users show ID|UPN [--json]
  keyfleet users create --upn U --display-name NAME [--mail M] [--exchange-online] [--disabled] [--external-id X] [--json]
  keyfleet users update ID|UPN [--upn U] [--display-name NAME] [--mail M] [--exchange-online|--not-exchange-online] [--enable|--disable] [--json]
  keyfleet users delete ID|UPN
  keyfleet users effective-state ID|UPN [--json]   policies, profiles and apps that reach the user, conflicts
Reaches the service at KEYFLEET_URL with the API token in KEYFLEET_TOKEN.`;

export const USER_COLUMNS = ['id', 'userPrincipalName', 'displayName', 'mail', 'isExchangeOnline', 'accountEnabled'] as const;

/** A user id, or a UPN (anything with an @) looked up by the API's userPrincipalName filter. */
export async function resolveUserId(idOrUpn: string): Promise<string> {
  if (!idOrUpn.includes('@')) return idOrUpn;
  const page = (await apiRequest('GET', `api/v1/users?userPrincipalName=${encodeURIComponent(idOrUpn)}`)) as { value: { id: string }[] };
  const found = page.value[0];
  if (found === undefined) throw new KeyfleetError('KF_NOT_FOUND', `no user with userPrincipalName "${idOrUpn}"`);
  return found.id;
}

export async function usersCommand(argv: string[]): Promise<number> {
  if (helpRequested(argv, USAGE)) return 0;
  const [verb, ...rest] = argv;
  const { values, positionals } = parseCommand(
    rest,
    {
      json: { type: 'boolean' },
      all: { type: 'boolean' },
      limit: { type: 'string' },
      upn: { type: 'string' },
      'display-name': { type: 'string' },
      mail: { type: 'string' },
      'external-id': { type: 'string' },
      'exchange-online': { type: 'boolean' },
      'not-exchange-online': { type: 'boolean' },
      disabled: { type: 'boolean' },
      enable: { type: 'boolean' },
      disable: { type: 'boolean' },
    },
    USAGE,
  );
  const json = values.json === true;
  const target = async () => {
    const arg = positionals[0];
    if (arg === undefined) throw new KeyfleetError('KF_USAGE', `a user id or UPN is required\n${USAGE}`);
    return encodeURIComponent(await resolveUserId(arg));
  };
  switch (verb) {
    case 'list': {
      const path = values.upn === undefined ? 'api/v1/users' : `api/v1/users?userPrincipalName=${encodeURIComponent(values.upn)}`;
      printResult(await listAll(path, values.all === true, values.limit), json, USER_COLUMNS);
      return 0;
    }
    case 'show':
      printResult((await apiRequest('GET', `api/v1/users/${await target()}`)) as Record<string, unknown>, json, USER_COLUMNS);
      return 0;
    case 'create': {
      if (values.upn === undefined || values['display-name'] === undefined) throw new KeyfleetError('KF_USAGE', `--upn and --display-name are required\n${USAGE}`);
      const body = {
        userPrincipalName: values.upn,
        displayName: values['display-name'],
        ...(values.mail === undefined ? {} : { mail: values.mail }),
        ...(values['external-id'] === undefined ? {} : { externalId: values['external-id'] }),
        isExchangeOnline: values['exchange-online'] === true,
        accountEnabled: values.disabled !== true,
      };
      printResult((await apiRequest('POST', 'api/v1/users', body)) as Record<string, unknown>, json, USER_COLUMNS);
      return 0;
    }
    case 'update': {
      const body: Record<string, unknown> = {};
      if (values.upn !== undefined) body['userPrincipalName'] = values.upn;
      if (values['display-name'] !== undefined) body['displayName'] = values['display-name'];
      if (values.mail !== undefined) body['mail'] = values.mail === '' ? null : values.mail;
      if (values['exchange-online']) body['isExchangeOnline'] = true;
      if (values['not-exchange-online']) body['isExchangeOnline'] = false;
      if (values.enable) body['accountEnabled'] = true;
      if (values.disable) body['accountEnabled'] = false;
      if (Object.keys(body).length === 0) throw new KeyfleetError('KF_USAGE', `nothing to change\n${USAGE}`);
      printResult((await apiRequest('PATCH', `api/v1/users/${await target()}`, body)) as Record<string, unknown>, json, USER_COLUMNS);
      return 0;
    }
    case 'delete':
      await apiRequest('DELETE', `api/v1/users/${await target()}`);
      return 0;
    case 'effective-state': {
      const state = (await apiRequest('GET', `api/v1/users/${await target()}/effectiveState`)) as Record<string, unknown>;
      if (json) process.stdout.write(`${JSON.stringify(state, null, 2)}\n`);
      else printEffectiveState(state);
      return 0;
    }
    default:
      throw unknownVerb(verb, USAGE);
  }
}

/** One line per kind of thing assigned, then each conflict and warning. */
function printEffectiveState(state: Record<string, unknown>): void {
  const list = (key: string) => (Array.isArray(state[key]) ? (state[key] as unknown[]) : []);
  for (const key of ['policies', 'certificateProfiles', 'apps']) process.stdout.write(`${key}: ${list(key).join(', ') || '(none)'}\n`);
  for (const c of list('conflicts') as { appConfigKey?: string; values?: { policyId: string }[] }[]) {
    process.stdout.write(`conflict: ${c.appConfigKey ?? '?'} set differently by ${(c.values ?? []).map((v) => v.policyId).join(', ')}\n`);
  }
  for (const w of list('warnings') as { reason?: string; policyId?: string; targetId?: string }[]) {
    process.stdout.write(`warning: ${w.reason ?? '?'} (policy ${w.policyId ?? '?'}${w.targetId === undefined ? '' : `, ${w.targetId}`})\n`);
  }
}
