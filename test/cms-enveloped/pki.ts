/**
 * A test PKI for the CMS encryption tests, generated with the openssl CLI
 * into a temporary directory from the declaration below: one RSA CA and
 * leaf certificates for every recipient kind. Each test file builds it once;
 * the identities are generated in parallel.
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import type { KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPrivateKey } from '../../src/smime/keys.ts';
import { type Certificate, loadCertificates } from '../../src/x509/certificate.ts';
import type { KeyPair } from '../../src/smime/cms/enveloped-data.ts';

export type KeyKind = 'rsa' | 'p256' | 'p384' | 'x25519';

export interface IdentitySpec {
  readonly kind: KeyKind;
  readonly email: string;
  /** Whether the certificate carries a subjectKeyIdentifier (default true). */
  readonly ski?: boolean;
  /** Hex serial number; default a distinct small one. */
  readonly serial?: string;
}

/** The declared identities. `old1`, `old2` and `rsa` are one user's key history (oldest first). */
export const identities = {
  rsa: { kind: 'rsa', email: 'alice@example.org', serial: '8f00a1' }, // high bit set: DER adds a leading zero
  old1: { kind: 'rsa', email: 'alice@example.org', serial: '1001' },
  old2: { kind: 'rsa', email: 'alice@example.org', serial: '1002' },
  rsaNoSki: { kind: 'rsa', email: 'bob@example.org', ski: false, serial: '1003' },
  p256: { kind: 'p256', email: 'carol@example.org', serial: '1004' },
  p384: { kind: 'p384', email: 'dave@example.org', serial: '1005' },
  x25519: { kind: 'x25519', email: 'erin@example.org', serial: '1006' },
} as const satisfies Record<string, IdentitySpec>;

export type IdentityName = keyof typeof identities;

export interface Identity {
  readonly name: IdentityName;
  readonly email: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly certificate: Certificate;
  readonly key: KeyObject;
  readonly pair: KeyPair;
}

export interface Pki {
  readonly dir: string;
  readonly caCertPath: string;
  readonly caKeyPath: string;
  readonly ids: Record<IdentityName, Identity>;
  /** Writes `data` to a file in the PKI directory and returns its path. */
  file(name: string, data?: Uint8Array | string): string;
  openssl(args: readonly string[], input?: Uint8Array): Buffer;
  cleanup(): void;
}

function run(cmd: string, args: readonly string[], cwd: string, input?: Uint8Array): Buffer {
  return execFileSync(cmd, args, { cwd, input, stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 1 << 30 });
}

const execFileAsync = promisify(execFile);

const genpkeyArgs: Record<KeyKind, string[]> = {
  rsa: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  p256: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  x25519: ['-algorithm', 'X25519'],
};

/** Builds the CA and the named identities (all of them when `names` is omitted). */
export async function makePki(names: readonly IdentityName[] = Object.keys(identities) as IdentityName[]): Promise<Pki> {
  const dir = mkdtempSync(join(tmpdir(), 'kf-cms-enveloped-'));
  const openssl = (args: readonly string[], input?: Uint8Array) => run('openssl', args, dir, input);
  const opensslAsync = async (args: readonly string[]) => {
    await execFileAsync('openssl', args, { cwd: dir });
  };
  const caKeyPath = join(dir, 'ca.key');
  const caCertPath = join(dir, 'ca.pem');
  const keyPathOf = (name: string) => join(dir, `${name}.key`);
  await Promise.all([opensslAsync(['genpkey', ...genpkeyArgs.rsa, '-out', caKeyPath]), ...names.map((name) => opensslAsync(['genpkey', ...genpkeyArgs[identities[name].kind], '-out', keyPathOf(name)]))]);
  openssl(['req', '-x509', '-new', '-key', caKeyPath, '-subj', '/O=Keyfleet Test/CN=Test Encryption CA', '-days', '30', '-sha256', '-out', caCertPath]);
  const ids = {} as Record<IdentityName, Identity>;
  for (const name of names) {
    const spec: IdentitySpec = identities[name];
    const keyPath = keyPathOf(name);
    const certPath = join(dir, `${name}.pem`);
    const keyUsage = spec.kind === 'rsa' ? 'keyEncipherment' : 'keyAgreement';
    const ext = [
      '[leaf]',
      'basicConstraints = CA:FALSE',
      `keyUsage = critical, ${keyUsage}`,
      'extendedKeyUsage = emailProtection',
      `subjectAltName = email:${spec.email}`,
      'authorityKeyIdentifier = keyid',
      `subjectKeyIdentifier = ${spec.ski === false ? 'none' : 'hash'}`,
    ].join('\n');
    const extPath = join(dir, `${name}.ext`);
    writeFileSync(extPath, ext);
    const subj = `/O=Keyfleet Test/CN=${name}/emailAddress=${spec.email}`;
    const csrPath = join(dir, `${name}.csr`);
    const serial = `0x${spec.serial ?? '2000'}`;
    const common = ['-CA', caCertPath, '-CAkey', caKeyPath, '-set_serial', serial, '-days', '30', '-sha256', '-extfile', extPath, '-extensions', 'leaf', '-out', certPath];
    if (spec.kind === 'x25519') {
      // An X25519 key cannot sign its own request: the request is signed by the CA key and the
      // certificate gets the X25519 key with -force_pubkey.
      const pubPath = join(dir, `${name}.pub`);
      openssl(['pkey', '-in', keyPath, '-pubout', '-out', pubPath]);
      openssl(['req', '-new', '-key', caKeyPath, '-subj', subj, '-out', csrPath]);
      openssl(['x509', '-req', '-in', csrPath, '-force_pubkey', pubPath, ...common]);
    } else {
      openssl(['req', '-new', '-key', keyPath, '-subj', subj, '-out', csrPath]);
      openssl(['x509', '-req', '-in', csrPath, ...common]);
    }
    const certificate = loadCertificates(readFileSync(certPath))[0]!;
    const key = loadPrivateKey(readFileSync(keyPath));
    ids[name] = { name, email: spec.email, certPath, keyPath, certificate, key, pair: { certificate, key } };
  }
  let counter = 0;
  return {
    dir,
    caCertPath,
    caKeyPath,
    ids,
    file(name, data) {
      const path = join(dir, `${counter++}-${name}`);
      if (data !== undefined) writeFileSync(path, data);
      return path;
    },
    openssl,
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
