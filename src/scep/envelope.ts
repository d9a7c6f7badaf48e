/**
 * The pkcsPKIEnvelope of SCEP (RFC 8894 §3.2.2): a CMS EnvelopedData
 * (RFC 5652 §6) whose content is the request or reply.
 *
 *   EnvelopedData ::= SEQUENCE {
 *     version CMSVersion,
 *     originatorInfo [0] IMPLICIT OriginatorInfo OPTIONAL,
 *     recipientInfos RecipientInfos,
 *     encryptedContentInfo EncryptedContentInfo,
 *     unprotectedAttrs [1] IMPLICIT UnprotectedAttributes OPTIONAL }
 *
 * The S/MIME engine's decryptContent reads AES and DES-EDE3, but SCEP
 * clients still send single DES-CBC (micromdm's scepclient always does), and
 * Node's OpenSSL has DES only behind the legacy provider. So SCEP opens its
 * envelopes here: the RecipientInfo handling is the CMS layer's
 * (recipient-info.ts), the content cipher ours for DES-CBC (des.ts) and the
 * CMS layer's for the rest. Replies are always AES-256-CBC through
 * encryptContent (REFERENCE.md "SCEP in practice").
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import { SequenceReader, Tag, children, contents, octetSegments, readOid, readSmallInt } from '../asn1/reader.ts';
import { OID, oidName } from '../asn1/oids.ts';
import * as der from '../asn1/writer.ts';
import { decodeAlgorithmIdentifier, type AlgorithmIdentifier } from '../x509/algorithm.ts';
import type { Certificate } from '../x509/certificate.ts';
import { decodeContentInfo, encodeContentInfo } from '../smime/cms/content-info.ts';
import { cmsDamaged, cmsMalformed, decodeContentEncryptionAlgorithm, decryptSegments } from '../smime/cms/content-encryption.ts';
import { type KeyPair, encryptContent } from '../smime/cms/enveloped-data.ts';
import { decodeRecipientInfo, decryptContentKey, encodeRecipientInfo, identifies, keyFits } from '../smime/cms/recipient-info.ts';
import { desCbcDecrypt, desCbcEncrypt } from './des.ts';

/** Content ciphers a SCEP envelope may use (RFC 8894 §3.5.2 capabilities AES, DES3; DES as the historical default). */
export type ScepCipher = 'aes-128-cbc' | 'aes-256-cbc' | 'des-ede3-cbc' | 'des-cbc';

/** Encrypts `content` (id-data) to the recipients: a DER ContentInfo(EnvelopedData), RSA key transport. */
export function sealEnvelope(content: Uint8Array, recipients: readonly Certificate[], cipher: ScepCipher, random: (n: number) => Uint8Array = randomBytes): Uint8Array {
  if (cipher === 'aes-128-cbc' || cipher === 'aes-256-cbc') return encryptContent(content, recipients.map((certificate) => ({ certificate })), { cipher, random });
  // DES and DES-EDE3 (8-octet blocks): only SCEP clients and tests write these.
  const keyLength = cipher === 'des-cbc' ? 8 : 24;
  const cek = Buffer.from(random(keyLength));
  const iv = Buffer.from(random(8));
  try {
    const pad = 8 - (content.length % 8);
    const padded = Buffer.concat([content, Buffer.alloc(pad, pad)]);
    let encrypted: Uint8Array;
    if (cipher === 'des-cbc') {
      encrypted = desCbcEncrypt(cek, iv, padded);
    } else {
      const c = createCipheriv('des-ede3-cbc', cek, iv).setAutoPadding(false);
      encrypted = Buffer.concat([c.update(padded), c.final()]);
    }
    const infos = recipients.map((certificate) => encodeRecipientInfo({ certificate }, cek).der);
    const algorithm = der.sequence(der.oid(cipher === 'des-cbc' ? OID.desCBC : OID.desEde3CBC), der.octetString(iv));
    const eci = der.sequence(der.oid(OID.data), algorithm, der.implicitPrimitive(0, encrypted));
    return encodeContentInfo(OID.envelopedData, der.sequence(der.integer(0), der.setOf(...infos), eci));
  } finally {
    cek.fill(0);
  }
}

export interface OpenedEnvelope {
  readonly content: Uint8Array;
  /** The content-encryption algorithm OID. */
  readonly contentCipher: string;
}

