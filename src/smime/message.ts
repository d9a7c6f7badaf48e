/**
 * S/MIME 4.0 (RFC 8551) on whole RFC 5322 messages: the CMS of `cms/` on the
 * MIME of `mime/`. Only the content entity (Content-* fields and body) is
 * signed or encrypted; the message's own fields (From, To, Subject, Date,
 * Message-ID, …) stay on the outside (RFC 8551 §3.1, issue 2), and are put
 * back around the result of verify and decrypt so that both return whole
 * messages.
 *
 * Outputs are assembled from chunks and joined once: a 100 MB message costs
 * its input, one output and whatever the crypto needs, nothing more.
 */
import { KeyfleetError } from '../errors.ts';
import { OID } from '../asn1/oids.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { CertificateList } from '../x509/crl.ts';
import { nameToString } from '../x509/name.ts';
import { decodeContentInfo } from './cms/content-info.ts';
import { type SignerSpec, decodeSignedData, signContent } from './cms/signed-data.ts';
import { verifySignedData } from './cms/verify.ts';
import { type ContentCipher, type KeyPair, type RecipientSpec, decryptContent, describeEnvelope, encryptContent } from './cms/enveloped-data.ts';
import { type SmimeCapability, signerCapabilities } from './cms/capabilities.ts';
import {
  CRLF,
  type HeaderField,
  type HeaderInput,
  type MimeEntity,
  classifySmime,
  decodeTransferEncoding,
  encodeBase64,
  fieldBytes,
  getHeader,
  isContentField,
  make7bitSafe,
  micalgFor,
  parseEntity,
  randomBoundary,
  splitMessage,
  toCanonicalCrlf,
} from './mime/index.ts';
import type { VerifyResult } from './result.ts';
import { hashFromOid } from '../x509/signature.ts';

export interface SignMessageOptions {
  readonly signers: readonly SignerSpec[];
  /** application/pkcs7-mime signed-data instead of multipart/signed. */
  readonly opaque?: boolean;
}

export interface VerifyMessageOptions {
  readonly trustAnchors: readonly Certificate[];
  readonly crls?: readonly CertificateList[];
  readonly extraCertificates?: readonly Certificate[];
  readonly at?: Date;
}

export interface VerifiedMessage {
  readonly result: VerifyResult;
  /** The outer header fields around the signed entity: a whole message. */
  readonly content: Uint8Array;
}

export interface EncryptMessageOptions {
  /** Default: chosen from the recipients' capabilities (RFC 8551 §2.7), else AES-256-CBC. */
  readonly cipher?: ContentCipher;
  /** Each recipient's announced SMIMECapabilities, when known, in recipient order. */
  readonly recipientCapabilities?: readonly (readonly SmimeCapability[] | undefined)[];
}

export interface DecryptedMessage {
  /** The outer header fields around the decrypted inner entity: a whole message. */
  readonly message: Uint8Array;
  readonly contentCipher: string;
  readonly recipient: KeyPair;
}

const P7M_DISPOSITION: HeaderInput = ['Content-Disposition', 'attachment; filename="smime.p7m"'];
const BASE64: HeaderInput = ['Content-Transfer-Encoding', 'base64'];

function join(chunks: readonly Uint8Array[]): Uint8Array {
  return Buffer.concat(chunks);
}

/** Outer fields, MIME-Version added when missing (RFC 2045 §4). */
function outerFieldChunks(outer: readonly HeaderField[]): Uint8Array[] {
  const chunks = outer.map(fieldBytes);
  if (!outer.some((h) => h.name.toLowerCase() === 'mime-version')) chunks.push(fieldBytes(['MIME-Version', '1.0']));
  return chunks;
}

/** An application/pkcs7-mime entity around DER, with the message's outer fields. */
function pkcs7MimeMessage(outer: readonly HeaderField[], smimeType: string, der: Uint8Array): Uint8Array {
  return join([
    ...outerFieldChunks(outer),
    fieldBytes(['Content-Type', `application/pkcs7-mime; smime-type=${smimeType}; name="smime.p7m"`]),
    fieldBytes(BASE64),
    fieldBytes(P7M_DISPOSITION),
    CRLF,
    encodeBase64(der),
  ]);
}

/**
 * Signs the message's content entity: multipart/signed (RFC 8551 §3.5.3)
 * with the signed part made 7-bit safe and canonical (§3.1.1, §3.1.2), or
 * opaque signed-data (§3.5.2).
 */
