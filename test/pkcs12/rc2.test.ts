import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isKeyfleetError } from '../../src/errors.ts';
import { rc2CbcDecrypt, rc2DecryptBlock, rc2EncryptBlock, rc2ExpandKey, rc2PiTable } from '../../src/pkcs12/rc2.ts';

/** RFC 2268 §5: effective key bits, key, plaintext, ciphertext. */
const vectors: readonly [number, string, string, string][] = [
  [63, '0000000000000000', '0000000000000000', 'ebb773f993278eff'],
  [64, 'ffffffffffffffff', 'ffffffffffffffff', '278b27e42e2f0d49'],
  [64, '3000000000000000', '1000000000000001', '30649edf9be7d2c2'],
  [64, '88', '0000000000000000', '61a8a244adacccf0'],
  [64, '88bca90e90875a', '0000000000000000', '6ccf4308974c267f'],
  [64, '88bca90e90875a7f0f79c384627bafb2', '0000000000000000', '1a807d272bbe5db1'],
  [128, '88bca90e90875a7f0f79c384627bafb2', '0000000000000000', '2269552ab0f85ca6'],
  [129, '88bca90e90875a7f0f79c384627bafb216f80a6f85920584c42fceb0be255daf1e', '0000000000000000', '5b78d3a43dfff1f1'],
];
const hex = (s: string) => Buffer.from(s, 'hex');

test('RC2 encrypts and decrypts the RFC 2268 §5 test vectors', () => {
  for (const [bits, key, plain, cipher] of vectors) {
    const k = rc2ExpandKey(hex(key), bits);
    const out = new Uint8Array(8);
    rc2EncryptBlock(k, hex(plain), 0, out, 0);
    assert.equal(Buffer.from(out).toString('hex'), cipher, `encrypt, ${bits} bits, key ${key}`);
    rc2DecryptBlock(k, hex(cipher), 0, out, 0);
    assert.equal(Buffer.from(out).toString('hex'), plain, `decrypt, ${bits} bits, key ${key}`);
  }
});

test('PITABLE is a permutation of 0..255', () => {
  assert.equal(new Set(rc2PiTable).size, 256);
});

/** CBC encryption with PKCS#5 padding, from the block function (test-only: Keyfleet never writes RC2). */
function cbcEncrypt(key: Uint8Array, bits: number, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const pad = 8 - (data.length % 8);
  const padded = Buffer.concat([data, Buffer.alloc(pad, pad)]);
  const k = rc2ExpandKey(key, bits);
  const out = new Uint8Array(padded.length);
  let prev = iv;
  for (let off = 0; off < padded.length; off += 8) {
    const block = padded.subarray(off, off + 8).map((b, i) => b ^ prev[i]!);
    rc2EncryptBlock(k, block, 0, out, off);
    prev = out.subarray(off, off + 8);
  }
  return out;
}

test('RC2-CBC decryption removes the padding and undoes chaining, for 40- and 128-bit keys', () => {
  const iv = hex('0102030405060708');
  for (const [key, bits] of [[hex('0a0b0c0d0e'), 40], [hex('00112233445566778899aabbccddeeff'), 128]] as const) {
    for (const length of [0, 1, 7, 8, 9, 100]) {
      const plain = Buffer.alloc(length, 0x5a).map((b, i) => b ^ i);
      assert.deepEqual(Buffer.from(rc2CbcDecrypt(key, bits, iv, cbcEncrypt(key, bits, iv, plain))), plain);
    }
  }
});

test('RC2-CBC refuses bad padding, partial blocks and bad IVs with a coded error', () => {
  const key = hex('0a0b0c0d0e');
  const iv = hex('0102030405060708');
  const good = cbcEncrypt(key, 40, iv, Buffer.from('hello'));
  const wrongKey = hex('0a0b0c0d0f');
  const cases: [string, () => unknown][] = [
    ['wrong key', () => rc2CbcDecrypt(wrongKey, 40, iv, Buffer.concat([good, cbcEncrypt(key, 40, iv, Buffer.alloc(8))]))],
    ['partial block', () => rc2CbcDecrypt(key, 40, iv, good.subarray(0, 7))],
    ['empty', () => rc2CbcDecrypt(key, 40, iv, new Uint8Array(0))],
    ['short IV', () => rc2CbcDecrypt(key, 40, iv.subarray(0, 7), good)],
  ];
  for (const [what, f] of cases) assert.throws(f, (e) => isKeyfleetError(e, 'KF_CMS_DECRYPT_FAILED'), what);
  assert.throws(() => rc2ExpandKey(new Uint8Array(0), 40), (e) => isKeyfleetError(e, 'KF_KEY_INVALID'));
  assert.throws(() => rc2ExpandKey(key, 0), (e) => isKeyfleetError(e, 'KF_KEY_INVALID'));
});
