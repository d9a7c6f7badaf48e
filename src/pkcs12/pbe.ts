/**
 * Password-based encryption of PKCS#12 bags: PBES2 (RFC 8018 §6.2) and the
 * PKCS#12 PBEs (RFC 7292 Appendix C), read and written from their
 * AlgorithmIdentifier.
 *
 *   PBES2-params ::= SEQUENCE {
 *     keyDerivationFunc AlgorithmIdentifier {{PBES2-KDFs}},   -- PBKDF2
 *     encryptionScheme  AlgorithmIdentifier {{PBES2-Encs}} }
 *
 *   PBKDF2-params ::= SEQUENCE {
 *     salt CHOICE { specified OCTET STRING, otherSource AlgorithmIdentifier },
 *     iterationCount INTEGER (1..MAX),
 *     keyLength INTEGER (1..MAX) OPTIONAL,
 *     prf AlgorithmIdentifier {{PBKDF2-PRFs}} DEFAULT algid-hmacWithSHA1 }
 *
 *   pkcs-12PbeParams ::= SEQUENCE { salt OCTET STRING, iterations INTEGER }
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import { Tag, SequenceReader, readOctets, readSmallInt, type Tlv } from '../asn1/reader.ts';
import { OID, oidName } from '../asn1/oids.ts';
import * as der from '../asn1/writer.ts';
import { type AlgorithmIdentifier, decodeAlgorithmIdentifier, encodeAlgorithmIdentifier, hasNoParameters } from '../x509/algorithm.ts';
import { type IterationBudget, type KdfHash, KdfId, bmpPassword, pbkdf2, pkcs12Kdf } from './kdf.ts';
import { P12 } from './oids.ts';
import { rc2CbcDecrypt } from './rc2.ts';

/**
 * The password in the encodings the schemes use: PBES2 and PBMAC1 take the
 * UTF-8 bytes (as OpenSSL and NSS do), the PKCS#12 KDF a BMPString. An empty
 * password has two BMP forms: RFC 7292 §B.1 gives the two zero bytes, but
 * OpenSSL also writes files keyed with no password bytes at all (a NULL
 * password), so both are tried until the MAC says which one is right.
 */
export interface PasswordForms {
  readonly utf8: Uint8Array;
  readonly bmp: readonly Uint8Array[];
}

export function passwordForms(password: string): PasswordForms {
  return {
    utf8: Buffer.from(password, 'utf8'),
    bmp: password === '' ? [bmpPassword(''), new Uint8Array(0)] : [bmpPassword(password)],
  };
}

/** A CBC block cipher: one of OpenSSL's (default provider) or our RC2. */
type Cipher = { readonly openssl: string; readonly keyLength: number; readonly ivLength: number } | { readonly rc2: number; readonly keyLength: number; readonly ivLength: number };

const pbes2Ciphers: Record<string, { name: string; cipher: Cipher }> = {
  [OID.aes128CBC]: { name: 'aes128-CBC', cipher: { openssl: 'aes-128-cbc', keyLength: 16, ivLength: 16 } },
  [OID.aes192CBC]: { name: 'aes192-CBC', cipher: { openssl: 'aes-192-cbc', keyLength: 24, ivLength: 16 } },
  [OID.aes256CBC]: { name: 'aes256-CBC', cipher: { openssl: 'aes-256-cbc', keyLength: 32, ivLength: 16 } },
  [OID.desEde3CBC]: { name: 'des-EDE3-CBC', cipher: { openssl: 'des-ede3-cbc', keyLength: 24, ivLength: 8 } },
};

const prfs: Record<string, KdfHash> = {
  [P12.hmacWithSHA1]: 'sha1',
  [P12.hmacWithSHA224]: 'sha224',
  [P12.hmacWithSHA256]: 'sha256',
  [P12.hmacWithSHA384]: 'sha384',
  [P12.hmacWithSHA512]: 'sha512',
};
const prfNames: Record<KdfHash, string> = { sha1: 'hmacWithSHA1', sha224: 'hmacWithSHA224', sha256: 'hmacWithSHA256', sha384: 'hmacWithSHA384', sha512: 'hmacWithSHA512' };

/**
 * RFC 7292 Appendix C. Two-key triple DES has a 16-byte key (K1, K2) used
 * as K1 K2 K1; RC2 has 40 or 128 effective bits from a key of that length.
 * The RC4 schemes are not offered: OpenSSL 3 keeps RC4 in its legacy
 * provider and no current producer writes them.
 */
