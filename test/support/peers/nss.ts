/** NSS: cmsutil with a certificate database per instance. */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type RunResult, run, runOk } from '../exec.ts';
import type { EntityName, TestEntity, TestPki } from '../pki.ts';
import { type Digest, Serial, file, requirePeers, scratchDir } from './common.ts';

export interface NssSignerStatus {
  /** e.g. GoodSignature, DigestMismatch, SigningCertNotTrusted, BadSignature. */
  readonly statuses: readonly string[];
  /** Exit 0 and every signer GoodSignature. cmsutil exits 0 for bad signatures too. */
  readonly good: boolean;
}

/**
 * An NSS database (sql:DIR, empty password) with the test root trusted for
 * S/MIME (trust flags "CT,C,C": SSL, email, object signing). Identities come
 * from PKCS#12 with the entity name as nickname; NSS 3.87 imports RSA and
 * ECDSA keys, not Ed25519/X25519.
 */
export class NssDb {
  readonly dir: string;
  readonly #pki: TestPki;
  readonly #known = new Set<string>();
  readonly #serial = new Serial();

  private constructor(dir: string, pki: TestPki) {
    this.dir = dir;
    this.#pki = pki;
  }

  static async create(pki: TestPki, identities: readonly EntityName[] = []): Promise<NssDb> {
    requirePeers('nss');
    const dir = scratchDir('nssdb');
    await runOk('certutil', ['-N', '--empty-password', '-d', `sql:${dir}`]);
    const db = new NssDb(dir, pki);
    await runOk('certutil', ['-A', '-d', `sql:${dir}`, '-n', pki.root.name, '-t', 'CT,C,C', '-i', pki.root.certPath]);
    await runOk('certutil', ['-A', '-d', `sql:${dir}`, '-n', pki.intermediate.name, '-t', ',,', '-i', pki.intermediate.certPath]);
    db.#known.add(pki.root.name).add(pki.intermediate.name);
    for (const id of identities) await db.importIdentity(pki.entity(id));
    return db;
  }

  get #d(): string[] {
    return ['-d', `sql:${this.dir}`];
  }

  async importIdentity(e: TestEntity): Promise<void> {
    const p12 = e.p12Path;
    if (p12 === undefined) throw new Error(`NSS: ${e.name} has no PKCS#12 in the test PKI`);
    await this.#serial.run(() => runOk('pk12util', ['-i', p12, ...this.#d, '-W', this.#pki.p12Password, '-K', '']));
    this.#known.add(e.name);
  }

  /** A recipient certificate without key (nickname = entity name). */
  async importCertificate(e: TestEntity): Promise<void> {
    if (this.#known.has(e.name)) return;
    await this.#serial.run(() => runOk('certutil', ['-A', ...this.#d, '-n', e.name, '-t', ',,', '-i', e.certPath]));
    this.#known.add(e.name);
  }

  /** Sign a MIME entity as the imported identity; returns DER (detached unless opaque). */
  async sign(content: Uint8Array, o: { readonly signer: TestEntity; readonly opaque?: boolean; readonly digest?: Digest }): Promise<Buffer> {
    const dir = scratchDir('nss-sign');
    const out = join(dir, 'out.p7s');
    const args = ['-S', ...this.#d, '-p', '', '-N', o.signer.name, '-H', (o.digest ?? 'sha256').toUpperCase(), '-G', '-P'];
    if (o.opaque !== true) args.push('-T');
    await this.#serial.run(() => runOk('cmsutil', [...args, '-i', file(dir, 'content', content), '-o', out]));
    return readFileSync(out);
  }

  /** Verify DER signed-data (with `content` when detached), reading cmsutil's per-signer status. */
  async verify(signature: Uint8Array, content?: Uint8Array): Promise<RunResult & NssSignerStatus> {
    const dir = scratchDir('nss-verify');
    const args = ['-D', ...this.#d, '-p', '', '-n', '-h', '1', '-i', file(dir, 'sig.p7s', signature)];
    if (content !== undefined) args.push('-c', file(dir, 'content', content));
    const r = await this.#serial.run(() => run('cmsutil', args));
    const statuses = [...r.stdout.toString('latin1').matchAll(/signer\d+\.status=(\w+)/g)].map((m) => m[1] ?? '');
    return { ...r, statuses, good: r.status === 0 && statuses.length > 0 && statuses.every((s) => s === 'GoodSignature') };
  }

  /** Decode DER: the content of opaque signed-data, or the decrypted inner entity, on stdout. */
  async decode(der: Uint8Array): Promise<RunResult> {
    const dir = scratchDir('nss-decode');
    return this.#serial.run(() => run('cmsutil', ['-D', ...this.#d, '-p', '', '-i', file(dir, 'in.p7m', der)]));
  }

  /** Encrypt to certificates (imported first). cmsutil chooses the cipher itself (AES-128-CBC here) and uses PKCS#1 v1.5. */
  async encrypt(content: Uint8Array, o: { readonly to: readonly TestEntity[] }): Promise<Buffer> {
    for (const r of o.to) await this.importCertificate(r);
    const dir = scratchDir('nss-encrypt');
    const out = join(dir, 'out.p7m');
    await this.#serial.run(() => runOk('cmsutil', ['-E', ...this.#d, '-p', '', '-r', o.to.map((r) => r.name).join(','), '-i', file(dir, 'content', content), '-o', out]));
    return readFileSync(out);
  }

  async decrypt(der: Uint8Array): Promise<RunResult> {
    return this.decode(der);
  }

  async close(): Promise<void> {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
