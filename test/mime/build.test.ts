import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isKeyfleetError } from '../../src/errors.ts';
import {
  attachOuterHeaders,
  buildEntity,
  buildMultipart,
  formatHeaderField,
  getHeader,
  type HeaderInput,
  type MimeEntity,
  parseEntity,
  parsePart,
  splitMessage,
} from '../../src/smime/mime/index.ts';
import { crlf, lf, nestedMixed, text } from './fixtures.ts';

const headerName = fc.stringMatching(/^X-[A-Za-z0-9-]{1,20}$/);
const headerValue = fc
  .array(fc.constantFrom(...'abcXYZ019 <>@.,;:"()=?/-_\tü€'.split('')), { maxLength: 200 })
  .map((a) => a.join('').replace(/^[ \t]+|[ \t]+$/g, ''));
const headers = fc.array(fc.tuple(headerName, headerValue), { maxLength: 6 });
const leafSpec = fc.record({ headers, body: fc.uint8Array({ maxLength: 400 }) });

interface Tree {
  readonly headers: readonly HeaderInput[];
  readonly body?: Uint8Array;
  readonly children?: readonly Tree[];
}
const tree: fc.Arbitrary<Tree> = fc.letrec<{ node: Tree }>((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leafSpec,
    fc.record({ headers, children: fc.array(tie('node'), { minLength: 1, maxLength: 4 }) }),
  ),
})).node;

function build(t: Tree): MimeEntity {
  if (t.children) return buildMultipart('mixed', {}, t.children.map(build), { headers: t.headers });
  return buildEntity({ headers: t.headers, body: t.body ?? new Uint8Array(0) });
}

function assertSame(t: Tree, e: MimeEntity): void {
  const own = e.headers.filter((h) => !(t.children && h.name === 'Content-Type'));
  assert.deepEqual(
    own.map((h) => [h.name, h.value]),
    t.headers.map(([n, v]) => [n, v]),
  );
  if (t.children) {
    assert.equal(e.parts.length, t.children.length);
    t.children.forEach((c, i) => assertSame(c, e.parts[i]!));
  } else {
    assert.deepEqual(Buffer.from(e.body), Buffer.from(t.body ?? []));
  }
}

describe('builders', () => {
  test('property: build then parse gives back header fields, parts and bodies', () => {
    fc.assert(
      fc.property(tree, (t) => {
        const built = build(t);
        const reparsed = parsePart(Buffer.from(built.raw));
        assertSame(t, reparsed);
        // Nested parts keep their exact bytes.
        if (t.children) built.parts.forEach((p, i) => assert.deepEqual(Buffer.from(reparsed.parts[i]!.raw), Buffer.from(p.raw)));
      }),
      { numRuns: 200, seed: 2046 },
    );
  });

  test('long values are folded at whitespace within 78 characters, and unfold to the same value', () => {
    const value = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ');
    const field = formatHeaderField('Subject', value);
    const ls = field.split('\r\n').slice(0, -1);
    assert.ok(ls.length > 1);
    assert.ok(ls.every((l) => l.length <= 78));
    assert.ok(ls.slice(1).every((l) => l.startsWith(' ')));
    assert.equal(getHeader(parseEntity(Buffer.from(`${field}\r\n`)).headers, 'subject'), value);
  });

  test('header injection and invalid names are refused', () => {
    const malformed = (e: unknown): boolean => isKeyfleetError(e, 'KF_MIME_MALFORMED');
    assert.throws(() => formatHeaderField('Subject', 'x\r\nBcc: eve@example.com'), malformed);
    assert.throws(() => formatHeaderField('Sub ject', 'x'), malformed);
    assert.throws(() => buildEntity({ headers: [['X:', 'y']], body: new Uint8Array(0) }), malformed);
  });

  test('multipart/signed as RFC 8551 §3.5.3 writes it: quoted protocol, micalg, quoted boundary', () => {
    const content = buildEntity({ headers: [['Content-Type', 'text/plain']], body: Buffer.from('hello\r\n') });
    const sig = buildEntity({ headers: [['Content-Type', 'application/pkcs7-signature; name=smime.p7s']], body: Buffer.from('MIIB\r\n') });
    const signed = buildMultipart('signed', { protocol: 'application/pkcs7-signature', micalg: 'sha-256' }, [content, sig], {
      boundary: '=_boundary 1',
      preamble: 'This is an S/MIME signed message',
    });
    assert.equal(
      text(signed.raw),
      [
        'Content-Type: multipart/signed; protocol="application/pkcs7-signature";',
        ' micalg=sha-256; boundary="=_boundary 1"',
        '',
        'This is an S/MIME signed message',
        '--=_boundary 1',
        'Content-Type: text/plain',
        '',
        'hello',
        '',
        '--=_boundary 1',
        'Content-Type: application/pkcs7-signature; name=smime.p7s',
        '',
        'MIIB',
        '',
        '--=_boundary 1--',
        '',
      ].join('\r\n'),
    );
    assert.deepEqual(Buffer.from(signed.parts[0]!.raw), Buffer.from(content.raw));
  });

  test('a given boundary that occurs at a line start in a part is refused; random ones avoid the parts', () => {
    const part = buildEntity({ headers: [], body: Buffer.from('x\r\n--taken and more\r\n') });
    assert.throws(
      () => buildMultipart('mixed', {}, [part], { boundary: 'taken' }),
      (e: unknown) => isKeyfleetError(e, 'KF_MIME_MALFORMED') && /line start in part 1/.test(e.message),
    );
    assert.throws(() => buildMultipart('mixed', {}, [part], { boundary: 'bad\u00e9' }), /invalid multipart boundary/);
    assert.throws(() => buildMultipart('mixed', { boundary: 'x' }, [part]), /options.boundary/);
    // A random source that first yields a boundary present in the part must be retried.
    const first = Buffer.alloc(18, 1);
    const collide = buildEntity({ headers: [], body: Buffer.from(`--=_kf_${first.toString('base64url')}`) });
    let calls = 0;
    const random = (n: number): Uint8Array => (calls++ === 0 ? first : Buffer.alloc(n, 2));
    const built = buildMultipart('mixed', {}, [collide], { randomBytes: random });
    assert.equal(calls, 2);
    assert.equal(built.multipart?.boundary, `=_kf_${Buffer.alloc(18, 2).toString('base64url')}`);
    assert.throws(() => buildMultipart('mixed', {}, [collide], { randomBytes: () => first }), /could not choose a boundary/);
  });

  test('non-ASCII parameters are written as RFC 2231 values and read back', () => {
    const e = buildEntity({ headers: [['Content-Type', 'text/plain']], body: new Uint8Array(0) });
    const m = buildMultipart('mixed', { 'x-title': 'Ünïcödé'.repeat(20) }, [e]);
    const ct = getHeader(m.headers, 'content-type')!;
    assert.match(ct, /x-title\*0\*=utf-8''%C3%9Cn/);
    assert.ok(text(m.raw).split('\r\n').every((l) => l.length <= 78));
    assert.equal(m.contentType.params.get('x-title'), 'Ünïcödé'.repeat(20));
  });
});

