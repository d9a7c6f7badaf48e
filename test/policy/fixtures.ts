/**
 * Certificates for the policy tests, made with the `openssl` CLI in a fresh
 * temporary folder (no binary fixtures): a CA, an S/MIME encryption
 * certificate (keyEncipherment), a signing certificate (digitalSignature)
 * and a TLS-client-only certificate, each with its RSA key; PFX files are
 * written from them with src/pkcs12.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Certificate, loadCertificates } from '../../src/x509/certificate.ts';
import { runOk } from '../support/exec.ts';

export interface Identity {
  readonly key: KeyObject;
  readonly cert: Certificate;
}

export interface PolicyFixtures {
  readonly ca: Identity;
  readonly encryption: Identity;
  readonly signing: Identity;
  readonly clientAuth: Identity;
}

let cached: Promise<PolicyFixtures> | undefined;

export function policyFixtures(): Promise<PolicyFixtures> {
  return (cached ??= make());
}

async function make(): Promise<PolicyFixtures> {
  const dir = mkdtempSync(join(tmpdir(), 'kf-policy-'));
  const p = (n: string) => join(dir, n);
  const load = (name: string): Identity => ({ key: createPrivateKey(readFileSync(p(`${name}.key`))), cert: loadCertificates(readFileSync(p(`${name}.pem`)))[0]! });
  try {
    await runOk('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-subj', '/CN=Keyfleet Policy Test CA', '-days', '30',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    const leaf = (name: string, email: string, ku: string, eku: string) =>
      runOk('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p(`${name}.key`), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-subj', `/CN=${email}`,
        '-addext', `subjectAltName=email:${email}`, '-addext', `keyUsage=critical,${ku}`, '-addext', `extendedKeyUsage=${eku}`, '-addext', 'basicConstraints=critical,CA:FALSE',
        '-days', '30', '-out', p(`${name}.pem`)]);
    await Promise.all([
      leaf('encryption', 'alice@example.com', 'keyEncipherment', 'emailProtection'),
      leaf('signing', 'alice@example.com', 'digitalSignature,nonRepudiation', 'emailProtection'),
      leaf('client', 'device@example.com', 'digitalSignature', 'clientAuth'),
    ]);
    return { ca: load('ca'), encryption: load('encryption'), signing: load('signing'), clientAuth: load('client') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
