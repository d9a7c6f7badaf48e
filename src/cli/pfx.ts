/**
 * `keyfleet pfx import|list|delete`: imported PFX certificates with Intune's
 * custody model. `import` opens each PFX locally to read its metadata,
 * encrypts its password with RSA-OAEP to the connector's public key
 * (src/policy/pfx-import.ts) and uploads the still-locked PFX and the
 * encrypted password; neither the password nor a way to open the PFX
 * leaves this machine. `import --manifest` uploads the files in batches
 * (POST …/import, one transaction each) and still reports on each file.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import { PFX_BATCH_MAX } from '../http/admin/resources-service.ts';
import { type IntendedPurpose, IntendedPurposes, type PaddingScheme, PaddingSchemes, type UserPfxCertificateUpload, preparePfxImport } from '../policy/index.ts';
import { MAX_PFX_BYTES, readPfxMetadata } from '../pkcs12/pfx-metadata.ts';
import { apiRequest, helpRequested, listAll, parseCommand, printResult, unknownVerb } from './admin.ts';
import { readBoundedFile } from './io.ts';

const USAGE = `Usage:
  keyfleet pfx import --connector-key PUB.pem --user UPN --purpose PURPOSE --password-file F [--key-name N] [--padding P] [--json] FILE.pfx
  keyfleet pfx import --connector-key PUB.pem --manifest LIST.csv [--key-name N] [--padding P] [--json]
  keyfleet pfx list [--user UPN] [--limit N] [--all] [--json]
  keyfleet pfx show ID [--json]
  keyfleet pfx delete ID
PURPOSE: ${IntendedPurposes.join(', ')}. P: ${PaddingSchemes.join(', ')} (default oaepSha512).
The manifest has one line per PFX: path,upn,password-file,purpose (paths relative to the manifest; a header line is allowed);
its files are uploaded up to ${PFX_BATCH_MAX} at a time, and each file's result is reported.
Reaches the service at KEYFLEET_URL with the API token in KEYFLEET_TOKEN.`;

const COLUMNS = ['id', 'userPrincipalName', 'thumbprint', 'intendedPurpose', 'expirationDateTime', 'paddingScheme'] as const;

interface ImportJob {
  readonly path: string;
  readonly userPrincipalName: string;
  readonly passwordFile: string;
  readonly purpose: string;
}

export async function pfxCommand(argv: string[]): Promise<number> {
  if (helpRequested(argv, USAGE)) return 0;
  const [verb, ...rest] = argv;
  const { values, positionals } = parseCommand(
    rest,
    {
      json: { type: 'boolean' },
      all: { type: 'boolean' },
      limit: { type: 'string' },
      'connector-key': { type: 'string' },
      user: { type: 'string' },
      purpose: { type: 'string' },
      'password-file': { type: 'string' },
      'key-name': { type: 'string' },
      padding: { type: 'string' },
      manifest: { type: 'string' },
    },
    USAGE,
  );
  const json = values.json === true;
  const id = () => {
    if (positionals[0] === undefined) throw new KeyfleetError('KF_USAGE', `a PFX certificate id is required\n${USAGE}`);
    return encodeURIComponent(positionals[0]);
  };
  switch (verb) {
    case 'import': {
      const keyPath = values['connector-key'];
      if (keyPath === undefined) throw new KeyfleetError('KF_USAGE', `--connector-key is required\n${USAGE}`);
      const padding = values.padding;
      if (padding !== undefined && !(PaddingSchemes as readonly string[]).includes(padding)) throw new KeyfleetError('KF_USAGE', `--padding must be one of ${PaddingSchemes.join(', ')}\n${USAGE}`);
      const connectorKey = readConnectorKey(keyPath);
      const keyName = values['key-name'] ?? basename(keyPath).replace(/(\.pub)?\.pem$/i, '');
      const options = { connectorKey, keyName, ...(padding === undefined ? {} : { padding: padding as PaddingScheme }) };
      if (values.manifest !== undefined) {
        if (positionals.length > 0 || values.user !== undefined || values['password-file'] !== undefined) throw new KeyfleetError('KF_USAGE', `--manifest takes no FILE, --user or --password-file\n${USAGE}`);
        return importManifest(values.manifest, options, json);
      }
      const path = positionals[0];
      if (path === undefined || values.user === undefined || values.purpose === undefined || values['password-file'] === undefined) {
        throw new KeyfleetError('KF_USAGE', `FILE.pfx, --user, --purpose and --password-file are required\n${USAGE}`);
      }
      const created = await importOne({ path, userPrincipalName: values.user, passwordFile: values['password-file'], purpose: values.purpose }, options);
      printResult(created, json, COLUMNS);
      return 0;
    }
    case 'list': {
      const path = values.user === undefined ? 'api/v1/userPfxCertificates' : `api/v1/userPfxCertificates?userPrincipalName=${encodeURIComponent(values.user)}`;
      printResult(await listAll(path, values.all === true, values.limit), json, COLUMNS);
      return 0;
    }
    case 'show':
      printResult((await apiRequest('GET', `api/v1/userPfxCertificates/${id()}`)) as Record<string, unknown>, json, COLUMNS);
      return 0;
    case 'delete':
      await apiRequest('DELETE', `api/v1/userPfxCertificates/${id()}`);
      return 0;
    default:
      throw unknownVerb(verb, USAGE);
  }
}

interface ImportOptions {
  readonly connectorKey: KeyObject;
  readonly keyName: string;
  readonly padding?: PaddingScheme;
}

function readConnectorKey(path: string): KeyObject {
  try {
    return createPublicKey(readBoundedFile(path, 64 * 1024, 'connector key'));
  } catch (e) {
    if (isKeyfleetError(e)) throw e;
    throw new KeyfleetError('KF_KEY_INVALID', `"${path}" is not a PEM public key (use connector.pub.pem from \`keyfleet connector keygen\`)`);
  }
}

/** The password file's contents without the one line ending an editor or `echo` adds. */
function readPassword(path: string): string {
  return readBoundedFile(path, 4096, 'password file').toString('utf8').replace(/\r?\n$/, '');
}

