/**
 * Keyfleet's engine behind the bench interface: whole RFC 5322 messages in
 * and out, multipart/signed with SHA-256 and RSA PKCS#1 v1.5, and
 * EnvelopedData with PKCS#1 v1.5 key transport and AES-256-CBC — the
 * defaults Outlook interop needs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadCertificates, type Certificate } from '../../src/x509/certificate.ts';
import { loadPrivateKey } from '../../src/smime/keys.ts';
import { decryptMessage, encryptMessage, signMessage, verifyMessage } from '../../src/smime/message.ts';
import type { CmsImpl, Iteration, Operation, PreparedFiles } from './impl.ts';
import type { BenchPki } from './pki.ts';

function certificate(path: string): Certificate {
  const [cert] = loadCertificates(readFileSync(path));
  if (cert === undefined) throw new Error(`no certificate in ${path}`);
  return cert;
}

export function keyfleetImpl(pki: BenchPki): CmsImpl {
  const root = certificate(pki.rootCert);
  const leaf = certificate(pki.leafCert);
  const key = loadPrivateKey(readFileSync(pki.leafKey));

  const sign = (message: Uint8Array): Uint8Array => signMessage(message, { signers: [{ certificate: leaf, key, digest: 'sha256' }] });
  const verify = (signed: Uint8Array): Uint8Array => {
    const { result, content } = verifyMessage(signed, { trustAnchors: [root] });
    if (!result.valid) throw new Error(`keyfleet: the bench message does not verify: ${JSON.stringify(result.signers.map((s) => s.reasons))}`);
    return content;
  };
  const encrypt = (message: Uint8Array): Uint8Array => encryptMessage(message, [{ certificate: leaf, rsaPadding: 'pkcs1' }], { cipher: 'aes-256-cbc' });
  const decrypt = (encrypted: Uint8Array): Uint8Array => decryptMessage(encrypted, [{ certificate: leaf, key }]).message;

  return {
    async prepare(files: PreparedFiles): Promise<void> {
      const message = readFileSync(files.message);
      writeFileSync(files.signed, sign(message));
      writeFileSync(files.encrypted, encrypt(message));
    },
    setup(op: Operation, files: PreparedFiles): Iteration {
      switch (op) {
        case 'sign': {
          const message = readFileSync(files.message);
          return () => sign(message);
        }
        case 'verify': {
          const signed = readFileSync(files.signed);
          return () => verify(signed);
        }
        case 'encrypt': {
          const message = readFileSync(files.message);
          return () => encrypt(message);
        }
        case 'decrypt': {
          const encrypted = readFileSync(files.encrypted);
          return () => decrypt(encrypted);
        }
      }
    },
  };
}
