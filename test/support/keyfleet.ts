/**
 * Running the `keyfleet` command as users and outside checks do: a child
 * process `node_modules/.bin/node bin/keyfleet …` with stdin and stdout,
 * and reading what it reports (issue 2's contract).
 */
import assert from 'node:assert/strict';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RunResult, describeRun, run } from './exec.ts';
import type { TestEntity } from './pki.ts';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const node = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/keyfleet', import.meta.url));

/**
 * Node's compile cache (keyed by source hash, so edits invalidate it) cuts a
 * run's CPU time about fourfold (0.42 s to 0.10 s here): type stripping and
 * compiling our sources is most of a short command's cost, and the suite
 * runs the command a few hundred times.
 */
const compileCache = join(tmpdir(), 'keyfleet-test-compile-cache');

export function keyfleet(args: readonly string[], input?: Uint8Array | string): Promise<RunResult> {
  return run(node, [bin, ...args], {
    cwd: repoRoot,
    env: { NODE_COMPILE_CACHE: compileCache },
    timeoutMs: 30_000,
    ...(input === undefined ? {} : { input }),
  });
}

/** Runs keyfleet and requires exit 0; returns stdout. */
export async function keyfleetOk(args: readonly string[], input?: Uint8Array | string): Promise<Buffer> {
  const r = await keyfleet(args, input);
  assert.equal(r.status, 0, `keyfleet failed:\n${describeRun(r)}`);
  return r.stdout;
}

// --- argument builders ------------------------------------------------------

export interface SignFlags {
  readonly opaque?: boolean;
  readonly digest?: 'sha256' | 'sha384' | 'sha512';
  readonly pss?: boolean;
  /** Pass the signer's issuing CAs with --chain; default true. */
  readonly chain?: boolean;
}

export function signArgs(signer: TestEntity, f: SignFlags = {}): string[] {
  const args = ['smime', 'sign', '--cert', signer.certPath, '--key', signer.keyPath];
  if (f.chain !== false && signer.chainPath !== undefined) args.push('--chain', signer.chainPath);
  if (f.opaque === true) args.push('--opaque');
  if (f.digest !== undefined) args.push('--digest', f.digest);
  if (f.pss === true) args.push('--pss');
  return args;
}

export function verifyArgs(trust: readonly TestEntity[], extra: readonly string[] = []): string[] {
  return ['smime', 'verify', ...trust.flatMap((t) => ['--trust', t.certPath]), ...extra];
}

export type CipherFlag = 'aes-256-gcm' | 'aes-128-gcm' | 'aes-256-cbc' | 'aes-128-cbc';

export function encryptArgs(to: readonly TestEntity[], f: { readonly cipher?: CipherFlag; readonly oaep?: boolean } = {}): string[] {
  const args = ['smime', 'encrypt', ...to.flatMap((r) => ['--to', r.certPath])];
  if (f.cipher !== undefined) args.push('--cipher', f.cipher);
  if (f.oaep === true) args.push('--oaep');
  return args;
}

/** decrypt with each entity's PKCS#8 key and PEM certificate. */
export function decryptArgs(pairs: readonly TestEntity[]): string[] {
  return ['smime', 'decrypt', ...pairs.flatMap((p) => ['--key', p.keyPath, '--cert', p.certPath])];
}

// --- what keyfleet reports --------------------------------------------------

export const verifyReasons = [
  'bad-signature',
  'digest-mismatch',
  'untrusted-chain',
  'expired',
  'not-yet-valid',
  'revoked',
  'wrong-key-usage',
  'wrong-eku',
  'sender-mismatch',
  'weak-algorithm',
] as const;
export type VerifyReason = (typeof verifyReasons)[number];

const reasonPattern = new RegExp(`(?<![\\w-])(${verifyReasons.join('|')})(?![\\w-])`, 'g');

export function stderrLines(r: RunResult): string[] {
  return r.stderr.split('\n').filter((l) => l.trim() !== '');
}

/** The verification reasons named on stderr, one line per reason (issue 2). */
export function reasonsOnStderr(r: RunResult): Set<VerifyReason> {
  const found = new Set<VerifyReason>();
  for (const line of stderrLines(r)) for (const m of line.matchAll(reasonPattern)) found.add(m[1] as VerifyReason);
  return found;
}

/** A failed run that says why in exactly one line: no stack trace, no internal error. */
export function assertOneReadableLine(r: RunResult, what: string): string {
  assert.equal(r.timedOut, false, `${what}: timed out\n${describeRun(r)}`);
  assert.equal(r.status, 1, `${what}: expected exit 1\n${describeRun(r)}`);
  const lines = stderrLines(r);
  assert.equal(lines.length, 1, `${what}: expected one line on stderr\n${describeRun(r)}`);
  const line = lines[0] ?? '';
  assert.doesNotMatch(line, /internal error|\bat .+:\d+:\d+|TypeError|RangeError|ReferenceError/, `${what}: not a coded error\n${describeRun(r)}`);
  return line;
}

export interface SignerJson {
  readonly certificate: unknown;
  readonly emailAddresses: readonly string[];
  readonly chain: readonly unknown[];
  readonly signingTime: string | null;
  readonly reasons: readonly string[];
}

export interface VerifyJson {
  readonly signers: readonly SignerJson[];
}

/** `verify --json` output, checked for the fields issue 2 names. */
export function parseVerifyJson(r: RunResult): VerifyJson {
  let value: unknown;
  try {
    value = JSON.parse(r.stdout.toString('utf8'));
  } catch {
    assert.fail(`verify --json did not print JSON:\n${describeRun(r)}`);
  }
  const signers = (value as { signers?: unknown }).signers;
  assert.ok(Array.isArray(signers), `verify --json: no "signers" array\n${describeRun(r)}`);
  for (const s of signers as Record<string, unknown>[]) {
    assert.ok('certificate' in s, 'signer.certificate');
    assert.ok(Array.isArray(s['emailAddresses']), 'signer.emailAddresses');
    assert.ok(Array.isArray(s['chain']), 'signer.chain');
    assert.ok(s['signingTime'] === null || s['signingTime'] === undefined || typeof s['signingTime'] === 'string', 'signer.signingTime');
    assert.ok(Array.isArray(s['reasons']), 'signer.reasons');
  }
  return value as VerifyJson;
}

// --- messages ---------------------------------------------------------------

export interface MessageFields {
  readonly from: string;
  readonly to?: string;
  readonly subject?: string;
  readonly text: string;
}

/** A whole RFC 5322 message with a text/plain body, CRLF line endings. */
export function rfc5322Message(m: MessageFields): Buffer {
  const lines = [
    `From: ${m.from}`,
    `To: ${m.to ?? 'Bob <bob@example.com>'}`,
    `Subject: ${m.subject ?? 'Keyfleet interop'}`,
    'Date: Sat, 28 Nov 2026 12:00:00 +0000',
    `Message-ID: <${Buffer.from(m.text).toString('hex').slice(0, 16)}.interop@example.com>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 7bit',
    '',
    ...m.text.split('\n'),
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'utf8');
}
