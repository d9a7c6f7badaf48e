/**
 * RC2 (RFC 2268), for reading the certificate bags that Windows and
 * `openssl pkcs12 -legacy` encrypt with pbeWithSHAAnd40BitRC2-CBC.
 *
 * OpenSSL 3 offers RC2 only through its legacy provider, which Node 24 does
 * not load and which must not be switched on for the whole process
 * (REFERENCE.md pitfall 9), so the cipher is implemented here. It is the
 * symmetric block cipher only: key expansion (§2), encryption (§3) and
 * decryption (§4) of 64-bit blocks as sixteen-bit words, plus CBC decryption
 * with PKCS#5 padding. Nothing in Keyfleet writes RC2.
 */
import { KeyfleetError } from '../errors.ts';

/** RFC 2268 §2: PITABLE, a permutation of 0..255 based on the digits of pi. */
// prettier-ignore
const PITABLE = Uint8Array.of(
  0xd9, 0x78, 0xf9, 0xc4, 0x19, 0xdd, 0xb5, 0xed, 0x28, 0xe9, 0xfd, 0x79, 0x4a, 0xa0, 0xd8, 0x9d,
  0xc6, 0x7e, 0x37, 0x83, 0x2b, 0x76, 0x53, 0x8e, 0x62, 0x4c, 0x64, 0x88, 0x44, 0x8b, 0xfb, 0xa2,
  0x17, 0x9a, 0x59, 0xf5, 0x87, 0xb3, 0x4f, 0x13, 0x61, 0x45, 0x6d, 0x8d, 0x09, 0x81, 0x7d, 0x32,
  0xbd, 0x8f, 0x40, 0xeb, 0x86, 0xb7, 0x7b, 0x0b, 0xf0, 0x95, 0x21, 0x22, 0x5c, 0x6b, 0x4e, 0x82,
  0x54, 0xd6, 0x65, 0x93, 0xce, 0x60, 0xb2, 0x1c, 0x73, 0x56, 0xc0, 0x14, 0xa7, 0x8c, 0xf1, 0xdc,
  0x12, 0x75, 0xca, 0x1f, 0x3b, 0xbe, 0xe4, 0xd1, 0x42, 0x3d, 0xd4, 0x30, 0xa3, 0x3c, 0xb6, 0x26,
  0x6f, 0xbf, 0x0e, 0xda, 0x46, 0x69, 0x07, 0x57, 0x27, 0xf2, 0x1d, 0x9b, 0xbc, 0x94, 0x43, 0x03,
  0xf8, 0x11, 0xc7, 0xf6, 0x90, 0xef, 0x3e, 0xe7, 0x06, 0xc3, 0xd5, 0x2f, 0xc8, 0x66, 0x1e, 0xd7,
  0x08, 0xe8, 0xea, 0xde, 0x80, 0x52, 0xee, 0xf7, 0x84, 0xaa, 0x72, 0xac, 0x35, 0x4d, 0x6a, 0x2a,
  0x96, 0x1a, 0xd2, 0x71, 0x5a, 0x15, 0x49, 0x74, 0x4b, 0x9f, 0xd0, 0x5e, 0x04, 0x18, 0xa4, 0xec,
  0xc2, 0xe0, 0x41, 0x6e, 0x0f, 0x51, 0xcb, 0xcc, 0x24, 0x91, 0xaf, 0x50, 0xa1, 0xf4, 0x70, 0x39,
  0x99, 0x7c, 0x3a, 0x85, 0x23, 0xb8, 0xb4, 0x7a, 0xfc, 0x02, 0x36, 0x5b, 0x25, 0x55, 0x97, 0x31,
  0x2d, 0x5d, 0xfa, 0x98, 0xe3, 0x8a, 0x92, 0xae, 0x05, 0xdf, 0x29, 0x10, 0x67, 0x6c, 0xba, 0xc9,
  0xd3, 0x00, 0xe6, 0xcf, 0xe1, 0x9e, 0xa8, 0x2c, 0x63, 0x16, 0x01, 0x3f, 0x58, 0xe2, 0x89, 0xa9,
  0x0d, 0x38, 0x34, 0x1b, 0xab, 0x33, 0xff, 0xb0, 0xbb, 0x48, 0x0c, 0x5f, 0xb9, 0xb1, 0xcd, 0x2e,
  0xc5, 0xf3, 0xdb, 0x47, 0xe5, 0xa5, 0x9c, 0x77, 0x0a, 0xa6, 0x20, 0x68, 0xfe, 0x7f, 0xc1, 0xad,
);

