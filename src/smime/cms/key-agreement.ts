/**
 * Ephemeral-static key agreement for KeyAgreeRecipientInfo: ECDH on the
 * NIST curves with the ANSI X9.63 KDF (RFC 5753 §3.1, §7.2), and X25519/X448
 * with HKDF (RFC 8418 §2), the content-encryption key then being wrapped
 * with AES key wrap (RFC 3394; RFC 3565 §2.3.2).
 *
 *   OriginatorPublicKey ::= SEQUENCE {
 *     algorithm AlgorithmIdentifier,
 *     publicKey BIT STRING }
 *
 *   ECC-CMS-SharedInfo ::= SEQUENCE {
 *     keyInfo         AlgorithmIdentifier,       -- the key-wrap algorithm
 *     entityUInfo [0] EXPLICIT OCTET STRING OPTIONAL,  -- ukm, when present
 *     suppPubInfo [2] EXPLICIT OCTET STRING  }   -- KEK length in bits, 32-bit big-endian
 *
 * The keyEncryptionAlgorithm names the KDF scheme; its parameters are the
 * KeyWrapAlgorithm, which is also the keyInfo the KDF binds.
 */
import { createCipheriv, createDecipheriv, createHash, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto';
import { KeyfleetError } from '../../errors.ts';
import { type Tlv, Tag, isNull, raw, readOid } from '../../asn1/reader.ts';
import { OID, oidName } from '../../asn1/oids.ts';
import * as der from '../../asn1/writer.ts';
import { type AlgorithmIdentifier, decodeAlgorithmIdentifier, encodeAlgorithmIdentifier, hasNoParameters } from '../../x509/algorithm.ts';
import { cmsDamaged, cmsMalformed, cmsUnsupported, secretKey } from './content-encryption.ts';

/** Key-agreement schemes with a cofactor (SEC 1 / RFC 5753 §7.1.4); for the NIST prime curves the cofactor is 1, so they equal the standard ones. Not in oids.ts. */
const dhSinglePassCofactorDHsha1kdfScheme = '1.3.133.16.840.63.0.3';
const dhSinglePassCofactorDHsha224kdfScheme = '1.3.132.1.14.0';
const dhSinglePassCofactorDHsha256kdfScheme = '1.3.132.1.14.1';
const dhSinglePassCofactorDHsha384kdfScheme = '1.3.132.1.14.2';
const dhSinglePassCofactorDHsha512kdfScheme = '1.3.132.1.14.3';
/** AES key wrap with padding (RFC 5649 §3), read only. Not in oids.ts. */
const aes128WrapPad = '2.16.840.1.101.3.4.1.8';
const aes192WrapPad = '2.16.840.1.101.3.4.1.28';
const aes256WrapPad = '2.16.840.1.101.3.4.1.48';
/** Triple-DES key wrap (RFC 3217), read only: what OpenSSL pairs with DES-EDE3-CBC content under ECDH. Not in oids.ts. */
const id_alg_CMS3DESwrap = '1.2.840.113549.1.9.16.3.6';

interface KdfScheme {
  readonly kdf: 'x963' | 'hkdf';
  readonly hash: 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';
}

const schemes = new Map<string, KdfScheme>([
  [OID.dhSinglePassStdDHSha1kdfScheme, { kdf: 'x963', hash: 'sha1' }],
  [OID.dhSinglePassStdDHSha224kdfScheme, { kdf: 'x963', hash: 'sha224' }],
  [OID.dhSinglePassStdDHSha256kdfScheme, { kdf: 'x963', hash: 'sha256' }],
  [OID.dhSinglePassStdDHSha384kdfScheme, { kdf: 'x963', hash: 'sha384' }],
  [OID.dhSinglePassStdDHSha512kdfScheme, { kdf: 'x963', hash: 'sha512' }],
  [dhSinglePassCofactorDHsha1kdfScheme, { kdf: 'x963', hash: 'sha1' }],
  [dhSinglePassCofactorDHsha224kdfScheme, { kdf: 'x963', hash: 'sha224' }],
  [dhSinglePassCofactorDHsha256kdfScheme, { kdf: 'x963', hash: 'sha256' }],
  [dhSinglePassCofactorDHsha384kdfScheme, { kdf: 'x963', hash: 'sha384' }],
  [dhSinglePassCofactorDHsha512kdfScheme, { kdf: 'x963', hash: 'sha512' }],
  [OID.dhSinglePassStdDHHkdfSha256, { kdf: 'hkdf', hash: 'sha256' }],
  [OID.dhSinglePassStdDHHkdfSha384, { kdf: 'hkdf', hash: 'sha384' }],
  [OID.dhSinglePassStdDHHkdfSha512, { kdf: 'hkdf', hash: 'sha512' }],
]);

interface WrapSpec {
  readonly oid: string;
  /** node:crypto cipher name. */
  readonly name: string;
  readonly keyLength: number;
  readonly iv: Uint8Array;
}

const RFC3394_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');
const RFC5649_IV = Buffer.from('a65959a6', 'hex');
const wraps = new Map<string, WrapSpec>(
  (
    [
      [OID.aes128Wrap, 'id-aes128-wrap', 16, RFC3394_IV],
      [OID.aes192Wrap, 'id-aes192-wrap', 24, RFC3394_IV],
      [OID.aes256Wrap, 'id-aes256-wrap', 32, RFC3394_IV],
      [aes128WrapPad, 'id-aes128-wrap-pad', 16, RFC5649_IV],
      [aes192WrapPad, 'id-aes192-wrap-pad', 24, RFC5649_IV],
      [aes256WrapPad, 'id-aes256-wrap-pad', 32, RFC5649_IV],
      [id_alg_CMS3DESwrap, 'des3-wrap', 24, new Uint8Array(0)], // the IV is random and carried inside the wrapped key
    ] as const
  ).map(([oid, name, keyLength, iv]) => [oid, { oid, name, keyLength, iv }]),
);

/** What we write for each recipient key: the KDF hash matches the curve's strength (RFC 5753 §8, RFC 8418 §2). */
interface Curve {
  readonly scheme: string;
  /** The public-key algorithm: id-ecPublicKey, id-X25519 or id-X448. */
  readonly keyOid: string;
  /** Length of the raw public key: the uncompressed point, or the X25519/X448 key. */
  readonly publicKeyLength: number;
  /** OID of the named curve, for rebuilding a SubjectPublicKeyInfo from a received point (EC only). */
  readonly curveOid?: string;
  readonly nodeCurve?: string;
}

const curves: Readonly<Record<string, Curve>> = {
  prime256v1: { scheme: OID.dhSinglePassStdDHSha256kdfScheme, keyOid: OID.ecPublicKey, publicKeyLength: 65, curveOid: OID.prime256v1, nodeCurve: 'prime256v1' },
  secp384r1: { scheme: OID.dhSinglePassStdDHSha384kdfScheme, keyOid: OID.ecPublicKey, publicKeyLength: 97, curveOid: OID.secp384r1, nodeCurve: 'secp384r1' },
  secp521r1: { scheme: OID.dhSinglePassStdDHSha512kdfScheme, keyOid: OID.ecPublicKey, publicKeyLength: 133, curveOid: OID.secp521r1, nodeCurve: 'secp521r1' },
  x25519: { scheme: OID.dhSinglePassStdDHHkdfSha256, keyOid: OID.x25519, publicKeyLength: 32 },
  x448: { scheme: OID.dhSinglePassStdDHHkdfSha512, keyOid: OID.x448, publicKeyLength: 56 },
};

function curveOf(key: KeyObject): Curve | undefined {
  const type = key.asymmetricKeyType;
  if (type === 'x25519' || type === 'x448') return curves[type];
  if (type === 'ec') {
    const name = key.asymmetricKeyDetails?.namedCurve;
    return name === undefined ? undefined : curves[name];
  }
  return undefined;
}

/** True when `key` can be a KeyAgreeRecipientInfo recipient here. */
export function isKeyAgreementKey(key: KeyObject): boolean {
  return curveOf(key) !== undefined;
}

function requireCurve(key: KeyObject): Curve {
  const curve = curveOf(key);
  if (!curve) throw new KeyfleetError('KF_CMS_UNSUPPORTED', `key agreement needs an EC P-256/P-384/P-521, X25519 or X448 key, not ${key.asymmetricKeyType ?? 'this'} key`);
  return curve;
}

/** The wrap algorithm for a content-encryption key: its own strength (AES-128 wrap for a 128-bit CEK, AES-256 wrap for 256). */
function wrapFor(cekLength: number): WrapSpec {
  const oid = cekLength <= 16 ? OID.aes128Wrap : cekLength <= 24 ? OID.aes192Wrap : OID.aes256Wrap;
  return wraps.get(oid)!;
}

export interface SenderAgreement {
  /** KeyEncryptionAlgorithmIdentifier: the KDF scheme with the KeyWrapAlgorithm as parameters. */
  readonly keyEncryptionAlgorithm: Uint8Array;
  /** The originator field's choice: `[1] IMPLICIT OriginatorPublicKey` with the ephemeral public key. */
  readonly originatorKey: Uint8Array;
  /** The wrapped content-encryption key. */
  readonly encryptedKey: Uint8Array;
}

/** Generates an ephemeral key on the recipient's curve, derives the KEK and wraps `cek` (RFC 5753 §3.1.1, RFC 8418 §2). */
export function agreeAsSender(recipientKey: KeyObject, cek: Uint8Array): SenderAgreement {
  const curve = requireCurve(recipientKey);
  const wrap = wrapFor(cek.length);
  const keyInfo = der.sequence(der.oid(wrap.oid)); // AES key wrap parameters are absent (RFC 3565 §2.3.2)
  const ephemeral = curve.nodeCurve
    ? generateKeyPairSync('ec', { namedCurve: curve.nodeCurve })
    : curve.keyOid === OID.x25519
      ? generateKeyPairSync('x25519')
      : generateKeyPairSync('x448');
  const publicKey = rawPublicKey(ephemeral.publicKey, curve);
  const z = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipientKey });
  const kek = deriveKek(schemes.get(curve.scheme)!, z, keyInfo, undefined, wrap.keyLength);
  z.fill(0);
  const encryptedKey = wrapKey(wrap, kek, cek);
  kek.fill(0);
  return {
    keyEncryptionAlgorithm: der.sequence(der.oid(curve.scheme), keyInfo),
    // id-ecPublicKey with absent parameters, as OpenSSL writes it; id-X25519/id-X448 have none (RFC 8418 §2.3).
    originatorKey: der.tlv(0xa1, der.sequence(der.oid(curve.keyOid)), der.bitString(publicKey)),
    encryptedKey,
  };
}

