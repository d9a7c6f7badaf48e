import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  buildEntity,
  buildMultipart,
  decodeTransferEncoding,
  encodeBase64,
  encodeQuotedPrintable,
  getHeader,
  type HeaderInput,
  isCanonicalCrlf,
  isSevenBitClean,
  make7bitSafe,
  type MimeEntity,
  needsTransferEncoding,
  parseContentDisposition,
  parseEntity,
  splitMessage,
  toCanonicalCrlf,
} from '../../src/smime/mime/index.ts';
import { crlf, lf, nestedMixed, text } from './fixtures.ts';

/** Every byte below 128, CRLF line breaks, no line over 998 characters (RFC 5322 §2.1.1). */
function assertSevenBitSafe(bytes: Uint8Array): void {
  const s = Buffer.from(bytes).toString('latin1');
  assert.ok(bytes.every((x) => x < 128 && x !== 0), 'only 7-bit bytes, no NUL');
  assert.ok(isCanonicalCrlf(bytes), 'CRLF line breaks');
  for (const line of s.split('\r\n')) assert.ok(line.length <= 998, `line of ${line.length}`);
}

describe('make7bitSafe (RFC 8551 §3.1.2)', () => {
  test('the nested message: 8bit text becomes quoted-printable, the rest is kept, line breaks become CRLF', () => {
    for (const bytes of [crlf(nestedMixed), lf(nestedMixed)]) {
      const { content } = splitMessage(parseEntity(bytes));
      assert.equal(needsTransferEncoding(content), true);
      const safe = make7bitSafe(content);
      assertSevenBitSafe(safe.raw);
      const plain = safe.parts[0]!.parts[0]!;
      assert.equal(getHeader(plain.headers, 'content-transfer-encoding'), 'quoted-printable');
      assert.equal(text(plain.body), 'Hi Bob, the figures are attached. Gr=C3=BC=C3=9Fe\r\n');
      // Untouched parts keep their bytes, with CRLF.
      assert.equal(text(safe.parts[1]!.raw), text(toCanonicalCrlf(content.parts[1]!.raw)));
      assert.equal(safe.multipart?.boundary, content.multipart?.boundary);
      assert.equal(needsTransferEncoding(safe), false);
      assert.equal(make7bitSafe(safe), safe, 'already safe: returned as is');
    }
  });

  test('binary attachments become base64; bytes labelled 8bit that are 7-bit become 7bit', () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0xff]);
    const m = buildMultipart('mixed', {}, [
      buildEntity({ headers: [['Content-Type', 'image/png'], ['Content-Transfer-Encoding', 'binary']], body: png }),
      buildEntity({ headers: [['Content-Type', 'text/plain'], ['Content-Transfer-Encoding', '8bit']], body: Buffer.from('plain ascii\n') }),
      buildEntity({ headers: [['Content-Type', 'application/octet-stream']], body: Buffer.from('ascii but\nbare LF') }),
    ]);
    const safe = make7bitSafe(m);
    assertSevenBitSafe(safe.raw);
    const [img, txt, bin] = safe.parts as [MimeEntity, MimeEntity, MimeEntity];
    assert.equal(img.transferEncoding, 'base64');
    assert.deepEqual(Buffer.from(decodeTransferEncoding(img.body, 'base64')), png);
    assert.equal(txt.transferEncoding, '7bit');
    assert.equal(text(txt.body), 'plain ascii\r\n');
    assert.equal(bin.transferEncoding, 'base64', 'non-text keeps its exact bytes, bare LF included');
    assert.equal(text(decodeTransferEncoding(bin.body, 'base64')), 'ascii but\nbare LF');
  });

  test('long lines in 7bit text become quoted-printable', () => {
    const e = buildEntity({ headers: [['Content-Type', 'text/plain']], body: Buffer.from('x'.repeat(1500)) });
    assert.equal(needsTransferEncoding(e), true);
    const safe = make7bitSafe(e);
    assertSevenBitSafe(safe.raw);
    assert.equal(text(decodeTransferEncoding(safe.body, safe.transferEncoding)), 'x'.repeat(1500));
  });

  test('message/rfc822 parts are converted inside, not encoded (RFC 2046 §5.2.1)', () => {
    const inner = Buffer.from('Subject: fwd\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nÜber\r\n', 'utf8');
    const e = buildEntity({ headers: [['Content-Type', 'message/rfc822'], ['Content-Transfer-Encoding', '8bit']], body: inner });
    const safe = make7bitSafe(e);
    assertSevenBitSafe(safe.raw);
    assert.equal(safe.transferEncoding, '7bit');
    assert.match(text(safe.body), /Content-Transfer-Encoding: quoted-printable\r\n\r\n=C3=9Cber\r\n$/);
 
    // 7-bit already, but labelled 8bit: relabelled, so that no gateway converts it.
    const labelled = buildEntity({ headers: [['Content-Type', 'message/rfc822'], ['Content-Transfer-Encoding', '8bit']], body: Buffer.from('Subject: a\r\n\r\nb\r\n') });
    assert.equal(needsTransferEncoding(labelled), true);
    assert.equal(make7bitSafe(labelled).transferEncoding, '7bit');
    // 8-bit header fields inside cannot be made 7-bit here: base64 keeps the message intact.
    const eightBitHeader = buildEntity({ headers: [['Content-Type', 'message/rfc822']], body: Buffer.from('Subject: Grüße\r\n\r\nb\r\n') });
    assert.equal(needsTransferEncoding(eightBitHeader), true);
    const encoded = make7bitSafe(eightBitHeader);
    assertSevenBitSafe(encoded.raw);
    assert.equal(encoded.transferEncoding, 'base64');
  });

  test('non-ASCII file names become RFC 2231 parameters', () => {
    const e = buildEntity({
      headers: [['Content-Type', 'application/pdf; name="Größe.pdf"'], ['Content-Disposition', 'attachment; filename="Größe.pdf"'], ['Content-Transfer-Encoding', 'base64']],
      body: encodeBase64(Buffer.from('%PDF')),
    });
    assert.equal(needsTransferEncoding(e), true);
    const safe = make7bitSafe(e);
    assertSevenBitSafe(safe.raw);
    assert.equal(safe.contentType.params.get('name'), 'Größe.pdf');
    assert.equal(parseContentDisposition(getHeader(safe.headers, 'content-disposition')!)?.params.get('filename'), 'Größe.pdf');
  });

  test('8-bit preambles are dropped; a boundary that re-encoding would expose is replaced', () => {
    const m = parseEntity(lf(['Content-Type: multipart/mixed; boundary="b"', '', 'Präambel', '--b', 'Content-Transfer-Encoding: 8bit', '', `${'y'.repeat(75)}--b ü`, '--b--', '']));
    const safe = make7bitSafe(m, () => Buffer.alloc(18, 7));
    assertSevenBitSafe(safe.raw);
    assert.equal(safe.multipart?.preamble.length, 0);
    // Quoted-printable wraps after 75 characters, so "--b" would start a line.
    assert.notEqual(safe.multipart?.boundary, 'b');
    assert.equal(safe.parts.length, 1);
    assert.equal(text(decodeTransferEncoding(safe.parts[0]!.body, 'quoted-printable')), `${'y'.repeat(75)}--b ü`);
  });

  test('isSevenBitClean: NUL, 8-bit bytes and line length', () => {
    assert.equal(isSevenBitClean(Buffer.from('ok\r\n')), true);
    assert.equal(isSevenBitClean(Buffer.from('nul\x00')), false);
    assert.equal(isSevenBitClean(Buffer.from([0x80])), false);
    assert.equal(isSevenBitClean(Buffer.from(`${'a'.repeat(998)}\r\n${'b'.repeat(998)}`)), true);
    assert.equal(isSevenBitClean(Buffer.from(`${'a'.repeat(999)}\r\n`)), false);
    assert.equal(isSevenBitClean(Buffer.from(`${'a'.repeat(999)}\n`)), false);
    assert.equal(isSevenBitClean(Buffer.from('\n'.repeat(5000))), true);
    assert.equal(isSevenBitClean(Buffer.from(`\n${'a'.repeat(998)}`)), true);
    assert.equal(isSevenBitClean(Buffer.from(`\n${'a'.repeat(999)}`)), false);
    assert.equal(isSevenBitClean(Buffer.from(`${'a'.repeat(500)}\n${'a'.repeat(998)}\n${'a'.repeat(998)}\r`)), true);
  });

  test('property: isSevenBitClean agrees with the definition', () => {
    const chunk = fc.oneof(
      fc.constantFrom('\n', '\r', '\r\n', '\x00', '\x80'),
      fc.integer({ min: 0, max: 1001 }).map((k) => 'a'.repeat(k)),
    );
    fc.assert(
      fc.property(fc.array(chunk, { maxLength: 8 }), (chunks) => {
        const str = chunks.join('');
        const bytes = Buffer.from(str, 'latin1');
        const expected = /^[\x01-\x7f]*$/.test(str) && str.split('\n').every((l) => l.replace(/\r$/, '').length <= 998);
        assert.equal(isSevenBitClean(bytes), expected);
      }),
      { numRuns: 1000, seed: 998 },
    );
  });
});

