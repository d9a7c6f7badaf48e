import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isKeyfleetError } from '../../src/errors.ts';
import {
  MAX_DEPTH,
  SequenceReader,
  Tag,
  TagClass,
  bit,
  children,
  contents,
  integerContents,
  octetSegments,
  parse,
  raw,
  readBigInt,
  readBitString,
  readBoolean,
  readOctets,
  readOid,
  readSmallInt,
  readString,
  readTime,
  readTlv,
} from '../../src/asn1/reader.ts';
import * as der from '../../src/asn1/writer.ts';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
/** Compares bytes by value, whatever the view type (Buffer or Uint8Array). */
const assertBytes = (actual: Uint8Array, expectedHex: string, message?: string) => assert.equal(Buffer.from(actual).toString('hex'), expectedHex.replace(/\s+/g, ''), message);
const malformed = (e: unknown) => isKeyfleetError(e, 'KF_ASN1_MALFORMED');
const limit = (e: unknown) => isKeyfleetError(e, 'KF_ASN1_LIMIT');

describe('lengths', () => {
  test('short, long and non-minimal long forms', () => {
    const short = parse(hex('04 03 010203'));
    assert.equal(short.contentEnd - short.contentStart, 3);
    const long = parse(Buffer.concat([hex('04 81 80'), new Uint8Array(128)]));
    assert.equal(long.contentStart, 3);
    assert.equal(long.contentEnd, 131);
    const twoOctets = parse(Buffer.concat([hex('04 82 0100'), new Uint8Array(256)]));
    assert.equal(twoOctets.contentEnd - twoOctets.contentStart, 256);
    // BER allows a long form where a short one would do
    assertBytes(contents(parse(hex('04 81 02 aabb'))), 'aabb');
  });

  test('absurd length fields give coded errors before any allocation', () => {
    const cases: [string, (e: unknown) => boolean][] = [
      ['04 84 ffffffff 00', malformed], // 4 GB claimed, 1 byte present
      ['30 86 ffffffffffff', malformed], // 2^48 - 1 claimed
      ['04 87 01000000000000', limit], // seven length octets
      ['04 ff', limit], // 127 length octets (reserved form)
      ['04 82 01', malformed], // length octets truncated
      ['04 05 0102', malformed], // contents truncated
      ['04', malformed], // no length at all
      ['', malformed],
    ];
    for (const [input, check] of cases) assert.throws(() => parse(hex(input)), check, input);
  });

  test('an element must fit inside its parent', () => {
    const outer = parse(hex('30 03 04 05 00'));
    assert.throws(() => children(outer), malformed);
  });

  test('trailing data after the element is refused by parse, not by readTlv', () => {
    assert.throws(() => parse(hex('05 00 00')), malformed);
    assert.equal(readTlv(hex('05 00 00')).end, 2);
  });
});

describe('indefinite lengths', () => {
  test('a constructed element with end-of-contents', () => {
    const bytes = hex('30 80 02 01 05 04 01 aa 00 00');
    const tlv = parse(bytes);
    assert.equal(tlv.indefinite, true);
    assert.equal(tlv.contentStart, 2);
    assert.equal(tlv.contentEnd, 8);
    assert.equal(tlv.end, 10);
    assertBytes(raw(tlv), Buffer.from(bytes).toString('hex'), 'raw keeps the end-of-contents octets');
    const [n, o] = children(tlv);
    assert.equal(readSmallInt(n!), 5);
    assertBytes(readOctets(o!), 'aa');
  });

  test('nested indefinite elements', () => {
    const tlv = parse(hex('30 80 30 80 05 00 00 00 a0 80 01 01 ff 00 00 00 00'));
    const [inner, tagged] = children(tlv);
    assert.equal(inner!.indefinite, true);
    assert.equal(children(inner!).length, 1);
    assert.equal(tagged!.cls, TagClass.context);
    assert.equal(readBoolean(children(tagged!)[0]!), true);
  });

  test('missing end-of-contents, and indefinite length on a primitive', () => {
    assert.throws(() => parse(hex('30 80 02 01 05')), malformed);
    assert.throws(() => parse(hex('30 80 02 01 05 00')), malformed);
    assert.throws(() => parse(hex('04 80 aa 00 00')), malformed);
  });

  test('nesting deeper than MAX_DEPTH is refused', () => {
    const nest = (n: number) => Buffer.concat([Buffer.from('3080'.repeat(n), 'hex'), Buffer.alloc(2 * n)]);
    assert.equal(parse(nest(MAX_DEPTH)).indefinite, true);
    assert.throws(() => parse(nest(MAX_DEPTH + 2)), limit);
    // a hostile input of many megabytes of nesting fails fast as well
    const started = performance.now();
    assert.throws(() => parse(nest(1_000_000)), limit);
    assert.ok(performance.now() - started < 1000);
  });
});