const pkcs12Pbes: Record<string, { name: string; cipher: Cipher }> = {
  [P12.pbeWithSHAAnd3KeyTripleDESCBC]: { name: 'pbeWithSHAAnd3-KeyTripleDES-CBC', cipher: { openssl: 'des-ede3-cbc', keyLength: 24, ivLength: 8 } },
  [P12.pbeWithSHAAnd2KeyTripleDESCBC]: { name: 'pbeWithSHAAnd2-KeyTripleDES-CBC', cipher: { openssl: 'des-ede3-cbc', keyLength: 16, ivLength: 8 } },
  [P12.pbeWithSHAAnd128BitRC2CBC]: { name: 'pbeWithSHAAnd128BitRC2-CBC', cipher: { rc2: 128, keyLength: 16, ivLength: 8 } },
  [P12.pbeWithSHAAnd40BitRC2CBC]: { name: 'pbeWithSHAAnd40BitRC2-CBC', cipher: { rc2: 40, keyLength: 5, ivLength: 8 } },
};

/** A decoded encryption AlgorithmIdentifier of a shrouded key bag or an EncryptedData. */
export interface EncryptionScheme {
  /** RFC names, e.g. "PBES2/PBKDF2-hmacWithSHA256/aes256-CBC" or "pbeWithSHAAnd40BitRC2-CBC". */
  readonly name: string;
  readonly iterations: number;
  /**
   * The plaintexts for each password encoding the scheme might have used
   * whose padding checks out; the caller takes the first that parses. A
   * wrong password yields none (or, rarely, one that will not parse).
   */
  decrypt(ciphertext: Uint8Array, password: PasswordForms, budget: IterationBudget): Generator<Uint8Array>;
}

function unsupported(oid: string, what: string): KeyfleetError {
  return new KeyfleetError('KF_CMS_UNSUPPORTED', `PKCS#12 ${what} ${oidName(oid)} is not supported`, { detail: oid });
}

/** Decodes the algorithm; throws KF_CMS_UNSUPPORTED for schemes we cannot run, before any work is done. */
export function decodeEncryptionScheme(alg: AlgorithmIdentifier): EncryptionScheme {
  if (alg.algorithm === P12.pbes2) return decodePbes2(alg);
  const pbe = pkcs12Pbes[alg.algorithm];
  if (!pbe) throw unsupported(alg.algorithm, 'encryption algorithm');
  const r = new SequenceReader(params(alg), 'pkcs-12PbeParams');
  const salt = readOctets(r.next(Tag.octetString));
  const iterations = readSmallInt(r.next(Tag.integer));
  r.end();
  const { cipher } = pbe;
  return {
    name: pbe.name,
    iterations,
    *decrypt(ciphertext, password, budget) {
      for (const bmp of password.bmp) {
        const key = pkcs12Kdf('sha1', bmp, salt, iterations, KdfId.key, cipher.keyLength, budget);
        const iv = pkcs12Kdf('sha1', bmp, salt, iterations, KdfId.iv, cipher.ivLength, budget);
        const plain = cbcDecrypt(cipher, key, iv, ciphertext);
        if (plain) yield plain;
      }
    },
  };
}

function params(alg: AlgorithmIdentifier): Tlv {
  if (alg.parameters === undefined || hasNoParameters(alg)) throw new KeyfleetError('KF_ASN1_MALFORMED', `${oidName(alg.algorithm)} has no parameters`);
  return alg.parameters;
}

function decodePbes2(alg: AlgorithmIdentifier): EncryptionScheme {
  const r = new SequenceReader(params(alg), 'PBES2-params');
  const kdf = decodeAlgorithmIdentifier(r.next(Tag.sequence));
  const enc = decodeAlgorithmIdentifier(r.next(Tag.sequence));
  r.end();
  const scheme = pbes2Ciphers[enc.algorithm];
  if (!scheme) throw unsupported(enc.algorithm, 'PBES2 cipher');
  const { cipher } = scheme;
  const p = decodePbkdf2Params(kdf);
  if (p.keyLength !== undefined && p.keyLength !== cipher.keyLength) {
    throw new KeyfleetError('KF_KEY_INVALID', `PBKDF2 keyLength ${p.keyLength} does not fit ${scheme.name}`);
  }
  const ivTlv = params(enc);
  if (ivTlv.cls !== 0 || ivTlv.tag !== Tag.octetString) throw new KeyfleetError('KF_ASN1_MALFORMED', `${scheme.name} parameters are not an IV`);
  const iv = readOctets(ivTlv);
  if (iv.length !== cipher.ivLength) throw new KeyfleetError('KF_ASN1_MALFORMED', `${scheme.name} IV of ${iv.length} bytes`);
  return {
    name: `PBES2/PBKDF2-${prfNames[p.prf]}/${scheme.name}`,
    iterations: p.iterations,
    *decrypt(ciphertext, password, budget) {
      const key = pbkdf2(password.utf8, p.salt, p.iterations, cipher.keyLength, p.prf, budget);
      const plain = cbcDecrypt(cipher, key, iv, ciphertext);
      if (plain) yield plain;
    },
  };
}

