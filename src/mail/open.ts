/**
 * Opening a received message as the mail app does: peel each S/MIME layer
 * (encrypted, signed, in any order, as Outlook's sign-then-encrypt and
 * triple-wrapped mail nest them), decrypting with whichever key of the
 * user's history the message names (the engine chooses by recipient
 * identifier, never by trial) and verifying signatures against the
 * device's trusted roots; then report who signed and the outcome.
 */
import type { Certificate } from '../x509/certificate.ts';
import { nameToString } from '../x509/name.ts';
import { OID } from '../asn1/oids.ts';
import { decodeContentInfo } from '../smime/cms/content-info.ts';
import { type DecodedSignedData, decodeSignedData } from '../smime/cms/signed-data.ts';
import { decryptMessage, verifyMessage } from '../smime/message.ts';
import { type MimeEntity, classifySmime, decodeTransferEncoding, parseEntity } from '../smime/mime/index.ts';
import type { SignerReason, VerifyResult } from '../smime/result.ts';
import type { MailKeys } from './keys.ts';
import { knownCertificates } from './certificates.ts';

/** Sign-then-encrypt-then-sign is three; more is not mail a client writes. */
const MAX_LAYERS = 4;

export interface SignerReport {
  /** The signer's first email address. */
  readonly address: string | undefined;
  readonly emailAddresses: readonly string[];
  readonly subject: string | undefined;
  readonly issuer: string | undefined;
  readonly thumbprint: string | undefined;
  readonly signingTime: Date | undefined;
  /** Empty when this signer verified: signature, digest, path to a trusted root, sender. */
  readonly reasons: readonly SignerReason[];
}

export type OpenOutcome = 'unprotected' | 'decrypted' | 'verified' | 'signature-invalid';

export interface OpenedMessage {
  /** The innermost message, outer header fields kept (RFC 5322 text). */
  readonly message: Uint8Array;
  readonly encrypted: boolean;
  readonly signed: boolean;
  /** Which certificate of the history opened it. */
  readonly decryptedWith: { readonly thumbprint: string; readonly serialNumber: string; readonly notAfter: Date; readonly contentCipher: string } | undefined;
  readonly signature: { readonly valid: boolean; readonly signers: readonly SignerReport[] } | undefined;
  readonly outcome: OpenOutcome;
  /** The SignedData of the innermost signed layer, for installing the signer's certificates. */
  readonly signedData: DecodedSignedData | undefined;
  /** The verification result behind `signature`. */
  readonly verifyResult: VerifyResult | undefined;
}

export interface OpenOptions {
  /** Validation time for signatures (default now). */
  readonly at?: Date;
}

function reportOf(result: VerifyResult): SignerReport[] {
  return result.signers.map((s) => ({
    address: s.emailAddresses[0],
    emailAddresses: s.emailAddresses,
    subject: s.certificate ? nameToString(s.certificate.subject) : undefined,
    issuer: s.certificate ? nameToString(s.certificate.issuer) : undefined,
    thumbprint: s.certificate?.thumbprint,
    signingTime: s.signingTime,
    reasons: s.reasons,
  }));
}

type Layer = { readonly kind: 'signed'; readonly signedData: DecodedSignedData } | { readonly kind: 'encrypted' } | { readonly kind: 'none' };

function der(entity: MimeEntity): Uint8Array {
  return decodeTransferEncoding(entity.body, entity.transferEncoding);
}

function layerOf(entity: MimeEntity): Layer {
  const kind = classifySmime(entity);
  if (kind.kind === 'signed-multipart') {
    const signature = entity.parts[1];
    return signature ? { kind: 'signed', signedData: decodeSignedData(der(signature)) } : { kind: 'none' };
  }
  if (kind.kind !== 'opaque') return { kind: 'none' };
  if (kind.smimeType === 'enveloped-data' || kind.smimeType === 'authEnveloped-data') return { kind: 'encrypted' };
  const body = der(entity);
  const { contentType } = decodeContentInfo(body);
  if (contentType === OID.signedData) return { kind: 'signed', signedData: decodeSignedData(body) };
  if (contentType === OID.envelopedData || contentType === OID.authEnvelopedData) return { kind: 'encrypted' };
  return { kind: 'none' };
}

/** Decrypts and verifies every layer; a failed signature is reported, a message that cannot be decrypted throws (KF_CMS_*). */
export function openMessage(bytes: Uint8Array, keys: MailKeys, options: OpenOptions = {}): OpenedMessage {
  let current = bytes;
  let encrypted = false;
  let decryptedWith: OpenedMessage['decryptedWith'];
  let verified: { result: VerifyResult; signedData: DecodedSignedData } | undefined;
  let allValid = true;
  for (let depth = 0; depth < MAX_LAYERS; depth++) {
    const layer = layerOf(parseEntity(current));
    if (layer.kind === 'none') break;
    if (layer.kind === 'encrypted') {
      const d = decryptMessage(current, keys.decryptionKeys());
      encrypted = true;
      decryptedWith ??= { thumbprint: d.recipient.certificate.thumbprint, serialNumber: d.recipient.certificate.serialHex, notAfter: d.recipient.certificate.notAfter, contentCipher: d.contentCipher };
      current = d.message;
      continue;
    }
    const v = verifyMessage(current, {
      trustAnchors: keys.trustedRoots(),
      extraCertificates: knownCertificates(keys),
      ...(options.at ? { at: options.at } : {}),
    });
    verified = { result: v.result, signedData: layer.signedData };
    allValid &&= v.result.valid;
    current = v.content;
  }
  const signed = verified !== undefined;
  const outcome: OpenOutcome = signed ? (allValid ? 'verified' : 'signature-invalid') : encrypted ? 'decrypted' : 'unprotected';
  return {
    message: current,
    encrypted,
    signed,
    decryptedWith,
    signature: verified ? { valid: allValid, signers: reportOf(verified.result) } : undefined,
    outcome,
    signedData: verified?.signedData,
    verifyResult: verified?.result,
  };
}

/** Certificates of a message's signers that are worth keeping: the signers' own, those they name for encryption, and CAs on their paths. */
export function signerCertificates(opened: OpenedMessage): Certificate[] {
  const result = opened.verifyResult;
  const sd = opened.signedData;
  if (!result || !sd) return [];
  const out = new Map<string, Certificate>();
  for (const s of result.signers) {
    if (!s.certificate || s.reasons.length > 0) continue;
    out.set(s.certificate.thumbprint, s.certificate);
    // Steps below the anchor: the anchor itself is a trusted root already.
    for (const step of s.chain.slice(1, -1)) out.set(step.certificate.thumbprint, step.certificate);
    const addresses = new Set(s.emailAddresses);
    // Outlook sends the signer's encryption certificate along (RFC 8551 §2.5.3): any end-entity certificate naming the signer.
    for (const c of sd.certificates) {
      if (c.basicConstraints?.cA !== true && c.emailAddresses.some((a) => addresses.has(a))) out.set(c.thumbprint, c);
    }
  }
  return [...out.values()];
}
