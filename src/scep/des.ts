/**
 * Single DES (FIPS 46-3) in CBC mode (FIPS 81), for reading the request
 * envelopes of SCEP clients that still encrypt with DES-CBC (micromdm's
 * scepclient, older iOS). Node 24's OpenSSL offers DES only through its
 * legacy provider, which must not be switched on for the whole process
 * (REFERENCE.md "SCEP in practice"), so the cipher is implemented here.
 *
 * Table-driven: the permutations and S-boxes are the standard's tables; the
 * S-boxes are combined with the P permutation once at load time (SP tables),
 * so a round is eight lookups. DES is broken; this exists only to read what
 * old clients send, and encryption is exported for tests and for talking to
 * servers that insist on it.
 */
import { KeyfleetError } from '../errors.ts';

// FIPS 46-3 tables, 1-based bit numbers, bit 1 the most significant.
const IP = [
  58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
  57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];
const P = [16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25];
const PC1 = [
  57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
  63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
];
const PC2 = [
  14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
  41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];
const SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];
const S = [
  [14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, 0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8, 4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, 15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13],
  [15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, 3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5, 0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, 13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9],
  [10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, 13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1, 13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, 1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12],
  [7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, 13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9, 10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, 3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14],
  [2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, 14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6, 4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, 11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3],
  [12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, 10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8, 9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, 4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13],
  [4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, 13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6, 1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, 6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12],
  [13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, 1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2, 7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, 2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11],
];

/** SP[i][v]: S-box i applied to the 6-bit value v, its 4 output bits placed and then permuted by P. */
const SP: Uint32Array[] = S.map((box, i) => {
  const table = new Uint32Array(64);
  for (let v = 0; v < 64; v++) {
    // FIPS 46-3: the outer bits (1 and 6) select the row, the inner four the column.
    const row = ((v >> 4) & 2) | (v & 1);
    const col = (v >> 1) & 15;
    const out = box[row * 16 + col]! << (28 - 4 * i); // bits 4i+1..4i+4 of the 32-bit S output
    let permuted = 0;
    for (let j = 0; j < 32; j++) if ((out >>> (32 - P[j]!)) & 1) permuted |= 1 << (31 - j);
    table[v] = permuted >>> 0;
  }
  return table;
});

/** Applies a permutation table to a 64-bit block held as two 32-bit halves. */
function permute64(hi: number, lo: number, table: readonly number[]): [number, number] {
  let outHi = 0;
  let outLo = 0;
  for (let j = 0; j < table.length; j++) {
    const b = table[j]! - 1;
    const bitValue = b < 32 ? (hi >>> (31 - b)) & 1 : (lo >>> (63 - b)) & 1;
    if (j < 32) outHi |= bitValue << (31 - j);
    else outLo |= bitValue << (63 - j);
  }
  return [outHi >>> 0, outLo >>> 0];
}

/** The inverse of IP (FIPS 46-3 IP⁻¹), derived from IP rather than typed in. */
const FP: number[] = (() => {
  const inv = new Array<number>(64);
  IP.forEach((from, to) => (inv[from - 1] = to + 1));
  return inv;
})();

/** The 16 round keys, each as eight 6-bit values (FIPS 46-3 key schedule). */
function keySchedule(key: Uint8Array): Uint8Array[] {
  const b = Buffer.from(key.buffer, key.byteOffset, 8);
  const [k0, k1] = [b.readUInt32BE(0), b.readUInt32BE(4)];
  // PC-1 gives 56 bits: C = bits 1..28, D = bits 29..56.
  const cd: number[] = PC1.map((p) => (p <= 32 ? (k0 >>> (32 - p)) & 1 : (k1 >>> (64 - p)) & 1));
  let c = cd.slice(0, 28);
  let d = cd.slice(28);
  const rounds: Uint8Array[] = [];
  for (const shift of SHIFTS) {
    c = [...c.slice(shift), ...c.slice(0, shift)];
    d = [...d.slice(shift), ...d.slice(0, shift)];
    const joined = [...c, ...d];
    const k = new Uint8Array(8);
    for (let i = 0; i < 8; i++) {
      let v = 0;
      for (let j = 0; j < 6; j++) v = (v << 1) | joined[PC2[i * 6 + j]! - 1]!;
      k[i] = v;
    }
    rounds.push(k);
  }
  return rounds;
}