describe('constructed OCTET STRINGs (BER)', () => {
  test('segments are returned without copying; readOctets joins them', () => {
    const bytes = hex('24 80 04 02 aabb 24 80 04 01 cc 00 00 04 00 04 01 dd 00 00');
    const tlv = parse(bytes);
    const segments = octetSegments(tlv);
    assert.deepEqual(
      segments.map((s) => Buffer.from(s).toString('hex')),
      ['aabb', 'cc', '', 'dd'],
    );
    assert.ok(segments.every((s) => s.buffer === bytes.buffer), 'views into the input');
    assertBytes(readOctets(tlv), 'aabbccdd');
  });

  test('definite-length constructed form and implicitly tagged strings', () => {
    assertBytes(readOctets(parse(hex('24 06 04 01 01 04 01 02'))), '0102');
    assertBytes(readOctets(parse(hex('a0 80 04 01 01 00 00'))), '01');
    assertBytes(readOctets(parse(hex('80 02 0102'))), '0102');
  });

  test('a segment that is not an OCTET STRING, and deep nesting', () => {
    assert.throws(() => readOctets(parse(hex('24 80 02 01 01 00 00'))), malformed);
    let nested: Uint8Array = der.octetString(hex('01'));
    for (let i = 0; i < 12; i++) nested = der.tlv(0x24, nested);
    assert.throws(() => readOctets(parse(nested)), limit);
  });

  test('a constructed character string reads as its joined segments', () => {
    assert.equal(readString(parse(der.tlv(0x2c, der.octetString(Buffer.from('hé', 'utf8').subarray(0, 2)), der.octetString(Buffer.from('hé', 'utf8').subarray(2))))), 'hé');
  });
});

describe('tags', () => {
  test('high tag numbers (X.690 §8.1.2.4)', () => {
    const t100 = parse(hex('9f 64 00'));
    assert.equal(t100.cls, TagClass.context);
    assert.equal(t100.tag, 100);
    const t128 = parse(hex('bf 81 00 00'));
    assert.equal(t128.tag, 128);
    assert.equal(t128.constructed, true);
    const big = parse(hex('5f ff ff ff 7f 00'));
    assert.equal(big.cls, TagClass.application);
    assert.equal(big.tag, 2 ** 28 - 1);
  });

  test('tag numbers past four octets and truncated tags', () => {
    assert.throws(() => parse(hex('1f 81 81 81 81 01 00')), limit);
    assert.throws(() => parse(hex('1f 81')), malformed);
    assert.throws(() => parse(hex('1f')), malformed);
  });

  test('classes and the constructed bit', () => {
    assert.equal(parse(hex('41 00')).cls, TagClass.application);
    assert.equal(parse(hex('c1 00')).cls, TagClass.private);
    assert.equal(parse(hex('a3 00')).constructed, true);
    assert.throws(() => children(parse(hex('04 00'))), malformed);
  });
});

