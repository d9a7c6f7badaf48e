/**
 * `keyfleet p12 import|export|inspect`: PKCS#12 files to and from PEM.
 *
 *   import  --in F.p12 --password-file P --key-out K.pem --cert-out C.pem
 *   export  --key K.pem --cert C.pem [--chain CA.pem]... --password-file P
 *           [--legacy] [--name FRIENDLY] --out F.p12
 *   inspect --in F.p12 [--password-file P]
 *
 * Passwords come from a file (or stdin with `-`), never from the command
 * line, where other users could read them in the process list.
 */
import { writeFileSync } from 'node:fs';
import { KeyfleetError } from '../errors.ts';
import { encodePem } from '../asn1/pem.ts';
import { loadCertificates } from '../x509/certificate.ts';
import { nameToString } from '../x509/name.ts';
import { loadPrivateKey } from '../smime/keys.ts';
import { inspectPkcs12, readPkcs12, writePkcs12 } from '../pkcs12/index.ts';
import { dispatch, many, parseOptions, readBoundedFile, readInput, requireOption, writeOutput } from './io.ts';

const USAGE = `Usage:
  keyfleet p12 import  --in F.p12 --password-file P --key-out K.pem --cert-out C.pem
  keyfleet p12 export  --key K.pem --cert C.pem [--chain CA.pem]... --password-file P [--legacy] [--name N] --out F.p12
  keyfleet p12 inspect --in F.p12 [--password-file P]`;

export async function p12Command(argv: string[]): Promise<number> {
  return dispatch('p12', argv, { import: importP12, export: exportP12, inspect }, USAGE);
}

async function readPassword(path: string | undefined): Promise<string> {
  if (path === undefined) throw new KeyfleetError('KF_USAGE', `--password-file is required\n${USAGE}`);
  const bytes = path === '-' ? await readInput(undefined, 4096) : readBoundedFile(path, 4096, 'password file');
  return bytes.toString('utf8').replace(/\r?\n$/, '');
}

const need = (value: string | undefined, option: string): string => requireOption(value, option, USAGE);

async function importP12(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    { in: { type: 'string' }, 'password-file': { type: 'string' }, 'key-out': { type: 'string' }, 'cert-out': { type: 'string' } },
    USAGE,
  );
  const contents = readPkcs12(readBoundedFile(need(values.in, '--in'), undefined, 'PKCS#12 file'), await readPassword(values['password-file']));
  const keyOut = need(values['key-out'], '--key-out');
  const certOut = need(values['cert-out'], '--cert-out');
  if (contents.keys.length === 0) throw new KeyfleetError('KF_KEY_INVALID', 'the PKCS#12 file holds no private key');
  writeFileSync(keyOut, contents.keys.map((k) => k.key.export({ format: 'pem', type: 'pkcs8' }) as string).join(''), { mode: 0o600 });
  // Each key's own certificate first, then the rest (chain), without duplicates.
  const ordered = [...contents.keys.flatMap((k) => (k.certificate ? [k.certificate] : [])), ...contents.certificates];
  const seen = new Set<string>();
  const pem = ordered.filter((c) => !seen.has(c.fingerprint256) && seen.add(c.fingerprint256)).map((c) => encodePem('CERTIFICATE', c.der));
  writeFileSync(certOut, pem.join(''));
  process.stderr.write(`keyfleet: ${contents.keys.length} key(s) to ${keyOut}, ${pem.length} certificate(s) to ${certOut}\n`);
  return 0;
}

async function exportP12(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      key: { type: 'string' },
      cert: { type: 'string' },
      chain: { type: 'string', multiple: true },
      'password-file': { type: 'string' },
      legacy: { type: 'boolean' },
      name: { type: 'string' },
      out: { type: 'string' },
    },
    USAGE,
  );
  const key = loadPrivateKey(readBoundedFile(need(values.key, '--key'), undefined, 'key'));
  const [certificate] = loadCertificates(readBoundedFile(need(values.cert, '--cert'), undefined, 'certificate'));
  const chain = many(values.chain).flatMap((p) => loadCertificates(readBoundedFile(p, undefined, 'certificate')));
  const out = need(values.out, '--out');
  const der = writePkcs12(
    [{ key, certificate: certificate!, chain, ...(values.name !== undefined ? { friendlyName: values.name } : {}) }],
    await readPassword(values['password-file']),
    { profile: values.legacy ? 'legacy' : 'modern' },
  );
  writeFileSync(out, der, { mode: 0o600 });
  return 0;
}

async function inspect(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { in: { type: 'string' }, 'password-file': { type: 'string' } }, USAGE);
  const der = readBoundedFile(need(values.in, '--in'), undefined, 'PKCS#12 file');
  const info: Record<string, unknown> = { ...inspectPkcs12(der) };
  if (values['password-file'] !== undefined) {
    const contents = readPkcs12(der, await readPassword(values['password-file']));
    info.keys = contents.keys.map((k) => ({
      type: k.key.asymmetricKeyType,
      friendlyName: k.friendlyName ?? null,
      certificate: k.certificate ? nameToString(k.certificate.subject) : null,
    }));
    info.certificates = contents.certificates.map((c) => ({ subject: nameToString(c.subject), issuer: nameToString(c.issuer), serialNumber: c.serialHex, notAfter: c.notAfter.toISOString(), thumbprint: c.thumbprint }));
  }
  await writeOutput(undefined, `${JSON.stringify(info, null, 2)}\n`);
  return 0;
}