function prepare(job: ImportJob, options: ImportOptions): UserPfxCertificateUpload {
  if (!(IntendedPurposes as readonly string[]).includes(job.purpose)) throw new KeyfleetError('KF_USAGE', `purpose must be one of ${IntendedPurposes.join(', ')}`);
  return preparePfxImport(
    {
      pfx: readBoundedFile(job.path, MAX_PFX_BYTES, 'PFX file'),
      password: readPassword(job.passwordFile),
      connectorPublicKey: options.connectorKey,
      userPrincipalName: job.userPrincipalName,
      intendedPurpose: job.purpose as IntendedPurpose,
      keyName: options.keyName,
      ...(options.padding === undefined ? {} : { paddingScheme: options.padding }),
    },
    readPfxMetadata,
  );
}

async function importOne(job: ImportJob, options: ImportOptions): Promise<Record<string, unknown>> {
  return (await apiRequest('POST', 'api/v1/userPfxCertificates', prepare(job, options))) as Record<string, unknown>;
}

/** A minimal CSV line: fields separated by commas, optionally double-quoted ("" inside quotes is a quote). */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let v = '';
      i++;
      while (i < line.length) {
        if (line[i] === '"' && line[i + 1] === '"') {
          v += '"';
          i += 2;
        } else if (line[i] === '"') {
          break;
        } else {
          v += line[i++];
        }
      }
      i++; // closing quote
      out.push(v);
      if (line[i] === ',') i++;
      else break;
    } else {
      const end = line.indexOf(',', i);
      out.push(line.slice(i, end === -1 ? undefined : end).trim());
      if (end === -1) break;
      i = end + 1;
    }
  }
  return out;
}

/** What a batch may hold: the service's record limit, and half its body limit (src/http/admin/pfx-routes.ts). */
const BATCH_RECORDS = PFX_BATCH_MAX;
const BATCH_BYTES = 8 * 1024 * 1024;

interface Prepared {
  readonly line: number;
  readonly path: string;
  readonly userPrincipalName: string;
  readonly upload: UserPfxCertificateUpload;
}

