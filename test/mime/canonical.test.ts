import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isCanonicalCrlf, toCanonicalCrlf } from '../../src/smime/mime/index.ts';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const s = (u: Uint8Array): string => Buffer.from(u).toString('latin1');

/** The definition, as a regular expression over a string: each CRLF, bare CR or bare LF is one line break. */
function reference(u: Uint8Array): string {
  return s(u).replace(/\r\n|\r|\n/g, '\r\n');
}

/** Bytes rich in CR and LF, so that every combination turns up. */
const lineBytes = fc.uint8Array({ maxLength: 300 }).chain((noise) =>
  fc.array(fc.constantFrom(0x0d, 0x0a, 0x41, 0x20), { maxLength: 300 }).map((seq) => {
    const out = new Uint8Array(noise.length + seq.length);
    out.set(noise);
    out.set(seq, noise.length);
    return out;
  }),
);

describe('toCanonicalCrlf (RFC 8551 §3.1.1)', () => {
  test('edge cases', () => {
    const cases: [string, string][] = [
      ['', ''],
      ['a', 'a'],
      ['a\nb\n', 'a\r\nb\r\n'],
      ['a\r\nb\r\n', 'a\r\nb\r\n'],
      ['a\rb', 'a\r\nb'],
      // REFERENCE.md pitfall 5: CR CR LF is a bare CR and a CRLF.
      ['a\r\r\nb', 'a\r\n\r\nb'],
      ['\r\r\n', '\r\n\r\n'],
      ['\n\r', '\r\n\r\n'],
      ['trailing CR\r', 'trailing CR\r\n'],
      ['\r', '\r\n'],
      ['\n', '\r\n'],
      ['\n\n\n', '\r\n\r\n\r\n'],
      ['mixed\r\nlf\nend', 'mixed\r\nlf\r\nend'],
    ];
    for (const [input, expected] of cases) assert.equal(s(toCanonicalCrlf(b(input))), expected, JSON.stringify(input));
  });

  test('already canonical input is returned as is, without a copy', () => {
    const input = b('one\r\ntwo\r\n');
    assert.equal(toCanonicalCrlf(input), input);
    assert.equal(isCanonicalCrlf(input), true);
    assert.equal(isCanonicalCrlf(b('one\ntwo')), false);
    assert.equal(isCanonicalCrlf(b('one\r')), false);
  });

  test('dense line breaks switch to the byte loop and back without losing anything', () => {
    const input = b(`${'\n'.repeat(10_000)}${'x'.repeat(5000)}\r\r\n${'\r'.repeat(9000)}${'y\n'.repeat(3000)}`);
    assert.equal(s(toCanonicalCrlf(input)), reference(input));
  });

  test('property: agrees with the definition', () => {
    fc.assert(
      fc.property(lineBytes, (input) => {
        assert.equal(s(toCanonicalCrlf(input)), reference(input));
      }),
      { numRuns: 500, seed: 8551 },
    );
  });

  test('property: agrees with the definition on lines of every length (both the search and the byte loop)', () => {
    const line = fc.tuple(fc.integer({ min: 0, max: 90 }), fc.constantFrom('\r\n', '\n', '\r', '\r\r\n', ''));
    fc.assert(
      fc.property(fc.array(line, { maxLength: 400 }), (lines) => {
        const input = b(lines.map(([k, eol]) => 'a'.repeat(k) + eol).join(''));
        assert.equal(s(toCanonicalCrlf(input)), reference(input));
        assert.equal(isCanonicalCrlf(input), reference(input) === s(input));
      }),
      { numRuns: 300, seed: 3 },
    );
  });

  test('property: idempotent, and the output is canonical', () => {
    fc.assert(
      fc.property(lineBytes, (input) => {
        const once = toCanonicalCrlf(input);
        assert.equal(isCanonicalCrlf(once), true);
        assert.deepEqual(Buffer.from(toCanonicalCrlf(once)), Buffer.from(once));
      }),
      { numRuns: 500, seed: 5751 },
    );
  });

  test('property: CRLF-only input is unchanged', () => {
    const line = fc.uint8Array({ maxLength: 100 }).map((u) => u.filter((x) => x !== 0x0d && x !== 0x0a));
    fc.assert(
      fc.property(fc.array(line, { maxLength: 20 }), (lines) => {
        const input = Buffer.from(lines.map((l) => s(l)).join('\r\n'), 'latin1');
        assert.equal(toCanonicalCrlf(input), input);
      }),
      { numRuns: 300, seed: 2045 },
    );
  });

  test('property: large inputs (the sliced regular-expression check) agree with the definition, breaks at slice edges included', () => {
    // 64 KB slices: a break placed around each edge, in every form, over canonical filler.
    const filler = b('x'.repeat(75) + '\r\n').toString('latin1').repeat(Math.ceil((3 * 65536) / 77));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(65536, 131072), fc.integer({ min: -3, max: 3 }), fc.constantFrom('\r\n', '\n', '\r', '\r\r\n', 'y')), { maxLength: 3 }),
        fc.boolean(),
        (edits, endsWithCr) => {
          const chars = filler.split('');
          for (const [edge, delta, text] of edits) chars.splice(edge + delta, text.length, ...text.split(''));
          if (endsWithCr) chars.push('\r');
          const input = b(chars.join(''));
          assert.equal(isCanonicalCrlf(input), reference(input) === s(input));
          assert.equal(s(toCanonicalCrlf(input)), reference(input));
        },
      ),
      { numRuns: 200, seed: 64 },
    );
  });
});