const contentBytes = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  fc.string({ maxLength: 300 }).map((s) => Buffer.from(s, 'utf8')),
  fc.array(fc.constantFrom('a', ' ', '\r', '\n', '\r\n', '=', 'From ', '\t'), { maxLength: 100 }).map((a) => Buffer.from(a.join(''))),
  fc.integer({ min: 990, max: 1300 }).map((n) => Buffer.from('z'.repeat(n))),
);
const leafType = fc.constantFrom('text/plain; charset=utf-8', 'text/html', 'application/octet-stream', 'image/png');
const encoding = fc.constantFrom(undefined, '7bit', '8bit', 'binary', 'base64', 'quoted-printable');

interface Leaf {
  readonly type: string;
  readonly cte: string | undefined;
  readonly content: Uint8Array;
}
type Node = Leaf | { readonly children: readonly Node[] };
const node: fc.Arbitrary<Node> = fc.letrec<{ node: Node }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ type: leafType, cte: encoding, content: contentBytes }),
    fc.record({ children: fc.array(tie('node'), { minLength: 1, maxLength: 3 }) }),
  ),
})).node;

function buildNode(n: Node): MimeEntity {
  if ('children' in n) return buildMultipart('mixed', {}, n.children.map(buildNode));
  const headers: HeaderInput[] = [['Content-Type', n.type]];
  if (n.cte !== undefined) headers.push(['Content-Transfer-Encoding', n.cte]);
  const body = n.cte === 'base64' ? encodeBase64(n.content) : n.cte === 'quoted-printable' ? encodeQuotedPrintable(n.content) : n.content;
  return buildEntity({ headers, body });
}

/** What a receiver must get back from each leaf: its content, text with canonical line breaks. */
function assertContent(n: Node, e: MimeEntity): void {
  if ('children' in n) {
    assert.equal(e.parts.length, n.children.length);
    n.children.forEach((c, i) => assertContent(c, e.parts[i]!));
    return;
  }
  assert.equal(e.contentType.mediaType, n.type.split(';')[0]);
  const identity = n.cte !== 'base64' && n.cte !== 'quoted-printable';
  const expected = identity && n.type.startsWith('text/') ? toCanonicalCrlf(n.content) : n.content;
  assert.deepEqual(Buffer.from(decodeTransferEncoding(e.body, e.transferEncoding)), Buffer.from(expected));
}

describe('make7bitSafe properties', () => {
  test('output is 7-bit, canonical, lines ≤ 998, same structure and content; a fixpoint', () => {
    fc.assert(
      fc.property(node, (n) => {
        const entity = buildNode(n);
        const safe = make7bitSafe(entity);
        assertSevenBitSafe(safe.raw);
        assertContent(n, safe);
        assert.equal(needsTransferEncoding(safe), false);
        assert.equal(make7bitSafe(safe), safe);
      }),
      { numRuns: 300, seed: 8551 },
    );
  });
});