describe('OBJECT IDENTIFIER', () => {
  test('round trips through the writer', () => {
    for (const oid of ['1.2.840.113549.1.1.11', '2.5.29.37.0', '0.9.2342.19200300.100.1.25', '2.999.1', '1.3.6.1.4.1.311.20.2.3', '2.16.840.1.101.3.4.2.1', `1.2.${2 ** 45}`]) {
      assert.equal(readOid(parse(der.oid(oid))), oid);
    }
  });

  test('malformed encodings', () => {
    for (const bad of ['06 00', '06 02 2a 80', '06 03 2a 80 01', '04 01 2a', `06 41 ${'01'.repeat(65)}`]) {
      assert.throws(() => readOid(parse(hex(bad))), malformed, bad);
    }
    // an arc beyond 2^53 (e.g. a 2.25 UUID arc) is refused rather than rounded
    assert.throws(() => readOid(parse(hex('06 0b 69 81 80 80 80 80 80 80 80 80 00'))), malformed);
  });

  test('the writer refuses first arcs it cannot encode (X.690 §8.19.4)', () => {
    assert.throws(() => der.oid('1.50'));
    assert.throws(() => der.oid('3.1'));
  });
});

describe('INTEGER', () => {
  test('bigint round trips, signs and minimal encodings', () => {
    const cases: [bigint, string][] = [
      [0n, '020100'],
      [127n, '02017f'],
      [128n, '02020080'],
      [-1n, '0201ff'],
      [-128n, '020180'],
      [-129n, '0202ff7f'],
      [256n, '02020100'],
      [-256n, '0202ff00'],
    ];
    for (const [v, enc] of cases) {
      assert.equal(Buffer.from(der.integer(v)).toString('hex'), enc, String(v));
      assert.equal(readBigInt(parse(hex(enc))), v);
    }
    for (const v of [2n ** 64n, -(2n ** 64n), 2n ** 2048n - 1n, -(2n ** 521n) + 7n]) assert.equal(readBigInt(parse(der.integer(v))), v);
  });

  test('serial numbers keep their encoded contents', () => {
    assertBytes(integerContents(parse(hex('02 03 00 80 01'))), '008001');
    assert.equal(Buffer.from(der.unsignedInteger(hex('000080'))).toString('hex'), '02020080');
    assert.equal(Buffer.from(der.unsignedInteger(new Uint8Array(0))).toString('hex'), '020100');
    assertBytes(der.integerFromContents(hex('00ff')), '0202 00ff');
  });

  test('readSmallInt refuses values outside the safe range; empty INTEGER is malformed', () => {
    assert.equal(readSmallInt(parse(der.integer(Number.MAX_SAFE_INTEGER))), Number.MAX_SAFE_INTEGER);
    assert.throws(() => readSmallInt(parse(der.integer(2n ** 53n))), malformed);
    assert.throws(() => readBigInt(parse(hex('02 00'))), malformed);
    assert.throws(() => readBigInt(parse(hex('04 01 01'))), malformed);
    assert.equal(readSmallInt(parse(hex('0a 01 05'))), 5, 'ENUMERATED reads as an integer');
  });
});

describe('time', () => {
  test('UTCTime for 1950–2049 and GeneralizedTime outside (RFC 5280 §4.1.2.5)', () => {
    const cases: [string, number][] = [
      ['1950-01-01T00:00:00Z', Tag.utcTime],
      ['2049-12-31T23:59:59Z', Tag.utcTime],
      ['2050-01-01T00:00:00Z', Tag.generalizedTime],
      ['1949-12-31T23:59:59Z', Tag.generalizedTime],
      ['9999-12-31T23:59:59Z', Tag.generalizedTime],
    ];
    for (const [iso, tag] of cases) {
      const tlv = parse(der.time(new Date(iso)));
      assert.equal(tlv.tag, tag, iso);
      assert.equal(readTime(tlv).toISOString(), new Date(iso).toISOString());
    }
    assert.equal(readTime(parse(der.generalizedTime(new Date('2024-02-29T12:00:00Z')))).toISOString(), '2024-02-29T12:00:00.000Z');
  });

  test('forms other producers send: fractions, offsets, no seconds', () => {
    const t = (tag: number, s: string) => readTime(parse(der.tlv(tag, Buffer.from(s, 'latin1')))).toISOString();
    assert.equal(t(Tag.generalizedTime, '20240102030405.123Z'), '2024-01-02T03:04:05.123Z');
    assert.equal(t(Tag.generalizedTime, '20240102030405+0130'), '2024-01-02T01:34:05.000Z');
    assert.equal(t(Tag.utcTime, '2401020304Z'), '2024-01-02T03:04:00.000Z');
    assert.equal(t(Tag.utcTime, '240102030405-0500'), '2024-01-02T08:04:05.000Z');
  });

  test('bad time values', () => {
    for (const [tag, s] of [
      [Tag.utcTime, '24010203040Z'],
      [Tag.utcTime, '240102030405'],
      [Tag.generalizedTime, 'yesterday'],
      [Tag.generalizedTime, ''],
    ] as const) {
      assert.throws(() => readTime(parse(der.tlv(tag, Buffer.from(s, 'latin1')))), malformed, s);
    }
    assert.throws(() => readTime(parse(der.integer(1))), malformed);
  });

  test('out-of-range fields are refused, not rolled over', () => {
    assert.throws(() => readTime(parse(der.tlv(Tag.utcTime, Buffer.from('991399000000Z')))), malformed);
  });

  test('GeneralizedTime years 0001–0099 are not shifted into the 1900s', () => {
    assert.equal(readTime(parse(der.time(new Date('0050-06-01T00:00:00Z')))).toISOString(), '0050-06-01T00:00:00.000Z');
  });
});

