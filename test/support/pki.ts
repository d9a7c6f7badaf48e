/**
 * Generates the declared test PKI (test/pki/pki.ts) with the `openssl` CLI.
 *
 * Layout of the generated directory, one folder per scenario:
 *
 *   <dir>/<scenario>/<name>.crt.pem   certificate (PEM)      .crt.der (DER)
 *   <dir>/<scenario>/<name>.key.pem   private key, PKCS#8    .key.der (DER)
 *   <dir>/<scenario>/<name>.legacy.pem  PKCS#1 (RSA) or SEC1 (EC) private key
 *   <dir>/<scenario>/<name>.pub.pem   SubjectPublicKeyInfo
 *   <dir>/<scenario>/<name>.chain.pem issuing CAs below the root (when any)
 *   <dir>/<scenario>/<name>.p12       key + certificate + chain (when declared)
 *   <dir>/<scenario>/<name>.legacy.p12  the same with PBE-SHA1-3DES and a SHA-1 MAC
 *   <dir>/<scenario>/<name>.crl.pem   a CA's CRL (revoked children listed)
 *
 * Certificates valid from "now" are made with `openssl x509 -new -force_pubkey`
 * (one process, and the only way for an X25519 key); certificates with a
 * declared notBefore go through `openssl ca -startdate/-enddate`, because the
 * OpenSSL 3.0 CLI has no other way to back-date (`x509 -not_before` came in
 * 3.4). Each `openssl ca` run gets its own database folder, so they run in
 * parallel.
 */
import { X509Certificate, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EntityName, type EntitySpec, type KeySpec, pkiSpec } from '../pki/pki.ts';
import { inPool, runOk } from './exec.ts';

export type { EntityName } from '../pki/pki.ts';

export interface TestEntity {
  readonly name: EntityName;
  readonly scenario: string;
  readonly spec: EntitySpec;
  readonly keyType: KeySpec;
  /** SAN rfc822Name values; the first is "the" address of the entity. */
  readonly emails: readonly string[];
  readonly email: string | undefined;
  readonly subject: string;
  /** Serial number as lower-case hex without leading zeros (openssl prints it in upper case). */
  readonly serialHex: string;
  /** SHA-1 fingerprint, upper-case hex with colons (gpgsm trustlist, NSS). */
  readonly sha1Fingerprint: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly certPath: string;
  readonly certDerPath: string;
  readonly certPem: string;
  readonly certDer: Buffer;
  /** PKCS#8 PEM. */
  readonly keyPath: string;
  readonly keyPem: string;
  readonly keyDerPath: string;
  readonly keyDer: Buffer;
  /** PKCS#1 (RSA) or SEC1 (EC) PEM; undefined for Ed25519/X25519, which have no legacy form. */
  readonly legacyKeyPath: string | undefined;
  readonly publicKeyPath: string;
  /** Issuing CAs below the trust anchor, nearest first; undefined when the issuer is the root. */
  readonly chainPath: string | undefined;
  /** Issuing CAs including the root, nearest first; undefined for a root. */
  readonly fullChainPath: string | undefined;
  /** PKCS#12 as OpenSSL 3 writes it by default (PBES2/AES). */
  readonly p12Path: string | undefined;
  /** PKCS#12 with PBE-SHA1-3DES and a SHA-1 MAC (what gpgsm 2.2 and iOS read). */
  readonly legacyP12Path: string | undefined;
  /** The CA's CRL; only for CA entities. */
  readonly crlPath: string | undefined;
  readonly crlDerPath: string | undefined;
}

export interface TestPki {
  readonly dir: string;
  readonly p12Password: string;
  readonly entities: Readonly<Record<EntityName, TestEntity>>;
  entity(name: EntityName): TestEntity;
  /** The trust anchor of the main hierarchy (pass to --trust / -CAfile). */
  readonly root: TestEntity;
  readonly intermediate: TestEntity;
}

const cache = new Map<string, Promise<TestPki>>();
let defaultDir: string | undefined;

/**
 * The test PKI, generated once per process (per `dir`). Without `dir` it goes
 * into a fresh temporary directory removed when the process exits.
 */
export function createTestPki(dir?: string): Promise<TestPki> {
  if (dir === undefined) {
    if (defaultDir === undefined) {
      defaultDir = mkdtempSync(join(tmpdir(), 'keyfleet-pki-'));
      const toRemove = defaultDir;
      process.once('exit', () => rmSync(toRemove, { recursive: true, force: true }));
    }
    dir = defaultDir;
  }
  let pki = cache.get(dir);
  if (pki === undefined) {
    pki = generate(dir);
    cache.set(dir, pki);
  }
  return pki;
}

