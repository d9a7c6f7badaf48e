/** The CA against the real store (Kysely over node:sqlite), not only the in-memory one. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SealedKeyStore } from '../../src/ca/keystore.ts';
import { initCa, openCa } from '../../src/ca/setup.ts';
import { defaultProfile } from '../../src/ca/templates.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { openStore } from '../../src/store/open.ts';
import { decodeCrl, isRevoked } from '../../src/x509/crl.ts';

test('init, issue, revoke, CRL and reopen on the SQLite store; tenants do not see each other', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kf-ca-sqlite-'));
  const store = await openStore({ dataDir: dir, env: {} });
  try {
    await store.ensureTenant('acme', 'Acme');
    await store.ensureTenant('other', 'Other');
    const keyStore = new SealedKeyStore(randomBytes(32));
    const caStore = store.forTenant('acme').ca;
    const ca = await initCa({ store: caStore, keyStore, keyType: 'p-256' });
    const key = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey;
    const a = await ca.issue({ profile: defaultProfile('smimeSigning'), attributes: { emailAddress: 'a@example.test' }, publicKey: key(), requester: 'cli' });
    const b = await ca.issue({ profile: defaultProfile('smimeSigning'), attributes: { emailAddress: 'b@example.test' }, publicKey: key() });
    const revoked = await ca.revoke(b.certificate.serialHex, 'superseded');
    assert.equal(revoked.crl?.crlNumber, 2n);
    const crl = decodeCrl(revoked.crl!.der);
    assert.equal(isRevoked(crl, b.certificate)?.reason, 4);
    assert.equal(isRevoked(crl, a.certificate), undefined);

    const reopened = await openCa({ store: caStore, keyStore });
    assert.equal((await reopened.get(a.certificate.serialHex)).requester, 'cli');
    assert.deepEqual((await reopened.list({ status: 'revoked' })).map((r) => r.serialHex), [b.certificate.serialHex]);
    assert.equal((await reopened.generateCrl()).crlNumber, 3n);
    await assert.rejects(openCa({ store: store.forTenant('other').ca, keyStore }), (e) => isKeyfleetError(e, 'KF_CA_NOT_INITIALISED'));
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