export interface Pbkdf2Params {
  readonly salt: Uint8Array;
  readonly iterations: number;
  readonly keyLength: number | undefined;
  readonly prf: KdfHash;
}

/** PBKDF2-params (RFC 8018 §A.2); shared with PBMAC1. */
export function decodePbkdf2Params(kdf: AlgorithmIdentifier): Pbkdf2Params {
  if (kdf.algorithm !== P12.pbkdf2) throw unsupported(kdf.algorithm, 'key derivation function');
  const r = new SequenceReader(params(kdf), 'PBKDF2-params');
  const saltTlv = r.next();
  // otherSource (an AlgorithmIdentifier) was reserved for future use and never defined.
  if (saltTlv.cls !== 0 || saltTlv.tag !== Tag.octetString) throw new KeyfleetError('KF_CMS_UNSUPPORTED', 'PBKDF2 salt from otherSource is not supported');
  const salt = readOctets(saltTlv);
  const iterations = readSmallInt(r.next(Tag.integer));
  const keyLengthTlv = r.optional(Tag.integer);
  const keyLength = keyLengthTlv === undefined ? undefined : readSmallInt(keyLengthTlv);
  const prfTlv = r.optional(Tag.sequence);
  r.end();
  let prf: KdfHash = 'sha1';
  if (prfTlv) {
    const prfAlg = decodeAlgorithmIdentifier(prfTlv);
    const h = prfs[prfAlg.algorithm];
    if (!h || !hasNoParameters(prfAlg)) throw unsupported(prfAlg.algorithm, 'PBKDF2 PRF');
    prf = h;
  }
  if (keyLength !== undefined && (keyLength < 1 || keyLength > 1024)) throw new KeyfleetError('KF_KEY_INVALID', `PBKDF2 keyLength ${keyLength} is out of range`);
  return { salt, iterations, keyLength, prf };
}

/** CBC decryption with PKCS#5 padding removed; undefined when the padding (or length) is wrong. */
function cbcDecrypt(cipher: Cipher, key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array | undefined {
  try {
    if ('rc2' in cipher) return rc2CbcDecrypt(key, cipher.rc2, iv, data);
    // Two-key triple DES (K1 K2) is three-key triple DES with K3 = K1.
    const k = cipher.openssl === 'des-ede3-cbc' && key.length === 16 ? Buffer.concat([key, key.subarray(0, 8)]) : key;
    const d = createDecipheriv(cipher.openssl, k, iv);
    return Buffer.concat([d.update(data), d.final()]);
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------ writing

export type WriteScheme = 'pbes2-aes256-sha256' | 'pbe-sha1-3des';

export interface Encrypted {
  /** The AlgorithmIdentifier (DER). */
  readonly algorithm: Uint8Array;
  readonly ciphertext: Uint8Array;
}

/**
 * Encrypts for writing. `pbes2-aes256-sha256` is what OpenSSL 3 and NSS write
 * by default (RFC 8018: PBKDF2-HMAC-SHA-256, AES-256-CBC); `pbe-sha1-3des` is
 * pbeWithSHAAnd3-KeyTripleDES-CBC for clients that refuse PBES2.
 */
export function encrypt(scheme: WriteScheme, plaintext: Uint8Array, password: PasswordForms, iterations: number, random: (n: number) => Uint8Array, budget: IterationBudget): Encrypted {
  if (scheme === 'pbes2-aes256-sha256') {
    const salt = random(16);
    const iv = random(16);
    const key = pbkdf2(password.utf8, salt, iterations, 32, 'sha256', budget);
    const kdf = encodeAlgorithmIdentifier(P12.pbkdf2, der.sequence(der.octetString(salt), der.integer(iterations), encodeAlgorithmIdentifier(P12.hmacWithSHA256, null)));
    const algorithm = encodeAlgorithmIdentifier(P12.pbes2, der.sequence(kdf, encodeAlgorithmIdentifier(OID.aes256CBC, der.octetString(iv))));
    return { algorithm, ciphertext: cbcEncrypt('aes-256-cbc', key, iv, plaintext) };
  }
  const salt = random(8);
  const bmp = password.bmp[0]!;
  const key = pkcs12Kdf('sha1', bmp, salt, iterations, KdfId.key, 24, budget);
  const iv = pkcs12Kdf('sha1', bmp, salt, iterations, KdfId.iv, 8, budget);
  const algorithm = encodeAlgorithmIdentifier(P12.pbeWithSHAAnd3KeyTripleDESCBC, der.sequence(der.octetString(salt), der.integer(iterations)));
  return { algorithm, ciphertext: cbcEncrypt('des-ede3-cbc', key, iv, plaintext) };
}

function cbcEncrypt(name: string, key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const c = createCipheriv(name, key, iv);
  return Buffer.concat([c.update(data), c.final()]);
}
