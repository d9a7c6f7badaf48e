/**
 * The connector's one job (docs/delivery.md "Imported certificates: the
 * connector"): open an imported PFX with the password only this connector
 * can decrypt, and re-wrap its key and certificate for one device as
 * AuthEnvelopedData (AES-256-GCM, ECDH to the device identity certificate)
 * around a KeyDelivery. Pure: nothing is written anywhere; the key material
 * lives in memory for the length of one call, and the buffers this module
 * owns are zeroed before it returns.
 *
 * Failures are results, not exceptions: each has a stable code
 * (REWRAP_ERROR_CODES) that the connector posts back, so a request that can
 * never succeed is marked failed instead of being leased again and again.
 */
import type { KeyObject } from 'node:crypto';
import { isKeyfleetError } from '../errors.ts';
import { readPkcs12 } from '../pkcs12/read.ts';
import { MAX_PFX_BYTES } from '../pkcs12/pfx-metadata.ts';
import { type ClaimedRequest, MAX_RESULT_PAYLOAD, type RewrapErrorCode } from '../protocol/connector-api.ts';
import { encodeKeyDelivery, MAX_KEY_DELIVERY } from '../protocol/key-delivery.ts';
import { isKeyAgreementKey } from '../smime/cms/key-agreement.ts';
import { encryptContent } from '../smime/cms/enveloped-data.ts';
import { type Certificate, decodeCertificate } from '../x509/certificate.ts';
import { type ConnectorKey, type OaepHash, oaepHashOf } from './keystore.ts';

export type RewrapResult =
  | { readonly ok: true; readonly payload: Uint8Array }
  | { readonly ok: false; readonly error: { readonly code: RewrapErrorCode; readonly detail: string } };

export interface RewrapOptions {
  /** Source of the content-encryption key and GCM nonce; default crypto.randomBytes (tests inject their own). */
  readonly random?: (n: number) => Uint8Array;
}

/** A device identity certificate is well under 4 KiB; the bound keeps a bad request cheap. */
const MAX_DEVICE_CERTIFICATE = 16 * 1024;
/** RSA-16384 ciphertext is 2 KiB: nothing larger is a password. */
const MAX_ENCRYPTED_PASSWORD = 2048;

class RewrapRefusal extends Error {
  readonly code: RewrapErrorCode;
  constructor(code: RewrapErrorCode, detail: string) {
    super(detail);
    this.code = code;
  }
}

const refuse = (code: RewrapErrorCode, detail: string) => new RewrapRefusal(code, detail);

/** Re-wraps one claimed request for its device; returns the DER ContentInfo (AuthEnvelopedData) or why not. */
export async function rewrap(key: ConnectorKey, request: ClaimedRequest, options: RewrapOptions = {}): Promise<RewrapResult> {
  try {
    return { ok: true, payload: await rewrapOrThrow(key, request, options) };
  } catch (e) {
    if (e instanceof RewrapRefusal) return { ok: false, error: { code: e.code, detail: e.message } };
    // A bug or a crypto edge case: its message may name internals, so it stays out of the result.
    return { ok: false, error: { code: 'rewrap-failed', detail: 'the connector could not re-wrap this PFX (see its log)' } };
  }
}

