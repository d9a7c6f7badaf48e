/**
 * RSA key transport for KeyTransRecipientInfo (RFC 5652 §6.2.1):
 * RSAES-PKCS1-v1_5 (RFC 3370 §4.2.1) and RSAES-OAEP (RFC 3560, RFC 4055 §3).
 *
 *   RSAES-OAEP-params ::= SEQUENCE {
 *     hashFunc    [0] AlgorithmIdentifier DEFAULT sha1Identifier,
 *     maskGenFunc [1] AlgorithmIdentifier DEFAULT mgf1SHA1Identifier,
 *     pSourceFunc [2] AlgorithmIdentifier DEFAULT pSpecifiedEmptyIdentifier }
 *
 * We write rsaEncryption with NULL parameters (RFC 3370 §4.2.1) and OAEP with
 * the SHA-2 hash stated explicitly. When reading, OAEP parameters may be
 * absent or NULL, both meaning the SHA-1 defaults (REFERENCE.md pitfall 8).
 */
import { constants, privateDecrypt, publicEncrypt, type KeyObject } from 'node:crypto';
import { KeyfleetError } from '../../errors.ts';
import { type Tlv, SequenceReader, Tag, children, isNull, readOctets } from '../../asn1/reader.ts';
import { OID } from '../../asn1/oids.ts';
import * as der from '../../asn1/writer.ts';
import { type AlgorithmIdentifier, decodeAlgorithmIdentifier, encodeAlgorithmIdentifier, hasNoParameters } from '../../x509/algorithm.ts';
import { cmsDamaged, cmsMalformed, cmsUnsupported } from './content-encryption.ts';

export type OaepHash = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512';

export type RsaKeyTransport =
  | { readonly padding: 'pkcs1' }
  | { readonly padding: 'oaep'; readonly hash: OaepHash; readonly label: Uint8Array | undefined };

const hashByOid = new Map<string, OaepHash>([
  [OID.sha1, 'sha1'],
  [OID.sha224, 'sha224'],
  [OID.sha256, 'sha256'],
  [OID.sha384, 'sha384'],
  [OID.sha512, 'sha512'],
]);
const oidByHash = new Map([...hashByOid].map(([oid, hash]) => [hash, oid]));

const encodedAlgorithms = new Map<string, Uint8Array>();

/** KeyEncryptionAlgorithmIdentifier for what we write (cached: it is the same for every message). */
export function encodeKeyTransportAlgorithm(padding: 'pkcs1' | 'oaep', hash: OaepHash): Uint8Array {
  const key = padding === 'pkcs1' ? 'pkcs1' : hash;
  let enc = encodedAlgorithms.get(key);
  if (!enc) {
    if (padding === 'pkcs1') {
      enc = encodeAlgorithmIdentifier(OID.rsaEncryption, null);
    } else {
      // SHA-2 AlgorithmIdentifiers are generated with absent parameters (RFC 5754 §2); pSourceFunc is the default.
      const hashAlg = encodeAlgorithmIdentifier(oidByHash.get(hash)!);
      enc = encodeAlgorithmIdentifier(OID.rsaesOaep, der.sequence(der.explicit(0, hashAlg), der.explicit(1, encodeAlgorithmIdentifier(OID.mgf1, hashAlg))));
    }
    encodedAlgorithms.set(key, enc);
  }
  return enc;
}

