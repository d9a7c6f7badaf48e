/**
 * Seeded mutation fuzzing of SignedData decoding and verification: whatever
 * the bytes, the result is a VerifyResult or a KeyfleetError, never another
 * exception, a hang or a runaway allocation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KeyfleetError } from '../../src/errors.ts';
import { decodeSignedData, signContent } from '../../src/smime/cms/signed-data.ts';
import { verifySignedData } from '../../src/smime/cms/verify.ts';
import { runOk } from '../support/exec.ts';
import { getFixture } from './support.ts';

const content = Buffer.from('Content-Type: text/plain\r\n\r\nFuzz me.\r\n');

type Mutation =
  | { kind: 'set'; at: number; value: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number };

// Bytes that matter to a BER reader: zero, indefinite length, long-form length prefixes, tags.
const interesting = fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x84, 0x87, 0x88, 0xff, 0x30, 0x31, 0x04, 0x24, 0xa0, 0x06);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.oneof(interesting, fc.integer({ min: 0, max: 255 })) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 16 }) }),
);

function apply(base: Uint8Array, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(base);
  for (const m of mutations) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    switch (m.kind) {
      case 'set':
        b[at] = m.value;
        break;
      case 'flip':
        b[at]! ^= 1 << m.bit;
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]);
        break;
    }
  }
  return b;
}

test('mutated SignedData: decode + verify return a result or throw KeyfleetError', { timeout: 240_000 }, async () => {
  const f = await getFixture();
  const alice = f.signer('alice').entity;
  const ber = (
    await runOk('openssl', ['cms', '-sign', '-binary', '-stream', '-indef', '-nodetach', '-outform', 'DER', '-signer', alice.certPath, '-inkey', alice.keyPath, '-certfile', f.pki.intermediate.certPath], { input: content })
  ).stdout;
  const bases: readonly Uint8Array[] = [
    signContent(content, [f.spec('alice'), f.spec('carol')], { detached: false }),
    signContent(content, [f.spec('erin', { identifier: 'subjectKeyIdentifier' })], { detached: true }),
    signContent(content, [f.spec('alice-pss', { pss: true })], { detached: true }),
    ber,
  ];
  const trustAnchors = [f.root];
  let results = 0;
  let errors = 0;
  fc.assert(
    fc.property(fc.nat({ max: bases.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), (which, mutations) => {
      const bytes = apply(bases[which]!, mutations);
      const started = performance.now();
      try {
        const sd = decodeSignedData(bytes);
        const result = verifySignedData(sd, { trustAnchors, ...(sd.content === undefined ? { detachedContent: content } : {}) });
        assert.equal(typeof result.valid, 'boolean');
        results++;
      } catch (e) {
        if (!(e instanceof KeyfleetError)) throw e;
        errors++;
      }
      assert.ok(performance.now() - started < 2000, 'one message must not take seconds');
    }),
    { seed: 0x5ec0de, numRuns: 4000 },
  );
  // Both outcomes occur: the fuzzer reaches verification, not only the decoder's first check.
  assert.ok(results > 100, `results: ${results}`);
  assert.ok(errors > 100, `errors: ${errors}`);
});