export function signMessage(message: Uint8Array, options: SignMessageOptions): Uint8Array {
  if (options.signers.length === 0) throw new KeyfleetError('KF_USAGE', 'at least one signer is needed');
  const { outerHeaders, content } = splitMessage(parseEntity(message));
  if (options.opaque) {
    const der = signContent(toCanonicalCrlf(content.raw), options.signers, { detached: false });
    return pkcs7MimeMessage(outerHeaders, 'signed-data', der);
  }
  const signed = make7bitSafe(content).raw;
  const der = signContent(signed, options.signers, { detached: true });
  const digests = [...new Set(options.signers.map((s) => (s.key.asymmetricKeyType === 'ed25519' ? 'sha512' : (s.digest ?? 'sha256'))))];
  const boundary = chooseBoundary(signed);
  const dash = `--${boundary}`;
  return join([
    ...outerFieldChunks(outerHeaders),
    fieldBytes([
      'Content-Type',
      `multipart/signed; protocol="application/pkcs7-signature"; micalg=${digests.map(micalgFor).join(',')}; boundary="${boundary}"`,
    ]),
    CRLF,
    Buffer.from(`This is an S/MIME signed message\r\n\r\n${dash}\r\n`, 'latin1'),
    signed,
    Buffer.from(`\r\n${dash}\r\n`, 'latin1'),
    fieldBytes(['Content-Type', 'application/pkcs7-signature; name="smime.p7s"']),
    fieldBytes(BASE64),
    fieldBytes(['Content-Disposition', 'attachment; filename="smime.p7s"']),
    CRLF,
    encodeBase64(der),
    Buffer.from(`\r\n${dash}--\r\n`, 'latin1'),
  ]);
}

function chooseBoundary(signed: Uint8Array): string {
  const haystack = Buffer.from(signed.buffer, signed.byteOffset, signed.byteLength);
  for (;;) {
    const b = randomBoundary();
    if (haystack.indexOf(b, 0, 'latin1') < 0) return b;
  }
}

/** The addr-spec of the first From: mailbox ("Name <a@b>" or "a@b"), lower-cased. */
export function senderAddress(headers: readonly HeaderField[]): string | undefined {
  const from = getHeader(headers, 'from');
  if (from === undefined) return undefined;
  const angle = /<([^<>\s]+@[^<>\s]+)>/.exec(from);
  const bare = /([^\s<>,;:"]+@[^\s<>,;:"]+)/.exec(from);
  return (angle?.[1] ?? bare?.[1])?.toLowerCase();
}

function base64Der(entity: MimeEntity): Uint8Array {
  return decodeTransferEncoding(entity.body, entity.transferEncoding);
}

function wholeMessage(outer: readonly HeaderField[], inner: Uint8Array | readonly Uint8Array[]): Uint8Array {
  const innerChunks = inner instanceof Uint8Array ? [inner] : inner;
  return join([...outer.filter((h) => !isContentField(h.name)).map(fieldBytes), ...innerChunks]);
}

/**
 * Verifies a multipart/signed or opaque signed-data message, over the bytes
 * as received (for multipart/signed: the first part, canonicalised when
 * the message was stored with bare LFs).
 */
export function verifyMessage(message: Uint8Array, options: VerifyMessageOptions): VerifiedMessage {
  const parsed = parseEntity(message);
  const { outerHeaders } = splitMessage(parsed);
  const sender = senderAddress(parsed.headers);
  const common = {
    trustAnchors: options.trustAnchors,
    ...(options.crls ? { crls: options.crls } : {}),
    ...(options.extraCertificates ? { extraCertificates: options.extraCertificates } : {}),
    ...(options.at ? { at: options.at } : {}),
    ...(sender ? { senderAddress: sender } : {}),
  };
  const kind = classifySmime(parsed);
  if (kind.kind === 'signed-multipart') {
    const [signedPart, signaturePart] = parsed.parts;
    if (!signedPart || !signaturePart) throw new KeyfleetError('KF_MIME_MALFORMED', 'multipart/signed needs two parts');
    const sd = decodeSignedData(base64Der(signaturePart));
    let result = verifySignedData(sd, { ...common, detachedContent: signedPart.raw });
    // A message saved with bare LFs was signed in canonical form (RFC 8551
    // §3.1.1): only when the bytes as received fail, try them canonicalised.
    const canonical = toCanonicalCrlf(signedPart.raw);
    if (!result.valid && canonical !== signedPart.raw) {
      const retry = verifySignedData(sd, { ...common, detachedContent: canonical });
      if (reasonCount(retry) < reasonCount(result)) result = retry;
    }
    return { result, content: wholeMessage(outerHeaders, signedPart.raw) };
  }
  if (kind.kind === 'opaque') {
    const der = base64Der(parsed);
    const { contentType } = decodeContentInfo(der);
    if (contentType !== OID.signedData) {
      throw new KeyfleetError('KF_MIME_NOT_SMIME', contentType === OID.envelopedData || contentType === OID.authEnvelopedData ? 'the message is encrypted; decrypt it first' : 'the message is not signed');
    }
    const sd = decodeSignedData(der);
    const result = verifySignedData(sd, common);
    return { result, content: wholeMessage(outerHeaders, sd.content ?? []) };
  }
  throw new KeyfleetError('KF_MIME_NOT_SMIME', 'the message is not signed (no multipart/signed or application/pkcs7-mime signed-data)');
}

function reasonCount(r: VerifyResult): number {
  return r.signers.reduce((n, s) => n + s.reasons.length, 0);
}

/** Our preference, strongest first (RFC 8551 §2.7: AES-GCM, then AES-CBC). */
const PREFERENCE: readonly [ContentCipher, string][] = [
  ['aes-256-gcm', OID.aes256GCM],
  ['aes-128-gcm', OID.aes128GCM],
  ['aes-256-cbc', OID.aes256CBC],
  ['aes-192-cbc', OID.aes192CBC],
  ['aes-128-cbc', OID.aes128CBC],
];

