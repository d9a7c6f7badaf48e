/** Loading private keys: PEM PKCS#8, PKCS#1 (RSA) and SEC1 (EC), or DER PKCS#8. */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import { looksLikePem } from '../asn1/pem.ts';

export function loadPrivateKey(bytes: Uint8Array): KeyObject {
  try {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (looksLikePem(bytes)) {
      const text = buf.toString('latin1');
      if (text.includes('ENCRYPTED')) throw new KeyfleetError('KF_KEY_INVALID', 'encrypted PEM keys are not supported; decrypt the key or use a PKCS#12 file');
      return createPrivateKey({ key: text, format: 'pem' });
    }
    return createPrivateKey({ key: buf, format: 'der', type: 'pkcs8' });
  } catch (e) {
    if (e instanceof KeyfleetError) throw e;
    throw new KeyfleetError('KF_KEY_INVALID', 'private key cannot be parsed (expected PEM PKCS#8, PKCS#1 or SEC1, or DER PKCS#8)', { cause: e });
  }
}
