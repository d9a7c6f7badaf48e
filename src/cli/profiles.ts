/** `keyfleet profiles create-trusted-root|create-scep|create-pkcs|list|show|delete` over the admin API. */
import { basename } from 'node:path';
import { KeyfleetError } from '../errors.ts';
import { IntendedPurposes } from '../policy/index.ts';
import { loadCertificates } from '../x509/certificate.ts';
import { apiRequest, helpRequested, listAll, parseCommand, printResult, unknownVerb } from './admin.ts';
import { readBoundedFile } from './io.ts';

const USAGE = `Usage:
  keyfleet profiles create-trusted-root --cert FILE [--name NAME] [--json]   (PEM or DER CA certificate)
  keyfleet profiles create-scep --file PROFILE.json [--json]                   (Graph iosScepCertificateProfile fields, rootCertificateId)
  keyfleet profiles create-pkcs --purpose ${IntendedPurposes.join('|')} [--name NAME] [--json]
  keyfleet profiles list [--kind K] [--limit N] [--all] [--json]
  keyfleet profiles show ID [--json]
  keyfleet profiles delete ID
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

export async function profilesCommand(argv: string[]): Promise<number> {
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
    case 'delete':
      await apiRequest('DELETE', `api/v1/profiles/${id()}`);
      return 0;
    default:
      throw unknownVerb(verb, USAGE);
  }
}
