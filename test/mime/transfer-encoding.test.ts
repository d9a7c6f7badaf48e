import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isKeyfleetError } from '../../src/errors.ts';
import {
  decodeBase64,
  decodeQuotedPrintable,
  decodeTransferEncoding,
  encodeBase64,
  encodeQuotedPrintable,
  toCanonicalCrlf,
} from '../../src/smime/mime/index.ts';
import { Base64LineWriter, Base64Reader, base64EncodedLength, decodeBase64Reference } from '../../src/smime/mime/transfer-encoding.ts';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const s = (u: Uint8Array): string => Buffer.from(u).toString('latin1');
const lines = (u: Uint8Array): string[] => s(u).split('\r\n');

describe('base64 (RFC 2045 §6.8)', () => {
  test('76-character lines ended by CRLF', () => {
    const data = Buffer.alloc(200, 0xab);
    const enc = s(encodeBase64(data));
    assert.ok(enc.endsWith('\r\n'));
    const ls = enc.slice(0, -2).split('\r\n');
    // 200 bytes are 268 characters.
    assert.deepEqual(
      ls.map((l) => l.length),
      [76, 76, 76, 40],
    );
    assert.equal(ls.join(''), data.toString('base64'));
    assert.equal(s(encodeBase64(new Uint8Array(0))), '');
    assert.equal(s(encodeBase64(b('abc'))), 'YWJj\r\n');
  });

  test('decoding ignores whitespace and characters outside the alphabet, and stops at "="', () => {
    assert.equal(s(decodeBase64(b('YW Jj\r\nZGVm\n'))), 'abcdef');
    assert.equal(s(decodeBase64(b('YW*Jj!ZA==garbage'))), 'abcd');
    assert.equal(s(decodeBase64(b('YWI='))), 'ab');
    assert.equal(s(decodeBase64(b('YWJjZ'))), 'abc', 'a dangling character is dropped');
    assert.equal(decodeBase64(b('\r\n')).length, 0);
  });

  test('property: encode then decode is the identity', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), (data) => {
        const enc = encodeBase64(data);
        assert.ok(lines(enc).every((l) => l.length <= 76));
        assert.deepEqual(Buffer.from(decodeBase64(enc)), Buffer.from(data));
        // Mail systems reflow line breaks: still decodes.
        assert.deepEqual(Buffer.from(decodeBase64(b(s(enc).replace(/\r\n/g, '\n  ')))), Buffer.from(data));
      }),
      { numRuns: 300, seed: 6 },
    );
  });

  test('large input in several native chunks', () => {
    const data = Buffer.alloc(57 * 16384 * 2 + 1000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) & 0xff;
    const enc = encodeBase64(data);
    assert.equal(s(enc).replace(/\r\n/g, ''), data.toString('base64'));
    assert.equal(Buffer.compare(decodeBase64(enc), data), 0);
  });
});

describe('base64 by Node\'s native code agrees with the table-driven reference', () => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('');
  // Runs of one character make the slice-end check of Base64Reader fall back to counting.
  const text = fc
    .array(
      fc.oneof(
        { weight: 10, arbitrary: fc.constantFrom(...alphabet) },
        { weight: 3, arbitrary: fc.constant('A') },
        { weight: 3, arbitrary: fc.constantFrom('\r\n', '\n', ' ', '\t') },
        { weight: 1, arbitrary: fc.constantFrom('=', '-', '_', '*', '\x00', '\x80', '\xff', '.') },
      ),
      { maxLength: 400 },
    )
    .map((a) => b(a.join('')));

  test('property: decodeBase64 = the reference on any input (whitespace, junk, "=" anywhere, URL-safe characters)', () => {
    fc.assert(
      fc.property(text, (input) => {
        assert.deepEqual(Buffer.from(decodeBase64(input)), decodeBase64Reference(input));
      }),
      { numRuns: 3000, seed: 11 },
    );
  });

  test('property: Base64Reader in slices of any size = the reference (quanta cut between slices)', () => {
    fc.assert(
      fc.property(text, fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 10 }), (input, sizes) => {
        const reader = new Base64Reader(input);
        const out = Buffer.alloc(reader.remainingBound + 3);
        let o = 0;
        for (let i = 0, n; (n = reader.read(out, o, Math.min(sizes[i % sizes.length]!, out.length - 3 - o))) > 0; i++) o += n;
        assert.deepEqual(out.subarray(0, o), decodeBase64Reference(input));
      }),
      { numRuns: 3000, seed: 12 },
    );
  });

  test('"-" and "_" are not base64 (RFC 2045 §6.8 has no URL-safe alphabet), though Node\'s decoder reads them', () => {
    assert.equal(s(decodeBase64(b('YW-Jj_'))), 'abc');
    assert.equal(s(decodeBase64(b(`${'YWJj\r\n'.repeat(300000)}-`))).length, 900000);
  });

  test('a reader can go back to a mark', () => {
    const reader = new Base64Reader(encodeBase64(Buffer.from('hello, world: a few quanta of text')));
    const out = Buffer.alloc(64);
    const n = reader.read(out, 0, 5);
    const mark = reader.mark();
    const rest = reader.read(out, n, 40);
    reader.reset(mark);
    assert.equal(reader.read(out, n, 40), rest);
    assert.equal(s(out.subarray(0, n + rest)), 'hello, world: a few quanta of text');
  });

  test('property: Base64LineWriter over pieces of any size = encodeBase64, of base64EncodedLength', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 9000 }), fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 8 }), fc.integer({ min: 0, max: 7 }), (data, cuts, offset) => {
        const expected = Buffer.from(encodeBase64(data));
        assert.equal(base64EncodedLength(data.length), expected.length);
        const out = Buffer.alloc(offset + expected.length);
        const w = new Base64LineWriter(out, offset);
        let p = 0;
        for (const c of cuts) {
          w.write(data.subarray(p, p + c));
          p = Math.min(data.length, p + c);
        }
        w.write(data.subarray(p));
        assert.equal(w.end(), out.length);
        assert.deepEqual(out.subarray(offset), expected);
      }),
      { numRuns: 500, seed: 13 },
    );
  });
});

