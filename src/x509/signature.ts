/**
 * Signature algorithms shared by certificates, CRLs, OCSP and CMS SignerInfo:
 * RSASSA-PKCS1-v1_5 and RSASSA-PSS (RFC 8017, RFC 4055), ECDSA (RFC 5758)
 * and EdDSA (RFC 8410, RFC 8419). All the arithmetic is node:crypto's.
 */
import { sign as cryptoSign, verify as cryptoVerify, constants, type KeyObject } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import { Tag, children, readSmallInt } from '../asn1/reader.ts';
import { OID } from '../asn1/oids.ts';
import * as der from '../asn1/writer.ts';
import { type AlgorithmIdentifier, decodeAlgorithmIdentifier, encodeAlgorithmIdentifier } from './algorithm.ts';

export type HashName = 'md5' | 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

const hashByOid: Record<string, HashName> = {
  [OID.md5]: 'md5',
  [OID.sha1]: 'sha1',
  [OID.sha224]: 'sha224',
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};
const oidByHash: Record<HashName, string> = { md5: OID.md5, sha1: OID.sha1, sha224: OID.sha224, sha256: OID.sha256, sha384: OID.sha384, sha512: OID.sha512 };

export function hashFromOid(oid: string): HashName {
  const h = hashByOid[oid];
  if (!h) throw new KeyfleetError('KF_CMS_UNSUPPORTED', `unsupported digest algorithm ${oid}`, { detail: oid });
  return h;
}

export function hashOid(hash: HashName): string {
  return oidByHash[hash];
}

/** Digest lengths in bytes (for PSS salt defaults). */
export const hashLength: Record<HashName, number> = { md5: 16, sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 };

export interface SignatureScheme {
  readonly kind: 'rsa-pkcs1' | 'rsa-pss' | 'ecdsa' | 'eddsa';
  /** The message digest; undefined for pure EdDSA, which hashes internally. */
  readonly hash: HashName | undefined;
  readonly saltLength?: number;
  /** MD5 or SHA-1 based: reported as `weak-algorithm`. */
  readonly weak: boolean;
}

const pkcs1ByOid: Record<string, HashName> = {
  [OID.md5WithRSAEncryption]: 'md5',
  [OID.sha1WithRSAEncryption]: 'sha1',
  [OID.sha224WithRSAEncryption]: 'sha224',
  [OID.sha256WithRSAEncryption]: 'sha256',
  [OID.sha384WithRSAEncryption]: 'sha384',
  [OID.sha512WithRSAEncryption]: 'sha512',
};
const ecdsaByOid: Record<string, HashName> = {
  [OID.ecdsaWithSHA1]: 'sha1',
  [OID.ecdsaWithSHA224]: 'sha224',
  [OID.ecdsaWithSHA256]: 'sha256',
  [OID.ecdsaWithSHA384]: 'sha384',
  [OID.ecdsaWithSHA512]: 'sha512',
};

function scheme(kind: SignatureScheme['kind'], hash: HashName | undefined, saltLength?: number): SignatureScheme {
  const weak = hash === 'md5' || hash === 'sha1';
  return saltLength === undefined ? { kind, hash, weak } : { kind, hash, saltLength, weak };
}

/**
 * The scheme named by a signature AlgorithmIdentifier. CMS SignerInfo may
 * name only the key type (rsaEncryption, ecPublicKey) and carry the hash in
 * its digestAlgorithm (RFC 5652 §5.3, RFC 5754 §3), hence `digestAlgorithm`.
 */
export function signatureScheme(alg: AlgorithmIdentifier, digestAlgorithm?: string): SignatureScheme {
  const digest = digestAlgorithm === undefined ? undefined : hashFromOid(digestAlgorithm);
  const id = alg.algorithm;
  if (pkcs1ByOid[id]) return scheme('rsa-pkcs1', pkcs1ByOid[id]);
  if (ecdsaByOid[id]) return scheme('ecdsa', ecdsaByOid[id]);
  if (id === OID.rsaEncryption && digest) return scheme('rsa-pkcs1', digest);
  if (id === OID.ecPublicKey && digest) return scheme('ecdsa', digest);
  if (id === OID.ed25519 || id === OID.ed448) return scheme('eddsa', undefined);
  if (id === OID.rsassaPss) return pssScheme(alg);
  throw new KeyfleetError('KF_CMS_UNSUPPORTED', `unsupported signature algorithm ${id}`, { detail: id });
}

/** RSASSA-PSS-params (RFC 4055 §3.1); defaults are SHA-1, MGF1-SHA-1, salt 20. */
function pssScheme(alg: AlgorithmIdentifier): SignatureScheme {
  let hash: HashName = 'sha1';
  let mgfHash: HashName = 'sha1';
  let saltLength = 20;
  if (alg.parameters && alg.parameters.tag === Tag.sequence) {
    for (const field of children(alg.parameters)) {
      if (field.cls !== 2) continue;
      const inner = children(field)[0];
      if (!inner) continue;
      if (field.tag === 0) hash = hashFromOid(decodeAlgorithmIdentifier(inner).algorithm);
      if (field.tag === 1) {
        const mgf = decodeAlgorithmIdentifier(inner);
        if (mgf.algorithm !== OID.mgf1 || !mgf.parameters) throw new KeyfleetError('KF_CMS_UNSUPPORTED', 'unsupported PSS mask generation', { detail: mgf.algorithm });
        mgfHash = hashFromOid(decodeAlgorithmIdentifier(mgf.parameters).algorithm);
      }
      if (field.tag === 2) saltLength = readSmallInt(inner);
    }
  }
  // node:crypto uses MGF1 with the signature hash; other combinations do not occur in practice.
  if (mgfHash !== hash) throw new KeyfleetError('KF_CMS_UNSUPPORTED', 'RSASSA-PSS with an MGF1 hash different from the message hash', { detail: OID.rsassaPss });
  return scheme('rsa-pss', hash, saltLength);
}