type Specs = Readonly<Record<EntityName, EntitySpec>>;
const specs: Specs = pkiSpec.entities;
const names = Object.keys(specs) as EntityName[];

function spec(name: EntityName): EntitySpec {
  return specs[name];
}

function issuerOf(name: EntityName): EntityName | undefined {
  return spec(name).issuer as EntityName | undefined;
}

/** Issuers of `name`, nearest first, up to and including the self-signed root. */
function ancestors(name: EntityName): EntityName[] {
  const out: EntityName[] = [];
  for (let i = issuerOf(name); i !== undefined; i = issuerOf(i)) {
    if (out.includes(i) || out.length > names.length) throw new Error(`test PKI: issuer cycle at ${name}`);
    out.push(i);
  }
  return out;
}

async function generate(dir: string): Promise<TestPki> {
  for (const n of names) {
    const i = issuerOf(n);
    if (i !== undefined && !(i in specs)) throw new Error(`test PKI: ${n} names unknown issuer ${i}`);
    mkdirSync(join(dir, spec(n).scenario), { recursive: true });
  }
  const base = (n: EntityName): string => join(dir, spec(n).scenario, n);

  // 1. Keys, all at once (RSA key generation is most of the time); entities
  //    declaring keyOf get a copy of that entity's key files.
  for (const n of names) {
    const from = spec(n).keyOf as EntityName | undefined;
    if (from !== undefined && (!(from in specs) || spec(from).keyOf !== undefined || spec(from).key !== spec(n).key)) {
      throw new Error(`test PKI: ${n}.keyOf must name an entity with its own ${spec(n).key} key`);
    }
  }
  const keySuffixes = ['.key.pem', '.key.der', '.pub.pem', '.legacy.pem'];
  await inPool(
    names.filter((n) => spec(n).keyOf === undefined),
    4,
    async (n) => {
      const keyPath = `${base(n)}.key.pem`;
      await runOk('openssl', ['genpkey', ...genpkeyArgs(spec(n).key), '-out', keyPath]);
      const key = createPrivateKey(readFileSync(keyPath));
      writeFileSync(`${base(n)}.key.der`, key.export({ format: 'der', type: 'pkcs8' }));
      writeFileSync(`${base(n)}.pub.pem`, createPublicKey(key).export({ format: 'pem', type: 'spki' }));
      const legacy = legacyKeyType(spec(n).key);
      if (legacy !== undefined) writeFileSync(`${base(n)}.legacy.pem`, key.export({ format: 'pem', type: legacy }));
    },
  );
  for (const n of names) {
    const from = spec(n).keyOf as EntityName | undefined;
    if (from === undefined) continue;
    for (const suffix of keySuffixes) if (existsSync(`${base(from)}${suffix}`)) copyFileSync(`${base(from)}${suffix}`, `${base(n)}${suffix}`);
  }

  // 2. Certificates, one generation of the hierarchy at a time.
  const depth = (n: EntityName): number => ancestors(n).length;
  const maxDepth = Math.max(...names.map(depth));
  for (let d = 0; d <= maxDepth; d++) {
    await inPool(
      names.filter((n) => depth(n) === d),
      4,
      (n) => issue(dir, n, base),
    );
  }

  // 3. Chain files (PEM bundles), for --chain, -certfile and PKCS#12.
  const pem = (n: EntityName): string => readFileSync(`${base(n)}.crt.pem`, 'latin1');
  for (const n of names) {
    const up = ancestors(n);
    if (up.length > 1) writeFileSync(`${base(n)}.chain.pem`, up.slice(0, -1).map(pem).join(''));
    if (up.length > 0) writeFileSync(`${base(n)}.fullchain.pem`, up.map(pem).join(''));
  }

  // 4. CRLs: each CA revokes its children declared revoked (openssl ca -revoke adds
  //    a certificate it did not issue to its database), then signs its CRL.
  const cas = names.filter((n) => spec(n).ca !== undefined);
  await inPool(cas, 4, async (ca) => {
    const db = caDatabase(dir, `crl-${ca}`, '01');
    const caArgs = ['-config', db.config, '-cert', `${base(ca)}.crt.pem`, '-keyfile', `${base(ca)}.key.pem`];
    for (const child of names.filter((n) => issuerOf(n) === ca && spec(n).revoked === true)) {
      await runOk('openssl', ['ca', ...caArgs, '-revoke', `${base(child)}.crt.pem`, '-crl_reason', 'keyCompromise'], { env: db.env });
    }
    await runOk('openssl', ['ca', ...caArgs, '-gencrl', '-crldays', '30', '-md', 'sha256', '-out', `${base(ca)}.crl.pem`], { env: db.env });
    writeFileSync(`${base(ca)}.crl.der`, pemToDer(readFileSync(`${base(ca)}.crl.pem`, 'latin1')));
  });

  // 5. PKCS#12, twice: OpenSSL 3's default (PBES2 AES-256-CBC, PBKDF2, HMAC-SHA256
  //    MAC), and the legacy form (PBE-SHA1-3DES for key and certificates, SHA-1
  //    MAC) that iOS and older Windows need (REFERENCE.md) and that gpgsm 2.2
  //    is limited to. The friendly name is the entity name: NSS uses it as the
  //    nickname.
  const p12Jobs = names.filter((n) => spec(n).p12 === true).flatMap((n) => [
    { n, out: `${base(n)}.p12`, extra: [] as string[] },
    { n, out: `${base(n)}.legacy.p12`, extra: ['-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES', '-macalg', 'sha1'] },
  ]);
  await inPool(p12Jobs, 4, ({ n, out, extra }) =>
    runOk('openssl', [
      'pkcs12', '-export', '-inkey', `${base(n)}.key.pem`, '-in', `${base(n)}.crt.pem`, '-certfile', `${base(n)}.fullchain.pem`,
      '-name', n, '-passout', `pass:${pkiSpec.p12Password}`, ...extra, '-out', out,
    ]),
  );

  const entities = Object.fromEntries(names.map((n) => [n, load(n, base(n))])) as Record<EntityName, TestEntity>;
  return {
    dir,
    p12Password: pkiSpec.p12Password,
    entities,
    entity: (n) => entities[n],
    root: entities.root,
    intermediate: entities.intermediate,
  };
}

