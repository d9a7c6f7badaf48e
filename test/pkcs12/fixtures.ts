/**
 * Keys and certificates for the PKCS#12 tests, made with the `openssl` CLI
 * in a fresh temporary folder at test time (no binary fixtures): a CA with a
 * P-256 key, a history of three RSA encryption certificates for alice (each
 * with its own key, as renewals usually have), one more certificate that
 * re-certifies alice's newest key, and bob with a P-256 key.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Certificate, decodeCertificate, loadCertificates } from '../../src/x509/certificate.ts';
import { inPool, runOk } from '../support/exec.ts';

export interface Identity {
  readonly name: string;
  readonly keyPath: string;
  readonly certPath: string;
  readonly key: KeyObject;
  readonly cert: Certificate;
}

export interface Fixtures {
  readonly dir: string;
  readonly ca: Identity;
  /** Three certificates over time, oldest first, each with its own RSA key. */
  readonly alice: readonly [Identity, Identity, Identity];
  /** A second certificate for alice[2]'s key (a renewal that kept the key). */
  readonly aliceRekeyless: Identity;
  readonly bob: Identity;
  path(name: string): string;
  cleanup(): void;
}

export function openssl(args: readonly string[], input?: string | Uint8Array) {
  return runOk('openssl', args, input === undefined ? {} : { input });
}

function load(dir: string, name: string, keyName = name): Identity {
  const keyPath = join(dir, `${keyName}.key`);
  const certPath = join(dir, `${name}.pem`);
  const cert = loadCertificates(readFileSync(certPath))[0]!;
  return { name, keyPath, certPath, key: createPrivateKey(readFileSync(keyPath)), cert: decodeCertificate(cert.der) };
}

export async function makeFixtures(): Promise<Fixtures> {
  const dir = mkdtempSync(join(tmpdir(), 'keyfleet-p12-'));
  const p = (n: string) => join(dir, n);
  const ext = ['-addext', 'keyUsage=critical,keyEncipherment', '-addext', 'extendedKeyUsage=emailProtection'];
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-subj', '/CN=Keyfleet Test CA', '-days', '30']);
  const issue = (name: string, newkey: readonly string[], email: string) =>
    openssl(['req', '-x509', ...newkey, '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-subj', `/CN=${email}`, '-addext', `subjectAltName=email:${email}`, ...ext, '-days', '30', '-out', p(`${name}.pem`)]);
  await inPool(
    [
      ['alice1', 'rsa:2048', 'alice@example.com'],
      ['alice2', 'rsa:2048', 'alice@example.com'],
      ['alice3', 'rsa:2048', 'alice@example.com'],
      ['bob', 'ec', 'bob@example.com'],
    ] as const,
    2,
    ([name, alg, email]) =>
      issue(name, ['-newkey', alg, ...(alg === 'ec' ? ['-pkeyopt', 'ec_paramgen_curve:P-256'] : []), '-nodes', '-keyout', p(`${name}.key`)], email),
  );
  await issue('alice3b', ['-key', p('alice3.key')], 'alice@example.com');
  return {
    dir,
    ca: load(dir, 'ca'),
    alice: [load(dir, 'alice1'), load(dir, 'alice2'), load(dir, 'alice3')],
    aliceRekeyless: load(dir, 'alice3b', 'alice3'),
    bob: load(dir, 'bob'),
    path: p,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The PKCS#8 DER of a private key, for comparing keys. */
export function pkcs8(key: KeyObject): Buffer {
  return key.export({ type: 'pkcs8', format: 'der' });
}
