/**
 * The device API's answers (src/protocol/device-api.ts), checked field by
 * field before the agent acts on them. The agent holds the user's keys; it
 * trusts its server no further than the protocol requires, so an answer of
 * the wrong shape or size is refused whole (KF_SERVICE_UNREACHABLE: a
 * server that does not speak the protocol, perhaps a proxy's error page)
 * and only the fields the protocol names are kept.
 */
import { KeyfleetError } from '../errors.ts';
import { MAX_RESULT_PAYLOAD } from '../protocol/connector-api.ts';
import type {
  AppConfigurationItem,
  DeliveryResponse,
  DesiredState,
  DeviceEvent,
  EnrollResponse,
  ImportedItem,
  ManagementState,
  NotificationItem,
  RemoveItem,
  ReportResponse,
  ScepItem,
  TrustedRootItem,
} from '../protocol/device-api.ts';

type Obj = Record<string, unknown>;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const SHA1_HEX = /^[0-9A-Fa-f]{40}$/;
const SHA256_HEX = /^[0-9A-Fa-f]{64}$/;
const ID = /^[A-Za-z0-9_.:-]{1,128}$/;
const MANAGEMENT_STATES: readonly ManagementState[] = ['managed', 'retirePending', 'retired', 'wipePending', 'wiped'];
const REMOVE_REASONS: readonly RemoveItem['reason'][] = ['unassigned', 'retired', 'wiped'];

/** A DER certificate is a few KiB; a CA certificate with long names well under 64 KiB. */
const MAX_CERTIFICATE_B64 = 96 * 1024;

class Shape extends Error {}

function fail(why: string): never {
  throw new Shape(why);
}

function object(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${what} is not an object`);
  return v as Obj;
}

function list(v: unknown, what: string, max: number): unknown[] {
  if (!Array.isArray(v) || v.length > max) fail(`${what} is not a list of at most ${max}`);
  return v;
}

function text(o: Obj, key: string, max: number, pattern?: RegExp): string {
  const v = o[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > max || (pattern !== undefined && !pattern.test(v))) fail(`${key} is missing or malformed`);
  return v;
}

/** Like text, but may be empty (setting values, plists). */
function anyText(o: Obj, key: string, max: number): string {
  const v = o[key];
  if (typeof v !== 'string' || v.length > max) fail(`${key} is missing or malformed`);
  return v;
}

function optionalText(o: Obj, key: string, max: number, pattern?: RegExp): string | undefined {
  return o[key] === undefined || o[key] === null ? undefined : text(o, key, max, pattern);
}

function date(o: Obj, key: string): string {
  const v = text(o, key, 40);
  if (Number.isNaN(Date.parse(v))) fail(`${key} is not a date`);
  return v;
}

function httpUrl(o: Obj, key: string): string {
  const v = text(o, key, 2048);
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    fail(`${key} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`${key} is not an http(s) URL`);
  return v;
}

function checked<T>(what: string, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof Shape) throw new KeyfleetError('KF_SERVICE_UNREACHABLE', `the service's ${what} is not the protocol: ${e.message}`);
    throw e;
  }
}

export function parseEnrollResponse(body: unknown): EnrollResponse {
  return checked('enrolment answer', () => {
    const o = object(body, 'the answer');
    return {
      deviceId: text(o, 'deviceId', 128, ID),
      userId: text(o, 'userId', 128),
      certificate: text(o, 'certificate', MAX_CERTIFICATE_B64, BASE64),
      caCertificates: list(o['caCertificates'], 'caCertificates', 8).map((c) => {
        if (typeof c !== 'string' || c.length === 0 || c.length > MAX_CERTIFICATE_B64 || !BASE64.test(c)) fail('a CA certificate is malformed');
        return c;
      }),
    };
  });
}

function trustedRoot(v: unknown): TrustedRootItem {
  const o = object(v, 'a trusted root');
  return { profileId: text(o, 'profileId', 128), certificate: text(o, 'certificate', MAX_CERTIFICATE_B64, BASE64), thumbprint: text(o, 'thumbprint', 40, SHA1_HEX).toUpperCase() };
}

