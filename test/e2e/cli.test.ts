/**
 * Issue 3, "Command": the `keyfleet ca`, `p12` and `scep` commands as a user
 * runs them, with openssl on the other side: a second `ca init` and commands
 * on a --data that was never initialised fail with one readable line;
 * `p12 export` (modern and --legacy) is read by `openssl pkcs12`, and
 * `p12 import` reads what `openssl pkcs12 -export` writes (with and without
 * -legacy); a wrong password is one line and writes nothing; `ca issue
 * --csr` takes an `openssl req` CSR and refuses a tampered one.
 */
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodePemAll, encodePem } from '../../src/asn1/pem.ts';
import { loadCertificates } from '../../src/x509/certificate.ts';
import { describeRun, run, runOk } from '../support/exec.ts';
import { type CaFiles, type Served, assertOneLine, caList, certificateIn, initCa, keyfleet, keyfleetOk, opensslVerify, startServe, tempDir } from './support.ts';

/** The SubjectPublicKeyInfo of a PEM private key, for "this key belongs to that certificate". */
function spkiOfKeyFile(path: string): Buffer {
  return createPublicKey(readFileSync(path)).export({ format: 'der', type: 'spki' });
}

describe('keyfleet ca, p12 and scep commands', { timeout: 90_000 }, () => {
  const tmp = tempDir('cli');
  let ca: CaFiles;
  let leafCert: string;
  let leafKey: string;
  let passwordFile: string;

  before(async () => {
    ca = await initCa(tmp.path, ['--key-type', 'p-256', '--org', 'Keyfleet E2E']);
    leafCert = join(tmp.path, 'leaf.pem');
    leafKey = join(tmp.path, 'leaf.key');
    await keyfleetOk(['ca', 'issue', '--data', ca.dataDir, '--email', 'leaf@example.com', '--name', 'Leaf User', '--key-type', 'rsa-2048', '--key-out', leafKey, '--out', leafCert]);
    passwordFile = join(tmp.path, 'password.txt');
    writeFileSync(passwordFile, 'correct horse battery staple\n');
  });
  after(() => tmp.cleanup());

  describe('ca init and an uninitialised --data', () => {
    it('a second ca init is refused with one line (KF_CONFLICT) and leaves the CA as it was', async () => {
      const before = (await keyfleetOk(['ca', 'show', '--data', ca.dataDir])).toString();
      assertOneLine(await keyfleet(['ca', 'init', '--data', ca.dataDir]), 1, 'second ca init', /KF_CONFLICT/);
      assertOneLine(await keyfleet(['ca', 'init', '--data', ca.dataDir, '--key-type', 'rsa-2048', '--org', 'Other']), 1, 'second ca init with other options', /KF_CONFLICT/);
      assert.equal((await keyfleetOk(['ca', 'show', '--data', ca.dataDir])).toString(), before);
    });

    const commands: readonly (readonly string[])[] = [
      ['ca', 'show'],
      ['ca', 'show', '--pem'],
      ['ca', 'list'],
      ['ca', 'crl'],
      ['ca', 'issue', '--email', 'x@example.com', '--key-out', 'KEY'],
      ['ca', 'revoke', '--serial', '01'],
      ['scep', 'challenge', '--subject', 'CN=x'],
      ['serve', '--port', '0'],
    ];

    /** The error line of each command, for the next test. */
    const lines: string[] = [];

    it('every command on a --data that was never initialised: exit 1 with one readable line', async () => {
      for (const [i, c] of commands.entries()) {
        const dataDir = join(tmp.path, `empty-${i}`);
        const args = [...c.map((a) => (a === 'KEY' ? join(tmp.path, `empty-${i}.key`) : a)), '--data', dataDir];
        lines.push(`${c.slice(0, 2).join(' ')}: ${assertOneLine(await keyfleet(args), 1, args.join(' '))}`);
        assert.equal(existsSync(join(tmp.path, `empty-${i}.key`)), false, 'no key written');
      }
    });

    it('… and the line tells the user to run `keyfleet ca init`', () => {
      assert.equal(lines.length, commands.length);
      assert.deepEqual(
        lines.filter((l) => !/ca init/.test(l)),
        [],
      );
    });
  });

  describe('p12', () => {
    it('export (modern) is read by openssl pkcs12: AES-256/PBKDF2-SHA-256, SHA-256 MAC, the key, the certificate, the chain, the friendly name', async () => {
      const p12 = join(tmp.path, 'modern.p12');
      await keyfleetOk(['p12', 'export', '--key', leafKey, '--cert', leafCert, '--chain', ca.chainPem, '--password-file', passwordFile, '--name', 'Leaf User', '--out', p12]);
      const info = await run('openssl', ['pkcs12', '-info', '-in', p12, '-passin', `file:${passwordFile}`, '-nodes']);
      assert.equal(info.status, 0, describeRun(info));
      assert.match(info.stderr, /MAC: sha256/);
      assert.match(info.stderr, /PBES2, PBKDF2, AES-256-CBC, Iteration \d+, PRF hmacWithSHA256/);
      const out = info.stdout.toString();
      assert.match(out, /friendlyName: Leaf User/);
      assert.equal(loadCertificates(Buffer.from(out)).length, 3, 'leaf, issuing CA, root');
      const keyPem = join(tmp.path, 'modern.key.pem');
      writeFileSync(keyPem, /-----BEGIN PRIVATE KEY-----[^-]+-----END PRIVATE KEY-----\n/.exec(out)?.[0] ?? '');
      assert.deepEqual(spkiOfKeyFile(keyPem), spkiOfKeyFile(leafKey));
    });

    it('export --legacy is read by openssl pkcs12 without its legacy provider: 3DES bags, SHA-1 MAC', async () => {
      const p12 = join(tmp.path, 'legacy.p12');
      await keyfleetOk(['p12', 'export', '--key', leafKey, '--cert', leafCert, '--chain', ca.issuingPem, '--password-file', passwordFile, '--legacy', '--out', p12]);
      const info = await run('openssl', ['pkcs12', '-info', '-in', p12, '-passin', `file:${passwordFile}`, '-nodes']);
      assert.equal(info.status, 0, describeRun(info));
      assert.match(info.stderr, /MAC: sha1/);
      assert.match(info.stderr, /Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC/);
      assert.doesNotMatch(info.stderr, /AES|PBES2/);
      assert.equal(loadCertificates(info.stdout).length, 2);
    });

    for (const legacy of [false, true]) {
      it(`import reads openssl pkcs12 -export${legacy ? ' -legacy' : ''}: the key, its certificate first, the chain`, async () => {
        const p12 = join(tmp.path, `openssl${legacy ? '-legacy' : ''}.p12`);
        await runOk('openssl', ['pkcs12', '-export', ...(legacy ? ['-legacy'] : []), '-inkey', leafKey, '-in', leafCert, '-certfile', ca.chainPem, '-name', 'from openssl', '-passout', `file:${passwordFile}`, '-out', p12]);
        const keyOut = join(tmp.path, `imported${legacy ? '-legacy' : ''}.key`);
        const certOut = join(tmp.path, `imported${legacy ? '-legacy' : ''}.pem`);
        await keyfleetOk(['p12', 'import', '--in', p12, '--password-file', passwordFile, '--key-out', keyOut, '--cert-out', certOut]);
        assert.deepEqual(spkiOfKeyFile(keyOut), spkiOfKeyFile(leafKey));
        const certs = loadCertificates(readFileSync(certOut));
        assert.deepEqual(
          certs.map((c) => c.fingerprint256),
          [certificateIn(leafCert), certificateIn(ca.issuingPem), certificateIn(ca.rootPem)].map((c) => c.fingerprint256),
        );
        const inspect = JSON.parse((await keyfleetOk(['p12', 'inspect', '--in', p12, '--password-file', passwordFile])).toString()) as { keys?: { friendlyName: string | null }[] };
        assert.equal(inspect.keys?.[0]?.friendlyName, 'from openssl');
      });
    }

    it('a wrong password: exit 1 with one line (KF_PKCS12_BAD_PASSWORD), no key written', async () => {
      const p12 = join(tmp.path, 'openssl.p12');
      const wrong = join(tmp.path, 'wrong.txt');
      writeFileSync(wrong, 'Correct horse battery staple\n');
      for (const file of [p12, join(tmp.path, 'modern.p12'), join(tmp.path, 'legacy.p12')]) {
        const keyOut = join(tmp.path, 'never.key');
        assertOneLine(await keyfleet(['p12', 'import', '--in', file, '--password-file', wrong, '--key-out', keyOut, '--cert-out', join(tmp.path, 'never.pem')]), 1, `wrong password for ${file}`, /KF_PKCS12_BAD_PASSWORD/);
        assert.equal(existsSync(keyOut), false);
        assertOneLine(await keyfleet(['p12', 'inspect', '--in', file, '--password-file', wrong]), 1, `inspect with a wrong password for ${file}`, /KF_PKCS12_BAD_PASSWORD/);
      }
      // And a file that is not PKCS#12 at all.
      assertOneLine(await keyfleet(['p12', 'import', '--in', leafCert, '--password-file', passwordFile, '--key-out', join(tmp.path, 'never.key'), '--cert-out', join(tmp.path, 'never.pem')]), 1, 'a PEM certificate as PKCS#12');
    });
  });

  describe('ca issue --csr', () => {
    it('takes a CSR from openssl req (P-256 and RSA); the certificate is for the CSR key and verifies', async () => {
      for (const [name, keyArgs, template, purpose] of [
        ['ec', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'smimeSigning', 'smimesign'],
        ['rsa', ['-newkey', 'rsa:2048'], 'smimeEncryption', 'smimeencrypt'],
      ] as const) {
        const csr = join(tmp.path, `${name}.csr`);
        const key = join(tmp.path, `${name}.csr.key`);
        await runOk('openssl', ['req', '-new', ...keyArgs, '-nodes', '-subj', `/CN=${name} user`, '-keyout', key, '-out', csr]);
        const out = join(tmp.path, `${name}.csr.pem`);
        await keyfleetOk(['ca', 'issue', '--data', ca.dataDir, '--csr', csr, '--email', `${name}@example.com`, '--template', template, '--out', out]);
        const cert = certificateIn(out);
        assert.deepEqual(Buffer.from(cert.spki), spkiOfKeyFile(key));
        assert.deepEqual(cert.emailAddresses, [`${name}@example.com`]);
        const v = await opensslVerify(ca, out, purpose);
        assert.equal(v.status, 0, describeRun(v));
      }
    });

    it('refuses a tampered CSR, an RSA-1024 CSR and a file that is no CSR with one line each; nothing issued', async () => {
      const before = (await caList(ca.dataDir)).length;
      const csrPem = join(tmp.path, 'ec.csr');
      const der = Buffer.from(decodePemAll(readFileSync(csrPem, 'latin1'))[0]!.der);
      const tampered = Buffer.from(der);
      // A byte of the subject: the self-signature no longer covers what is there.
      const at = tampered.indexOf(Buffer.from('ec user'));
      assert.ok(at > 0);
      tampered[at] = 'x'.charCodeAt(0);
      const tamperedPath = join(tmp.path, 'tampered.csr');
      writeFileSync(tamperedPath, encodePem('CERTIFICATE REQUEST', tampered));
      const small = join(tmp.path, 'small.csr');
      await runOk('openssl', ['req', '-new', '-newkey', 'rsa:1024', '-nodes', '-subj', '/CN=small', '-keyout', join(tmp.path, 'small.key'), '-out', small]);
      for (const [what, file] of [
        ['tampered', tamperedPath],
        ['RSA-1024', small],
        ['a certificate', leafCert],
        ['truncated', (() => {
          const p = join(tmp.path, 'truncated.csr');
          writeFileSync(p, der.subarray(0, der.length - 20));
          return p;
        })()],
      ] as const) {
        assertOneLine(await keyfleet(['ca', 'issue', '--data', ca.dataDir, '--csr', file, '--email', 'mallory@example.com', '--out', join(tmp.path, 'never.pem')]), 1, `${what} CSR`);
        assert.equal(existsSync(join(tmp.path, 'never.pem')), false);
      }
      assert.equal((await caList(ca.dataDir)).length, before, 'nothing issued');
    });
  });

  describe('serve --init on a fresh --data', () => {
    let served: Served | undefined;
    let dataDir: string;
    before(async () => {
      dataDir = join(tmp.path, 'first-start');
      // The base URL goes into certificates, so first start needs a real port (not 0) or --base-url.
      served = await startServe(dataDir, ['--init', '--port', String(await freePort())]);
    });
    after(async () => {
      const exit = await served?.stop();
      assert.deepEqual(exit, { status: 0, signal: null }, served?.output());
    });

    it('sets up the CA and the default SCEP profile, then serves them', async () => {
      const caps = await fetch(`${served!.scepUrl()}?operation=GetCACaps`);
      assert.equal(caps.status, 200);
      assert.match(await caps.text(), /^POSTPKIOperation$/m);
      const shown = JSON.parse((await keyfleetOk(['ca', 'show', '--data', dataDir])).toString()) as { certificates: unknown[] };
      assert.equal(shown.certificates.length, 2);
    });

    it('with --port 0 and no --base-url it refuses to guess the base URL', async () => {
      assertOneLine(await keyfleet(['serve', '--init', '--data', join(tmp.path, 'port-zero'), '--port', '0']), 2, 'port 0 without base URL', /KF_USAGE.*--base-url/);
      assert.equal(existsSync(join(tmp.path, 'port-zero', 'master.key')), false, 'no CA set up');
    });

    it('the base URL put into certificates (CRL and OCSP locations) is where it serves', async () => {
      const shown = JSON.parse((await keyfleetOk(['ca', 'show', '--data', dataDir])).toString()) as { baseUrl: string };
      assert.equal(shown.baseUrl, served!.origin);
    });
  });

  it('scep challenge prints one challenge on stdout and refuses an unknown profile and a bad --ttl', async () => {
    const r = await keyfleet(['scep', 'challenge', '--data', ca.dataDir, '--subject', 'CN=device', '--ttl', '5']);
    assert.equal(r.status, 0, describeRun(r));
    assert.match(r.stdout.toString(), /^[A-Za-z0-9_-]{43}\n$/);
    assert.match(r.stderr, /valid until \d{4}-/);
    assertOneLine(await keyfleet(['scep', 'challenge', '--data', ca.dataDir, '--profile', 'nope', '--subject', 'CN=device']), 1, 'unknown profile', /KF_NOT_FOUND/);
    assertOneLine(await keyfleet(['scep', 'challenge', '--data', ca.dataDir, '--subject', 'CN=device', '--ttl', '0']), 2, 'ttl 0', /KF_USAGE/);
  });
});

/** A port nobody listens on right now (for a server that must know its port before it starts). */
async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
