/**
 * Raw RSA-2048 private-key rates, the floor of a 1 KB sign or decrypt:
 * `openssl speed` (the yardstick) and the same operations through
 * node:crypto — Node 24 bundles OpenSSL 3.5 while the CLI here is 3.0, so
 * both are shown. Sampled more than once; the best sample counts.
 */
import { constants, createPrivateKey, createPublicKey, privateDecrypt, publicEncrypt, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { timeLoop } from './measure.ts';
import { opensslSpeed, type RsaRate } from './openssl.ts';
import type { BenchPki } from './pki.ts';

/** Raw RSA-2048 private-key rates through node:crypto, per CPU second and per wall second. */
export interface NodeRsaRate {
  readonly signPerCpuSec: number;
  readonly signPerSec: number;
  /** RSAES-PKCS1-v1_5 decryption (with OpenSSL 3.5's implicit rejection), the private-key op of our decrypt. */
  readonly decryptPerCpuSec: number;
  readonly decryptPerSec: number;
}

export async function nodeRsaRate(pki: BenchPki, seconds: number): Promise<NodeRsaRate> {
  const key = createPrivateKey(readFileSync(pki.leafKey));
  const data = randomBytes(32);
  const wrapped = publicEncrypt({ key: createPublicKey(key), padding: constants.RSA_PKCS1_PADDING }, data);
  const plan = { warmup: 50, minIterations: 100, minSeconds: seconds, maxIterations: 1_000_000 };
  const signing = await timeLoop(() => sign('sha256', data, key), plan);
  const decrypting = await timeLoop(() => privateDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, wrapped), plan);
  return {
    signPerCpuSec: signing.opsPerCpuSec,
    signPerSec: signing.opsPerSec,
    decryptPerCpuSec: decrypting.opsPerCpuSec,
    decryptPerSec: decrypting.opsPerSec,
  };
}

/** One sample of both raw rates. */
export interface RawRsaSample {
  readonly opensslSpeed: RsaRate | undefined;
  readonly opensslSpeedError?: string;
  readonly nodeCrypto: NodeRsaRate;
}

export async function sampleRawRsa(pki: BenchPki, quick: boolean): Promise<RawRsaSample> {
  const nodeCrypto = await nodeRsaRate(pki, quick ? 0.5 : 1.5);
  try {
    return { opensslSpeed: opensslSpeed(quick ? 1 : 3), nodeCrypto };
  } catch (e) {
    return { opensslSpeed: undefined, opensslSpeedError: e instanceof Error ? e.message : String(e), nodeCrypto };
  }
}

/**
 * The fastest of several samples: other load on the machine only ever
 * lowers a rate, so the best sample is the truest yardstick (and the
 * hardest bar for our figures).
 */
export function bestRawRsa(samples: readonly RawRsaSample[]): { opensslSpeed: RsaRate | undefined; nodeCrypto: NodeRsaRate | undefined } {
  const max = <T>(items: readonly T[], key: (t: T) => number): T | undefined => items.reduce<T | undefined>((a, b) => (a === undefined || key(b) > key(a) ? b : a), undefined);
  return {
    opensslSpeed: max(samples.flatMap((s) => (s.opensslSpeed === undefined ? [] : [s.opensslSpeed])), (r) => r.signPerSec),
    nodeCrypto: max(samples.map((s) => s.nodeCrypto), (r) => r.signPerCpuSec),
  };
}