/**
 * The ephemeral public key as it goes into OriginatorPublicKey: the
 * uncompressed ECPoint (RFC 5753 §7.2; SEC 1 §2.3.3) or the raw X25519/X448
 * key (RFC 8410 §3). Taken from the JWK export, which costs less than half
 * of a SubjectPublicKeyInfo export; JWK coordinates have the full field length
 * (RFC 7518 §6.2.1.2).
 */
function rawPublicKey(key: KeyObject, curve: Curve): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  const x = Buffer.from(jwk.x ?? '', 'base64url');
  const out = curve.curveOid ? Buffer.concat([Uint8Array.of(4), x, Buffer.from(jwk.y ?? '', 'base64url')]) : x;
  if (out.length !== curve.publicKeyLength) throw new Error(`unexpected ${out.length}-octet ephemeral public key`);
  return out;
}

/** A received keyEncryptionAlgorithm of a KeyAgreeRecipientInfo. */
export interface KeyAgreeAlgorithm {
  readonly scheme: KdfScheme;
  readonly wrap: WrapSpec;
  /** The KeyWrapAlgorithm in DER: the keyInfo the sender bound into ECC-CMS-SharedInfo. */
  readonly keyInfo: Uint8Array;
}

export function decodeKeyAgreeAlgorithm(alg: AlgorithmIdentifier): KeyAgreeAlgorithm {
  const scheme = schemes.get(alg.algorithm);
  if (!scheme) throw cmsUnsupported('key-agreement algorithm', alg.algorithm);
  if (!alg.parameters || isNull(alg.parameters)) throw cmsMalformed(`${oidName(alg.algorithm)} must name its key-wrap algorithm`);
  const wrapAlg = decodeAlgorithmIdentifier(alg.parameters);
  const wrap = wraps.get(wrapAlg.algorithm);
  if (!wrap) throw cmsUnsupported('key-wrap algorithm', wrapAlg.algorithm);
  // ECC-CMS-SharedInfo is DER (RFC 5753 §7.2): re-encode, since a BER message may carry the
  // AlgorithmIdentifier with an indefinite length. Parameters (absent for AES wrap) are kept as sent.
  const params = wrapAlg.parameters;
  const keyInfo = encodeAlgorithmIdentifier(wrapAlg.algorithm, params === undefined ? undefined : isNull(params) ? null : raw(params));
  return { scheme, wrap, keyInfo };
}