/** Exposed for the test that checks the table is a permutation. */
export const rc2PiTable: Readonly<Uint8Array> = PITABLE;

export const RC2_BLOCK_SIZE = 8;

/**
 * The expanded key K[0..63] of RFC 2268 §2: `key` is 1 to 128 bytes, and
 * `effectiveBits` (1 to 1024) is the effective key length the algorithm
 * identifier names (40 or 128 for the PKCS#12 schemes).
 */
export function rc2ExpandKey(key: Uint8Array, effectiveBits: number): Uint16Array {
  const t = key.length;
  if (t < 1 || t > 128) throw new KeyfleetError('KF_KEY_INVALID', `RC2 key of ${t} bytes (1 to 128 allowed)`);
  if (!Number.isInteger(effectiveBits) || effectiveBits < 1 || effectiveBits > 1024) {
    throw new KeyfleetError('KF_KEY_INVALID', `RC2 effective key length ${effectiveBits} bits (1 to 1024 allowed)`);
  }
  const t8 = Math.ceil(effectiveBits / 8);
  const tm = 0xff >> (8 * t8 - effectiveBits);
  const l = new Uint8Array(128);
  l.set(key);
  for (let i = t; i < 128; i++) l[i] = PITABLE[(l[i - 1]! + l[i - t]!) & 0xff]!;
  l[128 - t8] = PITABLE[l[128 - t8]! & tm]!;
  for (let i = 127 - t8; i >= 0; i--) l[i] = PITABLE[l[i + 1]! ^ l[i + t8]!]!;
  const k = new Uint16Array(64);
  for (let i = 0; i < 64; i++) k[i] = l[2 * i]! | (l[2 * i + 1]! << 8);
  return k;
}

/** Mixing rounds between the two mashing rounds (§3.3: 5 mix, mash, 6 mix, mash, 5 mix). */
const SCHEDULE = [5, 6, 5] as const;

const rol = (x: number, s: number) => ((x << s) | (x >>> (16 - s))) & 0xffff;
const ror = (x: number, s: number) => ((x >>> s) | (x << (16 - s))) & 0xffff;

/** Encrypts one 8-byte block (§3); the words are little-endian. */
export function rc2EncryptBlock(k: Uint16Array, input: Uint8Array, inOff: number, output: Uint8Array, outOff: number): void {
  let r0 = input[inOff]! | (input[inOff + 1]! << 8);
  let r1 = input[inOff + 2]! | (input[inOff + 3]! << 8);
  let r2 = input[inOff + 4]! | (input[inOff + 5]! << 8);
  let r3 = input[inOff + 6]! | (input[inOff + 7]! << 8);
  let j = 0;
  SCHEDULE.forEach((rounds, n) => {
    if (n > 0) {
      // §3.2 mashing round
      r0 = (r0 + k[r3 & 63]!) & 0xffff;
      r1 = (r1 + k[r0 & 63]!) & 0xffff;
      r2 = (r2 + k[r1 & 63]!) & 0xffff;
      r3 = (r3 + k[r2 & 63]!) & 0xffff;
    }
    for (let i = 0; i < rounds; i++) {
      // §3.1 mixing round
      r0 = rol((r0 + k[j++]! + (r3 & r2) + (~r3 & r1)) & 0xffff, 1);
      r1 = rol((r1 + k[j++]! + (r0 & r3) + (~r0 & r2)) & 0xffff, 2);
      r2 = rol((r2 + k[j++]! + (r1 & r0) + (~r1 & r3)) & 0xffff, 3);
      r3 = rol((r3 + k[j++]! + (r2 & r1) + (~r2 & r0)) & 0xffff, 5);
    }
  });
  writeWords(output, outOff, r0, r1, r2, r3);
}

