/**
 * OpenSSL: `openssl cms`, S/MIME in and out (its default -inform/-outform
 * SMIME), and `openssl smime`, the older PKCS#7 path.
 */
import { readFileSync } from 'node:fs';
import { type RunResult, run, runOk } from '../exec.ts';
import type { TestEntity } from '../pki.ts';
import { type Cipher, type Digest, file, scratchDir } from './common.ts';

export interface OutputHeaders {
  readonly from?: string;
  readonly to?: string;
  readonly subject?: string;
}

export interface OpensslSignOptions {
  readonly signer: TestEntity;
  /** Include the signer's issuing CAs (-certfile); default true. */
  readonly includeChain?: boolean;
  /** sha1 only to make a weak-algorithm case. */
  readonly digest?: Digest | 'sha1';
  /** RSASSA-PSS instead of PKCS#1 v1.5 (RSA signers only). */
  readonly pss?: boolean;
  /** Opaque signed-data (-nodetach) instead of multipart/signed. */
  readonly opaque?: boolean;
  /** SMIME (default): a MIME message; DER: raw ContentInfo. */
  readonly outform?: 'SMIME' | 'DER';
  readonly headers?: OutputHeaders;
}

export interface OpensslEncryptOptions {
  readonly to: readonly TestEntity[];
  /** camellia-128-cbc: a cipher keyfleet does not implement, for unsupported-algorithm. */
  readonly cipher?: Cipher | 'camellia-128-cbc';
  /** RSAES-OAEP key transport (RSA recipients). */
  readonly oaep?: boolean;
  /** Identify recipients by subjectKeyIdentifier (-keyid) instead of issuerAndSerialNumber. */
  readonly keyid?: boolean;
  readonly outform?: 'SMIME' | 'DER';
  readonly headers?: OutputHeaders;
}

function headerArgs(h: OutputHeaders | undefined): string[] {
  const out: string[] = [];
  if (h?.from !== undefined) out.push('-from', h.from);
  if (h?.to !== undefined) out.push('-to', h.to);
  if (h?.subject !== undefined) out.push('-subject', h.subject);
  return out;
}

export const openssl = {
  /** Sign a MIME entity; returns the S/MIME message (or DER). `-binary` keeps the bytes as given. */
  async sign(content: Uint8Array, o: OpensslSignOptions): Promise<Buffer> {
    const args = ['cms', '-sign', '-binary', '-signer', o.signer.certPath, '-inkey', o.signer.keyPath, '-md', o.digest ?? 'sha256'];
    if (o.includeChain !== false && o.signer.chainPath !== undefined) args.push('-certfile', o.signer.chainPath);
    if (o.pss === true) args.push('-keyopt', 'rsa_padding_mode:pss');
    if (o.opaque === true) args.push('-nodetach');
    args.push('-outform', o.outform ?? 'SMIME', ...headerArgs(o.headers));
    return (await runOk('openssl', args, { input: content })).stdout;
  },

  /**
   * Verify against `trust` (-CAfile). For a detached DER signature pass the
   * content; S/MIME input carries its own. stdout is the signed content.
   */
  async verify(message: Uint8Array, o: { readonly trust: readonly TestEntity[]; readonly inform?: 'SMIME' | 'DER'; readonly content?: Uint8Array; readonly crls?: readonly string[] }): Promise<RunResult> {
    const dir = scratchDir('openssl-verify');
    // `openssl cms` (3.0) has no -CRLfile: CRLs go into the -CAfile bundle.
    const crls = o.crls ?? [];
    const ca = file(dir, 'ca.pem', [...o.trust.map((t) => t.certPem), ...crls.map((c) => readFileSync(c, 'latin1'))].join(''));
    const args = ['cms', '-verify', '-CAfile', ca, '-inform', o.inform ?? 'SMIME', '-in', file(dir, 'in', message), '-purpose', 'smimesign'];
    if (o.content !== undefined) args.push('-binary', '-content', file(dir, 'content', o.content));
    if (crls.length > 0) args.push('-crl_check');
    return run('openssl', args);
  },

  async encrypt(content: Uint8Array, o: OpensslEncryptOptions): Promise<Buffer> {
    const args = ['cms', '-encrypt', '-binary', `-${o.cipher ?? 'aes-256-cbc'}`];
    if (o.keyid === true) args.push('-keyid');
    for (const r of o.to) {
      args.push('-recip', r.certPath);
      if (o.oaep === true && r.keyType.startsWith('rsa-')) args.push('-keyopt', 'rsa_padding_mode:oaep', '-keyopt', 'rsa_oaep_md:sha256', '-keyopt', 'rsa_mgf1_md:sha256');
    }
    args.push('-outform', o.outform ?? 'SMIME', ...headerArgs(o.headers));
    return (await runOk('openssl', args, { input: content })).stdout;
  },

  /** `openssl cms -cmsout -print`: the structure as text, to check which algorithms a producer chose. */
  async print(message: Uint8Array, inform: 'SMIME' | 'DER' = 'SMIME'): Promise<string> {
    return (await runOk('openssl', ['cms', '-cmsout', '-print', '-inform', inform], { input: message })).stdout.toString('latin1');
  },

  /** Decrypt as `recipient`; stdout is the inner entity. */
  async decrypt(message: Uint8Array, o: { readonly recipient: TestEntity; readonly inform?: 'SMIME' | 'DER' }): Promise<RunResult> {
    return run(
      'openssl',
      ['cms', '-decrypt', '-binary', '-recip', o.recipient.certPath, '-inkey', o.recipient.keyPath, '-inform', o.inform ?? 'SMIME'],
      { input: message },
    );
  },
};