describe('splitMessage and attachOuterHeaders', () => {
  test('the outer header fields stay outside; the content entity keeps its fields and attachments', () => {
    for (const bytes of [crlf(nestedMixed), lf(nestedMixed)]) {
      const msg = parseEntity(bytes);
      const { outerHeaders, content } = splitMessage(msg);
      assert.deepEqual(
        outerHeaders.map((h) => h.name),
        ['Return-Path', 'From', 'To', 'Subject', 'Date', 'Message-ID', 'MIME-Version'],
      );
      assert.deepEqual(
        content.headers.map((h) => h.name),
        ['Content-Type', 'Content-Language'],
      );
      assert.equal(content.parts.length, 3);
      assert.deepEqual(Buffer.from(content.body), Buffer.from(msg.body));

      const again = attachOuterHeaders(outerHeaders, content);
      assert.deepEqual(
        again.headers.map((h) => [h.name, h.value]),
        msg.headers.filter((h) => h.name !== 'Content-Type' && h.name !== 'Content-Language').map((h) => [h.name, h.value]).concat(
          content.headers.map((h) => [h.name, h.value]),
        ),
      );
      assert.equal(again.parts.length, 3);
    }
  });

  test('Content-* fields at the end: the content entity is a view, not a copy', () => {
    const bytes = crlf(['From: a@example.com', 'Content-Type: text/plain', 'Content-Transfer-Encoding: 7bit', '', 'hi']);
    const { content } = splitMessage(parseEntity(bytes));
    assert.equal(content.raw.buffer, bytes.buffer);
    assert.equal(text(content.raw), 'Content-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\nhi');
  });

  test('interleaved fields are gathered; no Content-* field gives an explicit text/plain', () => {
    const interleaved = splitMessage(parseEntity(crlf(['Content-Type: text/plain', 'Subject: s', 'Content-ID: <1@x>', '', 'body'])));
    assert.equal(text(interleaved.content.raw), 'Content-Type: text/plain\r\nContent-ID: <1@x>\r\n\r\nbody');
    const bare = splitMessage(parseEntity(crlf(['Subject: s', '', 'body'])));
    assert.equal(text(bare.content.raw), 'Content-Type: text/plain; charset=us-ascii\r\n\r\nbody');
    const headersOnly = splitMessage(parseEntity(Buffer.from('Subject: s\r\nContent-Type: text/plain\r\n')));
    assert.equal(text(headersOnly.content.raw), 'Content-Type: text/plain\r\n\r\n');
  });

  test('attachOuterHeaders adds MIME-Version when missing, drops stray Content-* fields, writes CRLF', () => {
    const content = buildEntity({ headers: [['Content-Type', 'application/pkcs7-mime; smime-type=enveloped-data']], body: Buffer.from('MIA=\r\n') });
    const outer = parseEntity(lf(['From: a@example.com', 'Content-Type: text/plain', 'Subject: x', '', ''])).headers;
    const msg = attachOuterHeaders([...outer, ['X-Mailer', 'keyfleet']], content);
    assert.equal(
      text(msg.raw),
      'From: a@example.com\r\nSubject: x\r\nX-Mailer: keyfleet\r\nMIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n\r\nMIA=\r\n',
    );
  });
});
