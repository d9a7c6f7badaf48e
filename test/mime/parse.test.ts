import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isKeyfleetError } from '../../src/errors.ts';
import {
  decodeTransferEncoding,
  getHeader,
  getHeaders,
  type MimeEntity,
  parseContentDisposition,
  parseContentType,
  parseEntity,
  parsePart,
} from '../../src/smime/mime/index.ts';
import { crlf, lf, nestedMixed, opensslSigned, outlookAlternative, text } from './fixtures.ts';

function assertRanges(input: Uint8Array, e: MimeEntity): void {
  assert.equal(Buffer.compare(input.subarray(e.start, e.end), e.raw), 0, 'raw is input[start, end)');
  assert.equal(Buffer.compare(input.subarray(e.bodyStart, e.end), e.body), 0, 'body is input[bodyStart, end)');
  for (const p of e.parts) {
    assert.ok(p.start >= e.bodyStart && p.end <= e.end, 'part inside its parent body');
    assertRanges(input, p);
  }
}

describe('parseEntity: a nested multipart/mixed message', () => {
  for (const [name, bytes] of [
    ['CRLF', crlf(nestedMixed)],
    ['LF only', lf(nestedMixed)],
  ] as const) {
    test(`${name}: headers, structure and decoded bodies`, () => {
      const eol = name === 'CRLF' ? '\r\n' : '\n';
      const msg = parseEntity(bytes);
      assert.deepEqual(
        msg.headers.map((h) => h.name),
        ['Return-Path', 'From', 'To', 'Subject', 'Date', 'Message-ID', 'MIME-Version', 'Content-Type', 'Content-Language'],
      );
      // Unfolding removes the line break only (RFC 5322 §2.2.3).
      assert.equal(getHeader(msg.headers, 'to'), 'Bob <bob@example.org>, Carol <carol@example.org>');
      assert.equal(text(msg.headers[2]!.raw), `To: Bob <bob@example.org>,${eol} Carol <carol@example.org>${eol}`);
      assert.equal(getHeader(msg.headers, 'SUBJECT'), 'Quarterly figures');
      assert.deepEqual(getHeaders(msg.headers, 'x-missing'), []);
      assert.equal(msg.contentType.mediaType, 'multipart/mixed');
      assert.equal(msg.multipart?.boundary, '------------mixed0123456789');
      assert.equal(text(msg.multipart.preamble), 'This is a multi-part message in MIME format.');
      assert.equal(msg.multipart.closed, true);
      assert.equal(text(msg.multipart.epilogue), '');
      assert.equal(msg.parts.length, 3);

      const [alt, pdf, csv] = msg.parts as [MimeEntity, MimeEntity, MimeEntity];
      assert.equal(alt.contentType.mediaType, 'multipart/alternative');
      assert.equal(alt.parts.length, 2);
      assert.equal(text(alt.multipart!.preamble), '', 'the empty line before the first delimiter is its CRLF');
      const plain = alt.parts[0]!;
      assert.equal(plain.contentType.params.get('charset'), 'UTF-8');
      assert.equal(plain.contentType.params.get('format'), 'flowed');
      assert.equal(plain.transferEncoding, '8bit');
      assert.equal(text(plain.body), `Hi Bob, the figures are attached. Grüße${eol}`);
      assert.equal(alt.parts[1]!.contentType.mediaType, 'text/html');

      assert.equal(pdf.transferEncoding, 'base64');
      assert.equal(pdf.contentType.params.get('name'), 'q1.pdf');
      assert.ok(Buffer.from(decodeTransferEncoding(pdf.body, pdf.transferEncoding)).toString('latin1').startsWith('%PDF-1.4'));

      const disposition = parseContentDisposition(getHeader(csv.headers, 'content-disposition')!);
      assert.equal(disposition?.type, 'attachment');
      assert.equal(disposition?.params.get('filename'), '€ rates 2025.csv');
      assert.equal(text(decodeTransferEncoding(csv.body, csv.transferEncoding)), 'currency,rate\r\nEUR,1.00');

      assertRanges(bytes, msg);
    });
  }

  test('part raw bytes exclude the line break that precedes the next delimiter (RFC 2046 §5.1.1)', () => {
    const bytes = crlf(nestedMixed);
    const msg = parseEntity(bytes);
    const plain = msg.parts[0]!.parts[0]!;
    assert.equal(
      text(plain.raw),
      'Content-Type: text/plain; charset=UTF-8; format=flowed\r\nContent-Transfer-Encoding: 8bit\r\n\r\nHi Bob, the figures are attached. Grüße\r\n',
    );
    const after = bytes.subarray(plain.end, plain.end + 4).toString('latin1');
    assert.equal(after, '\r\n--');
  });
});

