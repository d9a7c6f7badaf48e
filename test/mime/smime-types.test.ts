import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  classifySmime,
  digestForMicalg,
  micalgFor,
  normaliseMicalg,
  normaliseMicalgList,
  parseEntity,
} from '../../src/smime/mime/index.ts';
import { crlf, opaqueEnveloped, opensslSigned } from './fixtures.ts';

function classify(contentType: string, extra: readonly string[] = [], body: readonly string[] = ['x']): ReturnType<typeof classifySmime> {
  return classifySmime(parseEntity(crlf([`Content-Type: ${contentType}`, ...extra, '', ...body])));
}

const signedBody = (secondType: string): string[] => ['--b', 'Content-Type: text/plain', '', 'hi', '--b', `Content-Type: ${secondType}`, '', 'MIIB', '--b--'];

describe('classifySmime (RFC 8551 §3.2, REFERENCE.md pitfall 6)', () => {
  test('multipart/signed with the RFC 8551 and legacy protocols', () => {
    assert.deepEqual(classify('multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary=b', [], signedBody('application/pkcs7-signature')), {
      kind: 'signed-multipart',
      smimeType: undefined,
      micalg: ['sha-256'],
      legacy: false,
    });
    assert.deepEqual(classifySmime(parseEntity(crlf(opensslSigned))), {
      kind: 'signed-multipart',
      smimeType: undefined,
      micalg: ['sha-1'],
      legacy: true,
    });
  });

  test('multipart/signed without protocol: decided by the signature part', () => {
    assert.equal(classify('multipart/signed; micalg=SHA1; boundary=b', [], signedBody('application/x-pkcs7-signature')).kind, 'signed-multipart');
    assert.equal(
      classify('multipart/signed; boundary=b', [], signedBody('application/octet-stream; name=smime.p7s')).kind,
      'signed-multipart',
    );
    assert.equal(classify('multipart/signed; boundary=b', [], signedBody('application/pgp-signature')).kind, 'none');
    assert.equal(classify('multipart/signed; protocol="application/pgp-signature"; boundary=b', [], signedBody('application/pkcs7-signature')).kind, 'none');
  });

  test('opaque application/pkcs7-mime and its legacy spellings', () => {
    assert.deepEqual(classifySmime(parseEntity(crlf(opaqueEnveloped))), {
      kind: 'opaque',
      smimeType: 'enveloped-data',
      micalg: [],
      legacy: false,
    });
    for (const t of ['signed-data', 'enveloped-data', 'authEnveloped-data', 'compressed-data'] as const) {
      const r = classify(`application/pkcs7-mime; smime-type=${t.toUpperCase()}`);
      assert.equal(r.kind, 'opaque');
      assert.equal(r.smimeType, t);
    }
    assert.deepEqual(classify('application/x-pkcs7-mime; name=smime.p7m'), { kind: 'opaque', smimeType: undefined, micalg: [], legacy: true });
    assert.deepEqual(classify('application/pkcs7-mime; smime-type=certs-only'), { kind: 'none', smimeType: 'certs-only', micalg: [], legacy: false });
    assert.equal(classify('application/pkcs7-mime; smime-type=unheard-of').kind, 'none');
  });

  test('a p7m sent as application/octet-stream, named by Content-Type or Content-Disposition', () => {
    assert.equal(classify('application/octet-stream; name="SMIME.P7M"').kind, 'opaque');
    assert.equal(classify('application/octet-stream', ['Content-Disposition: attachment; filename=smime.p7m']).kind, 'opaque');
    assert.equal(classify('application/octet-stream; name=report.pdf').kind, 'none');
    assert.equal(classify('text/plain').kind, 'none');
  });
});

describe('micalg (RFC 8551 §3.5.3.2)', () => {
  test('normalisation of the spellings clients use', () => {
    assert.equal(normaliseMicalg('sha1'), 'sha-1');
    assert.equal(normaliseMicalg('SHA-1'), 'sha-1');
    assert.equal(normaliseMicalg('SHA256'), 'sha-256');
    assert.equal(normaliseMicalg(' sha-512 '), 'sha-512');
    assert.equal(normaliseMicalg('md5'), 'md5');
    assert.deepEqual(normaliseMicalgList('sha-256, SHA1'), ['sha-256', 'sha-1']);
    assert.deepEqual(normaliseMicalgList(undefined), []);
    assert.deepEqual(classify('multipart/signed; protocol="application/pkcs7-signature"; boundary=b', [], signedBody('application/pkcs7-signature')).micalg, []);
  });

  test('digest names both ways', () => {
    assert.equal(digestForMicalg('sha1'), 'sha1');
    assert.equal(digestForMicalg('SHA-384'), 'sha384');
    assert.equal(digestForMicalg('unknown'), undefined);
    assert.equal(micalgFor('sha256'), 'sha-256');
    assert.equal(micalgFor('sha384'), 'sha-384');
    assert.equal(micalgFor('sha512'), 'sha-512');
  });
});
