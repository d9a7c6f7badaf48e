/**
 * `keyfleet smime sign|verify|encrypt|decrypt|inspect`. The option shapes are
 * relied on by outside checks (issue 2): change them only compatibly.
 */
import type { KeyObject } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import { loadCertificates, type Certificate } from '../x509/certificate.ts';
import { loadCrls } from '../x509/crl.ts';
import { certificateSummary } from '../x509/summary.ts';
import { loadPrivateKey } from '../smime/keys.ts';
import { decryptMessage, encryptMessage, inspectMessage, signMessage, verifyMessage } from '../smime/message.ts';
import type { ContentCipher, KeyPair } from '../smime/cms/enveloped-data.ts';
import type { VerifyResult } from '../smime/result.ts';
import { readPkcs12 } from '../pkcs12/index.ts';
import { many, parseOptions, readBoundedFile, readInput, requireOption, writeOutput } from './io.ts';

const USAGE = `Usage:
  keyfleet smime sign    --cert C.pem --key K.pem [--chain CA.pem]... [--opaque]
                         [--digest sha256|sha384|sha512] [--pss] [--in F] [--out F]
  keyfleet smime verify  --trust ROOT.pem... [--crl F]... [--at TIME] [--in F] [--out F] [--json]
  keyfleet smime encrypt --to CERT.pem... [--cipher aes-256-gcm|aes-128-gcm|aes-256-cbc|aes-128-cbc]
                         [--oaep] [--in F] [--out F]
  keyfleet smime decrypt (--key K.pem --cert C.pem)... (--p12 F --password P)... [--in F] [--out F]
  keyfleet smime inspect [--in F]`;

const io = { in: { type: 'string' }, out: { type: 'string' } } as const;

export async function smimeCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  switch (verb) {
    case 'sign':
      return sign(rest);
    case 'verify':
      return verify(rest);
    case 'encrypt':
      return encrypt(rest);
    case 'decrypt':
      return decrypt(rest);
    case 'inspect':
      return inspect(rest);
    case undefined:
    case '--help':
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return verb === undefined ? 2 : 0;
    default:
      throw new KeyfleetError('KF_USAGE', `unknown smime command "${verb}"\n${USAGE}`);
  }
}

function certsFrom(paths: readonly string[]): Certificate[] {
  return paths.flatMap((p) => loadCertificates(readBoundedFile(p, undefined, 'certificate')));
}

const required = (value: string | undefined, option: string): string => requireOption(value, option, USAGE);

async function sign(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      ...io,
      cert: { type: 'string' },
      key: { type: 'string' },
      chain: { type: 'string', multiple: true },
      opaque: { type: 'boolean' },
      digest: { type: 'string' },
      pss: { type: 'boolean' },
    },
    USAGE,
  );
  const digest = values.digest ?? 'sha256';
  if (digest !== 'sha256' && digest !== 'sha384' && digest !== 'sha512') throw new KeyfleetError('KF_USAGE', `--digest must be sha256, sha384 or sha512`);
  const [certificate] = certsFrom([required(values.cert, '--cert')]);
  const key = loadPrivateKey(readBoundedFile(required(values.key, '--key'), undefined, 'key'));
  const chain = certsFrom(many(values.chain));
  const message = await readInput(values.in);
  const out = signMessage(message, { signers: [{ certificate: certificate!, key, digest, pss: values.pss === true, chain }], opaque: values.opaque === true });
  await writeOutput(values.out, out);
  return 0;
}

async function verify(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    { ...io, trust: { type: 'string', multiple: true }, crl: { type: 'string', multiple: true }, at: { type: 'string' }, json: { type: 'boolean' } },
    USAGE,
  );
  const trustAnchors = certsFrom(many(values.trust));
  if (trustAnchors.length === 0) throw new KeyfleetError('KF_USAGE', `--trust is required\n${USAGE}`);
  const crls = many(values.crl).flatMap((p) => loadCrls(readBoundedFile(p, undefined, 'CRL')));
  let at: Date | undefined;
  if (values.at !== undefined) {
    at = new Date(values.at);
    if (Number.isNaN(at.getTime())) throw new KeyfleetError('KF_USAGE', `--at must be an ISO 8601 time, e.g. 2024-05-01T00:00:00Z`);
  }
  const message = await readInput(values.in);
  const { result, content } = verifyMessage(message, { trustAnchors, crls, ...(at ? { at } : {}) });
  // --json puts the structured result on stdout; the signed content then goes only to --out.
  if (values.json) await writeOutput(undefined, `${JSON.stringify(resultJson(result), null, 2)}\n`);
  if (result.valid && (!values.json || values.out !== undefined)) await writeOutput(values.out, content);
  if (!result.valid) {
    const reasons = new Set(result.signers.flatMap((s) => s.reasons));
    if (result.signers.length === 0) reasons.add('bad-signature');
    for (const r of reasons) process.stderr.write(`${r}\n`);
    return 1;
  }
  return 0;
}