describe('parseEntity: boundaries', () => {
  test('unquoted Outlook boundary with "=" and a preamble', () => {
    const msg = parseEntity(crlf(outlookAlternative));
    assert.equal(msg.multipart?.boundary, '----=_NextPart_000_0012_01DB8C5A.2B3C4D50');
    assert.equal(msg.parts.length, 2);
    assert.equal(text(msg.multipart.preamble), 'This is a multipart message in MIME format.\r\n');
    assert.equal(text(msg.parts[0]!.body), 'Noon?\r\n');
    assert.equal(text(decodeTransferEncoding(msg.parts[1]!.body, 'quoted-printable')), '<p>Noon?</p>\r\n');
  });

  test('a line that merely starts with the boundary is content, and transport padding is allowed', () => {
    const msg = parseEntity(
      crlf(['Content-Type: multipart/mixed; boundary=abc', '', '--abc  \t', '', 'x', '--abcdef', '--abc--x', ' --abc', '--abc-- ', 'epilogue']),
    );
    assert.equal(msg.parts.length, 1);
    assert.equal(text(msg.parts[0]!.body), 'x\r\n--abcdef\r\n--abc--x\r\n --abc');
    assert.equal(text(msg.multipart!.epilogue), 'epilogue');
  });

  test('a missing close delimiter leaves the last part running to the end', () => {
    const msg = parseEntity(crlf(['Content-Type: multipart/mixed; boundary=b', '', '--b', '', 'one', '--b', '', 'two', '']));
    assert.equal(msg.multipart?.closed, false);
    assert.deepEqual(
      msg.parts.map((p) => text(p.body)),
      ['one', 'two\r\n'],
    );
  });

  test('a body without any delimiter gives no parts', () => {
    const msg = parseEntity(crlf(['Content-Type: multipart/mixed; boundary=b', '', 'no parts here']));
    assert.equal(msg.parts.length, 0);
    assert.equal(text(msg.multipart!.preamble), 'no parts here');
  });

  test('empty parts and parts without headers', () => {
    const msg = parseEntity(crlf(['Content-Type: multipart/mixed; boundary=b', '', '--b', '', '--b', '', 'body only', '--b--']));
    assert.equal(msg.parts.length, 2);
    assert.equal(msg.parts[0]!.raw.length, 0);
    assert.equal(msg.parts[0]!.contentType.mediaType, 'text/plain');
    assert.equal(msg.parts[1]!.headers.length, 0);
    assert.equal(text(msg.parts[1]!.body), 'body only');
  });

  test('multipart/digest parts default to message/rfc822 (RFC 2046 §5.1.5)', () => {
    const msg = parseEntity(crlf(['Content-Type: multipart/digest; boundary=d', '', '--d', '', 'Subject: inner', '', 'hi', '--d--']));
    assert.equal(msg.parts[0]!.contentType.mediaType, 'message/rfc822');
  });

  test('the signed part of an OpenSSL multipart/signed is exactly the bytes between the delimiters', () => {
    const msg = parseEntity(crlf(opensslSigned));
    assert.equal(text(msg.parts[0]!.raw), 'Content-Type: text/plain\r\n\r\nsigned text\r\n');
    assert.equal(msg.parts[1]!.contentType.mediaType, 'application/x-pkcs7-signature');
  });
});

describe('parseEntity: header fields', () => {
  test('mixed line endings, obsolete space before the colon, UTF-8 values', () => {
    const msg = parseEntity(Buffer.from('Subject : Grüße\r\nX-A: 1\n\tcontinued\r\nX-B:\r\n\nbody\r\n', 'utf8'));
    assert.deepEqual(
      msg.headers.map((h) => [h.name, h.value]),
      [
        ['Subject', 'Grüße'],
        ['X-A', '1\tcontinued'],
        ['X-B', ''],
      ],
    );
    assert.equal(text(msg.body), 'body\r\n');
  });

  test('an mbox "From " line before the message is skipped (RFC 4155)', () => {
    const bytes = Buffer.from('From alice@example.com Tue Mar  4 10:15:00 2025\nFrom: alice@example.com\nSubject: x\n\nbody\n');
    const msg = parseEntity(bytes);
    assert.deepEqual(
      msg.headers.map((h) => h.name),
      ['From', 'Subject'],
    );
    assert.equal(msg.start, 48);
    assert.equal(text(msg.raw), 'From: alice@example.com\nSubject: x\n\nbody\n');
  });

  test('a message of header fields only has an empty body', () => {
    const msg = parseEntity(Buffer.from('Subject: x\r\nTo: y'));
    assert.equal(msg.headers.length, 2);
    assert.equal(msg.body.length, 0);
    assert.equal(text(msg.headers[1]!.raw), 'To: y');
  });

  test('a part whose generator forgot the empty line: the first non-field line starts the body', () => {
    const part = parsePart(Buffer.from('Content-Type: text/plain\r\nnot a header\r\n'));
    assert.equal(part.headers.length, 1);
    assert.equal(text(part.body), 'not a header\r\n');
  });

  test('defaults: text/plain us-ascii and 7bit; unparseable Content-Type falls back too (RFC 2045 §5.2)', () => {
    const msg = parseEntity(Buffer.from('Content-Type: nonsense\r\nContent-Transfer-Encoding: BASE64 (comment)\r\n\r\nx'));
    assert.equal(msg.contentType.mediaType, 'text/plain');
    assert.equal(msg.contentType.params.get('charset'), 'us-ascii');
    assert.equal(msg.transferEncoding, 'base64');
  });
});

