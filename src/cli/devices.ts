/**
 * `keyfleet devices list|show|status|retire|wipe|delete`: the admin API's
 * managed devices and their status, for scripts (KEYFLEET_URL,
 * KEYFLEET_TOKEN). `status` answers the admin's question from any side: one
 * device, one user's devices, one policy's devices, or one profile's
 * certificates.
 */
import { KeyfleetError } from '../errors.ts';
import { apiRequest, helpRequested, listAll, parseCommand, printResult, unknownVerb } from './admin.ts';
import { resolveUserId } from './users.ts';

const USAGE = `Usage:
  keyfleet devices list [--user ID|UPN] [--state managed|retirePending|retired|wipePending|wiped] [--limit N] [--all] [--json]
  keyfleet devices show ID [--json]
  keyfleet devices status ID [--json]              every assigned policy's status and every certificate on the device
  keyfleet devices status --user ID|UPN [--json]   the same for each of the user's devices
  keyfleet devices status --policy ID [--json]     each device's status for the policy, and the summary
  keyfleet devices status --profile ID [--json]    every certificate delivered through the profile
  keyfleet devices retire ID [--json]              remove company certificates and settings at its next check-in
  keyfleet devices wipe ID [--json]                erase it at its next check-in
  keyfleet devices delete ID                       forget a retired or wiped device
  keyfleet devices enrollment-token --user ID|UPN [--hours N] [--json]   a one-time token to enrol one device
Retire and wipe revoke the device's SCEP certificates at once. Reaches the service at KEYFLEET_URL with the
API token in KEYFLEET_TOKEN.`;

export const DEVICE_COLUMNS = ['id', 'userId', 'deviceName', 'operatingSystem', 'osVersion', 'managementState', 'lastSyncDateTime'] as const;
const POLICY_STATUS_COLUMNS = ['deviceId', 'policyId', 'status', 'detail', 'lastReportedDateTime'] as const;
const CERTIFICATE_COLUMNS = ['deviceId', 'certificateProfileId', 'source', 'certificateIssuanceState', 'certificateThumbprint', 'certificateSerialNumber', 'certificateExpirationDateTime'] as const;

interface DeviceStatusView {
  device: Record<string, unknown> & { id: string };
  policyStatuses: Record<string, unknown>[];
  managedDeviceCertificateStates: Record<string, unknown>[];
}

export async function devicesCommand(argv: string[]): Promise<number> {
  if (helpRequested(argv, USAGE)) return 0;
  const [verb, ...rest] = argv;
  const { values, positionals } = parseCommand(
    rest,
    {
      json: { type: 'boolean' },
      all: { type: 'boolean' },
      limit: { type: 'string' },
      user: { type: 'string' },
      state: { type: 'string' },
      policy: { type: 'string' },
      profile: { type: 'string' },
      hours: { type: 'string' },
    },
    USAGE,
  );
  const json = values.json === true;
  const id = (): string => {
    const arg = positionals[0];
    if (arg === undefined) throw new KeyfleetError('KF_USAGE', `a device id is required\n${USAGE}`);
    return encodeURIComponent(arg);
  };
  switch (verb) {
    case 'list': {
      const query = new URLSearchParams();
      if (values.user !== undefined) query.set('userId', await resolveUserId(values.user));
      if (values.state !== undefined) query.set('managementState', values.state);
      const q = query.size === 0 ? '' : `?${query}`;
      printResult(await listAll(`api/v1/managedDevices${q}`, values.all === true, values.limit), json, DEVICE_COLUMNS);
      return 0;
    }
    case 'show':
      printResult((await apiRequest('GET', `api/v1/managedDevices/${id()}`)) as Record<string, unknown>, json, DEVICE_COLUMNS);
      return 0;
    case 'retire':
    case 'wipe':
      printResult((await apiRequest('POST', `api/v1/managedDevices/${id()}/${verb}`)) as Record<string, unknown>, json, DEVICE_COLUMNS);
      return 0;
    case 'delete':
      await apiRequest('DELETE', `api/v1/managedDevices/${id()}`);
      return 0;
    case 'status':
      await status(values, positionals[0], json);
      return 0;
    case 'enrollment-token': {
      if (values.user === undefined) throw new KeyfleetError('KF_USAGE', `--user is required\n${USAGE}`);
      const hours = values.hours === undefined ? undefined : Number(values.hours);
      if (hours !== undefined && (!Number.isInteger(hours) || hours < 1 || hours > 720)) throw new KeyfleetError('KF_USAGE', `--hours must be 1–720\n${USAGE}`);
      const created = (await apiRequest('POST', `api/v1/users/${encodeURIComponent(await resolveUserId(values.user))}/enrollmentTokens`, hours === undefined ? {} : { validityHours: hours })) as { token: string; expiresDateTime: string };
      if (json) process.stdout.write(`${JSON.stringify(created)}\n`);
      else process.stdout.write(`${created.token}\n`);
      process.stderr.write(`keyfleet: enrollment token valid until ${created.expiresDateTime}; it is shown once and enrols one device\n`);
      return 0;
    }
    default:
      throw unknownVerb(verb, USAGE);
  }
}

async function status(values: { user?: string | undefined; policy?: string | undefined; profile?: string | undefined }, deviceId: string | undefined, json: boolean): Promise<void> {
  const chosen = [deviceId, values.user, values.policy, values.profile].filter((v) => v !== undefined);
  if (chosen.length !== 1) throw new KeyfleetError('KF_USAGE', `status takes one of: a device id, --user, --policy, --profile\n${USAGE}`);
  if (values.policy !== undefined) {
    const p = encodeURIComponent(values.policy);
    const statuses = await listAll(`api/v1/policies/${p}/deviceStatuses`, true, undefined);
    const summary = (await apiRequest('GET', `api/v1/policies/${p}/deviceStatusSummary`)) as Record<string, number>;
    if (json) {
      process.stdout.write(`${JSON.stringify({ deviceStatuses: statuses, summary })}\n`);
      return;
    }
    printResult(statuses.map((s) => ({ ...s, policyId: values.policy })), false, POLICY_STATUS_COLUMNS);
    const counts = Object.entries(summary).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
    process.stdout.write(`${counts.length === 0 ? 'no device has reported' : counts.join(', ')}\n`);
    return;
  }
  if (values.profile !== undefined) {
    printResult(await listAll(`api/v1/profiles/${encodeURIComponent(values.profile)}/certificateStates`, true, undefined), json, CERTIFICATE_COLUMNS);
    return;
  }
  const ids =
    deviceId !== undefined
      ? [deviceId]
      : (await listAll(`api/v1/managedDevices?userId=${encodeURIComponent(await resolveUserId(values.user!))}`, true, undefined)).map((d) => String(d['id']));
  const views: DeviceStatusView[] = [];
  for (const d of ids) views.push((await apiRequest('GET', `api/v1/managedDevices/${encodeURIComponent(d)}/status`)) as DeviceStatusView);
  if (json) {
    process.stdout.write(`${JSON.stringify(deviceId !== undefined ? views[0] : views)}\n`);
    return;
  }
  for (const v of views) {
    process.stdout.write(`device ${v.device.id} (${String(v.device['deviceName'])}, ${String(v.device['managementState'])})\n`);
    printResult(v.policyStatuses.map((s) => ({ ...s, deviceId: v.device.id })), false, POLICY_STATUS_COLUMNS);
    printResult(v.managedDeviceCertificateStates, false, CERTIFICATE_COLUMNS);
  }
}