function genpkeyArgs(key: KeySpec): string[] {
  switch (key) {
    case 'rsa-2048':
      return ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'];
    case 'rsa-1024':
      return ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'];
    case 'p-256':
      return ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-pkeyopt', 'ec_param_enc:named_curve'];
    case 'p-384':
      return ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-pkeyopt', 'ec_param_enc:named_curve'];
    case 'ed25519':
      return ['-algorithm', 'ED25519'];
    case 'x25519':
      return ['-algorithm', 'X25519'];
  }
}

function legacyKeyType(key: KeySpec): 'pkcs1' | 'sec1' | undefined {
  if (key.startsWith('rsa-')) return 'pkcs1';
  if (key.startsWith('p-')) return 'sec1';
  return undefined;
}

/** An openssl -subj value; '/' inside a value is escaped. */
function subjectOf(s: EntitySpec): string {
  const esc = (v: string): string => v.replace(/[\\/]/g, (c) => `\\${c}`);
  return `/O=Keyfleet Test/CN=${esc(s.commonName)}`;
}

/** X.509v3 extensions in openssl config syntax (section `ext`). */
function extensionsOf(s: EntitySpec): string {
  const lines = ['[ext]', 'subjectKeyIdentifier = hash'];
  // RFC 5280 §4.2.1.1: AKI may be omitted only in a self-signed certificate.
  if (s.issuer !== undefined) lines.push('authorityKeyIdentifier = keyid:always');
  if (s.ca !== undefined) {
    lines.push(`basicConstraints = critical, CA:TRUE${s.ca.pathLen === undefined ? '' : `, pathlen:${s.ca.pathLen}`}`);
  } else {
    lines.push('basicConstraints = critical, CA:FALSE');
  }
  lines.push(`keyUsage = critical, ${s.keyUsage.join(', ')}`);
  if (s.extendedKeyUsage !== undefined) lines.push(`extendedKeyUsage = ${s.extendedKeyUsage.join(', ')}`);
  if (s.emails !== undefined && s.emails.length > 0) lines.push(`subjectAltName = ${s.emails.map((e) => `email:${e}`).join(', ')}`);
  return `${lines.join('\n')}\n`;
}

/** A positive 127-bit serial number in hex (RFC 5280 §4.1.2.2: at most 20 octets). */
function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] ?? 0) & 0x7f) | 0x10;
  return b.toString('hex');
}