describe('Content-Type and parameters', () => {
  test('quoted strings with escapes, comments and case', () => {
    const ct = parseContentType('Text/HTML (a comment); Charset="utf-8" ; name="a \\"b\\" c.html";format=flowed (x)');
    assert.equal(ct?.mediaType, 'text/html');
    assert.equal(ct?.params.get('charset'), 'utf-8');
    assert.equal(ct?.params.get('name'), 'a "b" c.html');
    assert.equal(ct?.params.get('format'), 'flowed');
  });

  test('RFC 2231 examples: extended value with language, continuations mixing plain and extended sections', () => {
    const a = parseContentType("application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A");
    assert.equal(a?.params.get('title'), 'This is ***fun***');
    const b = parseContentType(
      "application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"",
    );
    assert.equal(b?.params.get('title'), "This is even more ***fun*** isn't it!");
    const c = parseContentType('message/external-body; access-type=URL; URL*0="ftp://"; URL*1="cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar"');
    assert.equal(c?.params.get('url'), 'ftp://cs.utk.edu/pub/moore/bulk-mailer/bulk-mailer.tar');
    const d = parseContentType("text/plain; name*=iso-8859-1''%E9t%E9.txt; name=fallback.txt");
    assert.equal(d?.params.get('name'), 'été.txt', 'the RFC 2231 form wins over the plain one');
  });

  test('no type/subtype gives undefined', () => {
    assert.equal(parseContentType(''), undefined);
    assert.equal(parseContentType('text'), undefined);
    assert.equal(parseContentType('/plain'), undefined);
  });
});

describe('parseEntity: refusals are coded', () => {
  const refuses = (bytes: Uint8Array, pattern: RegExp, limits = {}): void => {
    assert.throws(
      () => parseEntity(bytes, limits),
      (e: unknown) => isKeyfleetError(e, 'KF_MIME_MALFORMED') && pattern.test(e.message),
    );
  };

  test('garbage, empty input, and a multipart without boundary', () => {
    refuses(new Uint8Array(0), /empty/);
    refuses(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), /first line is not a header/);
    refuses(Buffer.from('\r\nbody first'), /first line is not a header/);
    refuses(Buffer.from('Content-Type: multipart/mixed\r\n\r\n--x\r\n'), /boundary/);
  });

  test('limits: header count, line length, header bytes, nesting depth, part count', () => {
    refuses(Buffer.from('X-A: 1\r\n'.repeat(20)), /more than 10 header fields/, { maxHeaderFields: 10 });
    refuses(Buffer.from(`Subject: ${'x'.repeat(200)}\r\n`), /header line longer than 100/, { maxHeaderLineLength: 100 });
    refuses(Buffer.from(`X: 1\r\n${' x\r\n'.repeat(100)}`), /header block longer/, { maxHeaderBytes: 100 });
    let nested = 'hi';
    for (let i = 0; i < 40; i++) nested = `Content-Type: multipart/mixed; boundary=b${i}\r\n\r\n--b${i}\r\n${nested}\r\n--b${i}--`;
    refuses(Buffer.from(nested), /nesting deeper than 32/);
    refuses(Buffer.from(`Content-Type: multipart/mixed; boundary=b\r\n\r\n${'--b\r\n\r\nx\r\n'.repeat(50)}`), /more than 20 body parts/, { maxParts: 20 });
    refuses(Buffer.from(`Content-Type: multipart/mixed; boundary=b\r\n\r\n${'--b\r\nX: 1\r\nY: 2\r\n\r\n'.repeat(50)}`), /more than 60 header fields in the message/, {
      maxTotalHeaderFields: 60,
    });
  });

  test('a huge header line is refused after reading at most the limit', () => {
    const big = Buffer.alloc(8 * 1024 * 1024, 0x61);
    big.write('Subject: ', 0, 'latin1');
    refuses(big, /header line longer than 65536/);
  });
});
