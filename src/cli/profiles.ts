/**
 * `keyfleet profiles create-trusted-root|create-scep|create-pkcs|list|show|update|delete`, and
 * `keyfleet profiles derived-credential …` for the tenant's derived-credential issuer, over the admin API.
 */
import { basename } from 'node:path';
import { KeyfleetError } from '../errors.ts';
import { DerivedCredentialIssuers, DerivedCredentialNotificationTypes, IntendedPurposes } from '../policy/index.ts';
import { loadCertificates } from '../x509/certificate.ts';
import { apiRequest, helpRequested, listAll, parseCommand, printResult, unknownVerb } from './admin.ts';
import { readBoundedFile } from './io.ts';

const USAGE = `Usage:
  keyfleet profiles create-trusted-root --cert FILE [--name NAME] [--json]   (PEM or DER CA certificate)
  keyfleet profiles create-scep --file PROFILE.json [--json]                   (Graph iosScepCertificateProfile fields, rootCertificateId)
  keyfleet profiles create-pkcs --purpose ${IntendedPurposes.join('|')} [--name NAME] [--json]
  keyfleet profiles list [--kind K] [--limit N] [--all] [--json]
  keyfleet profiles show ID [--json]
  keyfleet profiles update ID (--file PATCH.json | --name NAME) [--json]     (a JSON merge patch, RFC 7396: null removes a field)
  keyfleet profiles delete ID
  keyfleet profiles derived-credential …                                      the tenant's derived-credential issuer (--help)
Reaches the service at KEYFLEET_URL with the API token in KEYFLEET_TOKEN.`;

const DERIVED_USAGE = `Usage:
  keyfleet profiles derived-credential create --issuer ${DerivedCredentialIssuers.join('|')} [--name NAME] [--help-url URL]
      [--notification ${DerivedCredentialNotificationTypes.join('|')}[,…]] [--renewal-threshold PERCENT] [--json]
  keyfleet profiles derived-credential list [--json]
  keyfleet profiles derived-credential show ID [--json]
  keyfleet profiles derived-credential update ID (--file PATCH.json | --name NAME | --issuer I | --help-url URL | --notification N | --renewal-threshold P) [--json]
  keyfleet profiles derived-credential delete ID          (refused while a policy chooses derived credentials)
A tenant has one derived-credential issuer at a time (Graph deviceManagementDerivedCredentialSettings).
Reaches the service at KEYFLEET_URL with the API token in KEYFLEET_TOKEN.`;

const COLUMNS = ['id', 'kind', 'displayName'] as const;
/** A JSON profile or policy file is a few KiB. */
export const MAX_JSON_FILE_BYTES = 64 * 1024;

/** A JSON document from a file, as a usage error when it is not JSON. */
export function readJsonFile(path: string): unknown {
  const text = readBoundedFile(path, MAX_JSON_FILE_BYTES, 'JSON file').toString('utf8');
  try {
    return JSON.parse(text);
  } catch {
    throw new KeyfleetError('KF_USAGE', `"${path}" is not valid JSON`);
  }
}

/** A JSON merge patch from --file, with --name as displayName on top; a usage error when neither is given. */
export function patchBody(file: string | undefined, fields: Record<string, unknown>, usage: string): Record<string, unknown> {
  const given = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  const fromFile = file === undefined ? {} : readJsonFile(file);
  if (typeof fromFile !== 'object' || fromFile === null || Array.isArray(fromFile)) throw new KeyfleetError('KF_USAGE', `"${file}" must hold a JSON object (a merge patch)`);
  const patch = { ...fromFile, ...given };
  if (Object.keys(patch).length === 0) throw new KeyfleetError('KF_USAGE', `nothing to change: give --file or a field option\n${usage}`);
  return patch;
}