/** Decodes a received key-transport algorithm; anything but RSA PKCS#1 v1.5 or OAEP is unsupported. */
export function decodeKeyTransportAlgorithm(alg: AlgorithmIdentifier): RsaKeyTransport {
  if (alg.algorithm === OID.rsaEncryption) return { padding: 'pkcs1' };
  if (alg.algorithm !== OID.rsaesOaep) throw cmsUnsupported('key-transport algorithm', alg.algorithm);
  if (hasNoParameters(alg)) return { padding: 'oaep', hash: 'sha1', label: undefined };
  const r = new SequenceReader(alg.parameters!, 'RSAES-OAEP-params');
  const hashTlv = r.optionalContext(0);
  const mgfTlv = r.optionalContext(1);
  const pSourceTlv = r.optionalContext(2);
  r.end();
  const hash = hashTlv ? oaepHash(decodeAlgorithmIdentifier(only(hashTlv))) : 'sha1';
  let mgfHash: OaepHash = 'sha1';
  if (mgfTlv) {
    const mgf = decodeAlgorithmIdentifier(only(mgfTlv));
    if (mgf.algorithm !== OID.mgf1) throw cmsUnsupported('OAEP mask generation function', mgf.algorithm);
    if (!mgf.parameters || isNull(mgf.parameters)) throw cmsMalformed('MGF1 parameters must name the hash');
    mgfHash = oaepHash(decodeAlgorithmIdentifier(mgf.parameters));
  }
  // node:crypto (OpenSSL) uses the OAEP hash for MGF1 too; other pairings are legal but never seen.
  if (mgfHash !== hash) throw cmsUnsupported(`OAEP with MGF1-${mgfHash} under ${hash}`, OID.mgf1);
  let label: Uint8Array | undefined;
  if (pSourceTlv) {
    const pSource = decodeAlgorithmIdentifier(only(pSourceTlv));
    if (pSource.algorithm !== OID.pSpecified) throw cmsUnsupported('OAEP label source', pSource.algorithm);
    const l = pSource.parameters ? readOctets(pSource.parameters) : new Uint8Array(0);
    label = l.length > 0 ? l : undefined;
  }
  return { padding: 'oaep', hash, label };
}

function only(explicitTlv: Tlv): Tlv {
  const items = children(explicitTlv);
  if (items.length !== 1 || items[0]!.cls !== 0 || items[0]!.tag !== Tag.sequence) throw cmsMalformed('RSAES-OAEP-params field must hold one AlgorithmIdentifier');
  return items[0]!;
}

function oaepHash(alg: AlgorithmIdentifier): OaepHash {
  const hash = hashByOid.get(alg.algorithm);
  if (!hash) throw cmsUnsupported('OAEP hash', alg.algorithm);
  return hash;
}

function rsaOptions(key: KeyObject, transport: RsaKeyTransport) {
  return transport.padding === 'pkcs1'
    ? { key, padding: constants.RSA_PKCS1_PADDING }
    : { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: transport.hash, ...(transport.label ? { oaepLabel: transport.label } : {}) };
}

/**
 * Runs a synchronous node:crypto call with stack traces off. Given an options
 * object ({ key, padding }), Node 24 first tests it for being a KeyObject or
 * CryptoKey by letting internal private-field checks throw, and capturing
 * those errors' stacks costs about a third of an RSA-2048 encryption
 * (measured 13 of 45 µs). No other JavaScript runs during the call.
 */
function withoutStackTraces<T>(call: () => T): T {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return call();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

export function rsaEncryptKey(publicKey: KeyObject, transport: RsaKeyTransport, cek: Uint8Array): Uint8Array {
  try {
    return withoutStackTraces(() => publicEncrypt(rsaOptions(publicKey, transport), cek));
  } catch (e) {
    const scheme = transport.padding === 'pkcs1' ? 'PKCS#1 v1.5' : `OAEP-${transport.hash}`;
    throw new KeyfleetError('KF_KEY_INVALID', `the recipient's RSA key cannot encrypt with ${scheme} (key too small?)`, { cause: e });
  }
}

/**
 * Decrypts an encryptedKey. With PKCS#1 v1.5, Node 24's implicit rejection
 * answers a wrong key or a damaged block with a random key instead of an
 * error (REFERENCE.md pitfall 7); callers only get here for a key chosen by
 * recipient identifier, and a wrong-length result fails later as damage.
 */
export function rsaDecryptKey(privateKey: KeyObject, transport: RsaKeyTransport, encryptedKey: Uint8Array): Uint8Array {
  try {
    return withoutStackTraces(() => privateDecrypt(rsaOptions(privateKey, transport), encryptedKey));
  } catch (e) {
    throw cmsDamaged('the content-encryption key cannot be decrypted', e);
  }
}
