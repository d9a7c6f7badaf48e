/**
 * Custody of the CA's private keys. The CA asks a `KeyStore` to generate,
 * import and sign; it never handles a raw private key itself, so a PKCS#11
 * token or a cloud KMS can replace the built-in `SealedKeyStore` by
 * implementing the same four methods (keeping `sealedKey` undefined and the
 * key behind `keyRef`).
 *
 * `SealedKeyStore` keeps each key as a sealed blob (stored in the CaRecord):
 * the PKCS#8 encoding encrypted with AES-256-GCM under a 32-byte
 * key-encryption key (KEK; see master-key.ts for where it comes from).
 *
 *   blob = "KFSK" | version (1) | kekId (8) | nonce (12) | tag (16) | ciphertext
 *   AAD  = blob[0..25) | UTF-8 keyRef
 *
 * The key reference is authenticated, so a blob moved to another reference
 * does not open. kekId (a MAC of a constant under the KEK) tells "wrong
 * KEK" (KF_MASTER_KEY) apart from "damaged blob" (KF_KEY_INVALID) without
 * revealing anything about the KEK.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import { type SignatureScheme, createSignatureAsync } from '../x509/signature.ts';
import { type KeySpec, generateKeyPair } from './key-spec.ts';

/** Where a key lives: what a CaRecord stores about it. */
export interface StoredKey {
  readonly keyRef: string;
  /** The sealed private key; undefined when the key stays in an external device. */
  readonly sealedKey: Uint8Array | undefined;
}

export interface GeneratedKey {
  readonly stored: StoredKey;
  readonly publicKey: KeyObject;
}

export interface KeyStore {
  /** Generates a key pair whose private half stays in the store. */
  generate(keyRef: string, spec: KeySpec): Promise<GeneratedKey>;
  /** Takes custody of an existing private key (importing an issuing CA). */
  importKey(keyRef: string, privateKey: KeyObject): Promise<StoredKey>;
  publicKey(key: StoredKey): Promise<KeyObject>;
  /** Signs `data` (the whole message; the scheme's hash is applied inside). */
  sign(key: StoredKey, scheme: SignatureScheme, data: Uint8Array): Promise<Uint8Array>;
}

const MAGIC = Buffer.from('KFSK', 'latin1');
const VERSION = 1;
const HEADER_LENGTH = MAGIC.length + 1 + 8 + 12; // magic, version, kekId, nonce
const TAG_LENGTH = 16;
/** Opened keys kept in memory, so signing does not decrypt every time. */
const OPEN_CACHE_LIMIT = 32;

function kekIdentifier(kek: Uint8Array): Buffer {
  return createHmac('sha256', kek).update('keyfleet/kek-id/v1').digest().subarray(0, 8);
}

export class SealedKeyStore implements KeyStore {
  readonly #kek: Buffer;
  readonly #kekId: Buffer;
  readonly #random: (n: number) => Uint8Array;
  readonly #open = new Map<string, KeyObject>();

  constructor(kek: Uint8Array, options: { readonly random?: (n: number) => Uint8Array } = {}) {
    if (kek.length !== 32) throw new KeyfleetError('KF_MASTER_KEY', 'the key-encryption key must be 32 bytes');
    this.#kek = Buffer.from(kek);
    this.#kekId = kekIdentifier(this.#kek);
    this.#random = options.random ?? ((n) => randomBytes(n));
  }

  async generate(keyRef: string, spec: KeySpec): Promise<GeneratedKey> {
    const { privateKey, publicKey } = generateKeyPair(spec);
    return { stored: { keyRef, sealedKey: this.seal(keyRef, privateKey) }, publicKey };
  }

  async importKey(keyRef: string, privateKey: KeyObject): Promise<StoredKey> {
    if (privateKey.type !== 'private') throw new KeyfleetError('KF_KEY_INVALID', 'a private key is needed to import a CA');
    return { keyRef, sealedKey: this.seal(keyRef, privateKey) };
  }

