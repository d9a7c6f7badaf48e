/**
 * Password-based key derivation for PKCS#12: the PKCS#12 KDF (RFC 7292
 * Appendix B.2) used by the legacy PBEs and the classic MAC, PBKDF2
 * (RFC 8018 §5.2) used by PBES2 and PBMAC1, and the iteration budget that
 * keeps a hostile file from spending our CPU.
 */
import { hash, pbkdf2Sync } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';

export type KdfHash = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

/** Output length u and block length v (bytes) of each hash (RFC 7292 §B.2). */
const sizes: Record<KdfHash, { u: number; v: number }> = {
  sha1: { u: 20, v: 64 },
  sha224: { u: 28, v: 64 },
  sha256: { u: 32, v: 64 },
  sha384: { u: 48, v: 128 },
  sha512: { u: 64, v: 128 },
};

export function hashOutputLength(h: KdfHash): number {
  return sizes[h].u;
}

/** The purposes of RFC 7292 §B.3: ID 1 key material, 2 IV, 3 MAC key. */
export const KdfId = { key: 1, iv: 2, mac: 3 } as const;
export type KdfId = (typeof KdfId)[keyof typeof KdfId];

/**
 * A PKCS#12 KDF password (RFC 7292 §B.1): BMPString (UTF-16BE) with two
 * trailing zero bytes. Characters beyond the BMP are encoded as surrogate
 * pairs, as OpenSSL 3 and NSS do.
 */
export function bmpPassword(password: string): Uint8Array {
  const b = Buffer.alloc(password.length * 2 + 2);
  b.write(password, 0, 'utf16le');
  b.subarray(0, password.length * 2).swap16();
  return b;
}

/**
 * Limits on key-derivation work. Every derivation is charged before it
 * runs, so a file asking for 2^31 iterations is refused at once instead of
 * after minutes of hashing. On the 2-core machines (idle) an iteration of
 * either KDF costs roughly 0.3–0.4 µs, so the defaults (10,000,000 per
 * derivation, 20,000,000 per file) bound a hostile file at several seconds
 * while leaving room for NSS's 600,000-iteration exports.
 */
export class IterationBudget {
  readonly maxIterations: number;
  private remaining: number;

  constructor(maxIterations: number, maxTotal: number) {
    this.maxIterations = maxIterations;
    this.remaining = maxTotal;
  }

  /** Charges `iterations` × `rounds` (one round per output block), or throws KF_KEY_INVALID. */
  charge(iterations: number, rounds = 1): void {
    if (!Number.isSafeInteger(iterations) || iterations < 1) {
      throw new KeyfleetError('KF_KEY_INVALID', `PKCS#12 iteration count ${iterations} is not a positive integer`);
    }
    if (iterations > this.maxIterations) {
      throw new KeyfleetError('KF_KEY_INVALID', `PKCS#12 iteration count ${iterations} exceeds the limit of ${this.maxIterations}`);
    }
    const cost = iterations * rounds;
    if (cost > this.remaining) {
      throw new KeyfleetError('KF_KEY_INVALID', 'PKCS#12 file asks for more key-derivation work in total than allowed');
    }
    this.remaining -= cost;
  }
}

export const DEFAULT_MAX_ITERATIONS = 10_000_000;
export const DEFAULT_MAX_TOTAL_ITERATIONS = 20_000_000;

/** A budget large enough for anything we write ourselves. */
export function defaultBudget(): IterationBudget {
  return new IterationBudget(DEFAULT_MAX_ITERATIONS, DEFAULT_MAX_TOTAL_ITERATIONS);
}

/** `source` repeated to `length` bytes, the last copy cut short (RFC 7292 §B.2 steps 2 and 3). */
function repeatInto(source: Uint8Array, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let p = 0; p < length; p += source.length) out.set(source.subarray(0, Math.min(source.length, length - p)), p);
  return out;
}

/**
 * The PKCS#12 KDF (RFC 7292 Appendix B.2): `n` bytes for purpose `id` from
 * a BMPString password (see bmpPassword), a salt and an iteration count.
 */
export function pkcs12Kdf(h: KdfHash, password: Uint8Array, salt: Uint8Array, iterations: number, id: KdfId, n: number, budget: IterationBudget): Uint8Array {
  const { u, v } = sizes[h];
  const c = Math.ceil(n / u);
  budget.charge(iterations, c);
  const d = Buffer.alloc(v, id);
  const s = salt.length === 0 ? Buffer.alloc(0) : repeatInto(salt, v * Math.ceil(salt.length / v));
  const p = password.length === 0 ? Buffer.alloc(0) : repeatInto(password, v * Math.ceil(password.length / v));
  const i = Buffer.concat([s, p]);
  const out = Buffer.alloc(c * u);
  const a = Buffer.alloc(u);
  for (let block = 0; block < c; block++) {
    // Step 6a: A = H^r(D || I). The rounds are one-shot hashes into a reused
    // buffer with 'binary' (latin1) output: a Buffer result per round costs four times
    // as much in Node 24, and NSS writes files with 600,000 iterations.
    a.write(hash(h, Buffer.concat([d, i]), 'binary'), 0, u, 'latin1');
    for (let r = 1; r < iterations; r++) a.write(hash(h, a, 'binary'), 0, u, 'latin1');
    a.copy(out, block * u);
    if (block === c - 1) break;
    // Steps 6b and 6c: B = A repeated to v bytes; each v-byte block Ij of I
    // becomes (Ij + B + 1) mod 2^(8v).
    const b = repeatInto(a, v);
    for (let j = 0; j < i.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = i[j + k]! + b[k]! + carry;
        i[j + k] = sum & 0xff;
        carry = sum >>> 8;
      }
    }
  }
  return out.subarray(0, n);
}

/** PBKDF2 (RFC 8018 §5.2) through OpenSSL, charged to the budget. */
export function pbkdf2(password: Uint8Array, salt: Uint8Array, iterations: number, keyLength: number, prf: KdfHash, budget: IterationBudget): Uint8Array {
  budget.charge(iterations, Math.ceil(keyLength / sizes[prf].u));
  return pbkdf2Sync(password, salt, iterations, keyLength, prf);
}
