/**
 * SCEP over the real CertificateAuthority and the SQLite store: micromdm's
 * scepclient enrols and renews; the transaction log and the CA's issuance
 * records agree; a wrong challenge leaves no issued certificate.
 */
import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { encodePem } from '../../src/asn1/pem.ts';
import type { CertificateAuthority } from '../../src/ca/authority.ts';
import { SealedKeyStore } from '../../src/ca/keystore.ts';
import { initCa } from '../../src/ca/setup.ts';
import { type CertificateProfile, defaultProfile } from '../../src/ca/templates.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store, TenantStore } from '../../src/store/store.ts';
import { loadCertificates } from '../../src/x509/certificate.ts';
import { encodeName } from '../../src/x509/name.ts';
import { caScepIssuer, scepProfileOf } from '../../src/scep/ca-issuer.ts';
import { StoreChallengeValidator } from '../../src/scep/challenge.ts';
import { createScepService } from '../../src/scep/service.ts';
import { run } from '../support/exec.ts';
import { rsaKey, serveScep } from './support.ts';

const scepclient = '/usr/bin/scepclient';

describe('SCEP with the real CA and SQLite store', { skip: existsSync(scepclient) ? false : 'scepclient is not installed' }, () => {
  let dir: string;
  let store: Store;
  let tenant: TenantStore;
  let ca: CertificateAuthority;
  let http: Awaited<ReturnType<typeof serveScep>>;
  let validator: StoreChallengeValidator;
  let caFile: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kf-scep-ca-'));
    store = await openStore({ dataDir: join(dir, 'data'), env: {} });
    await store.ensureTenant('t1', 'Tenant 1');
    tenant = store.forTenant('t1');
    ca = await initCa({ store: tenant.ca, keyStore: new SealedKeyStore(randomBytes(32)), keyType: 'rsa-2048' });
    const raKey = rsaKey();
    const ra = await ca.issue({ publicKey: raKey, profile: defaultProfile('scepRa', { name: 'scep-ra' }), names: { subject: encodeName([['O', 'Keyfleet'], ['CN', 'Keyfleet SCEP RA']]), emails: [], upns: [] }, requester: 'test' });
    const certProfile: CertificateProfile = defaultProfile('deviceIdentity', { name: 'default' });
    await tenant.scep.putProfile({ name: 'default', caId: 'issuing', template: certProfile, createdAt: new Date() });
    validator = new StoreChallengeValidator(tenant.scep);
    const service = createScepService({
      profiles: new Map([['default', scepProfileOf(certProfile)]]),
      issuer: caScepIssuer(ca, (name) => (name === 'default' ? certProfile : undefined)),
      ra: { certificate: ra.certificate, key: raKey, chain: [ca.certificate, ...ca.chain] },
      challengeValidator: validator,
      store: tenant.scep,
    });
    http = await serveScep(service);
    caFile = join(dir, 'chain.pem');
    writeFileSync(caFile, [ca.certificate, ...ca.chain].map((c) => encodePem('CERTIFICATE', c.der)).join(''));
  });
  after(async () => {
    await http?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('enrols and renews with scepclient; the log and the CA records agree', async () => {
    const work = join(dir, 'device');
    mkdirSync(work);
    const { password } = await validator.issueChallenge({ profile: 'default', subject: 'CN=device-1,OU=MDM,O=scep-client,C=US', deviceId: 'dev-1' });
    const r = await run(scepclient, ['-private-key', join(work, 'key.pem'), '-server-url', http.url('default'), '-challenge', password, '-cn', 'device-1'], { timeoutMs: 60_000 });
    assert.equal(r.status, 0, r.stdout.toString() + r.stderr);
    const certPath = join(work, 'client.pem');
    const v = await run('openssl', ['verify', '-CAfile', caFile, certPath]);
    assert.equal(v.status, 0, v.stdout.toString() + v.stderr);
    const cert = loadCertificates(readFileSync(certPath))[0]!;
    const record = await ca.get(cert.serialHex);
    assert.equal(record.requester, 'dev-1');
    const log = await tenant.scep.listTransactions();
    assert.ok(log.some((t) => t.outcome === 'success' && t.serialHex === cert.serialHex && t.requester === 'dev-1'));

    const renew = await run(scepclient, ['-private-key', join(work, 'key.pem'), '-certificate', certPath, '-server-url', http.url('default'), '-cn', 'device-1'], { timeoutMs: 60_000 });
    assert.equal(renew.status, 0, renew.stdout.toString() + renew.stderr);
    const renewed = loadCertificates(readFileSync(certPath))[0]!;
    assert.notEqual(renewed.serialHex, cert.serialHex);
    assert.equal((await ca.get(renewed.serialHex)).status, 'good');
  });

  it('a wrong challenge issues nothing', async () => {
    const before = (await ca.list()).length;
    const work = join(dir, 'wrong');
    mkdirSync(work);
    const r = await run(scepclient, ['-private-key', join(work, 'key.pem'), '-server-url', http.url('default'), '-challenge', 'nope', '-cn', 'device-2'], { timeoutMs: 60_000 });
    assert.notEqual(r.status, 0);
    assert.equal((await ca.list()).length, before);
  });
});
