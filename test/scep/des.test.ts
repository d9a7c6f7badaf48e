/** DES known-answer tests (FIPS 46-3 / NIST SP 800-17) and CBC against OpenSSL's DES-EDE3 with K1=K2=K3. */
import { strict as assert } from 'node:assert';
import { createCipheriv, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { desBlock, desCbcDecrypt, desCbcEncrypt, desKey } from '../../src/scep/des.ts';

const hex = (s: string) => Buffer.from(s, 'hex');

describe('DES', () => {
  // Classic worked example and NIST SP 800-17 Table A.1/B.1 entries.
  const vectors: [key: string, plain: string, cipher: string][] = [
    ['133457799bbcdff1', '0123456789abcdef', '85e813540f0ab405'],
    ['0101010101010101', '8000000000000000', '95f8a5e5dd31d900'],
    ['0101010101010101', '0000000000000001', '166b40b44aba4bd6'],
    ['8001010101010101', '0000000000000000', '95a8d72813daa94d'],
    ['0e329232ea6d0d73', '8787878787878787', '0000000000000000'],
    ['7ca110454a1a6e57', '01a1d6d039776742', '690f5b0d9a26939b'],
  ];
  for (const [key, plain, cipher] of vectors) {
    it(`known answer ${key}/${plain}`, () => {
      const k = desKey(hex(key));
      assert.equal(Buffer.from(desBlock(k, hex(plain), false)).toString('hex'), cipher);
      assert.equal(Buffer.from(desBlock(k, hex(cipher), true)).toString('hex'), plain);
    });
  }

  it('CBC equals OpenSSL DES-EDE3-CBC with three equal keys, and decrypts back', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.integer({ min: 1, max: 40 }), (key, iv, blocks) => {
        const plain = randomBytes(blocks * 8);
        const c = createCipheriv('des-ede3-cbc', Buffer.concat([key, key, key]), iv).setAutoPadding(false);
        const expected = Buffer.concat([c.update(plain), c.final()]);
        const mine = Buffer.from(desCbcEncrypt(key, iv, plain));
        assert.deepEqual(mine, expected);
        assert.deepEqual(Buffer.from(desCbcDecrypt(key, iv, mine)), plain);
      }),
      { numRuns: 100 },
    );
  });

  it('refuses wrong key, IV and input lengths with coded errors', () => {
    assert.throws(() => desKey(new Uint8Array(7)), { code: 'KF_CMS_DECRYPT_FAILED' });
    assert.throws(() => desCbcDecrypt(new Uint8Array(8), new Uint8Array(7), new Uint8Array(8)), { code: 'KF_CMS_MALFORMED' });
    assert.throws(() => desCbcDecrypt(new Uint8Array(8), new Uint8Array(8), new Uint8Array(9)), { code: 'KF_CMS_DECRYPT_FAILED' });
  });
});
