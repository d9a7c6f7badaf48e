/**
 * The client side of SCEP (RFC 8894 §3.3, §4): building PKCSReq,
 * RenewalReq, GetCertInitial and GetCert messages and checking the CertRep
 * that answers them. The device agent and the tests use it; the HTTP
 * exchange itself is the caller's.
 *
 * A CertRep is accepted only when it is signed by one of the RA/CA
 * certificates the client obtained with GetCACert, echoes the request's
 * transactionID, and carries the request's senderNonce as recipientNonce
 * (RFC 8894 §3.2.1.5); its envelope must open with the requester's key.
 * Anything else is an error, never a certificate.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import * as der from '../asn1/writer.ts';
import type { Certificate } from '../x509/certificate.ts';
import { decodeCertsOnly } from './certs-only.ts';
import { type ScepCipher, openEnvelope, sealEnvelope } from './envelope.ts';
import { type FailInfo, type MessageType, type PkiStatus, decodePkiMessage, encodePkiMessage, newNonce } from './message.ts';

/** The requester's signing identity: a self-signed certificate for PKCSReq, the current certificate for RenewalReq. */
export interface ScepRequester {
  readonly certificate: Certificate;
  readonly key: KeyObject;
}

export interface RequestOptions {
  /** The envelope's content cipher; default aes-256-cbc (GetCACaps "AES"). */
  readonly cipher?: ScepCipher;
  /** Default sha256. */
  readonly digest?: 'sha1' | 'sha256' | 'sha512';
  /** Default: 16 random octets in hex. GetCertInitial must reuse the original request's. */
  readonly transactionId?: string;
  readonly random?: (n: number) => Uint8Array;
  readonly signingTime?: Date;
}

/** A request as sent, with what the reply must echo. */
export interface ScepRequest {
  readonly der: Uint8Array;
  readonly messageType: MessageType;
  readonly transactionId: string;
  readonly senderNonce: Uint8Array;
  readonly requester: ScepRequester;
}

function build(messageType: MessageType, content: Uint8Array, requester: ScepRequester, recipients: readonly Certificate[], options: RequestOptions): ScepRequest {
  if (recipients.length === 0) throw new KeyfleetError('KF_USAGE', 'a SCEP request needs the RA or CA certificate to encrypt to');
  const random = options.random ?? randomBytes;
  const transactionId = options.transactionId ?? Buffer.from(random(16)).toString('hex').toUpperCase();
  const senderNonce = newNonce(random);
  const envelope = sealEnvelope(content, recipients, options.cipher ?? 'aes-256-cbc', random);
  const bytes = encodePkiMessage({
    messageType,
    transactionId,
    senderNonce,
    envelope,
    signer: { certificate: requester.certificate, key: requester.key },
    ...(options.digest ? { digest: options.digest } : {}),
    ...(options.signingTime ? { signingTime: options.signingTime } : {}),
  });
  return { der: bytes, messageType, transactionId, senderNonce, requester };
}

/** PKCSReq (RFC 8894 §3.3.1): the PKCS#10 request, signed with the requester's self-signed certificate. */
export function buildPkcsReq(csr: Uint8Array, requester: ScepRequester, recipients: readonly Certificate[], options: RequestOptions = {}): ScepRequest {
  return build('PKCSReq', csr, requester, recipients, options);
}

/** RenewalReq (RFC 8894 §3.3.1.2): the PKCS#10 request, signed with the certificate being renewed. */
export function buildRenewalReq(csr: Uint8Array, current: ScepRequester, recipients: readonly Certificate[], options: RequestOptions = {}): ScepRequest {
  return build('RenewalReq', csr, current, recipients, options);
}

/**
 * CertPoll/GetCertInitial (RFC 8894 §3.3.3): asks again for a PENDING
 * request, under the original transactionID.
 *
 *   IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name }
 */
export function buildGetCertInitial(issuer: Uint8Array, subject: Uint8Array, requester: ScepRequester, recipients: readonly Certificate[], options: RequestOptions & { readonly transactionId: string }): ScepRequest {
  return build('GetCertInitial', der.sequence(issuer, subject), requester, recipients, options);
}

/** GetCert (RFC 8894 §3.3.4): a certificate by IssuerAndSerialNumber (issuer Name DER, serial contents octets). */
export function buildGetCert(issuer: Uint8Array, serialNumber: Uint8Array, requester: ScepRequester, recipients: readonly Certificate[], options: RequestOptions = {}): ScepRequest {
  return build('GetCert', der.sequence(issuer, der.integerFromContents(serialNumber)), requester, recipients, options);
}

export interface CertRepResult {
  readonly status: PkiStatus;
  readonly failInfo: FailInfo | undefined;
  /** SUCCESS: the certificates of the reply, the issued (or requested) certificate first. */
  readonly certificates: readonly Certificate[];
  /** The RA certificate that signed the reply. */
  readonly signer: Certificate;
}

function rejected(message: string): KeyfleetError {
  return new KeyfleetError('KF_CMS_MALFORMED', `SCEP CertRep rejected: ${message}`);
}

/**
 * Checks and opens the CertRep answering `request`. `trusted` are the
 * certificates obtained with GetCACert (and pinned by the caller, e.g. by
 * fingerprint): the reply must be signed by one of them.
 */
export function parseCertRep(bytes: Uint8Array, request: ScepRequest, trusted: readonly Certificate[]): CertRepResult {
  const msg = decodePkiMessage(bytes, { extraCertificates: trusted, allowSha1: true });
  if (msg.messageType !== 'CertRep') throw rejected(`messageType is ${msg.messageType}, not CertRep`);
  const signer = msg.signerCertificate;
  if (!signer || !trusted.some((t) => t.fingerprint256 === signer.fingerprint256)) throw rejected('it is not signed by the RA or CA certificate');
  if (msg.signatureProblem) throw rejected(`its signature does not verify (${msg.signatureProblem})`);
  if (msg.transactionId !== request.transactionId) throw rejected('the transactionID does not match the request');
  if (!msg.recipientNonce || Buffer.compare(Buffer.from(msg.recipientNonce), Buffer.from(request.senderNonce)) !== 0) throw rejected('the recipientNonce is not the request senderNonce');
  if (!msg.pkiStatus) throw rejected('pkiStatus is missing');
  if (msg.pkiStatus !== 'SUCCESS') {
    if (msg.pkiStatus === 'FAILURE' && !msg.failInfo) throw rejected('a FAILURE without failInfo');
    return { status: msg.pkiStatus, failInfo: msg.failInfo, certificates: [], signer };
  }
  if (!msg.envelope) throw rejected('a SUCCESS without a pkcsPKIEnvelope');
  const opened = openEnvelope(msg.envelope, request.requester);
  const certificates = decodeCertsOnly(opened.content);
  if (certificates.length === 0) throw rejected('the reply holds no certificate');
  return { status: 'SUCCESS', failInfo: undefined, certificates, signer };
}