/**
 * `openssl smime`: OpenSSL's older PKCS#7 code path. It writes the legacy
 * MIME spellings (application/x-pkcs7-signature, x-pkcs7-mime) that older
 * clients still send, and offers RSA PKCS#1 v1.5 and ECDSA only (no -keyopt).
 */
export const opensslSmime = {
  async sign(content: Uint8Array, o: { readonly signer: TestEntity; readonly opaque?: boolean; readonly digest?: Digest; readonly headers?: OutputHeaders }): Promise<Buffer> {
    const args = ['smime', '-sign', '-binary', '-signer', o.signer.certPath, '-inkey', o.signer.keyPath, '-md', o.digest ?? 'sha256'];
    if (o.signer.chainPath !== undefined) args.push('-certfile', o.signer.chainPath);
    if (o.opaque === true) args.push('-nodetach');
    args.push(...headerArgs(o.headers));
    return (await runOk('openssl', args, { input: content })).stdout;
  },

  async verify(message: Uint8Array, o: { readonly trust: readonly TestEntity[] }): Promise<RunResult> {
    const dir = scratchDir('openssl-smime-verify');
    const ca = file(dir, 'ca.pem', o.trust.map((t) => t.certPem).join(''));
    return run('openssl', ['smime', '-verify', '-CAfile', ca, '-purpose', 'smimesign', '-in', file(dir, 'in', message)]);
  },

  async encrypt(content: Uint8Array, o: { readonly to: readonly TestEntity[]; readonly cipher?: 'aes-128-cbc' | 'aes-256-cbc'; readonly headers?: OutputHeaders }): Promise<Buffer> {
    const args = ['smime', '-encrypt', '-binary', `-${o.cipher ?? 'aes-256-cbc'}`, ...headerArgs(o.headers), ...o.to.map((r) => r.certPath)];
    return (await runOk('openssl', args, { input: content })).stdout;
  },

  async decrypt(message: Uint8Array, o: { readonly recipient: TestEntity }): Promise<RunResult> {
    return run('openssl', ['smime', '-decrypt', '-binary', '-recip', o.recipient.certPath, '-inkey', o.recipient.keyPath], { input: message });
  },
};