function rotl(x: number, n: number): number {
  return ((x << n) | (x >>> (32 - n))) >>> 0;
}

/** One block: the 16 rounds between IP and IP⁻¹ (decryption uses the round keys in reverse). */
function cryptBlock(hi: number, lo: number, keys: readonly Uint8Array[], decrypt: boolean): [number, number] {
  let [l, r] = permute64(hi, lo, IP);
  for (let round = 0; round < 16; round++) {
    const k = keys[decrypt ? 15 - round : round]!;
    let f = 0;
    // E expansion: chunk i is bits 4i, 4i+1, …, 4i+5 of R (1-based, bit 0 meaning bit 32).
    for (let i = 0; i < 8; i++) {
      const chunk = (i === 0 ? rotl(r, 31) : rotl(r, 4 * i - 1)) >>> 26;
      f ^= SP[i]![(chunk ^ k[i]!) & 63]!;
    }
    const next = (l ^ f) >>> 0;
    l = r;
    r = next;
  }
  // The last round is not swapped: output is R16 L16.
  return permute64(r, l, FP);
}

export interface DesKey {
  readonly rounds: readonly Uint8Array[];
}

/** Prepares a DES key (8 octets; the parity bits are ignored, as FIPS 46-3 allows). */
export function desKey(key: Uint8Array): DesKey {
  if (key.length !== 8) throw new KeyfleetError('KF_CMS_DECRYPT_FAILED', `a DES key has 8 octets, got ${key.length}`);
  return { rounds: keySchedule(key) };
}

/** Encrypts or decrypts one 8-octet block (ECB; used for the known-answer tests). */
export function desBlock(key: DesKey, block: Uint8Array, decrypt: boolean): Uint8Array {
  const b = Buffer.from(block.buffer, block.byteOffset, 8);
  const [hi, lo] = cryptBlock(b.readUInt32BE(0), b.readUInt32BE(4), key.rounds, decrypt);
  const out = Buffer.alloc(8);
  out.writeUInt32BE(hi, 0);
  out.writeUInt32BE(lo, 4);
  return out;
}

/** DES-CBC encryption of whole blocks (no padding: the caller pads, RFC 5652 §6.3). */
export function desCbcEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Uint8Array {
  return cbc(key, iv, plaintext, false);
}

/** DES-CBC decryption of whole blocks (no unpadding: the caller checks the padding). */
export function desCbcDecrypt(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  return cbc(key, iv, ciphertext, true);
}

function cbc(key: Uint8Array, iv: Uint8Array, input: Uint8Array, decrypt: boolean): Uint8Array {
  if (iv.length !== 8) throw new KeyfleetError('KF_CMS_MALFORMED', `a DES-CBC IV has 8 octets, got ${iv.length}`);
  if (input.length % 8 !== 0) throw new KeyfleetError('KF_CMS_DECRYPT_FAILED', `DES-CBC input of ${input.length} octets is not a multiple of 8`);
  const { rounds } = desKey(key);
  const src = Buffer.from(input.buffer, input.byteOffset, input.length);
  const out = Buffer.alloc(input.length);
  const ivb = Buffer.from(iv.buffer, iv.byteOffset, 8);
  let prevHi = ivb.readUInt32BE(0);
  let prevLo = ivb.readUInt32BE(4);
  for (let p = 0; p < input.length; p += 8) {
    const hi = src.readUInt32BE(p);
    const lo = src.readUInt32BE(p + 4);
    if (decrypt) {
      const [h, l] = cryptBlock(hi, lo, rounds, true);
      out.writeUInt32BE((h ^ prevHi) >>> 0, p);
      out.writeUInt32BE((l ^ prevLo) >>> 0, p + 4);
      prevHi = hi;
      prevLo = lo;
    } else {
      const [h, l] = cryptBlock((hi ^ prevHi) >>> 0, (lo ^ prevLo) >>> 0, rounds, false);
      out.writeUInt32BE(h, p);
      out.writeUInt32BE(l, p + 4);
      prevHi = h;
      prevLo = l;
    }
  }
  return out;
}
