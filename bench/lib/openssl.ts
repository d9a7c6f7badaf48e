/**
 * The OpenSSL CLI as a yardstick: its raw RSA-2048 rate (`openssl speed`)
 * and `openssl cms` on the same file as whole processes.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { BenchPki } from './pki.ts';
import { timeProcess, type ProcessTiming, type WholeProcessFiles } from './process.ts';

export function opensslCliVersion(): string {
  return execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim();
}

/** Version without the build date: "OpenSSL 3.0.22". */
export function shortVersion(version: string): string {
  return version.split(' ').slice(0, 2).join(' ');
}

/** Operations per second of user CPU time: `openssl speed` divides by user CPU time unless given -elapsed. */
export interface RsaRate {
  readonly signPerSec: number;
  readonly verifyPerSec: number;
}

/** `openssl speed -seconds N rsa2048`: parses the "rsa 2048 bits … sign/s verify/s" row. */
export function opensslSpeed(seconds: number): RsaRate {
  const out = execFileSync('openssl', ['speed', '-seconds', String(seconds), 'rsa2048'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  // "rsa 2048 bits 0.000376s 0.000029s   2658.6  34862.0" (3.0); 3.2+ adds encrypt/decrypt columns before sign.
  const lines = out.split('\n');
  const row = lines.find((l) => /^rsa\s+2048 bits/.test(l));
  const header = lines.find((l) => /sign\/s/.test(l));
  if (row === undefined || header === undefined) throw new Error(`cannot parse openssl speed output:\n${out}`);
  const cols = header.trim().split(/\s+/);
  const values = row.replace(/^rsa\s+2048 bits\s+/, '').trim().split(/\s+/);
  const at = (name: string): number => {
    const i = cols.indexOf(name);
    const v = i < 0 ? undefined : values[i];
    if (v === undefined) throw new Error(`openssl speed output has no ${name} column:\n${out}`);
    return Number(v);
  };
  return { signPerSec: at('sign/s'), verifyPerSec: at('verify/s') };
}

/** `openssl cms` sign, verify, encrypt and decrypt of `files.message`, each verifying/decrypting its own output. */
export function opensslCms(pki: BenchPki, files: WholeProcessFiles, repeats: number): ProcessTiming[] {
  const f = (name: string): string => join(files.scratch, name);
  return [
    timeProcess('sign', 'openssl', ['cms', '-sign', '-md', 'sha256', '-signer', pki.leafCert, '-inkey', pki.leafKey, '-in', files.message, '-out', f('openssl-signed.eml')], repeats, files.scratch),
    timeProcess('verify', 'openssl', ['cms', '-verify', '-CAfile', pki.rootCert, '-in', f('openssl-signed.eml'), '-out', f('openssl-verified.eml')], repeats, files.scratch),
    timeProcess('encrypt', 'openssl', ['cms', '-encrypt', '-aes256', '-in', files.message, '-out', f('openssl-encrypted.eml'), pki.leafCert], repeats, files.scratch),
    timeProcess('decrypt', 'openssl', ['cms', '-decrypt', '-recip', pki.leafCert, '-inkey', pki.leafKey, '-in', f('openssl-encrypted.eml'), '-out', f('openssl-decrypted.eml')], repeats, files.scratch),
  ];
}