export async function profilesCommand(argv: string[]): Promise<number> {
  if (argv[0] === 'derived-credential') return derivedCredentialCommand(argv.slice(1));
  if (helpRequested(argv, USAGE)) return 0;
  const [verb, ...rest] = argv;
  const { values, positionals } = parseCommand(
    rest,
    { json: { type: 'boolean' }, all: { type: 'boolean' }, limit: { type: 'string' }, name: { type: 'string' }, cert: { type: 'string' }, file: { type: 'string' }, purpose: { type: 'string' }, kind: { type: 'string' } },
    USAGE,
  );
  const json = values.json === true;
  const id = () => {
    if (positionals[0] === undefined) throw new KeyfleetError('KF_USAGE', `a profile id is required\n${USAGE}`);
    return encodeURIComponent(positionals[0]);
  };
  const post = async (body: unknown) => printResult((await apiRequest('POST', 'api/v1/profiles', body)) as Record<string, unknown>, json, COLUMNS);
  switch (verb) {
    case 'create-trusted-root': {
      if (values.cert === undefined) throw new KeyfleetError('KF_USAGE', `--cert is required\n${USAGE}`);
      const certs = loadCertificates(readBoundedFile(values.cert, 1024 * 1024, 'certificate'));
      if (certs.length !== 1) throw new KeyfleetError('KF_USAGE', `"${values.cert}" must hold exactly one certificate, not ${certs.length}`);
      await post({
        kind: 'iosTrustedRootCertificate',
        displayName: values.name ?? basename(values.cert),
        certFileName: basename(values.cert).replace(/\.(pem|crt)$/i, '.cer'),
        trustedRootCertificate: Buffer.from(certs[0]!.der).toString('base64'),
      });
      return 0;
    }
    case 'create-scep': {
      if (values.file === undefined) throw new KeyfleetError('KF_USAGE', `--file is required\n${USAGE}`);
      const body = readJsonFile(values.file);
      await post(typeof body === 'object' && body !== null && !Array.isArray(body) ? { kind: 'iosScepCertificateProfile', ...body } : body);
      return 0;
    }
    case 'create-pkcs': {
      const purpose = values.purpose;
      if (purpose === undefined || !(IntendedPurposes as readonly string[]).includes(purpose)) throw new KeyfleetError('KF_USAGE', `--purpose must be one of ${IntendedPurposes.join(', ')}\n${USAGE}`);
      await post({ kind: 'iosImportedPfxCertificateProfile', displayName: values.name ?? `Imported certificates (${purpose})`, intendedPurpose: purpose });
      return 0;
    }
    case 'list': {
      const path = values.kind === undefined ? 'api/v1/profiles' : `api/v1/profiles?kind=${encodeURIComponent(values.kind)}`;
      printResult(await listAll(path, values.all === true, values.limit), json, COLUMNS);
      return 0;
    }
    case 'show':
      printResult((await apiRequest('GET', `api/v1/profiles/${id()}`)) as Record<string, unknown>, json, COLUMNS);
      return 0;
    case 'update':
      printResult((await apiRequest('PATCH', `api/v1/profiles/${id()}`, patchBody(values.file, { displayName: values.name }, USAGE))) as Record<string, unknown>, json, COLUMNS);
      return 0;
    case 'delete':
      await apiRequest('DELETE', `api/v1/profiles/${id()}`);
      return 0;
    default:
      throw unknownVerb(verb, USAGE);
  }
}

const DERIVED_COLUMNS = ['id', 'displayName', 'issuer', 'notificationType', 'renewalThresholdPercentage', 'helpUrl'] as const;

async function derivedCredentialCommand(argv: string[]): Promise<number> {
  if (helpRequested(argv, DERIVED_USAGE)) return 0;
  const [verb, ...rest] = argv;
  const { values, positionals } = parseCommand(
    rest,
    {
      json: { type: 'boolean' },
      file: { type: 'string' },
      name: { type: 'string' },
      issuer: { type: 'string' },
      'help-url': { type: 'string' },
      notification: { type: 'string' },
      'renewal-threshold': { type: 'string' },
    },
    DERIVED_USAGE,
  );
  const json = values.json === true;
  const id = () => {
    if (positionals[0] === undefined) throw new KeyfleetError('KF_USAGE', `a derived-credential setting id is required\n${DERIVED_USAGE}`);
    return encodeURIComponent(positionals[0]);
  };
  // The service checks the values; here only their shape on the command line.
  const threshold = values['renewal-threshold'];
  if (threshold !== undefined && !/^[0-9]{1,2}$/.test(threshold)) throw new KeyfleetError('KF_USAGE', `--renewal-threshold must be a percentage (1–99)\n${DERIVED_USAGE}`);
  const fields = {
    displayName: values.name,
    issuer: values.issuer,
    helpUrl: values['help-url'],
    notificationType: values.notification?.split(','),
    renewalThresholdPercentage: threshold === undefined ? undefined : Number(threshold),
  };
  const print = (r: unknown) => printResult(r as Record<string, unknown>, json, DERIVED_COLUMNS);
  switch (verb) {
    case 'create': {
      if (values.issuer === undefined) throw new KeyfleetError('KF_USAGE', `--issuer is required\n${DERIVED_USAGE}`);
      const body = Object.fromEntries(Object.entries({ ...fields, displayName: values.name ?? `Derived credentials (${values.issuer})` }).filter(([, v]) => v !== undefined));
      print(await apiRequest('POST', 'api/v1/derivedCredentials', body));
      return 0;
    }
    case 'list':
      print(await listAll('api/v1/derivedCredentials', true, undefined));
      return 0;
    case 'show':
      print(await apiRequest('GET', `api/v1/derivedCredentials/${id()}`));
      return 0;
    case 'update':
      print(await apiRequest('PATCH', `api/v1/derivedCredentials/${id()}`, patchBody(values.file, fields, DERIVED_USAGE)));
      return 0;
    case 'delete':
      await apiRequest('DELETE', `api/v1/derivedCredentials/${id()}`);
      return 0;
    default:
      throw unknownVerb(verb, DERIVED_USAGE);
  }
}