/**
 * The key argument for crypto.sign/verify. Plain KeyObjects where the
 * defaults are right (PKCS#1 v1.5 padding, DER ECDSA signatures): Node
 * spends ~19 µs validating an options object, a quarter of a 1 KB verify.
 */
function keyOptions(s: SignatureScheme, key: KeyObject) {
  if (s.kind !== 'rsa-pss') return key;
  return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: s.saltLength ?? hashLength[s.hash ?? 'sha256'] };
}

function join(data: Uint8Array | readonly Uint8Array[]): Uint8Array {
  return data instanceof Uint8Array ? data : Buffer.concat(data);
}

/** Verifies `signature` over `data`. False for a wrong signature; a coded error only for unusable keys. */
export function verifySignature(s: SignatureScheme, data: Uint8Array | readonly Uint8Array[], signature: Uint8Array, publicKey: KeyObject): boolean {
  const type = publicKey.asymmetricKeyType;
  const fits =
    (s.kind === 'rsa-pkcs1' && type === 'rsa') ||
    (s.kind === 'rsa-pss' && (type === 'rsa' || type === 'rsa-pss')) ||
    (s.kind === 'ecdsa' && type === 'ec') ||
    (s.kind === 'eddsa' && (type === 'ed25519' || type === 'ed448'));
  if (!fits) return false;
  try {
    return cryptoVerify(s.hash ?? null, join(data), keyOptions(s, publicKey), signature);
  } catch {
    return false;
  }
}

export function createSignature(s: SignatureScheme, data: Uint8Array | readonly Uint8Array[], privateKey: KeyObject): Uint8Array {
  try {
    return cryptoSign(s.hash ?? null, join(data), keyOptions(s, privateKey));
  } catch (e) {
    throw new KeyfleetError('KF_KEY_INVALID', `signing failed with this key (${privateKey.asymmetricKeyType ?? 'unknown type'})`, { cause: e });
  }
}

/**
 * createSignature on libuv's thread pool (crypto.sign's callback form): for
 * servers, so that private-key operations run beside the event loop instead
 * of on it.
 */
export function createSignatureAsync(s: SignatureScheme, data: Uint8Array | readonly Uint8Array[], privateKey: KeyObject): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    cryptoSign(s.hash ?? null, join(data), keyOptions(s, privateKey), (e, signature) =>
      e ? reject(new KeyfleetError('KF_KEY_INVALID', `signing failed with this key (${privateKey.asymmetricKeyType ?? 'unknown type'})`, { cause: e })) : resolve(signature),
    );
  });
}

/**
 * The scheme to sign with for a private key: PKCS#1 v1.5 or PSS for RSA
 * (salt = hash length, RFC 8702 style), ECDSA for EC, pure EdDSA for Ed25519/Ed448.
 */
export function schemeForKey(key: KeyObject, hash: HashName, options: { pss?: boolean } = {}): SignatureScheme {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return options.pss ? scheme('rsa-pss', hash, hashLength[hash]) : scheme('rsa-pkcs1', hash);
    case 'rsa-pss':
      return scheme('rsa-pss', hash, hashLength[hash]);
    case 'ec':
      return scheme('ecdsa', hash);
    case 'ed25519':
    case 'ed448':
      return scheme('eddsa', undefined);
    default:
      throw new KeyfleetError('KF_KEY_INVALID', `keys of type ${key.asymmetricKeyType ?? 'unknown'} cannot sign`);
  }
}

/**
 * The signature AlgorithmIdentifier (DER) for a scheme and key. PKCS#1 v1.5
 * carries NULL parameters (RFC 4055 §5), ECDSA and EdDSA none (RFC 5758 §3.2, RFC 8410 §3).
 */
export function encodeSignatureAlgorithm(s: SignatureScheme, key: KeyObject): Uint8Array {
  switch (s.kind) {
    case 'rsa-pkcs1': {
      const oid = Object.entries(pkcs1ByOid).find(([, h]) => h === s.hash)![0];
      return encodeAlgorithmIdentifier(oid, null);
    }
    case 'ecdsa': {
      const oid = Object.entries(ecdsaByOid).find(([, h]) => h === s.hash)![0];
      return encodeAlgorithmIdentifier(oid);
    }
    case 'eddsa':
      return encodeAlgorithmIdentifier(key.asymmetricKeyType === 'ed448' ? OID.ed448 : OID.ed25519);
    case 'rsa-pss': {
      const hash = s.hash ?? 'sha256';
      const hashAlg = encodeAlgorithmIdentifier(hashOid(hash), null);
      return encodeAlgorithmIdentifier(
        OID.rsassaPss,
        der.sequence(der.explicit(0, hashAlg), der.explicit(1, encodeAlgorithmIdentifier(OID.mgf1, hashAlg)), der.explicit(2, der.integer(s.saltLength ?? hashLength[hash]))),
      );
    }
  }
}

/** Reads a DigestAlgorithmIdentifier's hash (parameters absent or NULL, both seen). */
export function digestFromAlgorithm(alg: AlgorithmIdentifier): HashName {
  return hashFromOid(alg.algorithm);
}
