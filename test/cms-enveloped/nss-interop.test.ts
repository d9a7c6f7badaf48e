/**
 * Interop with NSS's cmsutil (3.87 on Debian 12), both directions, with a
 * certificate database in a temporary directory. NSS 3.87 reads and writes
 * only RSA PKCS#1 v1.5 recipients (by issuerAndSerialNumber or SKI) with
 * AES-CBC content: no OAEP, ECDH or AuthEnvelopedData, also for OpenSSL's
 * messages.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OID } from '../../src/asn1/oids.ts';
import { parse } from '../../src/asn1/reader.ts';
import { decryptContent, describeEnvelope, encryptContent } from '../../src/smime/cms/enveloped-data.ts';
import { type Pki, makePki } from './pki.ts';

const haveNss = spawnSync('cmsutil', ['-h']).error === undefined && spawnSync('certutil', ['-H']).error === undefined;
const P12_PASSWORD = 'interop-test';

let pki: Pki;
let db: string;

function nss(tool: string, args: readonly string[]): Buffer {
  return execFileSync(tool, [...args], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
}

before(async () => {
  if (!haveNss) return;
  pki = await makePki(['rsa', 'old1', 'old2', 'rsaNoSki']);
  db = `sql:${join(pki.dir, 'nssdb')}`;
  mkdirSync(join(pki.dir, 'nssdb'));
  nss('certutil', ['-N', '-d', db, '--empty-password']);
  nss('certutil', ['-A', '-d', db, '-n', 'ca', '-t', 'C,C,C', '-i', pki.caCertPath]);
  for (const id of [pki.ids.rsa, pki.ids.old1, pki.ids.old2]) {
    const p12 = pki.file(`${id.name}.p12`);
    pki.openssl(['pkcs12', '-export', '-inkey', id.keyPath, '-in', id.certPath, '-name', id.name, '-out', p12, '-passout', `pass:${P12_PASSWORD}`]);
    nss('pk12util', ['-i', p12, '-d', db, '-W', P12_PASSWORD]);
  }
  nss('certutil', ['-A', '-d', db, '-n', 'rsaNoSki', '-t', ',,', '-i', pki.ids.rsaNoSki.certPath]);
});

after(() => pki?.cleanup());

const message = Buffer.from('Content-Type: text/plain\r\n\r\nInterop with NSS.\r\n');

describe('Keyfleet encrypts, NSS cmsutil decrypts', { skip: !haveNss && 'NSS tools are not installed' }, () => {
  it('RSA PKCS#1 v1.5 by issuerAndSerialNumber and by SKI, AES-128/192/256-CBC', () => {
    for (const identifier of ['issuerAndSerialNumber', 'subjectKeyIdentifier'] as const) {
      for (const cipher of ['aes-128-cbc', 'aes-192-cbc', 'aes-256-cbc'] as const) {
        const input = pki.file('m.der', encryptContent(message, [{ certificate: pki.ids.rsa.certificate, identifier }], { cipher }));
        assert.deepEqual(nss('cmsutil', ['-D', '-i', input, '-d', db, '-p', '']), message, `${identifier} ${cipher}`);
      }
    }
  });

  it('several recipients; NSS holding an old key of the history', () => {
    const { rsaNoSki, old2 } = pki.ids;
    const out = encryptContent(message, [{ certificate: rsaNoSki.certificate }, { certificate: old2.certificate, identifier: 'subjectKeyIdentifier' }], { cipher: 'aes-256-cbc' });
    assert.deepEqual(nss('cmsutil', ['-D', '-i', pki.file('m.der', out), '-d', db, '-p', '']), message);
  });
});

describe('NSS cmsutil encrypts, Keyfleet decrypts', { skip: !haveNss && 'NSS tools are not installed' }, () => {
  function cmsutilEncrypt(recipients: readonly string[]): Buffer {
    const out = pki.file('n.der');
    nss('cmsutil', ['-E', '-r', recipients.join(','), '-i', pki.file('plain.txt', message), '-o', out, '-d', db]);
    return readFileSync(out);
  }

  it('its BER (indefinite lengths) with AES-CBC', () => {
    const { rsa } = pki.ids;
    const out = cmsutilEncrypt(['rsa']);
    assert.equal(parse(out).indefinite, true);
    const result = decryptContent(out, [rsa.pair]);
    assert.deepEqual(Buffer.from(result.content), message);
    assert.ok([OID.aes128CBC, OID.aes256CBC].includes(result.contentCipher as typeof OID.aes128CBC));
  });

  it('several recipients; an old key picked out of a history of three', () => {
    const { rsa, old1, old2, rsaNoSki } = pki.ids;
    const out = cmsutilEncrypt(['rsaNoSki', 'old1']);
    assert.deepEqual(
      describeEnvelope(out).recipients.map((r) => r.issuerAndSerial?.serialHex).sort(),
      [old1.certificate.serialHex, rsaNoSki.certificate.serialHex].sort(),
    );
    const result = decryptContent(out, [rsa.pair, old2.pair, old1.pair]);
    assert.equal(result.recipient, old1.pair);
    assert.deepEqual(Buffer.from(result.content), message);
  });
});
