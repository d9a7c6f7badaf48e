/**
 * Password integrity of a PFX (RFC 7292 §4, §5.1):
 *
 *   MacData ::= SEQUENCE {
 *     mac        DigestInfo,
 *     macSalt    OCTET STRING,
 *     iterations INTEGER DEFAULT 1 }
 *
 *   DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTET STRING }
 *
 * The classic MAC is HMAC with the digest algorithm, keyed by the PKCS#12
 * KDF with ID 3 (Appendix B.3). RFC 9579 adds PBMAC1 (RFC 8018 §7.1): the
 * digestAlgorithm is id-PBMAC1 with PBKDF2 and an HMAC, and macSalt and
 * iterations are ignored.
 *
 *   PBMAC1-params ::= SEQUENCE {
 *     keyDerivationFunc AlgorithmIdentifier {{PBMAC1-KDFs}},
 *     messageAuthScheme AlgorithmIdentifier {{PBMAC1-MACs}} }
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import { type Tlv, SequenceReader, Tag, readOctets, readSmallInt } from '../asn1/reader.ts';
import { OID, oidName } from '../asn1/oids.ts';
import * as der from '../asn1/writer.ts';
import { type AlgorithmIdentifier, decodeAlgorithmIdentifier, encodeAlgorithmIdentifier, hasNoParameters } from '../x509/algorithm.ts';
import { type IterationBudget, type KdfHash, KdfId, hashOutputLength, pbkdf2, pkcs12Kdf } from './kdf.ts';
import { P12 } from './oids.ts';
import { type PasswordForms, decodePbkdf2Params } from './pbe.ts';

const digests: Record<string, KdfHash> = {
  [OID.sha1]: 'sha1',
  [OID.sha224]: 'sha224',
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
};
const hmacs: Record<string, KdfHash> = {
  [P12.hmacWithSHA1]: 'sha1',
  [P12.hmacWithSHA224]: 'sha224',
  [P12.hmacWithSHA256]: 'sha256',
  [P12.hmacWithSHA384]: 'sha384',
  [P12.hmacWithSHA512]: 'sha512',
};
const hmacNames: Record<KdfHash, string> = { sha1: 'hmacWithSHA1', sha224: 'hmacWithSHA224', sha256: 'hmacWithSHA256', sha384: 'hmacWithSHA384', sha512: 'hmacWithSHA512' };

export interface MacData {
  /** "sha256" for the classic MAC (as `openssl pkcs12 -info` prints it), "PBMAC1/PBKDF2-hmacWithSHA256/hmacWithSHA256" for RFC 9579. */
  readonly algorithm: string;
  readonly iterations: number;
  /**
   * Checks the MAC over the authSafe contents. Returns the password forms
   * narrowed to the one that verified, or undefined when none did (wrong
   * password or a damaged file: the two cannot be told apart).
   */
  verify(authSafe: Uint8Array, password: PasswordForms, budget: IterationBudget): PasswordForms | undefined;
}

function unsupported(oid: string, what: string): KeyfleetError {
  return new KeyfleetError('KF_CMS_UNSUPPORTED', `PKCS#12 ${what} ${oidName(oid)} is not supported`, { detail: oid });
}

export function decodeMacData(tlv: Tlv): MacData {
  const r = new SequenceReader(tlv, 'MacData');
  const info = new SequenceReader(r.next(Tag.sequence), 'DigestInfo');
  const alg = decodeAlgorithmIdentifier(info.next(Tag.sequence));
  const digest = readOctets(info.next(Tag.octetString));
  info.end();
  const salt = readOctets(r.next(Tag.octetString));
  const iterTlv = r.optional(Tag.integer);
  const iterations = iterTlv === undefined ? 1 : readSmallInt(iterTlv);
  r.end();
  if (alg.algorithm === P12.pbmac1) return pbmac1(alg, digest);
  const h = digests[alg.algorithm];
  if (!h || !hasNoParameters(alg)) throw unsupported(alg.algorithm, 'MAC digest algorithm');
  return {
    algorithm: h,
    iterations,
    verify(authSafe, password, budget) {
      for (const bmp of password.bmp) {
        const key = pkcs12Kdf(h, bmp, salt, iterations, KdfId.mac, hashOutputLength(h), budget);
        if (equal(createHmac(h, key).update(authSafe).digest(), digest)) return { utf8: password.utf8, bmp: [bmp] };
      }
      return undefined;
    },
  };
}

function pbmac1(alg: AlgorithmIdentifier, digest: Uint8Array): MacData {
  if (alg.parameters === undefined) throw new KeyfleetError('KF_ASN1_MALFORMED', 'PBMAC1 has no parameters');
  const r = new SequenceReader(alg.parameters, 'PBMAC1-params');
  const kdf = decodePbkdf2Params(decodeAlgorithmIdentifier(r.next(Tag.sequence)));
  const scheme = decodeAlgorithmIdentifier(r.next(Tag.sequence));
  r.end();
  const h = hmacs[scheme.algorithm];
  if (!h || !hasNoParameters(scheme)) throw unsupported(scheme.algorithm, 'PBMAC1 message authentication scheme');
  // RFC 9579 requires keyLength (the HMAC key size is not otherwise known); its test file A.6 lacks it and must be refused.
  const keyLength = kdf.keyLength;
  if (keyLength === undefined) throw new KeyfleetError('KF_KEY_INVALID', 'PBMAC1 PBKDF2 parameters lack the keyLength RFC 9579 requires');
  return {
    algorithm: `PBMAC1/PBKDF2-${hmacNames[kdf.prf]}/${hmacNames[h]}`,
    iterations: kdf.iterations,
    verify(authSafe, password, budget) {
      const key = pbkdf2(password.utf8, kdf.salt, kdf.iterations, keyLength, kdf.prf, budget);
      return equal(createHmac(h, key).update(authSafe).digest(), digest) ? password : undefined;
    },
  };
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** MacData for writing: the classic HMAC with the PKCS#12 KDF, which every reader understands. */
export function encodeMacData(h: 'sha1' | 'sha256', authSafe: Uint8Array, bmp: Uint8Array, salt: Uint8Array, iterations: number, budget: IterationBudget): Uint8Array {
  const key = pkcs12Kdf(h, bmp, salt, iterations, KdfId.mac, hashOutputLength(h), budget);
  const mac = createHmac(h, key).update(authSafe).digest();
  const digestInfo = der.sequence(encodeAlgorithmIdentifier(h === 'sha1' ? OID.sha1 : OID.sha256, null), der.octetString(mac));
  // DER leaves out a value equal to its DEFAULT (X.690 §11.5).
  return der.sequence(digestInfo, der.octetString(salt), ...(iterations === 1 ? [] : [der.integer(iterations)]));
}