function caDatabase(dir: string, label: string, serialHex: string): { config: string; env: Record<string, string> } {
  const db = mkdtempSync(join(dir, `.db-${label}-`));
  writeFileSync(join(db, 'index.txt'), '');
  writeFileSync(join(db, 'serial'), `${serialHex}\n`);
  writeFileSync(join(db, 'crlnumber'), '01\n');
  const config = join(db, 'ca.cnf');
  writeFileSync(
    config,
    [
      '[ca]', 'default_ca = kf',
      '[kf]', 'dir = $ENV::KF_CA_DIR', 'database = $dir/index.txt', 'new_certs_dir = $dir', 'serial = $dir/serial',
      'crlnumber = $dir/crlnumber', 'default_md = sha256', 'policy = any', 'unique_subject = no', 'copy_extensions = none',
      'default_crl_days = 30',
      '[any]', 'organizationName = optional', 'commonName = supplied',
      '',
    ].join('\n'),
  );
  return { config, env: { KF_CA_DIR: db } };
}

/** openssl ca takes YYYYMMDDHHMMSSZ. */
function caTime(daysFromNow: number): string {
  return `${new Date(Date.now() + daysFromNow * 86_400_000).toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

async function issue(dir: string, n: EntityName, base: (n: EntityName) => string): Promise<void> {
  const s = spec(n);
  const out = `${base(n)}.crt.pem`;
  const extPath = `${base(n)}.ext.cnf`;
  writeFileSync(extPath, extensionsOf(s));
  const issuer = issuerOf(n);
  const digest = s.signatureDigest ?? 'sha256';
  const serial = randomSerial();

  if (issuer !== undefined && (s.validity.notBefore ?? 0) === 0) {
    await runOk('openssl', [
      'x509', '-new', '-subj', subjectOf(s), '-force_pubkey', `${base(n)}.pub.pem`,
      '-CA', `${base(issuer)}.crt.pem`, '-CAkey', `${base(issuer)}.key.pem`, '-set_serial', `0x${serial}`,
      '-days', String(s.validity.notAfter), '-extfile', extPath, '-extensions', 'ext', `-${digest}`, '-out', out,
    ]);
    return;
  }
  if (s.forcePubkey === true) throw new Error(`test PKI: ${n}: a forced public key cannot have a declared notBefore`);
  const csr = `${base(n)}.csr.pem`;
  await runOk('openssl', ['req', '-new', '-key', `${base(n)}.key.pem`, '-subj', subjectOf(s), '-out', csr]);
  const db = caDatabase(dir, n, serial);
  const signer = issuer === undefined ? ['-selfsign', '-keyfile', `${base(n)}.key.pem`] : ['-cert', `${base(issuer)}.crt.pem`, '-keyfile', `${base(issuer)}.key.pem`];
  await runOk(
    'openssl',
    [
      'ca', '-batch', '-config', db.config, ...signer, '-in', csr, '-startdate', caTime(s.validity.notBefore ?? 0),
      '-enddate', caTime(s.validity.notAfter), '-extfile', extPath, '-extensions', 'ext', '-md', digest, '-notext',
      '-preserveDN', '-out', out,
    ],
    { env: db.env },
  );
}

function pemToDer(pem: string): Buffer {
  const m = /-----BEGIN [^-]+-----([^-]+)-----END/.exec(pem);
  if (m === null) throw new Error('test PKI: not PEM');
  return Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64');
}

function load(n: EntityName, b: string): TestEntity {
  const s = spec(n);
  const certPem = readFileSync(`${b}.crt.pem`, 'latin1');
  const x = new X509Certificate(certPem);
  writeFileSync(`${b}.crt.der`, x.raw);
  const has = (suffix: string): string | undefined => (existsSync(`${b}${suffix}`) ? `${b}${suffix}` : undefined);
  return {
    name: n,
    scenario: s.scenario,
    spec: s,
    keyType: s.key,
    emails: s.emails ?? [],
    email: s.emails?.[0],
    subject: x.subject,
    serialHex: x.serialNumber.toLowerCase().replace(/^0+(?=.)/, ''),
    sha1Fingerprint: x.fingerprint,
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    certPath: `${b}.crt.pem`,
    certDerPath: `${b}.crt.der`,
    certPem,
    certDer: x.raw,
    keyPath: `${b}.key.pem`,
    keyPem: readFileSync(`${b}.key.pem`, 'latin1'),
    keyDerPath: `${b}.key.der`,
    keyDer: readFileSync(`${b}.key.der`),
    legacyKeyPath: has('.legacy.pem'),
    publicKeyPath: `${b}.pub.pem`,
    chainPath: has('.chain.pem'),
    fullChainPath: has('.fullchain.pem'),
    p12Path: has('.p12'),
    legacyP12Path: has('.legacy.p12'),
    crlPath: has('.crl.pem'),
    crlDerPath: has('.crl.der'),
  };
}
