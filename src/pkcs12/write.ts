/**
 * Writing PKCS#12 files, in the layout OpenSSL and NSS write and every
 * reader expects: an AuthenticatedSafe of one EncryptedData holding the
 * certificate bags and one Data holding the shrouded key bags, under an
 * HMAC (RFC 7292 §5.1). Each key bag and its certificate bag carry the same
 * localKeyId (the SHA-1 of the certificate, as OpenSSL chooses it) and the
 * friendlyName that devices show as the identity's name.
 *
 * Two profiles:
 * - `modern` (default): PBES2 with PBKDF2-HMAC-SHA-256 and AES-256-CBC for
 *   keys and certificates, HMAC-SHA-256 MAC; what OpenSSL 3 and NSS write.
 * - `legacy`: for iOS/iPadOS and Windows before 10 (1709), which refuse
 *   PBES2/AES (REFERENCE.md, com.apple.security.pkcs12): keys and
 *   certificates with pbeWithSHAAnd3-KeyTripleDES-CBC and an HMAC-SHA-1 MAC,
 *   as `openssl pkcs12 -export -certpbe PBE-SHA1-3DES -keypbe PBE-SHA1-3DES
 *   -macalg sha1` writes. Windows' own exports and `openssl -legacy` put the
 *   certificates under 40-bit RC2 instead; those clients read 3DES
 *   certificate bags as well, so RC2-40 would add no reach, only a cipher
 *   broken by brute force, and one OpenSSL 3 cannot run without its legacy
 *   provider (REFERENCE.md pitfall 9).
 */
import { type KeyObject, createHash, randomBytes } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import * as der from '../asn1/writer.ts';
import type { Certificate } from '../x509/certificate.ts';
import { encodeCertBag, encodeEncryptedPrivateKeyInfo, encodeSafeBag } from './bags.ts';
import { DEFAULT_MAX_ITERATIONS, IterationBudget } from './kdf.ts';
import { encodeMacData } from './mac.ts';
import { P12 } from './oids.ts';
import { type WriteScheme, encrypt, passwordForms } from './pbe.ts';
import { encodeDataContentInfo, encodeEncryptedDataContentInfo, encodePfx } from './pfx.ts';
import { certifiesKey, spkiOf } from './public-key.ts';

export interface Pkcs12WriteEntry {
  readonly key: KeyObject;
  readonly certificate: Certificate;
  /** Issuing CA certificates to include (each written once per file). */
  readonly chain?: readonly Certificate[];
  /** Overrides Pkcs12WriteOptions.friendlyName for this entry. */
  readonly friendlyName?: string;
}

export interface Pkcs12WriteOptions {
  readonly profile?: 'modern' | 'legacy';
  /** friendlyName for entries that have none of their own. */
  readonly friendlyName?: string;
  /** KDF iterations for the bags and the MAC (default 2048, OpenSSL's). */
  readonly iterations?: number;
  /** Source of salts and IVs (default crypto.randomBytes); injected by tests. */
  readonly random?: (n: number) => Uint8Array;
}

export const DEFAULT_WRITE_ITERATIONS = 2048;

export function writePkcs12(entries: readonly Pkcs12WriteEntry[], password: string, options: Pkcs12WriteOptions = {}): Uint8Array {
  const profile = options.profile ?? 'modern';
  const iterations = options.iterations ?? DEFAULT_WRITE_ITERATIONS;
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > DEFAULT_MAX_ITERATIONS) {
    throw new KeyfleetError('KF_USAGE', `PKCS#12 iterations must be an integer from 1 to ${DEFAULT_MAX_ITERATIONS}`);
  }
  if (entries.length === 0) throw new KeyfleetError('KF_USAGE', 'a PKCS#12 file needs at least one key and certificate');
  const random = options.random ?? randomBytes;
  const scheme: WriteScheme = profile === 'legacy' ? 'pbe-sha1-3des' : 'pbes2-aes256-sha256';
  const forms = passwordForms(password);
  const budget = new IterationBudget(DEFAULT_MAX_ITERATIONS, Number.MAX_SAFE_INTEGER);

  const certBags: Uint8Array[] = [];
  const keyBags: Uint8Array[] = [];
  const written = new Set<string>();
  entries.forEach((entry, i) => {
    checkPair(entry, i);
    const localKeyId = createHash('sha1').update(entry.certificate.der).digest();
    const friendlyName = entry.friendlyName ?? options.friendlyName;
    const attributes = { localKeyId, ...(friendlyName !== undefined ? { friendlyName } : {}) };
    const pkcs8 = entry.key.export({ format: 'der', type: 'pkcs8' });
    const shrouded = encrypt(scheme, pkcs8, forms, iterations, random, budget);
    keyBags.push(encodeSafeBag(P12.pkcs8ShroudedKeyBag, encodeEncryptedPrivateKeyInfo(shrouded.algorithm, shrouded.ciphertext), attributes));
    certBags.push(encodeSafeBag(P12.certBag, encodeCertBag(entry.certificate.der), attributes));
    written.add(entry.certificate.fingerprint256);
  });
  for (const ca of entries.flatMap((e) => e.chain ?? [])) {
    if (written.has(ca.fingerprint256)) continue;
    written.add(ca.fingerprint256);
    certBags.push(encodeSafeBag(P12.certBag, encodeCertBag(ca.der)));
  }

  const certs = encrypt(scheme, der.sequence(...certBags), forms, iterations, random, budget);
  const authSafe = der.sequence(encodeEncryptedDataContentInfo(certs.algorithm, certs.ciphertext), encodeDataContentInfo(der.sequence(...keyBags)));
  // OpenSSL writes 8-byte MAC salts; the modern profile follows NIST SP 800-132's 128 bits.
  const macData = encodeMacData(profile === 'legacy' ? 'sha1' : 'sha256', authSafe, forms.bmp[0]!, random(profile === 'legacy' ? 8 : 16), iterations, budget);
  return encodePfx(authSafe, macData);
}

/** The key must be private and belong to the certificate: a file pairing them wrongly would fail on every device. */
function checkPair(entry: Pkcs12WriteEntry, index: number): void {
  if (entry.key.type !== 'private') throw new KeyfleetError('KF_KEY_INVALID', `PKCS#12 entry ${index + 1}: the key is not a private key`);
  if (!certifiesKey(entry.certificate, spkiOf(entry.key))) {
    throw new KeyfleetError('KF_KEY_INVALID', `PKCS#12 entry ${index + 1}: the private key does not belong to the certificate`);
  }
}