async function rewrapOrThrow(key: ConnectorKey, request: ClaimedRequest, options: RewrapOptions): Promise<Uint8Array> {
  const hash = oaepHashOf(request.pfx.paddingScheme);
  if (hash === undefined) throw refuse('padding-scheme-unsupported', `padding scheme "${String(request.pfx.paddingScheme).slice(0, 32)}" is not oaepSha256, oaepSha384 or oaepSha512`);
  const device = deviceCertificate(request.deviceCertificate);
  const pfx = Buffer.from(request.pfx.encryptedPfxBlob, 'base64');
  if (pfx.length === 0 || pfx.length > MAX_PFX_BYTES) throw refuse('pfx-unreadable', `the PFX is empty or larger than ${MAX_PFX_BYTES / 1024} KiB`);

  const password = await decryptPassword(key, request.pfx.encryptedPfxPassword, hash);
  const { privateKey, certificate } = openPfx(pfx, password, request.pfx.thumbprint);

  const delivery = encodeKeyDelivery(request.pfx.id, certificate.der, privateKey);
  try {
    if (delivery.length > MAX_KEY_DELIVERY) throw refuse('pfx-unreadable', 'the certificate and key are larger than a delivery may be');
    const payload = encryptContent(delivery, [{ certificate: device }], { cipher: 'aes-256-gcm', ...(options.random ? { random: options.random } : {}) });
    if (payload.length > MAX_RESULT_PAYLOAD) throw refuse('pfx-unreadable', 'the certificate and key are larger than a delivery may be');
    return payload;
  } finally {
    delivery.fill(0);
  }
}

function deviceCertificate(base64: string): Certificate {
  const der = Buffer.from(base64, 'base64');
  if (der.length === 0 || der.length > MAX_DEVICE_CERTIFICATE) throw refuse('device-certificate-unusable', 'the device certificate is empty or too large');
  let cert: Certificate;
  try {
    cert = decodeCertificate(der);
  } catch {
    throw refuse('device-certificate-unusable', 'the device certificate cannot be parsed');
  }
  if (!isKeyAgreementKey(cert.publicKey)) {
    throw refuse('device-certificate-unusable', `the device certificate has a ${cert.publicKey.asymmetricKeyType ?? 'unknown'} key; delivery needs an EC key for ECDH`);
  }
  // RFC 5280 §4.2.1.3: ECDH to a certificate whose keyUsage is listed needs keyAgreement among them.
  if (cert.keyUsage !== undefined && !cert.keyUsage.has('keyAgreement')) throw refuse('device-certificate-unusable', 'the device certificate does not allow keyAgreement');
  return cert;
}

async function decryptPassword(key: ConnectorKey, base64: string, hash: OaepHash): Promise<string> {
  const ciphertext = Buffer.from(base64, 'base64');
  if (ciphertext.length === 0 || ciphertext.length > MAX_ENCRYPTED_PASSWORD) throw refuse('password-undecryptable', 'the encrypted password is empty or too large');
  let plain: Uint8Array;
  try {
    plain = await key.decryptOaep(ciphertext, hash);
  } catch {
    // OAEP decoding fails (RFC 8017 §7.1.2 step 3) for another key's ciphertext, and for damaged bytes.
    throw refuse('password-undecryptable', 'the PFX password does not decrypt with this connector’s key (it was encrypted to another key, or is damaged)');
  }
  try {
    // Strings cannot be zeroed; the buffer can. readPkcs12 takes the password as a string.
    return new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } catch {
    throw refuse('password-undecryptable', 'the decrypted PFX password is not UTF-8');
  } finally {
    plain.fill(0);
  }
}

function openPfx(pfx: Uint8Array, password: string, thumbprint: string): { privateKey: KeyObject; certificate: Certificate } {
  let contents;
  try {
    contents = readPkcs12(pfx, password);
  } catch (e) {
    if (isKeyfleetError(e, 'KF_PKCS12_BAD_PASSWORD')) throw refuse('pfx-password-wrong', 'the decrypted password does not open the PFX (wrong password or damaged file)');
    throw refuse('pfx-unreadable', isKeyfleetError(e) ? `the PFX cannot be read: ${e.code}` : 'the PFX cannot be read');
  }
  const wanted = thumbprint.toUpperCase();
  const match = contents.keys.find((k) => k.certificate?.thumbprint === wanted);
  if (match === undefined || match.certificate === undefined) {
    throw refuse('thumbprint-not-found', `no private key in the PFX belongs to a certificate with thumbprint ${wanted.slice(0, 40)}`);
  }
  return { privateKey: match.key, certificate: match.certificate };
}
