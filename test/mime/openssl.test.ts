/**
 * The byte ranges checked against a real peer: the first part of a
 * multipart/signed must be exactly the bytes OpenSSL signed, and a
 * multipart/signed built here must split in OpenSSL exactly where it splits
 * here. (The CMS itself is OpenSSL's in both directions; this layer only
 * frames it.)
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  attachOuterHeaders,
  buildEntity,
  buildMultipart,
  classifySmime,
  decodeTransferEncoding,
  encodeBase64,
  make7bitSafe,
  micalgFor,
  parseEntity,
  splitMessage,
} from '../../src/smime/mime/index.ts';
import { lf, nestedMixed } from './fixtures.ts';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

describe('multipart/signed byte ranges against OpenSSL', { skip: !hasOpenssl && 'openssl not installed' }, () => {
  let dir = '';
  const file = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): { status: number | null; stderr: string } => {
    const r = spawnSync('openssl', args, { encoding: 'utf8' });
    return { status: r.status, stderr: r.stderr };
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kf-mime-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', file('k.pem'), '-out', file('c.pem'), '-subj', '/CN=mime test', '-days', '1'], { stdio: 'ignore' });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the first part of what `openssl smime -sign` writes is exactly the signed content', () => {
    // LF-only input: OpenSSL canonicalises the content but frames it with bare LFs.
    writeFileSync(file('content.txt'), 'Content-Type: text/plain\n\nhello\nworld\n\n');
    execFileSync('openssl', ['smime', '-sign', '-in', file('content.txt'), '-signer', file('c.pem'), '-inkey', file('k.pem'), '-out', file('signed.eml')]);
    const msg = parseEntity(readFileSync(file('signed.eml')));
    assert.equal(classifySmime(msg).kind, 'signed-multipart');
    const [content, signature] = msg.parts;
    assert.ok(content && signature);
    assert.equal(Buffer.from(content.raw).toString('latin1'), 'Content-Type: text/plain\r\n\r\nhello\r\nworld\r\n\r\n');
    writeFileSync(file('part.bin'), content.raw);
    writeFileSync(file('sig.der'), decodeTransferEncoding(signature.body, signature.transferEncoding));
    const verify = (): { status: number | null; stderr: string } =>
      openssl('cms', '-verify', '-binary', '-noverify', '-inform', 'DER', '-in', file('sig.der'), '-content', file('part.bin'), '-out', file('out.bin'));
    assert.equal(verify().status, 0, verify().stderr);
    // One byte more (the CRLF before the delimiter) and the digest no longer matches.
    writeFileSync(file('part.bin'), Buffer.concat([content.raw, Buffer.from('\r\n')]));
    assert.notEqual(verify().status, 0);
  });

  test('a message signed over make7bitSafe output and framed here verifies in OpenSSL', () => {
    const { outerHeaders, content } = splitMessage(parseEntity(lf(nestedMixed)));
    const safe = make7bitSafe(content);
    writeFileSync(file('safe.bin'), safe.raw);
    execFileSync('openssl', ['cms', '-sign', '-binary', '-md', 'sha256', '-outform', 'DER', '-in', file('safe.bin'), '-signer', file('c.pem'), '-inkey', file('k.pem'), '-out', file('sig.der')]);
    const signature = buildEntity({
      headers: [
        ['Content-Type', 'application/pkcs7-signature; name=smime.p7s'],
        ['Content-Transfer-Encoding', 'base64'],
        ['Content-Disposition', 'attachment; filename=smime.p7s'],
      ],
      body: encodeBase64(readFileSync(file('sig.der'))),
    });
    const signed = buildMultipart('signed', { protocol: 'application/pkcs7-signature', micalg: micalgFor('sha256') }, [safe, signature]);
    const message = attachOuterHeaders(outerHeaders, signed);
    writeFileSync(file('message.eml'), message.raw);
    const r = openssl('cms', '-verify', '-noverify', '-in', file('message.eml'), '-out', file('verified.bin'));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(readFileSync(file('verified.bin')), Buffer.from(safe.raw));
  });
});