function resultJson(result: VerifyResult) {
  return {
    valid: result.valid,
    signers: result.signers.map((s) => ({
      certificate: s.certificate ? certificateSummary(s.certificate) : null,
      emailAddresses: s.emailAddresses,
      chain: s.chain.map((step) => ({ ...certificateSummary(step.certificate), reasons: step.reasons })),
      signingTime: s.signingTime?.toISOString() ?? null,
      digestAlgorithm: s.digestAlgorithm,
      signatureAlgorithm: s.signatureAlgorithm,
      reasons: s.reasons,
    })),
  };
}

const ciphers: readonly ContentCipher[] = ['aes-128-cbc', 'aes-192-cbc', 'aes-256-cbc', 'aes-128-gcm', 'aes-192-gcm', 'aes-256-gcm'];

async function encrypt(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { ...io, to: { type: 'string', multiple: true }, cipher: { type: 'string' }, oaep: { type: 'boolean' } }, USAGE);
  const recipients = certsFrom(many(values.to));
  if (recipients.length === 0) throw new KeyfleetError('KF_USAGE', `--to is required\n${USAGE}`);
  const cipher = values.cipher;
  if (cipher !== undefined && !ciphers.includes(cipher as ContentCipher)) throw new KeyfleetError('KF_USAGE', `--cipher must be one of ${ciphers.join(', ')}`);
  const message = await readInput(values.in);
  const out = encryptMessage(
    message,
    recipients.map((certificate) => ({ certificate, rsaPadding: values.oaep ? ('oaep' as const) : ('pkcs1' as const) })),
    cipher === undefined ? {} : { cipher: cipher as ContentCipher },
  );
  await writeOutput(values.out, out);
  return 0;
}

async function decrypt(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    { ...io, key: { type: 'string', multiple: true }, cert: { type: 'string', multiple: true }, p12: { type: 'string', multiple: true }, password: { type: 'string', multiple: true } },
    USAGE,
  );
  const keyPaths = many(values.key);
  const certPaths = many(values.cert);
  if (keyPaths.length !== certPaths.length) throw new KeyfleetError('KF_USAGE', `each --key needs its --cert\n${USAGE}`);
  const p12Paths = many(values.p12);
  const passwords = many(values.password);
  if (p12Paths.length !== passwords.length) throw new KeyfleetError('KF_USAGE', `each --p12 needs its --password\n${USAGE}`);
  const keys: KeyPair[] = [];
  keyPaths.forEach((keyPath, i) => {
    const key: KeyObject = loadPrivateKey(readBoundedFile(keyPath, undefined, 'key'));
    for (const certificate of certsFrom([certPaths[i]!])) keys.push({ certificate, key });
  });
  p12Paths.forEach((p, i) => {
    const contents = readPkcs12(readBoundedFile(p, undefined, 'PKCS#12 file'), passwords[i]!);
    for (const k of contents.keys) if (k.certificate) keys.push({ certificate: k.certificate, key: k.key });
  });
  if (keys.length === 0) throw new KeyfleetError('KF_USAGE', `give at least one --key/--cert pair or --p12/--password\n${USAGE}`);
  const message = await readInput(values.in);
  try {
    const { message: out } = decryptMessage(message, keys);
    await writeOutput(values.out, out);
    return 0;
  } catch (e) {
    if (e instanceof KeyfleetError) {
      const reason =
        e.code === 'KF_CMS_NO_MATCHING_KEY'
          ? 'no-matching-key'
          : e.code === 'KF_CMS_UNSUPPORTED'
            ? `unsupported-algorithm ${e.detail ?? 'unknown'}`
            : e.code === 'KF_KEY_INVALID' || e.code === 'KF_USAGE'
              ? undefined
              : 'damaged';
      if (reason !== undefined) {
        process.stderr.write(`${reason}: ${e.message}\n`);
        return 1;
      }
    }
    throw e;
  }
}

async function inspect(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { in: { type: 'string' } }, USAGE);
  const message = await readInput(values.in);
  await writeOutput(undefined, `${JSON.stringify(inspectMessage(message), null, 2)}\n`);
  return 0;
}
