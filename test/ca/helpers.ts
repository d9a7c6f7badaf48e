/** Shared fixtures for the CA tests: a CA over the in-memory store, files for openssl, and openssl runs. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodePem } from '../../src/asn1/pem.ts';
import type { CertificateAuthority } from '../../src/ca/authority.ts';
import type { KeySpec } from '../../src/ca/key-spec.ts';
import { SealedKeyStore } from '../../src/ca/keystore.ts';
import { initCa } from '../../src/ca/setup.ts';
import { type RunResult, run } from '../support/exec.ts';
import { MemoryCaStore } from './memory-store.ts';

export interface TestCa {
  readonly ca: CertificateAuthority;
  readonly store: MemoryCaStore;
  readonly keyStore: SealedKeyStore;
  readonly kek: Uint8Array;
  readonly dir: string;
  /** root.pem and issuing.pem in `dir`. */
  readonly rootPath: string;
  readonly issuingPath: string;
  cleanup(): void;
}

export const URLS = { crl: ['http://pki.example.test/crl/issuing.crl'], ocsp: ['http://pki.example.test/ocsp'], caIssuers: ['http://pki.example.test/ca/issuing.crt'] };

export async function makeTestCa(keyType: KeySpec, options: { readonly clock?: () => Date } = {}): Promise<TestCa> {
  const store = new MemoryCaStore();
  const kek = randomBytes(32);
  const keyStore = new SealedKeyStore(kek);
  const ca = await initCa({ store, keyStore, keyType, urls: URLS, ...(options.clock ? { clock: options.clock } : {}) });
  const dir = mkdtempSync(join(tmpdir(), 'kf-ca-'));
  const rootPath = writePem(dir, 'root.pem', 'CERTIFICATE', ca.chain[0]!.der);
  const issuingPath = writePem(dir, 'issuing.pem', 'CERTIFICATE', ca.certificate.der);
  return { ca, store, keyStore, kek, dir, rootPath, issuingPath, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writePem(dir: string, name: string, label: string, der: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, encodePem(label, der));
  return path;
}

export function openssl(args: readonly string[], input?: string | Uint8Array): Promise<RunResult> {
  return run('openssl', args, input === undefined ? {} : { input });
}

/** `openssl verify -x509_strict -purpose P -CAfile root -untrusted issuing cert`. */
export function opensslVerify(t: TestCa, certPath: string, purpose: string, extra: readonly string[] = []): Promise<RunResult> {
  return openssl(['verify', '-x509_strict', '-purpose', purpose, '-CAfile', t.rootPath, '-untrusted', t.issuingPath, ...extra, certPath]);
}
