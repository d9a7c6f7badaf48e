/**
 * A test PKI built with the `openssl` CLI in a temporary directory, from
 * declared configuration: each CA is an `openssl ca` database, so any
 * certificate can be backdated (`-startdate/-enddate`), revoked and listed
 * in a CRL. Used by the x509 tests; other areas may reuse it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Certificate, loadCertificates } from '../../src/x509/certificate.ts';
import { type CertificateList, loadCrls } from '../../src/x509/crl.ts';

export type KeyAlgorithm = 'rsa2048' | 'rsa1024' | 'p256' | 'p384' | 'ed25519';

export interface Issued {
  readonly name: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly certificate: Certificate;
  /** The `openssl ca` database directory when this certificate is a CA. */
  readonly caDir: string;
}

export interface IssueOptions {
  /** `-subj` form; default `/CN=<name>`. */
  readonly subject?: string;
  /** Key algorithm of a new key (default p256), or the path of an existing key. */
  readonly key?: KeyAlgorithm | { readonly path: string };
  /** Extension lines for the `[ext]` section (openssl x509v3_config), or null for a v1 certificate. */
  readonly ext?: readonly string[] | null;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Digest for the signature (`-md`): e.g. sha1; default per key. */
  readonly md?: string;
}

const DAY = 86_400_000;
/** A fixed "now" per run, so every certificate is valid around the time tests run (and CRLs are dated now). */
export const NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
export const days = (n: number): Date => new Date(NOW.getTime() + n * DAY);

export const caExt = (pathLen?: number): string[] => [
  `basicConstraints = critical,CA:true${pathLen === undefined ? '' : `,pathlen:${pathLen}`}`,
  'keyUsage = critical,keyCertSign,cRLSign',
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid',
];

export const leafExt = (keyUsage = 'critical,digitalSignature,nonRepudiation,keyEncipherment', eku: string | null = 'emailProtection'): string[] => [
  'basicConstraints = critical,CA:false',
  ...(keyUsage ? [`keyUsage = ${keyUsage}`] : []),
  ...(eku ? [`extendedKeyUsage = ${eku}`] : []),
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid',
];

