/**
 * `keyfleet ca init|show|issue|revoke|crl|list`: the certificate authority
 * from the command line. State lives under --data (default ./data).
 */
import { writeFileSync } from 'node:fs';
import { KeyfleetError } from '../errors.ts';
import { encodePem } from '../asn1/pem.ts';
import { loadCertificates } from '../x509/certificate.ts';
import { nameToString } from '../x509/name.ts';
import { certificateSummary } from '../x509/summary.ts';
import { loadPrivateKey } from '../smime/keys.ts';
import { initCa, importCa } from '../ca/setup.ts';
import { CrlReason } from '../x509/crl.ts';
import { type TemplateName, TemplateNames, defaultProfile } from '../ca/templates.ts';
import { type KeySpec, KeySpecs, generateKeyPair } from '../ca/key-spec.ts';
import { ISSUING_CA_ID } from '../ca/authority.ts';
import { DEFAULT_SCEP_PROFILE, scepProfileRecord } from './scep-profile.ts';
import { caUrls, checkBaseUrl, keyStoreFor, openAuthority, openContext, readSettings, writeSettings } from './context.ts';
import { dispatch, many, parseOptions, readBoundedFile, requireOption, writeOutput } from './io.ts';

const USAGE = `Usage:
  keyfleet ca init   [--data DIR] [--key-type rsa-2048|rsa-3072|rsa-4096|p-256|p-384] [--org NAME]
                     [--base-url URL] [--import-cert C.pem --import-key K.pem --import-chain CHAIN.pem...]
  keyfleet ca show   [--data DIR] [--pem]
  keyfleet ca issue  [--data DIR] --email E [--name N] [--upn U] [--template smimeSigning|smimeEncryption|smimeDual]
                     (--csr F | --key-out K.pem [--key-type T]) [--out C.pem]
  keyfleet ca revoke [--data DIR] --serial HEX [--reason keyCompromise|superseded|...]
  keyfleet ca crl    [--data DIR] [--out F.crl] [--pem]
  keyfleet ca list   [--data DIR] [--status good|revoked]`;

const data = { data: { type: 'string' } } as const;

export async function caCommand(argv: string[]): Promise<number> {
  return dispatch('ca', argv, { init, show, issue, revoke, crl, list }, USAGE);
}

function keySpec(value: string | undefined, fallback: KeySpec): KeySpec {
  if (value === undefined) return fallback;
  if (!(KeySpecs as readonly string[]).includes(value)) throw new KeyfleetError('KF_USAGE', `--key-type must be one of ${KeySpecs.join(', ')}`);
  return value as KeySpec;
}

async function init(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      ...data,
      'key-type': { type: 'string' },
      org: { type: 'string' },
      'base-url': { type: 'string' },
      'import-cert': { type: 'string' },
      'import-key': { type: 'string' },
      'import-chain': { type: 'string', multiple: true },
    },
    USAGE,
  );
  const dataDir = values.data ?? './data';
  const baseUrl = checkBaseUrl(values['base-url'] ?? 'http://localhost:8080');
  const ctx = await openContext(dataDir, { create: true });
  try {
    const keyStore = keyStoreFor(dataDir, true);
    const urls = caUrls({ baseUrl });
    const importing = values['import-cert'] !== undefined || values['import-key'] !== undefined;
    const org = values.org ?? 'Keyfleet';
    const ca = await ctx.tenant.transaction(async (tx) => {
      const options = { store: tx.ca, keyStore, urls };
      const authority = importing
        ? await importCa({
            ...options,
            certificate: loadCertificates(readBoundedFile(need(values['import-cert'], '--import-cert'), undefined, 'certificate'))[0]!.der,
            privateKey: loadPrivateKey(readBoundedFile(need(values['import-key'], '--import-key'), undefined, 'key')),
            chain: many(values['import-chain']).flatMap((p) => loadCertificates(readBoundedFile(p, undefined, 'certificate')).map((c) => c.der)),
          })
        : await initCa({
            ...options,
            keyType: keySpec(values['key-type'], 'rsa-3072'),
            rootSubject: [['O', org], ['CN', `${org} Root CA`]],
            issuingSubject: [['O', org], ['CN', `${org} Issuing CA`]],
          });
      // `ca init && serve` plus a challenge is all a SCEP client needs (issue 3).
      if (!(await tx.scep.getProfile(DEFAULT_SCEP_PROFILE))) await tx.scep.putProfile(scepProfileRecord(DEFAULT_SCEP_PROFILE, ISSUING_CA_ID, defaultProfile('smimeSigning', { name: DEFAULT_SCEP_PROFILE })));
      return authority;
    });
    writeSettings(dataDir, { baseUrl });
    process.stdout.write(`issuing CA: ${nameToString(ca.certificate.subject)}\nroot CA:    ${ca.root ? nameToString(ca.root.subject) : '(external)'}\nSCEP profile "${DEFAULT_SCEP_PROFILE}" at ${baseUrl}/scep/${DEFAULT_SCEP_PROFILE}\n`);
    return 0;
  } finally {
    await ctx.close();
  }
}

