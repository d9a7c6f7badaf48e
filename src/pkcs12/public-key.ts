/**
 * Whether a certificate is for a given key. The SubjectPublicKeyInfo that
 * OpenSSL exports for each is compared, not `KeyObject.equals`: in Node 24,
 * equals() on keys of different types (RSA and EC) leaves "different key
 * types" on OpenSSL's error queue, and the next unrelated createPrivateKey()
 * then throws it. Exporting also evens out encodings that differ only in
 * form (absent or NULL RSA parameters).
 */
import { type KeyObject, createPublicKey } from 'node:crypto';
import type { Certificate } from '../x509/certificate.ts';

/** The SPKI DER of a public key, or of a private key's public half. */
export function spkiOf(key: KeyObject): Buffer {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
}

/** True when `cert` certifies the key whose SPKI is `spki`; false also when the certificate's key cannot be loaded. */
export function certifiesKey(cert: Certificate, spki: Buffer): boolean {
  try {
    return spkiOf(cert.publicKey).equals(spki);
  } catch {
    return false;
  }
}