function stamp(d: Date): string {
  return `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

export class TestPki {
  readonly dir: string;
  private counter = 0;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'keyfleet-pki-'));
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  openssl(args: readonly string[], input?: string): string {
    return execFileSync('openssl', args, { cwd: this.dir, encoding: 'latin1', stdio: ['pipe', 'pipe', 'pipe'], ...(input === undefined ? {} : { input }) });
  }

  newKey(alg: KeyAlgorithm, name = `key${++this.counter}`): string {
    const path = join(this.dir, `${name}.key`);
    const opts: Record<KeyAlgorithm, string[]> = {
      rsa2048: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
      rsa1024: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'],
      p256: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      p384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
      ed25519: ['-algorithm', 'ED25519'],
    };
    this.openssl(['genpkey', ...opts[alg], '-out', path]);
    return path;
  }

  /** A self-signed CA (by `openssl ca -selfsign`, so it can be backdated too). */
  root(name: string, options: IssueOptions = {}): Issued {
    return this.sign(name, undefined, { ext: caExt(), ...options });
  }

  /** A certificate for `name` signed by `issuer`. */
  issue(name: string, issuer: Issued, options: IssueOptions = {}): Issued {
    return this.sign(name, issuer, { ext: leafExt(), ...options });
  }

  private sign(name: string, issuer: Issued | undefined, options: IssueOptions): Issued {
    const id = `${name.replace(/[^A-Za-z0-9]/g, '_')}-${++this.counter}`;
    const keyPath = typeof options.key === 'object' ? options.key.path : this.newKey(options.key ?? 'p256', id);
    const caDir = join(this.dir, `${id}.ca`);
    mkdirSync(caDir);
    writeFileSync(join(caDir, 'index.txt'), '');
    writeFileSync(join(caDir, 'crlnumber'), '01\n');
    writeFileSync(join(caDir, 'req.cnf'), '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n');
    const csr = join(caDir, 'req.csr');
    this.openssl(['req', '-new', '-config', join(caDir, 'req.cnf'), '-key', keyPath, '-subj', options.subject ?? `/CN=${name}`, '-out', csr]);
    const certPath = join(this.dir, `${id}.pem`);
    const signerDir = issuer ? issuer.caDir : caDir;
    writeFileSync(join(signerDir, 'ext.cnf'), `[ext]\n${(options.ext ?? []).join('\n')}\n`);
    const args = [
      'ca', '-batch', '-config', join(signerDir, 'ca.cnf'), '-rand_serial', '-notext', '-preserveDN',
      '-startdate', stamp(options.notBefore ?? days(-365)), '-enddate', stamp(options.notAfter ?? days(5 * 365)),
      '-in', csr, '-out', certPath,
    ];
    if (options.ext !== null) args.push('-extfile', join(signerDir, 'ext.cnf'), '-extensions', 'ext');
    if (options.md) args.push('-md', options.md);
    this.writeCaConfig(caDir, certPath, keyPath);
    if (issuer) {
      this.openssl(args);
    } else {
      this.openssl([...args, '-selfsign', '-keyfile', keyPath]);
    }
    const certificate = loadCertificates(readFileSync(certPath))[0]!;
    return { name, certPath, keyPath, certificate, caDir };
  }

  private writeCaConfig(caDir: string, certPath: string, keyPath: string): void {
    writeFileSync(
      join(caDir, 'ca.cnf'),
      [
        '[ca]',
        'default_ca = d',
        '[d]',
        `database = ${join(caDir, 'index.txt')}`,
        `new_certs_dir = ${caDir}`,
        `certificate = ${certPath}`,
        `private_key = ${keyPath}`,
        `crlnumber = ${join(caDir, 'crlnumber')}`,
        `serial = ${join(caDir, 'serial')}`,
        'default_md = default',
        'policy = pol',
        'unique_subject = no',
        'default_crl_days = 30',
        '[pol]',
        'commonName = optional',
        '[crlext]',
        'authorityKeyIdentifier = keyid',
        '',
      ].join('\n'),
    );
  }

  /** Marks `cert` revoked in its issuer's database (`openssl ca -revoke`). */
  revoke(issuer: Issued, cert: Issued, reason = 'keyCompromise'): void {
    this.openssl(['ca', '-config', join(issuer.caDir, 'ca.cnf'), '-revoke', cert.certPath, '-crl_reason', reason]);
  }

  /** A CRL from the issuer's database (`openssl ca -gencrl`). */
  crl(issuer: Issued, options: { readonly withAki?: boolean; readonly hours?: number } = {}): { readonly path: string; readonly crl: CertificateList } {
    const path = join(this.dir, `${issuer.name.replace(/[^A-Za-z0-9]/g, '_')}-${++this.counter}.crl.pem`);
    const args = ['ca', '-config', join(issuer.caDir, 'ca.cnf'), '-gencrl', '-out', path];
    if (options.withAki) args.push('-crlexts', 'crlext');
    if (options.hours !== undefined) args.push('-crlhours', String(options.hours));
    this.openssl(args);
    return { path, crl: loadCrls(readFileSync(path))[0]! };
  }

  /** Concatenates PEM files (for -CAfile / -untrusted bundles). */
  bundle(name: string, certs: readonly Issued[]): string {
    const path = join(this.dir, `${name}-${++this.counter}.pem`);
    writeFileSync(path, certs.map((c) => readFileSync(c.certPath, 'latin1')).join(''));
    return path;
  }

  /**
   * `openssl verify -x509_strict -purpose <purpose>` for a cross-check;
   * true when OpenSSL accepts the chain.
   */
  opensslVerify(
    leaf: Issued,
    options: { anchors: readonly Issued[]; untrusted?: readonly Issued[]; purpose?: string; at?: Date; crls?: readonly string[]; extra?: readonly string[] },
  ): { ok: boolean; output: string } {
    const args = ['verify', '-x509_strict', '-purpose', options.purpose ?? 'smimesign', '-CAfile', this.bundle('anchors', options.anchors)];
    if (options.untrusted && options.untrusted.length > 0) args.push('-untrusted', this.bundle('untrusted', options.untrusted));
    if (options.at) args.push('-attime', String(Math.floor(options.at.getTime() / 1000)));
    if (options.crls && options.crls.length > 0) {
      args.push('-crl_check');
      for (const c of options.crls) args.push('-CRLfile', c);
    }
    if (options.extra) args.push(...options.extra);
    args.push(leaf.certPath);
    try {
      return { ok: true, output: this.openssl(args) };
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string };
      return { ok: false, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
    }
  }
}