function appConfiguration(v: unknown): AppConfigurationItem {
  const o = object(v, 'an app configuration');
  return {
    appId: text(o, 'appId', 128),
    bundleId: text(o, 'bundleId', 256),
    policyIds: list(o['policyIds'], 'policyIds', 100).map((p) => {
      if (typeof p !== 'string' || p.length === 0 || p.length > 128) fail('a policy id is malformed');
      return p;
    }),
    settings: list(o['settings'], 'settings', 1000).map((s) => {
      const x = object(s, 'a setting');
      return { appConfigKey: text(x, 'appConfigKey', 256), appConfigKeyType: text(x, 'appConfigKeyType', 64), appConfigKeyValue: anyText(x, 'appConfigKeyValue', 64 * 1024) };
    }),
    plist: anyText(o, 'plist', 1024 * 1024),
  };
}

function scepItem(v: unknown): ScepItem {
  const o = object(v, 'a SCEP item');
  if (o['purpose'] !== 'smimeSigning') fail('a SCEP item is not for smimeSigning');
  const base = {
    id: text(o, 'id', 128, ID),
    profileId: text(o, 'profileId', 128),
    purpose: 'smimeSigning' as const,
    state: text(o, 'state', 64),
  };
  const thumbprint = optionalText(o, 'thumbprint', 40, SHA1_HEX);
  const serialNumber = optionalText(o, 'serialNumber', 128, /^[0-9A-Fa-f]+$/);
  const r = o['request'] === undefined || o['request'] === null ? undefined : object(o['request'], 'a SCEP request');
  const keySize = r?.['keySize'];
  if (r !== undefined && keySize !== 2048 && keySize !== 3072 && keySize !== 4096) fail('keySize is not 2048, 3072 or 4096');
  let request: ScepItem['request'];
  if (r !== undefined) {
    const sanEmail = optionalText(r, 'sanEmail', 256);
    const sanUpn = optionalText(r, 'sanUpn', 256);
    request = {
      url: httpUrl(r, 'url'),
      challenge: text(r, 'challenge', 255),
      expiresAt: date(r, 'expiresAt'),
      subject: text(r, 'subject', 1024),
      ...(sanEmail === undefined ? {} : { sanEmail }),
      ...(sanUpn === undefined ? {} : { sanUpn }),
      keySize: keySize as number,
      keyUsage: list(r['keyUsage'], 'keyUsage', 9).map((k) => (typeof k === 'string' && k.length <= 32 ? k : fail('a key usage is malformed'))),
      caFingerprint: text(r, 'caFingerprint', 64, SHA256_HEX).toUpperCase(),
    };
  }
  return {
    ...base,
    ...(request === undefined ? {} : { request }),
    ...(thumbprint === undefined ? {} : { thumbprint: thumbprint.toUpperCase() }),
    ...(serialNumber === undefined ? {} : { serialNumber }),
  };
}

function importedItem(v: unknown): ImportedItem {
  const o = object(v, 'an imported item');
  const deliveryId = optionalText(o, 'deliveryId', 128, ID);
  const payload = optionalText(o, 'payload', Math.ceil(MAX_RESULT_PAYLOAD / 3) * 4, BASE64);
  if (payload !== undefined && deliveryId === undefined) fail('an imported item carries a payload without its deliveryId');
  return {
    id: text(o, 'id', 128, ID),
    profileId: text(o, 'profileId', 128),
    pfxId: text(o, 'pfxId', 128),
    intendedPurpose: text(o, 'intendedPurpose', 64),
    thumbprint: text(o, 'thumbprint', 40, SHA1_HEX).toUpperCase(),
    state: text(o, 'state', 64),
    ...(deliveryId === undefined ? {} : { deliveryId }),
    ...(payload === undefined ? {} : { payload }),
  };
}

function removeItem(v: unknown): RemoveItem {
  const o = object(v, 'a remove item');
  const reason = o['reason'];
  if (!REMOVE_REASONS.includes(reason as RemoveItem['reason'])) fail('a remove item has an unknown reason');
  const kind = o['kind'];
  if (kind !== 'scep' && kind !== 'imported') fail('a remove item has an unknown kind');
  return { id: text(o, 'id', 128, ID), kind, thumbprint: text(o, 'thumbprint', 40, SHA1_HEX).toUpperCase(), reason: reason as RemoveItem['reason'] };
}