describe('quoted-printable (RFC 2045 §6.7)', () => {
  test('encoding rules', () => {
    assert.equal(s(encodeQuotedPrintable(Buffer.from('Grüße = ok', 'utf8'))), 'Gr=C3=BC=C3=9Fe =3D ok');
    assert.equal(s(encodeQuotedPrintable(b('trailing space \r\ntab\t'))), 'trailing space=20\r\ntab=09', 'rule 3');
    assert.equal(s(encodeQuotedPrintable(b('bare\nlf\rcr'))), 'bare=0Alf=0Dcr');
    assert.equal(s(encodeQuotedPrintable(b('From me\r\nFrom you'))), '=46rom me\r\n=46rom you');
    assert.equal(s(encodeQuotedPrintable(b('nul\x00'))), 'nul=00');
    // 75 characters and the soft break "=" per line.
    const long = s(encodeQuotedPrintable(b('x'.repeat(200))));
    assert.deepEqual(
      long.split('\r\n').map((l) => l.length),
      [76, 76, 50],
    );
    assert.ok(long.split('\r\n').slice(0, 2).every((l) => l.endsWith('=')));
    assert.equal(s(encodeQuotedPrintable(b('y'.repeat(76)))), 'y'.repeat(76), 'exactly 76 needs no soft break');
  });

  test('decoding: soft breaks, either case, trailing whitespace, invalid escapes kept', () => {
    assert.equal(s(decodeQuotedPrintable(b('a=\r\nb=3d=3D  \r\nc'))), 'ab==\r\nc');
    assert.equal(s(decodeQuotedPrintable(b('soft =  \nline\nbreak'))), 'soft line\r\nbreak');
    assert.equal(s(decodeQuotedPrintable(b('=4G =A'))), '=4G =A');
    assert.equal(s(decodeQuotedPrintable(b('end='))), 'end');
    assert.equal(s(decodeQuotedPrintable(b('a\r\n'))), 'a\r\n');
  });

  test('property: encode then decode is the identity, lines stay within 76 characters of printable ASCII', () => {
    const textish = fc.array(fc.oneof(fc.constantFrom(0x0d, 0x0a, 0x20, 0x09, 0x3d, 0x46), fc.integer({ min: 0, max: 255 })), { maxLength: 600 });
    fc.assert(
      fc.property(textish, (arr) => {
        const data = Uint8Array.from(arr);
        const enc = encodeQuotedPrintable(data);
        for (const line of lines(enc)) {
          assert.ok(line.length <= 76, line);
          assert.match(line, /^[!-~ \t]*$/);
          assert.doesNotMatch(line, /[ \t]$/);
        }
        assert.deepEqual(Buffer.from(decodeQuotedPrintable(enc)), Buffer.from(data));
      }),
      { numRuns: 500, seed: 2045 },
    );
  });

  test('property: canonical text survives with its line structure readable', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (str) => {
        const data = toCanonicalCrlf(Buffer.from(str, 'utf8'));
        assert.deepEqual(Buffer.from(decodeQuotedPrintable(encodeQuotedPrintable(data))), Buffer.from(data));
      }),
      { numRuns: 300, seed: 76 },
    );
  });
});

describe('decodeTransferEncoding', () => {
  test('identity encodings return the body itself; unknown ones are refused', () => {
    const body = b('x');
    assert.equal(decodeTransferEncoding(body, '8bit'), body);
    assert.throws(
      () => decodeTransferEncoding(body, 'x-uuencode'),
      (e: unknown) => isKeyfleetError(e, 'KF_MIME_MALFORMED'),
    );
  });
});
