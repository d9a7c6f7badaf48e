/** GnuPG gpgsm: raw CMS (DER) in and out; one home directory per instance. */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type RunResult, run, runOk } from '../exec.ts';
import type { EntityName, TestEntity, TestPki } from '../pki.ts';
import { type Digest, Serial, file, requirePeers, scratchDir } from './common.ts';

/** A gpgsm run with its verdict read from `--status-fd` lines. */
export type GpgsmResult = RunResult & { readonly ok: boolean };

/**
 * A gpgsm keyring in a temporary GNUPGHOME: the test root trusted through
 * trustlist.txt ("S relax": no CRL distribution point or policy needed),
 * CRL and policy checks off, dirmngr not used, loopback pinentry allowed,
 * and the agent's key protection at its cheapest (s2k-count 65536: its
 * calibrated default costs ~0.5 s per signature). Keys come in through
 * PKCS#12; gpgsm 2.2 reads only the legacy PBE-SHA1-3DES files (see pki.ts)
 * and only RSA keys from them.
 */

export class Gpgsm {
  readonly home: string;
  readonly #pki: TestPki;
  readonly #imported = new Set<string>();
  readonly #serial = new Serial();

  private constructor(home: string, pki: TestPki) {
    this.home = home;
    this.#pki = pki;
  }

  static async create(pki: TestPki, identities: readonly EntityName[] = []): Promise<Gpgsm> {
    requirePeers('gpgsm');
    const home = scratchDir('gnupg');
    writeFileSync(join(home, 'gpg-agent.conf'), 'allow-loopback-pinentry\ns2k-count 65536\n');
    writeFileSync(join(home, 'gpgsm.conf'), 'disable-crl-checks\ndisable-policy-checks\ndisable-dirmngr\n');
    writeFileSync(join(home, 'trustlist.txt'), `${pki.root.sha1Fingerprint} S relax\n`);
    const g = new Gpgsm(home, pki);
    process.once('exit', () => g.#killAgent());
    await g.importCertificates([pki.root, pki.intermediate]);
    for (const id of identities) await g.importIdentity(pki.entity(id));
    return g;
  }

  #run(args: readonly string[], options?: { input: string }): Promise<RunResult> {
    return this.#serial.run(() => run('gpgsm', args, options));
  }

  #ok(args: readonly string[], options?: { input: string }): Promise<RunResult> {
    return this.#serial.run(() => runOk('gpgsm', args, options));
  }

  #args(extra: readonly string[]): string[] {
    return ['--homedir', this.home, '--batch', '--pinentry-mode', 'loopback', ...extra];
  }

  async importCertificates(entities: readonly TestEntity[]): Promise<void> {
    const fresh = entities.filter((e) => !this.#imported.has(e.name));
    if (fresh.length === 0) return;
    await this.#ok(this.#args(['--import', ...fresh.map((e) => e.certPath)]));
    for (const e of fresh) this.#imported.add(e.name);
  }

  /** Key and certificate from the entity's legacy PKCS#12; the key keeps the PKCS#12 password. */
  async importIdentity(e: TestEntity): Promise<void> {
    if (e.legacyP12Path === undefined) throw new Error(`gpgsm: ${e.name} has no PKCS#12 in the test PKI`);
    await this.#ok(this.#args(['--passphrase-fd', '0', '--import', e.legacyP12Path]), { input: `${this.#pki.p12Password}\n` });
    this.#imported.add(e.name);
  }

  /** Sign a MIME entity; returns DER. Detached by default (for multipart/signed). */
  async sign(content: Uint8Array, o: { readonly signer: TestEntity; readonly opaque?: boolean; readonly digest?: Digest }): Promise<Buffer> {
    const dir = scratchDir('gpgsm-sign');
    const out = join(dir, 'out.p7s');
    await runOk(
      'gpgsm',
      this.#args([
        '--passphrase-fd', '0', '--include-certs', '-1', '--digest-algo', (o.digest ?? 'sha256').toUpperCase(),
        '--local-user', o.signer.sha1Fingerprint, o.opaque === true ? '--sign' : '--detach-sign', '--output', out,
        file(dir, 'content', content),
      ]),
      { input: `${this.#pki.p12Password}\n` },
    );
    return readFileSync(out);
  }

  /**
   * Verify DER signed-data (with `content` when detached). `ok`: every
   * signature good (GOODSIG) and its chain trusted (TRUST_FULLY), from
   * gpgsm's status lines.
   */
  async verify(signature: Uint8Array, content?: Uint8Array): Promise<GpgsmResult> {
    const dir = scratchDir('gpgsm-verify');
    const args = ['--status-fd', '2', '--verify', file(dir, 'sig.p7s', signature)];
    if (content !== undefined) args.push(file(dir, 'content', content));
    const r = await this.#run(this.#args(args));
    const count = (re: RegExp): number => r.stderr.match(re)?.length ?? 0;
    const sigs = count(/^\[GNUPG:\] NEWSIG/gm);
    const ok = r.status === 0 && sigs > 0 && count(/^\[GNUPG:\] GOODSIG /gm) === sigs && count(/^\[GNUPG:\] TRUST_(FULLY|ULTIMATE)/gm) === sigs;
    return { ...r, ok };
  }

  /** Encrypt to certificates (imported first); returns DER enveloped-data. */
  async encrypt(content: Uint8Array, o: { readonly to: readonly TestEntity[]; readonly cipher?: 'aes-128-cbc' | 'aes-256-cbc' }): Promise<Buffer> {
    await this.importCertificates(o.to);
    const dir = scratchDir('gpgsm-encrypt');
    const out = join(dir, 'out.p7m');
    const recipients = o.to.flatMap((r) => ['--recipient', r.sha1Fingerprint]);
    const cipher = o.cipher === 'aes-128-cbc' ? 'AES' : 'AES256';
    await this.#ok(this.#args(['--cipher-algo', cipher, ...recipients, '--output', out, '--encrypt', file(dir, 'content', content)]));
    return readFileSync(out);
  }

  /**
   * Decrypt DER enveloped-data; stdout is the inner entity. `ok` comes from
   * the DECRYPTION_OKAY status line, not the exit code: gpgsm 2.2 exits 2
   * after a successful decryption when an earlier RecipientInfo names a
   * certificate or key it lacks ("decrypting session key failed: No secret key").
   */
  async decrypt(der: Uint8Array): Promise<GpgsmResult> {
    const dir = scratchDir('gpgsm-decrypt');
    const r = await this.#run(this.#args(['--status-fd', '2', '--passphrase-fd', '0', '--decrypt', file(dir, 'in.p7m', der)]), {
      input: `${this.#pki.p12Password}\n`,
    });
    const ok = /^\[GNUPG:\] DECRYPTION_OKAY/m.test(r.stderr) && !/^\[GNUPG:\] DECRYPTION_FAILED/m.test(r.stderr);
    return { ...r, ok };
  }

  #killAgent(): void {
    spawnSync('gpgconf', ['--homedir', this.home, '--kill', 'all'], { stdio: 'ignore', timeout: 10_000 });
  }

  /** Stops the gpg-agent this home started and removes the home. */
  async close(): Promise<void> {
    await run('gpgconf', ['--homedir', this.home, '--kill', 'all'], { timeoutMs: 10_000 });
    rmSync(this.home, { recursive: true, force: true });
  }
}