export function parseDesiredState(body: unknown): DesiredState {
  return checked('check-in answer', () => {
    const o = object(body, 'the answer');
    const managementState = o['managementState'];
    if (!MANAGEMENT_STATES.includes(managementState as ManagementState)) fail('managementState is unknown');
    return {
      deviceId: text(o, 'deviceId', 128, ID),
      managementState: managementState as ManagementState,
      version: text(o, 'version', 256),
      trustedRoots: list(o['trustedRoots'], 'trustedRoots', 100).map(trustedRoot),
      appConfigurations: list(o['appConfigurations'], 'appConfigurations', 100).map(appConfiguration),
      scep: list(o['scep'], 'scep', 100).map(scepItem),
      imported: list(o['imported'], 'imported', 1000).map(importedItem),
      remove: list(o['remove'], 'remove', 1000).map(removeItem),
      policies: list(o['policies'], 'policies', 100).map((p) => {
        const x = object(p, 'a policy');
        if (typeof x['notApplicable'] !== 'boolean') fail('notApplicable is not a boolean');
        return { id: text(x, 'id', 128), displayName: anyText(x, 'displayName', 1024), notApplicable: x['notApplicable'] };
      }),
    };
  });
}

export function parseDeliveryResponse(body: unknown, maxPayloadBytes: number): DeliveryResponse {
  return checked('delivery answer', () => {
    const o = object(body, 'the answer');
    return { id: text(o, 'id', 128, ID), pfxId: text(o, 'pfxId', 128), payload: text(o, 'payload', Math.ceil(maxPayloadBytes / 3) * 4, BASE64) };
  });
}

export function parseReportResponse(body: unknown, items: number): ReportResponse {
  return checked('report answer', () => {
    const answer = object(body, 'the answer');
    const results = list(answer['results'], 'results', items);
    if (results.length !== items) fail(`it has ${results.length} results for ${items} items`);
    const etag = answer['etag'];
    if (etag !== undefined && (typeof etag !== 'string' || etag.length === 0 || etag.length > 256)) fail('etag is not an ETag');
    return {
      ...(etag === undefined ? {} : { etag }),
      results: results.map((r) => {
        const x = object(r, 'a result');
        if (x['ok'] === true) return { ok: true as const };
        if (x['ok'] !== false) fail('a result is neither ok nor refused');
        return { ok: false as const, code: text(x, 'code', 64), detail: anyText(x, 'detail', 2000) };
      }),
    };
  });
}

export function parseNotification(v: unknown): NotificationItem {
  return checked('notification', () => {
    const o = object(v, 'a notification');
    if (typeof o['read'] !== 'boolean') fail('read is not a boolean');
    return { id: text(o, 'id', 128, ID), title: anyText(o, 'title', 2000), body: anyText(o, 'body', 8000), createdDateTime: date(o, 'createdDateTime'), read: o['read'] };
  });
}

export function parseNotifications(body: unknown): NotificationItem[] {
  const value = checked('notification list', () => list(object(body, 'the answer')['value'], 'value', 1000));
  return value.map(parseNotification);
}

/** One server-sent event's data; undefined for event types this agent does not know (a newer server). */
export function parseDeviceEvent(type: string, data: string): DeviceEvent | undefined {
  if (type !== 'changed' && type !== 'notification') return undefined;
  let body: unknown;
  try {
    body = JSON.parse(data);
  } catch {
    throw new KeyfleetError('KF_SERVICE_UNREACHABLE', `the service sent a "${type}" event that is not JSON`);
  }
  return checked(`"${type}" event`, () => {
    const o = object(body, 'the event');
    if (o['type'] !== type) fail('its type does not match the event name');
    if (type === 'changed') return { type: 'changed', version: text(o, 'version', 256) };
    return { type: 'notification', notification: parseNotification(o['notification']) };
  });
}
