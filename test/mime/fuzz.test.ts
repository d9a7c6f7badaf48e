/**
 * Mutation fuzzing of the MIME parser and what runs on its output: take
 * valid messages, damage them (flip, truncate, insert, duplicate, delete,
 * splice in MIME syntax), and require that every call either returns or
 * throws a KeyfleetError: never another exception, never a hang.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyfleetError } from '../../src/errors.ts';
import {
  buildEntity,
  buildMultipart,
  classifySmime,
  decodeTransferEncoding,
  getHeader,
  make7bitSafe,
  type MimeEntity,
  parseContentDisposition,
  parseEntity,
  splitMessage,
  toCanonicalCrlf,
} from '../../src/smime/mime/index.ts';
import { crlf, lf, nestedMixed, opaqueEnveloped, opensslSigned, outlookAlternative } from './fixtures.ts';

/** mulberry32: a small seeded generator, so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOKENS = [
  '\r',
  '\n',
  '\r\n\r\n',
  '--',
  '--b',
  '--------------mixed0123456789',
  '--------------alt9876543210--',
  ';',
  '"',
  '=',
  '=\r\n',
  '(',
  "*0*=utf-8''%",
  'Content-Type: multipart/mixed; boundary=b\r\n',
  'Content-Type: message/rfc822\r\n',
  'Content-Transfer-Encoding: 8bit\r\n',
  '\u00ff\u0000',
].map((t) => Buffer.from(t, 'latin1'));

function mutate(input: Buffer, rnd: () => number): Buffer {
  let b = input;
  const at = (): number => Math.floor(rnd() * (b.length + 1));
  for (let k = 1 + Math.floor(rnd() * 4); k > 0; k--) {
    const op = Math.floor(rnd() * 6);
    if (op === 0 && b.length > 0) {
      b = Buffer.from(b);
      b[Math.min(b.length - 1, at())] = Math.floor(rnd() * 256);
    } else if (op === 1) {
      b = b.subarray(0, at());
    } else if (op === 2) {
      const p = at();
      const junk = Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 16) }, () => Math.floor(rnd() * 256)));
      b = Buffer.concat([b.subarray(0, p), junk, b.subarray(p)]);
    } else if (op === 3) {
      const p = at();
      b = Buffer.concat([b.subarray(0, p), TOKENS[Math.floor(rnd() * TOKENS.length)]!, b.subarray(p)]);
    } else if (op === 4) {
      const p = at();
      const q = Math.min(b.length, p + Math.floor(rnd() * 200));
      b = Buffer.concat([b.subarray(0, q), b.subarray(p, q), b.subarray(q)]);
    } else {
      const p = at();
      b = Buffer.concat([b.subarray(0, p), b.subarray(Math.min(b.length, p + Math.floor(rnd() * 50)))]);
    }
  }
  return b;
}

/** Everything a caller would do with a parsed message. */
function exercise(e: MimeEntity): void {
  classifySmime(e);
  const { content } = splitMessage(e);
  make7bitSafe(content, () => Buffer.alloc(18, 3));
  const walk = (x: MimeEntity): void => {
    const cd = getHeader(x.headers, 'content-disposition');
    if (cd !== undefined) parseContentDisposition(cd);
    if (x.parts.length === 0) decodeTransferEncoding(x.body, x.transferEncoding);
    x.parts.forEach(walk);
  };
  walk(e);
  toCanonicalCrlf(e.raw);
}

function seeds(): Buffer[] {
  const signed = buildMultipart(
    'signed',
    { protocol: 'application/pkcs7-signature', micalg: 'sha-256' },
    [
      buildEntity({ headers: [['Content-Type', 'text/plain; charset=utf-8'], ['Content-Transfer-Encoding', '8bit']], body: Buffer.from('Grüße\r\n') }),
      buildEntity({ headers: [['Content-Type', 'application/pkcs7-signature']], body: Buffer.from('MIIB\r\n') }),
    ],
    { boundary: 'b' },
  );
  return [crlf(nestedMixed), lf(nestedMixed), crlf(outlookAlternative), crlf(opensslSigned), crlf(opaqueEnveloped), Buffer.from(signed.raw)];
}

test('mutated messages: parse, classify, split, make 7-bit safe, decode; only KeyfleetError escapes', { timeout: 120_000 }, () => {
  const rnd = prng(0x5eed);
  const inputs = seeds();
  let parsed = 0;
  let refused = 0;
  for (let i = 0; i < 3000; i++) {
    const input = mutate(inputs[i % inputs.length]!, rnd);
    try {
      exercise(parseEntity(input));
      parsed++;
    } catch (e) {
      if (!(e instanceof KeyfleetError)) {
        assert.fail(`iteration ${i}: ${e instanceof Error ? e.stack : String(e)}\ninput: ${JSON.stringify(input.toString('latin1'))}`);
      }
      assert.ok(e.code === 'KF_MIME_MALFORMED', e.code);
      refused++;
    }
  }
  // Both outcomes occur: the mutations neither all break nor all miss the parser.
  assert.ok(parsed > 100 && refused > 10, `parsed ${parsed}, refused ${refused}`);
});