const need = (value: string | undefined, option: string): string => requireOption(value, option, USAGE);

async function withAuthority<T>(dataDir: string | undefined, fn: (ca: Awaited<ReturnType<typeof openAuthority>>) => Promise<T>): Promise<T> {
  const ctx = await openContext(dataDir ?? './data');
  try {
    return await fn(await openAuthority(ctx));
  } finally {
    await ctx.close();
  }
}

async function show(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { ...data, pem: { type: 'boolean' } }, USAGE);
  return withAuthority(values.data, async (ca) => {
    const certs = [ca.certificate, ...ca.chain];
    if (values.pem) {
      await writeOutput(undefined, certs.map((c) => encodePem('CERTIFICATE', c.der)).join(''));
      return 0;
    }
    const settings = readSettings(values.data ?? './data');
    const info = {
      baseUrl: settings?.baseUrl ?? null,
      certificates: certs.map(certificateSummary),
    };
    await writeOutput(undefined, `${JSON.stringify(info, null, 2)}\n`);
    return 0;
  });
}

async function issue(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      ...data,
      email: { type: 'string' },
      name: { type: 'string' },
      upn: { type: 'string' },
      template: { type: 'string' },
      csr: { type: 'string' },
      'key-out': { type: 'string' },
      'key-type': { type: 'string' },
      out: { type: 'string' },
    },
    USAGE,
  );
  const template = (values.template ?? 'smimeDual') as TemplateName;
  if (!['smimeSigning', 'smimeEncryption', 'smimeDual'].includes(template) || !TemplateNames.includes(template)) {
    throw new KeyfleetError('KF_USAGE', '--template must be smimeSigning, smimeEncryption or smimeDual');
  }
  const email = need(values.email, '--email');
  if ((values.csr === undefined) === (values['key-out'] === undefined)) throw new KeyfleetError('KF_USAGE', `give --csr or --key-out\n${USAGE}`);
  let keySource: { csr: Uint8Array } | { publicKey: ReturnType<typeof generateKeyPair>['publicKey'] };
  let privatePem: string | undefined;
  if (values.csr !== undefined) {
    keySource = { csr: readBoundedFile(values.csr, 1024 * 1024, 'CSR') };
  } else {
    const pair = generateKeyPair(keySpec(values['key-type'], 'rsa-2048'));
    keySource = { publicKey: pair.publicKey };
    privatePem = pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  }
  const profile = defaultProfile(template, values.upn ? { subjectAlternativeNameTypes: ['emailAddress', 'userPrincipalName'] } : {});
  return withAuthority(values.data, async (ca) => {
    const issued = await ca.issue({
      ...keySource,
      profile,
      requester: 'cli',
      attributes: { emailAddress: email, ...(values.name ? { displayName: values.name, userName: values.name } : {}), ...(values.upn ? { userPrincipalName: values.upn } : {}) },
    });
    if (privatePem !== undefined) writeFileSync(values['key-out']!, privatePem, { mode: 0o600 });
    await writeOutput(values.out, encodePem('CERTIFICATE', issued.der));
    if (values.out !== undefined) process.stderr.write(`keyfleet: issued serial ${issued.record.serialHex} to ${values.out}\n`);
    return 0;
  });
}

async function revoke(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { ...data, serial: { type: 'string' }, reason: { type: 'string' } }, USAGE);
  const reason = values.reason ?? 'unspecified';
  if (!(reason in CrlReason)) throw new KeyfleetError('KF_USAGE', `--reason must be one of ${Object.keys(CrlReason).join(', ')}`);
  return withAuthority(values.data, async (ca) => {
    const result = await ca.revoke(need(values.serial, '--serial'), reason as keyof typeof CrlReason);
    process.stdout.write(result.newlyRevoked ? `revoked ${result.record.serialHex} (${reason}); CRL #${result.crl?.crlNumber ?? '?'} published\n` : `${result.record.serialHex} was already revoked\n`);
    return 0;
  });
}

async function crl(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { ...data, out: { type: 'string' }, pem: { type: 'boolean' } }, USAGE);
  return withAuthority(values.data, async (ca) => {
    const record = await ca.generateCrl();
    await writeOutput(values.out, values.pem ? encodePem('X509 CRL', record.der) : record.der);
    return 0;
  });
}

async function list(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { ...data, status: { type: 'string' } }, USAGE);
  if (values.status !== undefined && values.status !== 'good' && values.status !== 'revoked') throw new KeyfleetError('KF_USAGE', '--status must be good or revoked');
  return withAuthority(values.data, async (ca) => {
    const rows = await ca.list(values.status === 'good' || values.status === 'revoked' ? { status: values.status } : {});
    const lines = rows.map((r) => `${r.serialHex}  ${r.status.padEnd(7)}  ${r.notAfter.toISOString().slice(0, 10)}  ${r.profile ?? '-'}  ${r.subject}`);
    await writeOutput(undefined, `${lines.join('\n')}${lines.length ? '\n' : ''}`);
    return 0;
  });
}