/** The originator's ephemeral key as received (`[1] OriginatorPublicKey`). */
export interface OriginatorPublicKey {
  readonly algorithm: AlgorithmIdentifier;
  readonly publicKey: Uint8Array;
}

/** Derives the KEK from the recipient's private key and the originator's ephemeral public key, then unwraps the CEK. */
export function agreeAsRecipient(privateKey: KeyObject, originator: OriginatorPublicKey, alg: KeyAgreeAlgorithm, ukm: Uint8Array | undefined, encryptedKey: Uint8Array): Uint8Array {
  const curve = requireCurve(privateKey);
  const peer = originatorKeyObject(curve, originator);
  let z: Buffer;
  try {
    z = diffieHellman({ privateKey, publicKey: peer });
  } catch (e) {
    throw cmsDamaged('key agreement with the originator key failed', e);
  }
  const kek = deriveKek(alg.scheme, z, alg.keyInfo, ukm, alg.wrap.keyLength);
  z.fill(0);
  try {
    return unwrapKey(alg.wrap, kek, encryptedKey);
  } finally {
    kek.fill(0);
  }
}

function originatorKeyObject(curve: Curve, originator: OriginatorPublicKey): KeyObject {
  const { algorithm, publicKey } = originator;
  if (algorithm.algorithm !== curve.keyOid) throw cmsDamaged(`originator key is ${oidName(algorithm.algorithm)}, the recipient key is ${oidName(curve.keyOid)}`);
  let spki: Uint8Array;
  if (curve.curveOid) {
    // Parameters are absent or NULL (RFC 5753 §7.1.2; REFERENCE.md pitfall 8); some producers name the curve, which must then be ours.
    if (!hasNoParameters(algorithm) && !sameCurve(algorithm.parameters!, curve.curveOid)) throw cmsDamaged('originator key is on another curve');
    spki = der.sequence(der.sequence(der.oid(OID.ecPublicKey), der.oid(curve.curveOid)), der.bitString(publicKey));
  } else {
    if (publicKey.length !== curve.publicKeyLength) throw cmsDamaged(`originator ${oidName(curve.keyOid)} key has ${publicKey.length} octets`);
    spki = der.sequence(der.sequence(der.oid(curve.keyOid)), der.bitString(publicKey));
  }
  try {
    return createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (e) {
    throw cmsDamaged('originator public key is invalid', e);
  }
}

function sameCurve(params: Tlv, curveOid: string): boolean {
  return params.cls === 0 && params.tag === Tag.oid && readOid(params) === curveOid;
}

/** The KEK: X9.63 KDF (RFC 5753 §7.2) or HKDF (RFC 8418 §2.2) over the shared secret with ECC-CMS-SharedInfo. */
function deriveKek(scheme: KdfScheme, z: Uint8Array, keyInfo: Uint8Array, ukm: Uint8Array | undefined, length: number): Buffer {
  const bits = Buffer.alloc(4);
  bits.writeUInt32BE(length * 8);
  const sharedInfo = ukm
    ? der.sequence(keyInfo, der.explicit(0, der.octetString(ukm)), der.explicit(2, der.octetString(bits)))
    : der.sequence(keyInfo, der.explicit(2, der.octetString(bits)));
  if (scheme.kdf === 'hkdf') {
    // RFC 8418 §2.2: IKM = Z, info = ECC-CMS-SharedInfo, no salt. No peer here can check this
    // (OpenSSL 3.0, gpgsm 2.2 and NSS 3.87 lack X25519 in CMS); Bouncy Castle does the same.
    return Buffer.from(hkdfSync(scheme.hash, z, new Uint8Array(0), sharedInfo, length));
  }
  // ANSI X9.63: K(i) = Hash(Z || counter || SharedInfo), counter from 1, 32-bit big-endian.
  const out = Buffer.alloc(length);
  const counter = Buffer.alloc(4);
  for (let i = 1, p = 0; p < length; i++) {
    counter.writeUInt32BE(i);
    const block = createHash(scheme.hash).update(z).update(counter).update(sharedInfo).digest();
    p += block.copy(out, p, 0, Math.min(block.length, length - p));
  }
  return out;
}

function wrapKey(wrap: WrapSpec, kek: Uint8Array, cek: Uint8Array): Uint8Array {
  const c = createCipheriv(wrap.name, secretKey(kek), wrap.iv);
  return Buffer.concat([c.update(cek), c.final()]);
}

function unwrapKey(wrap: WrapSpec, kek: Uint8Array, wrapped: Uint8Array): Uint8Array {
  try {
    const d = createDecipheriv(wrap.name, secretKey(kek), wrap.iv);
    return Buffer.concat([d.update(wrapped), d.final()]);
  } catch (e) {
    throw cmsDamaged('the content-encryption key does not unwrap (wrong key or damaged message)', e);
  }
}
