/**
 * SignedData interop with GnuPG's gpgsm (2.2 on Debian 12), both directions,
 * in a throw-away GNUPGHOME whose trustlist holds the test root.
 *
 * What gpgsm 2.2 cannot do, and so is not tested here: Ed25519 ("invalid
 * signature: Internal error"), ECDSA P-384 with a digest shorter than the
 * curve ("a 256 bit hash is not valid for a 384 bit ECC key"), importing EC
 * keys from PKCS#12 (it crashes), and PKCS#12 files with PBES2 certificate
 * bags (hence the test PKI's 3DES PKCS#12).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeSignedData, signContent } from '../../src/smime/cms/signed-data.ts';
import { verifySignedData } from '../../src/smime/cms/verify.ts';
import { type RunResult, describeRun, run, runOk } from '../support/exec.ts';
import type { EntityName } from '../support/pki.ts';
import { getFixture } from './support.ts';

const home = mkdtempSync(join(tmpdir(), 'kf-gpgsm-'));
// --homedir rather than GNUPGHOME, and the PKI's own 3DES PKCS#12, as test/support/peers/gpgsm.ts
// does: with GNUPGHOME and an export made here, gpgsm failed the import in every whole-suite run
// ("decryption failed … possibly bad passphrase") while passing when the file ran alone.
const homedir = ['--homedir', home];
const content = Buffer.from('Content-Type: text/plain\r\n\r\nInterop with gpgsm.\r\n');
const contentPath = join(home, 'content.txt');
writeFileSync(contentPath, content);
let counter = 0;

function gpgsm(args: readonly string[], input?: string): Promise<RunResult> {
  return run('gpgsm', [...homedir, '--batch', '--disable-crl-checks', '--status-fd', '1', ...args], input === undefined ? {} : { input });
}

before(async () => {
  const f = await getFixture();
  writeFileSync(join(home, 'gpg-agent.conf'), 'allow-loopback-pinentry\ns2k-count 65536\n');
  writeFileSync(join(home, 'gpgsm.conf'), 'disable-crl-checks\ndisable-policy-checks\ndisable-dirmngr\n');
  writeFileSync(join(home, 'trustlist.txt'), `${f.pki.root.sha1Fingerprint} S relax\n`);
  await runOk('gpgsm', [...homedir, '--batch', '--import', f.pki.root.certPath, f.pki.intermediate.certPath]);
  const alice = f.signer('alice').entity;
  await runOk('gpgsm', [...homedir, '--batch', '--pinentry-mode', 'loopback', '--passphrase-fd', '0', '--import', alice.legacyP12Path!], { input: `${f.pki.p12Password}\n` });
});

after(async () => {
  await run('gpgconf', [...homedir, '--kill', 'all']);
  rmSync(home, { recursive: true, force: true });
});

const cases: readonly { name: EntityName; pss?: boolean; digest: 'sha256' | 'sha384' | 'sha512'; label: string }[] = [
  { name: 'alice', digest: 'sha256', label: 'RSA PKCS#1 v1.5 sha256' },
  { name: 'alice', digest: 'sha512', label: 'RSA PKCS#1 v1.5 sha512' },
  { name: 'alice-pss', pss: true, digest: 'sha256', label: 'RSASSA-PSS sha256' },
  { name: 'carol', digest: 'sha256', label: 'ECDSA P-256 sha256' },
  { name: 'dave', digest: 'sha384', label: 'ECDSA P-384 sha384' },
];

for (const c of cases) {
  for (const detached of [true, false]) {
    test(`ours → gpgsm --verify: ${c.label} ${detached ? 'detached' : 'encapsulated'}`, async () => {
      const f = await getFixture();
      const sig = join(home, `sig${counter++}.der`);
      writeFileSync(sig, signContent(content, [f.spec(c.name, { digest: c.digest, ...(c.pss ? { pss: true } : {}) })], { detached }));
      const out = join(home, `out${counter++}`);
      const r = await gpgsm(detached ? ['--verify', sig, contentPath] : ['--output', out, '--verify', sig]);
      assert.equal(r.status, 0, describeRun(r));
      const status = r.stdout.toString('latin1');
      assert.match(status, /\[GNUPG:\] GOODSIG /, describeRun(r));
      assert.match(status, /\[GNUPG:\] TRUST_FULLY/, describeRun(r));
    });
  }
}

for (const detached of [true, false]) {
  for (const digest of ['SHA256', 'SHA512']) {
    test(`gpgsm --sign → ours: RSA ${digest} ${detached ? 'detached' : 'encapsulated'} (BER, indefinite lengths)`, async () => {
      const f = await getFixture();
      const alice = f.signer('alice');
      const out = join(home, `gsig${counter++}.der`);
      const args = ['--pinentry-mode', 'loopback', '--passphrase-fd', '0', '--include-certs', '-1', '--digest-algo', digest, '--local-user', alice.entity.sha1Fingerprint, '--output', out];
      const r = await gpgsm([...args, detached ? '--detach-sign' : '--sign', contentPath], 'test\n');
      assert.equal(r.status, 0, describeRun(r));
      const sd = decodeSignedData(readFileSync(out));
      const result = verifySignedData(sd, { trustAnchors: [f.root], ...(detached ? { detachedContent: content } : {}), senderAddress: 'alice@example.com' });
      assert.deepEqual(result.signers.map((s) => s.reasons), [[]]);
      assert.equal(result.signers[0]!.digestAlgorithm, digest.toLowerCase());
      if (!detached) assert.deepEqual(Buffer.concat(sd.content!), content);
      const tampered = Buffer.from(content);
      tampered[tampered.length - 3]! ^= 1;
      if (detached) assert.deepEqual(verifySignedData(sd, { trustAnchors: [f.root], detachedContent: tampered }).signers[0]!.reasons, ['digest-mismatch']);
    });
  }
}

test('gpgsm rejects our signature over a changed content (the check is real)', async () => {
  const f = await getFixture();
  const sig = join(home, `sig${counter++}.der`);
  writeFileSync(sig, signContent(content, [f.spec('alice')], { detached: true }));
  const changed = join(home, 'changed.txt');
  writeFileSync(changed, Buffer.concat([content, Buffer.from('x')]));
  const r = await gpgsm(['--verify', sig, changed]);
  assert.notEqual(r.status, 0);
  assert.match(r.stdout.toString('latin1'), /\[GNUPG:\] BADSIG /);
});