/**
 * RFC 8551 §2.7: the strongest algorithm every recipient announced, when
 * all of them announced capabilities; otherwise AES-256-CBC, which every
 * S/MIME 3.2+ client reads.
 */
export function chooseContentCipher(capabilities: readonly (readonly SmimeCapability[] | undefined)[]): ContentCipher {
  if (capabilities.length === 0 || capabilities.some((c) => c === undefined)) return 'aes-256-cbc';
  const sets = capabilities.map((c) => new Set(c!.map((x) => x.capabilityID)));
  return PREFERENCE.find(([, oid]) => sets.every((s) => s.has(oid)))?.[0] ?? 'aes-256-cbc';
}

/** Encrypts the content entity for every recipient (RFC 8551 §3.3, §3.4 for GCM). */
export function encryptMessage(message: Uint8Array, recipients: readonly RecipientSpec[], options: EncryptMessageOptions = {}): Uint8Array {
  if (recipients.length === 0) throw new KeyfleetError('KF_USAGE', 'at least one recipient is needed');
  const { outerHeaders, content } = splitMessage(parseEntity(message));
  const cipher = options.cipher ?? chooseContentCipher(options.recipientCapabilities ?? recipients.map(() => undefined));
  const der = encryptContent(toCanonicalCrlf(content.raw), recipients, { cipher });
  return pkcs7MimeMessage(outerHeaders, cipher.endsWith('gcm') ? 'authEnveloped-data' : 'enveloped-data', der);
}

/** Decrypts an enveloped-data or authEnveloped-data message with any key of the user's history. */
export function decryptMessage(message: Uint8Array, keys: readonly KeyPair[]): DecryptedMessage {
  const parsed = parseEntity(message);
  if (classifySmime(parsed).kind !== 'opaque') throw new KeyfleetError('KF_MIME_NOT_SMIME', 'the message is not encrypted (no application/pkcs7-mime entity)');
  const der = base64Der(parsed);
  const { contentType } = decodeContentInfo(der);
  if (contentType !== OID.envelopedData && contentType !== OID.authEnvelopedData) {
    throw new KeyfleetError('KF_MIME_NOT_SMIME', 'the message is not encrypted (the CMS content is not enveloped-data)');
  }
  const r = decryptContent(der, keys);
  return { message: wholeMessage(splitMessage(parsed).outerHeaders, r.content), contentCipher: r.contentCipher, recipient: r.recipient };
}

function certSummary(c: Certificate) {
  return { subject: nameToString(c.subject), issuer: nameToString(c.issuer), serialNumber: c.serialHex, emailAddresses: c.emailAddresses, notAfter: c.notAfter.toISOString() };
}

/** What a message is: its S/MIME kind and, for CMS, signers or recipients and algorithms. Nothing is verified or decrypted. */
export function inspectMessage(message: Uint8Array): Record<string, unknown> {
  const parsed = parseEntity(message);
  const kind = classifySmime(parsed);
  const base = { kind: kind.kind, smimeType: kind.smimeType ?? null, micalg: kind.micalg, legacyTypes: kind.legacy, from: senderAddress(parsed.headers) ?? null };
  let der: Uint8Array | undefined;
  if (kind.kind === 'signed-multipart') {
    const sig = parsed.parts[1];
    if (sig) der = base64Der(sig);
  } else if (kind.kind === 'opaque') {
    der = base64Der(parsed);
  }
  if (!der) return base;
  const { contentType } = decodeContentInfo(der);
  if (contentType === OID.signedData) {
    const sd = decodeSignedData(der);
    return {
      ...base,
      cms: 'signed-data',
      detached: sd.content === undefined,
      certificates: sd.certificates.map(certSummary),
      signers: sd.signerInfos.map((si) => {
        const capabilities = signerCapabilities(si);
        return {
          digestAlgorithm: safeHashName(si.digestAlgorithm.algorithm),
          signatureAlgorithm: si.signatureAlgorithm.algorithm,
          signingTime: si.signedAttrs?.signingTime?.toISOString() ?? null,
          capabilities: capabilities?.map((c) => c.capabilityID) ?? null,
        };
      }),
    };
  }
  if (contentType === OID.envelopedData || contentType === OID.authEnvelopedData) {
    const d = describeEnvelope(der);
    return {
      ...base,
      cms: d.contentType,
      contentCipher: d.contentCipher,
      recipients: d.recipients.map((r) => ({
        kind: r.kind,
        keyEncryptionAlgorithm: r.keyEncryptionAlgorithm,
        ...(r.issuerAndSerial ? { issuer: nameToString(r.issuerAndSerial.issuer), serialNumber: r.issuerAndSerial.serialHex } : {}),
        ...(r.subjectKeyIdentifierHex ? { subjectKeyIdentifier: r.subjectKeyIdentifierHex } : {}),
      })),
    };
  }
  return { ...base, cms: contentType };
}

function safeHashName(oid: string): string {
  try {
    return hashFromOid(oid);
  } catch {
    return oid;
  }
}