/**
 * Decrypts a SCEP envelope with the one key pair it must be addressed to
 * (the RA's for requests, the requester's for replies). The RecipientInfo is
 * chosen by identifier, never by trial (REFERENCE.md pitfall 7).
 * Errors: KF_CMS_UNSUPPORTED (algorithm), KF_CMS_NO_MATCHING_KEY,
 * KF_CMS_DECRYPT_FAILED, KF_CMS_MALFORMED.
 */
export function openEnvelope(contentInfoDer: Uint8Array, recipient: KeyPair): OpenedEnvelope {
  try {
    const ci = decodeContentInfo(contentInfoDer);
    if (ci.contentType !== OID.envelopedData) throw new KeyfleetError('KF_CMS_UNSUPPORTED', `pkcsPKIEnvelope has content type ${oidName(ci.contentType)}, not enveloped-data`);
    const r = new SequenceReader(ci.content, 'EnvelopedData');
    readSmallInt(r.next(Tag.integer));
    r.optionalContext(0);
    const infos = children(r.next(Tag.set)).map(decodeRecipientInfo);
    const eci = new SequenceReader(r.next(Tag.sequence), 'EncryptedContentInfo');
    readOid(eci.next(Tag.oid));
    const algorithm = decodeAlgorithmIdentifier(eci.next(Tag.sequence));
    const encrypted = eci.optionalContext(0);
    eci.end();
    r.optionalContext(1);
    r.end();
    if (!encrypted) throw new KeyfleetError('KF_CMS_UNSUPPORTED', 'the encrypted content is detached');
    let chosen: { ri: (typeof infos)[number]; encryptedKey: Uint8Array } | undefined;
    for (const ri of infos) {
      if (!keyFits(ri, recipient.key)) continue;
      const k = ri.keys.find((x) => identifies(x.rid, recipient.certificate));
      if (k) {
        chosen = { ri, encryptedKey: k.encryptedKey };
        break;
      }
    }
    if (!chosen) throw new KeyfleetError('KF_CMS_NO_MATCHING_KEY', `the envelope is not addressed to ${recipient.certificate.serialHex ? `certificate serial ${recipient.certificate.serialHex}` : 'this certificate'}`);
    const cek = decryptContentKey(chosen.ri, chosen.encryptedKey, recipient.key);
    try {
      return { content: decrypt(algorithm, cek, octetSegments(encrypted)), contentCipher: algorithm.algorithm };
    } finally {
      cek.fill(0);
    }
  } catch (e) {
    if (isKeyfleetError(e, 'KF_ASN1_MALFORMED') || isKeyfleetError(e, 'KF_ASN1_LIMIT')) throw cmsMalformed(`malformed pkcsPKIEnvelope: ${e.message}`, e);
    throw e;
  }
}

function decrypt(algorithm: AlgorithmIdentifier, cek: Uint8Array, segments: readonly Uint8Array[]): Uint8Array {
  if (algorithm.algorithm !== OID.desCBC) {
    return decryptSegments({ encryption: decodeContentEncryptionAlgorithm(algorithm, false), key: cek, segments });
  }
  // DES-CBC (RFC 8018 §B.2.1 parameters: the 8-octet IV).
  if (!algorithm.parameters || algorithm.parameters.tag !== Tag.octetString || algorithm.parameters.constructed) throw cmsMalformed('DES-CBC parameters must be the IV as an OCTET STRING');
  const iv = contents(algorithm.parameters);
  if (iv.length !== 8) throw cmsMalformed(`DES-CBC IV must be 8 octets, got ${iv.length}`);
  if (cek.length !== 8) throw cmsDamaged(`content-encryption key has ${cek.length} octets, DES needs 8`);
  const ciphertext = segments.length === 1 ? segments[0]! : Buffer.concat(segments);
  if (ciphertext.length === 0 || ciphertext.length % 8 !== 0) throw cmsDamaged(`ciphertext length ${ciphertext.length} is not a positive multiple of 8`);
  const plain = desCbcDecrypt(cek, iv, ciphertext);
  const pad = plain[plain.length - 1]!;
  let bad = pad === 0 || pad > 8 ? 1 : 0;
  for (let i = 1; i <= 8; i++) if (i <= pad) bad |= plain[plain.length - i]! ^ pad;
  if (bad) throw cmsDamaged('bad padding after decryption');
  return plain.subarray(0, plain.length - pad);
}