  async publicKey(key: StoredKey): Promise<KeyObject> {
    return createPublicKey(this.#opened(key));
  }

  /** Signs on libuv's thread pool: a server's certificate, CRL and OCSP signatures run beside its event loop (bench:pki). */
  async sign(key: StoredKey, scheme: SignatureScheme, data: Uint8Array): Promise<Uint8Array> {
    return createSignatureAsync(scheme, data, this.#opened(key));
  }

  /** Encrypts a private key for storage under `keyRef`. */
  seal(keyRef: string, privateKey: KeyObject): Uint8Array {
    const plain = privateKey.export({ format: 'der', type: 'pkcs8' });
    const nonce = Buffer.from(this.#random(12));
    if (nonce.length !== 12) throw new KeyfleetError('KF_KEY_INVALID', 'random source returned the wrong number of bytes');
    const header = Buffer.concat([MAGIC, Uint8Array.of(VERSION), this.#kekId, nonce]);
    const cipher = createCipheriv('aes-256-gcm', this.#kek, nonce, { authTagLength: TAG_LENGTH });
    cipher.setAAD(Buffer.concat([header, Buffer.from(keyRef, 'utf8')]));
    const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
    plain.fill(0);
    return Buffer.concat([header, cipher.getAuthTag(), ciphertext]);
  }

  /** Decrypts a sealed key. KF_MASTER_KEY for another KEK, KF_KEY_INVALID for a damaged or moved blob. */
  open(keyRef: string, sealed: Uint8Array): KeyObject {
    const blob = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    if (blob.length < HEADER_LENGTH + TAG_LENGTH + 1 || !blob.subarray(0, 4).equals(MAGIC)) {
      throw new KeyfleetError('KF_KEY_INVALID', `the stored key for "${keyRef}" is not a sealed key`);
    }
    if (blob[4] !== VERSION) throw new KeyfleetError('KF_KEY_INVALID', `the stored key for "${keyRef}" has unsupported sealing version ${blob[4]}`);
    if (!blob.subarray(5, 13).equals(this.#kekId)) {
      throw new KeyfleetError('KF_MASTER_KEY', `the key for "${keyRef}" was sealed under a different key-encryption key (check KEYFLEET_MASTER_KEY or the master key file)`);
    }
    const header = blob.subarray(0, HEADER_LENGTH);
    const decipher = createDecipheriv('aes-256-gcm', this.#kek, blob.subarray(13, HEADER_LENGTH), { authTagLength: TAG_LENGTH });
    decipher.setAAD(Buffer.concat([header, Buffer.from(keyRef, 'utf8')]));
    decipher.setAuthTag(blob.subarray(HEADER_LENGTH, HEADER_LENGTH + TAG_LENGTH));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(blob.subarray(HEADER_LENGTH + TAG_LENGTH)), decipher.final()]);
    } catch (e) {
      throw new KeyfleetError('KF_KEY_INVALID', `the stored key for "${keyRef}" fails authentication: it is damaged or belongs to another key reference`, { cause: e });
    }
    try {
      return createPrivateKey({ key: plain, format: 'der', type: 'pkcs8' });
    } catch (e) {
      throw new KeyfleetError('KF_KEY_INVALID', `the stored key for "${keyRef}" is not a usable private key`, { cause: e });
    } finally {
      plain.fill(0);
    }
  }

  #opened(key: StoredKey): KeyObject {
    if (key.sealedKey === undefined) throw new KeyfleetError('KF_KEY_INVALID', `no sealed key is stored for "${key.keyRef}" (is it held by another key store?)`);
    const cacheKey = `${key.keyRef}\u0000${createHash('sha256').update(key.sealedKey).digest('hex')}`;
    let k = this.#open.get(cacheKey);
    if (!k) {
      k = this.open(key.keyRef, key.sealedKey);
      if (this.#open.size >= OPEN_CACHE_LIMIT) this.#open.delete(this.#open.keys().next().value!);
      this.#open.set(cacheKey, k);
    }
    return k;
  }
}
