/**
 * The delivery payload's content (docs/delivery.md): one imported
 * certificate with its private key, for one device.
 *
 *   KeyDelivery ::= SEQUENCE {
 *     version     INTEGER (1),
 *     pfxId       UTF8String,   -- the userPfxCertificate it came from
 *     certificate Certificate,
 *     privateKey  OneAsymmetricKey }   -- RFC 5958 (PKCS#8)
 *
 * It travels only inside AuthEnvelopedData (AES-256-GCM) to the device
 * identity certificate, so the GCM tag catches any change in transit;
 * decodeKeyDelivery then checks what the envelope cannot: that the key is
 * the certificate's, and that this is the certificate the device expects.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { SequenceReader, Tag, parse, raw, readSmallInt, readString } from '../asn1/reader.ts';
import { integer, sequence, utf8String } from '../asn1/writer.ts';
import { KeyfleetError } from '../errors.ts';
import { decodeCertificate, type Certificate } from '../x509/certificate.ts';

/** A certificate and key are a few KiB; anything much larger is not a delivery. */
export const MAX_KEY_DELIVERY = 64 * 1024;

export interface KeyDelivery {
  readonly pfxId: string;
  readonly certificate: Certificate;
  readonly privateKey: KeyObject;
}

export function encodeKeyDelivery(pfxId: string, certificateDer: Uint8Array, privateKey: KeyObject): Uint8Array {
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  try {
    return sequence(integer(1), utf8String(pfxId), certificateDer, pkcs8);
  } finally {
    // The key's only copy besides the result (which the caller zeroes once it is encrypted).
    pkcs8.fill(0);
  }
}

/**
 * Decodes and checks a KeyDelivery: version 1, the expected pfxId and
 * certificate thumbprint (SHA-1, upper-case hex), and a private key whose
 * public half is the certificate's. Anything else is KF_DELIVERY_INVALID.
 */
export function decodeKeyDelivery(der: Uint8Array, expected: { readonly pfxId: string; readonly thumbprint: string }): KeyDelivery {
  if (der.length > MAX_KEY_DELIVERY) throw invalid('larger than any certificate and key');
  let pfxId: string;
  let certificate: Certificate;
  let privateKey: KeyObject;
  try {
    const r = new SequenceReader(parse(der), 'KeyDelivery');
    if (readSmallInt(r.next(Tag.integer)) !== 1) throw invalid('unknown version');
    pfxId = readString(r.next(Tag.utf8String));
    certificate = decodeCertificate(raw(r.next(Tag.sequence)));
    privateKey = createPrivateKey({ key: Buffer.from(raw(r.next(Tag.sequence))), format: 'der', type: 'pkcs8' });
    r.end();
  } catch (e) {
    if (e instanceof KeyfleetError && e.code === 'KF_DELIVERY_INVALID') throw e;
    throw invalid('not a KeyDelivery');
  }
  if (pfxId !== expected.pfxId) throw invalid(`it is for PFX "${pfxId}", not "${expected.pfxId}"`);
  if (certificate.thumbprint !== expected.thumbprint.toUpperCase()) throw invalid(`its certificate ${certificate.thumbprint} is not the expected ${expected.thumbprint}`);
  const fromKey = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const fromCert = certificate.publicKey.export({ format: 'der', type: 'spki' });
  if (!Buffer.from(fromKey).equals(Buffer.from(fromCert))) throw invalid('its private key does not belong to its certificate');
  return { pfxId, certificate, privateKey };
}

function invalid(why: string): KeyfleetError {
  return new KeyfleetError('KF_DELIVERY_INVALID', `certificate delivery refused: ${why}`);
}
