/**
 * What the peer wrappers share: peer presence, scratch directories, and
 * one-at-a-time access to a peer's database.
 */
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export type Digest = 'sha256' | 'sha384' | 'sha512';
export type Cipher = 'aes-128-cbc' | 'aes-256-cbc' | 'aes-128-gcm' | 'aes-256-gcm';

// ---------------------------------------------------------------------------
// Presence

export type PeerName = 'openssl' | 'gpgsm' | 'nss';

const programs: Record<PeerName, { readonly bins: readonly string[]; readonly pkg: string }> = {
  openssl: { bins: ['openssl'], pkg: 'openssl' },
  gpgsm: { bins: ['gpgsm', 'gpg-agent', 'gpgconf'], pkg: 'gpgsm' },
  nss: { bins: ['cmsutil', 'certutil', 'pk12util'], pkg: 'libnss3-tools' },
};

function onPath(bin: string): boolean {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      accessSync(join(dir, bin), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** Programs of `peers` that are not installed. */
export function missingPeers(...peers: PeerName[]): string[] {
  return peers.flatMap((p) => programs[p].bins.filter((b) => !onPath(b)).map((b) => `${b} (Debian package ${programs[p].pkg})`));
}

/**
 * Fails loudly when a peer is missing. Interop tests must not skip: CI
 * installs the peers (.ci/run), and a silent skip would pass without testing.
 */
export function requirePeers(...peers: PeerName[]): void {
  const missing = missingPeers(...peers);
  if (missing.length > 0) {
    throw new Error(`interop peers are not installed: ${missing.join(', ')}. Install them (see .ci/run); these tests never skip.`);
  }
}

// ---------------------------------------------------------------------------
// Scratch files (removed when the process exits)

let scratchRoot: string | undefined;
let scratchCount = 0;

/** A fresh directory for one peer call's files. */
export function scratchDir(label: string): string {
  if (scratchRoot === undefined) {
    scratchRoot = mkdtempSync(join(tmpdir(), 'keyfleet-peers-'));
    const root = scratchRoot;
    process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  }
  const dir = join(scratchRoot, `${label}-${++scratchCount}`);
  mkdirSync(dir);
  return dir;
}

export function file(dir: string, name: string, bytes: Uint8Array | string): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

/**
 * Runs tasks on one resource one at a time. gpgsm's keybox lock makes
 * concurrent calls on one home wait seconds and then fail ("failed to find
 * the certificate: Unknown system error"); NSS's database is treated alike.
 */
export class Serial {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task, task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