/** Decrypts one 8-byte block (§4): the rounds of §3 undone in reverse order. */
export function rc2DecryptBlock(k: Uint16Array, input: Uint8Array, inOff: number, output: Uint8Array, outOff: number): void {
  let r0 = input[inOff]! | (input[inOff + 1]! << 8);
  let r1 = input[inOff + 2]! | (input[inOff + 3]! << 8);
  let r2 = input[inOff + 4]! | (input[inOff + 5]! << 8);
  let r3 = input[inOff + 6]! | (input[inOff + 7]! << 8);
  let j = 63;
  SCHEDULE.forEach((rounds, n) => {
    if (n > 0) {
      // §4.2 r-mashing round
      r3 = (r3 - k[r2 & 63]!) & 0xffff;
      r2 = (r2 - k[r1 & 63]!) & 0xffff;
      r1 = (r1 - k[r0 & 63]!) & 0xffff;
      r0 = (r0 - k[r3 & 63]!) & 0xffff;
    }
    for (let i = 0; i < rounds; i++) {
      // §4.1 r-mixing round
      r3 = (ror(r3, 5) - k[j--]! - (r2 & r1) - (~r2 & r0)) & 0xffff;
      r2 = (ror(r2, 3) - k[j--]! - (r1 & r0) - (~r1 & r3)) & 0xffff;
      r1 = (ror(r1, 2) - k[j--]! - (r0 & r3) - (~r0 & r2)) & 0xffff;
      r0 = (ror(r0, 1) - k[j--]! - (r3 & r2) - (~r3 & r1)) & 0xffff;
    }
  });
  writeWords(output, outOff, r0, r1, r2, r3);
}

function writeWords(out: Uint8Array, off: number, r0: number, r1: number, r2: number, r3: number): void {
  out[off] = r0;
  out[off + 1] = r0 >>> 8;
  out[off + 2] = r1;
  out[off + 3] = r1 >>> 8;
  out[off + 4] = r2;
  out[off + 5] = r2 >>> 8;
  out[off + 6] = r3;
  out[off + 7] = r3 >>> 8;
}

/**
 * RC2-CBC decryption with PKCS#5 padding removed (RFC 8018 §6.1.1 step 4).
 * A bad length or padding throws KF_CMS_DECRYPT_FAILED; the PKCS#12 reader
 * turns that into "wrong password" where it has no MAC to tell.
 */
export function rc2CbcDecrypt(key: Uint8Array, effectiveBits: number, iv: Uint8Array, data: Uint8Array): Uint8Array {
  if (iv.length !== RC2_BLOCK_SIZE) throw new KeyfleetError('KF_CMS_DECRYPT_FAILED', `RC2-CBC IV of ${iv.length} bytes (8 expected)`);
  if (data.length === 0 || data.length % RC2_BLOCK_SIZE !== 0) {
    throw new KeyfleetError('KF_CMS_DECRYPT_FAILED', 'RC2-CBC ciphertext is not a whole number of blocks');
  }
  const k = rc2ExpandKey(key, effectiveBits);
  const out = new Uint8Array(data.length);
  for (let off = 0; off < data.length; off += RC2_BLOCK_SIZE) {
    rc2DecryptBlock(k, data, off, out, off);
    const prev = off === 0 ? iv : data.subarray(off - RC2_BLOCK_SIZE, off);
    for (let i = 0; i < RC2_BLOCK_SIZE; i++) out[off + i]! ^= prev[i]!;
  }
  const pad = out[out.length - 1]!;
  if (pad < 1 || pad > RC2_BLOCK_SIZE || out.subarray(out.length - pad).some((b) => b !== pad)) {
    throw new KeyfleetError('KF_CMS_DECRYPT_FAILED', 'RC2-CBC padding is wrong');
  }
  return out.subarray(0, out.length - pad);
}