describe('strings, bits and booleans', () => {
  test('character string types', () => {
    assert.equal(readString(parse(der.utf8String('Grüße ✓'))), 'Grüße ✓');
    assert.equal(readString(parse(der.printableString('Acme Ltd'))), 'Acme Ltd');
    assert.equal(readString(parse(der.ia5String('a@example.com'))), 'a@example.com');
    assert.equal(readString(parse(der.tlv(Tag.bmpString, Buffer.from('00480069', 'hex')))), 'Hi');
    assert.equal(readString(parse(der.tlv(Tag.universalString, Buffer.from('0001f600', 'hex')))), '😀');
    assert.throws(() => readString(parse(der.tlv(Tag.bmpString, hex('004800')))), malformed);
    assert.throws(() => readString(parse(der.tlv(Tag.universalString, hex('000000')))), malformed);
    assert.throws(() => readString(parse(der.integer(1))), malformed);
  });

  test('named bits round trip and DER trailing-bit trimming', () => {
    const enc = der.namedBits([0, 5, 8]);
    assert.equal(Buffer.from(enc).toString('hex'), '0303078480');
    const bits = readBitString(parse(enc));
    assert.deepEqual(
      [0, 1, 5, 8, 9, 100].map((n) => bit(bits, n)),
      [true, false, true, true, false, false],
    );
    assert.equal(Buffer.from(der.namedBits([])).toString('hex'), '030100');
    for (const bad of ['03 00', '03 01 01', '03 02 08 ff', '23 03 03 01 00']) assert.throws(() => readBitString(parse(hex(bad))), malformed, bad);
  });

  test('BOOLEAN and NULL', () => {
    assert.equal(readBoolean(parse(der.boolean(true))), true);
    assert.equal(readBoolean(parse(der.boolean(false))), false);
    assert.throws(() => readBoolean(parse(hex('01 02 0000'))), malformed);
    assertBytes(der.nullValue(), '0500');
  });
});

describe('SequenceReader', () => {
  const seq = parse(der.sequence(der.integer(1), der.explicit(0, der.boolean(true)), der.implicitPrimitive(2, hex('aa')), der.nullValue()));

  test('walks required, optional and context-tagged fields in order', () => {
    const r = new SequenceReader(seq, 'Test');
    assert.equal(readSmallInt(r.next(Tag.integer)), 1);
    assert.equal(r.optional(Tag.boolean), undefined);
    assert.equal(r.optionalContext(1), undefined);
    assert.ok(r.optionalContext(0));
    assertBytes(contents(r.optionalContext(2)!), 'aa');
    assert.equal(r.hasMore(), true);
    assert.throws(() => r.end(), malformed);
    r.next(Tag.null);
    r.end();
    assert.throws(() => r.next(), malformed);
  });

  test('a wrong tag names the structure in the message', () => {
    const r = new SequenceReader(seq, 'TBSWidget');
    assert.throws(
      () => r.next(Tag.oid),
      (e) => malformed(e) && /TBSWidget/.test((e as Error).message),
    );
    assert.throws(() => new SequenceReader(parse(der.integer(1)), 'X'), malformed);
  });
});