type ReportLine = Record<string, unknown> & { readonly line: number };

/** Service unreachable or not authorised: every further upload would fail the same way. */
function fatal(e: unknown): boolean {
  return isKeyfleetError(e) && (e.code === 'KF_SERVICE_UNREACHABLE' || e.code === 'KF_UNAUTHENTICATED' || e.code === 'KF_FORBIDDEN');
}

function failure(e: unknown): string {
  return isKeyfleetError(e) ? `${e.code}: ${e.message.split('\n')[0]}` : `internal error: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`;
}

const imported = (p: Prepared, created: Record<string, unknown>): ReportLine => ({
  line: p.line, path: p.path, status: 'imported', id: created['id'], thumbprint: created['thumbprint'], userPrincipalName: p.userPrincipalName,
});

/**
 * Uploads the prepared files as one batch (POST …/import: one transaction). A refused batch stores nothing,
 * so each file is then uploaded on its own and gets its own result; so does every file when the service
 * predates the batch endpoint.
 */
async function sendBatch(batch: readonly Prepared[]): Promise<ReportLine[]> {
  try {
    const created = ((await apiRequest('POST', 'api/v1/userPfxCertificates/import', { value: batch.map((p) => p.upload) })) as { value: Record<string, unknown>[] }).value;
    return batch.map((p, i) => imported(p, created[i] ?? {}));
  } catch (e) {
    if (fatal(e)) throw e;
  }
  const out: ReportLine[] = [];
  for (const p of batch) {
    try {
      out.push(imported(p, (await apiRequest('POST', 'api/v1/userPfxCertificates', p.upload)) as Record<string, unknown>));
    } catch (e) {
      if (fatal(e)) throw e;
      out.push({ line: p.line, path: p.path, status: 'failed', error: failure(e), userPrincipalName: p.userPrincipalName });
    }
  }
  return out;
}

/**
 * Imports every line in batches of up to BATCH_RECORDS files (BATCH_BYTES of uploads); reports each file
 * (imported or why not) in manifest order and exits 1 when any failed.
 */
async function importManifest(manifest: string, options: ImportOptions, json: boolean): Promise<number> {
  const base = dirname(manifest);
  const resolve = (p: string) => (isAbsolute(p) ? p : join(base, p));
  const lines = readBoundedFile(manifest, 16 * 1024 * 1024, 'manifest').toString('utf8').split(/\r?\n/);
  const report: ReportLine[] = [];
  let batch: Prepared[] = [];
  let bytes = 0;
  const flush = async () => {
    if (batch.length > 0) report.push(...(await sendBatch(batch)));
    batch = [];
    bytes = 0;
  };
  for (const [n, line] of lines.entries()) {
    if (line.trim() === '' || line.startsWith('#') || (n === 0 && /^\s*"?path"?\s*,/i.test(line))) continue;
    const fields = csvFields(line);
    const [path, upn, passwordFile, purpose] = fields;
    if (fields.length !== 4 || !path || !upn || !passwordFile || !purpose) {
      report.push({ line: n + 1, path: path ?? '', status: 'failed', error: 'KF_USAGE: expected path,upn,password-file,purpose' });
      continue;
    }
    let upload: UserPfxCertificateUpload;
    try {
      upload = prepare({ path: resolve(path), userPrincipalName: upn, passwordFile: resolve(passwordFile), purpose }, options);
    } catch (e) {
      report.push({ line: n + 1, path, status: 'failed', error: failure(e), userPrincipalName: upn });
      continue;
    }
    const size = upload.encryptedPfxBlob.length + upload.encryptedPfxPassword.length + 1024;
    if (batch.length === BATCH_RECORDS || (batch.length > 0 && bytes + size > BATCH_BYTES)) await flush();
    batch.push({ line: n + 1, path, userPrincipalName: upn, upload });
    bytes += size;
  }
  await flush();
  report.sort((a, b) => a.line - b.line);
  printResult(report, json, ['line', 'path', 'userPrincipalName', 'status', 'id', 'error']);
  const failed = report.filter((r) => r['status'] === 'failed').length;
  process.stderr.write(`keyfleet: ${report.length - failed} imported, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}
