/**
 * Interop with NSS `pk12util` both ways: our files import into a certutil
 * database (the nickname comes from friendlyName), and the files NSS exports
 * from it — PBES2 with 600,000 iterations by default, or the legacy PBEs on
 * request — read back to the same key and certificate.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readPkcs12, writePkcs12 } from '../../src/pkcs12/index.ts';
import { runOk } from '../support/exec.ts';
import { type Fixtures, makeFixtures, pkcs8 } from './fixtures.ts';

let f: Fixtures;
before(async () => {
  f = await makeFixtures();
});
after(() => f.cleanup());

/**
 * A fresh certificate database per test: NSS keeps one nickname per subject
 * name, so alice's certificates (one subject) would take each other's names.
 */
async function newDb(name: string): Promise<string> {
  mkdirSync(f.path(name));
  const db = `sql:${f.path(name)}`;
  await runOk('certutil', ['-N', '-d', db, '--empty-password']);
  return db;
}

describe('NSS pk12util', () => {
  for (const profile of ['modern', 'legacy'] as const) {
    test(`imports our ${profile} file with keys, certificates and nicknames`, async () => {
      const ids = profile === 'modern' ? [f.alice[0], f.bob] : [f.alice[1]];
      const der = writePkcs12(
        ids.map((id) => ({ key: id.key, certificate: id.cert, chain: [f.ca.cert], friendlyName: `${id.name}-${profile}` })),
        'nss pw',
        { profile },
      );
      writeFileSync(f.path(`ours-${profile}.p12`), der);
      const db = await newDb(`db-${profile}`);
      await runOk('pk12util', ['-i', f.path(`ours-${profile}.p12`), '-d', db, '-W', 'nss pw']);
      const listed = (await runOk('certutil', ['-L', '-d', db])).stdout.toString('utf8');
      for (const id of ids) assert.match(listed, new RegExp(`^${id.name}-${profile}\\s+u,u,u$`, 'm'), `${id.name} imported with its key\n${listed}`);
      const keys = (await runOk('certutil', ['-K', '-d', db])).stdout.toString('utf8');
      for (const id of ids) assert.ok(keys.includes(`${id.name}-${profile}`), `private key of ${id.name}\n${keys}`);
    });
  }

  test('a wrong password is refused by pk12util too (our MAC is keyed by the password)', async () => {
    const der = writePkcs12([{ key: f.bob.key, certificate: f.bob.cert, friendlyName: 'never' }], 'right');
    writeFileSync(f.path('wrong.p12'), der);
    const db = await newDb('db-wrong');
    await assert.rejects(runOk('pk12util', ['-i', f.path('wrong.p12'), '-d', db, '-W', 'wrong']));
  });

  const exports = [
    { name: 'default export (PBES2, AES, 600,000 iterations, SHA-256 MAC)', args: [], mac: 'sha256' },
    {
      name: 'legacy export (3DES key, RC2-40 certificates, SHA-1 MAC)',
      args: ['-c', 'PKCS #12 V2 PBE With SHA-1 And 3KEY Triple DES-CBC', '-C', 'PKCS #12 V2 PBE With SHA-1 And 40 Bit RC2 CBC', '-M', 'SHA-1'],
      mac: 'sha1',
    },
  ];
  for (const e of exports) {
    test(`we read its ${e.name}`, async () => {
      const out = f.path(`nss-${e.mac}.p12`);
      const db = await newDb(`db-export-${e.mac}`);
      const der = writePkcs12([{ key: f.alice[2].key, certificate: f.alice[2].cert, chain: [f.ca.cert], friendlyName: 'alice-export' }], 'in');
      writeFileSync(f.path('for-export.p12'), der);
      await runOk('pk12util', ['-i', f.path('for-export.p12'), '-d', db, '-W', 'in']);
      await runOk('pk12util', ['-o', out, '-n', 'alice-export', '-d', db, '-W', 'out pw', ...e.args]);
      const p12 = readPkcs12(readFileSync(out), 'out pw');
      assert.equal(p12.macAlgorithm, e.mac);
      assert.equal(p12.keys.length, 1);
      assert.deepEqual(pkcs8(p12.keys[0]!.key), pkcs8(f.alice[2].key));
      assert.deepEqual(p12.keys[0]!.certificate?.der, f.alice[2].cert.der);
      assert.equal(p12.keys[0]!.friendlyName, 'alice-export');
      assert.ok(p12.certificates.some((c) => c.fingerprint256 === f.ca.cert.fingerprint256), 'NSS exports the chain it knows');
      if (e.mac === 'sha256') assert.throws(() => readPkcs12(readFileSync(out), 'in'), /wrong password/);
    });
  }
});
