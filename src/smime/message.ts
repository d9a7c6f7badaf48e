/**
 * S/MIME 4.0 (RFC 8551) on whole RFC 5322 messages: the CMS of `cms/` on the
 * MIME of `mime/`. Only the content entity (Content-* fields and body) is
 * signed or encrypted; the message's own fields (From, To, Subject, Date,
 * Message-ID, …) stay on the outside (RFC 8551 §3.1, issue 2), and are put
 * back around the result of verify and decrypt so that both return whole
 * messages.
 *
 * Outputs are written once, into one buffer of their exact size: header
 * fields first, then the body (base64 is encoded straight into place, and
 * encryption streams its DER into that encoder, so neither the DER nor its
 * base64 ever exists on its own). Decryption of a large message decodes
 * and deciphers slice by slice into a buffer with room left in front for
 * the outer fields. A 100 MB message costs its input, its output and a few
 * megabytes, nothing more (issue 2).
 */
import { KeyfleetError } from '../errors.ts';
import { OID } from '../asn1/oids.ts';
import type { Certificate } from '../x509/certificate.ts';
import type { CertificateList } from '../x509/crl.ts';
import { nameToString } from '../x509/name.ts';
import { decodeContentInfo } from './cms/content-info.ts';
import { type SignerSpec, decodeSignedData, signContent } from './cms/signed-data.ts';
import { verifySignedData } from './cms/verify.ts';
import {
  type ContentCipher,
  type DerSource,
  type KeyPair,
  type RecipientSpec,
  decryptContent,
  decryptContentStream,
  describeEnvelope,
  encryptContentStream,
} from './cms/enveloped-data.ts';
import { type SmimeCapability, signerCapabilities } from './cms/capabilities.ts';
import {
  CRLF,
  type HeaderField,
  type HeaderInput,
  type MimeEntity,
  classifySmime,
  decodeTransferEncoding,
  fieldBytes,
  getHeader,
  isCanonicalCrlf,
  isContentField,
  make7bitSafe,
  micalgFor,
  parseEntity,
  randomBoundary,
  splitMessage,
  toCanonicalCrlf,
} from './mime/index.ts';
import { Base64LineWriter, Base64Reader, base64EncodedLength } from './mime/transfer-encoding.ts';
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

function byteLength(chunks: readonly Uint8Array[]): number {
  let n = 0;
  for (const c of chunks) n += c.length;
  return n;
}

/**
 * The fields' bytes with CRLF line breaks (fieldBytes of each): one view of
 * the message when the fields are adjacent there and already canonical, as
 * the outer fields of received mail usually are.
 */
function fieldsBytes(fields: readonly HeaderField[]): Uint8Array[] {
  const first = fields[0]?.raw;
  let end = first ? first.byteOffset + first.byteLength : 0;
  for (let i = 1; first && i < fields.length; i++) {
    const raw = fields[i]!.raw;
    if (raw.buffer !== first.buffer || raw.byteOffset !== end || fields[i - 1]!.raw[fields[i - 1]!.raw.byteLength - 1] !== 0x0a) return fields.map(fieldBytes);
    end += raw.byteLength;
  }
  if (!first) return [];
  const block = new Uint8Array(first.buffer, first.byteOffset, end - first.byteOffset);
  return block[block.length - 1] === 0x0a && isCanonicalCrlf(block) ? [block] : fields.map(fieldBytes);
}

const MIME_VERSION = fieldBytes(['MIME-Version', '1.0']);
const BASE64_FIELD = fieldBytes(BASE64);
const P7M_DISPOSITION_FIELD = fieldBytes(P7M_DISPOSITION);
const P7S_FIELDS = [
  fieldBytes(['Content-Type', 'application/pkcs7-signature; name="smime.p7s"']),
  BASE64_FIELD,
  fieldBytes(['Content-Disposition', 'attachment; filename="smime.p7s"']),
  CRLF,
];

/** Outer fields, MIME-Version added when missing (RFC 2045 §4). */
function outerFieldChunks(outer: readonly HeaderField[]): Uint8Array[] {
  const chunks = fieldsBytes(outer);
  if (!outer.some((h) => h.name.toLowerCase() === 'mime-version')) chunks.push(MIME_VERSION);
  return chunks;
}

/** The header block of an application/pkcs7-mime entity, with the message's outer fields. */
function pkcs7MimeHead(outer: readonly HeaderField[], smimeType: string): Uint8Array[] {
  return [
    ...outerFieldChunks(outer),
    fieldBytes(['Content-Type', `application/pkcs7-mime; smime-type=${smimeType}; name="smime.p7m"`]),
    BASE64_FIELD,
    P7M_DISPOSITION_FIELD,
    CRLF,
  ];
}

/**
 * `head`, then DER written piece by piece by `writeDer` (after it is told
 * the DER's length) and base64-encoded on the fly: one buffer of the exact
 * size, no other copy.
 */
function headAndBase64(head: readonly Uint8Array[], writeDer: (open: (length: number) => (piece: Uint8Array) => void) => void): Uint8Array {
  let out: Buffer | undefined;
  let writer: Base64LineWriter | undefined;
  writeDer((length) => {
    const headLength = byteLength(head);
    out = Buffer.allocUnsafe(headLength + base64EncodedLength(length));
    let p = 0;
    for (const h of head) {
      out.set(h, p);
      p += h.length;
    }
    writer = new Base64LineWriter(out, headLength);
    return (piece) => writer!.write(piece);
  });
  const end = writer!.end();
  if (end !== out!.length) throw new Error(`message assembly wrote ${end} of ${out!.length} octets`);
  return out!;
}

/** An application/pkcs7-mime entity around DER, with the message's outer fields. */
function pkcs7MimeMessage(outer: readonly HeaderField[], smimeType: string, der: Uint8Array): Uint8Array {
  return headAndBase64(pkcs7MimeHead(outer, smimeType), (open) => open(der.length)(der));
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
    ...P7S_FIELDS,
    base64(der),
    Buffer.from(`\r\n${dash}--\r\n`, 'latin1'),
  ]);
}

function base64(der: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(base64EncodedLength(der.length));
  const w = new Base64LineWriter(out, 0);
  w.write(der);
  w.end();
  return out;
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
  return join([...fieldsBytes(outer.filter((h) => !isContentField(h.name))), ...innerChunks]);
}

/**
 * Verifies a multipart/signed or opaque signed-data message, over the bytes
 * as received (for multipart/signed: the first part, canonicalised when
 * the message was stored with bare LFs).
 */
export function verifyMessage(message: Uint8Array, options: VerifyMessageOptions): VerifiedMessage {
  const parsed = parseEntity(message);
  // Only the outer fields are needed, not splitMessage's re-parsed content entity.
  const outerHeaders = parsed.headers.filter((h) => !isContentField(h.name));
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
    const canonical = result.valid ? signedPart.raw : toCanonicalCrlf(signedPart.raw);
    if (canonical !== signedPart.raw) {
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

/**
 * splitMessage for callers that need only the content entity's bytes: when
 * the Content-* fields come last (as mail clients write them), those bytes
 * are a view of the message and need not be parsed a second time.
 */
function contentOf(message: MimeEntity): { readonly outerHeaders: readonly HeaderField[]; readonly content: Uint8Array } {
  const { headers } = message;
  const first = headers.findIndex((h) => isContentField(h.name));
  const last = headers[headers.length - 1];
  if (first >= 0 && last && headers.every((h, i) => i < first || isContentField(h.name))) {
    const base = message.raw.byteOffset;
    if (message.bodyStart - message.start > last.raw.byteOffset - base + last.raw.byteLength) {
      return { outerHeaders: headers.slice(0, first), content: message.raw.subarray(headers[first]!.raw.byteOffset - base) };
    }
  }
  const split = splitMessage(message);
  return { outerHeaders: split.outerHeaders, content: split.content.raw };
}

/** Encrypts the content entity for every recipient (RFC 8551 §3.3, §3.4 for GCM). */
export function encryptMessage(message: Uint8Array, recipients: readonly RecipientSpec[], options: EncryptMessageOptions = {}): Uint8Array {
  if (recipients.length === 0) throw new KeyfleetError('KF_USAGE', 'at least one recipient is needed');
  const { outerHeaders, content } = contentOf(parseEntity(message));
  const cipher = options.cipher ?? chooseContentCipher(options.recipientCapabilities ?? recipients.map(() => undefined));
  const head = pkcs7MimeHead(outerHeaders, cipher.endsWith('gcm') ? 'authEnveloped-data' : 'enveloped-data');
  return headAndBase64(head, (open) => encryptContentStream(toCanonicalCrlf(content), recipients, { cipher }, open));
}

/** From this body size on, decryption streams (decryptContentStream); below, the DER is decoded whole. */
const STREAM_DECRYPT_MIN = 1 << 20;

/** Decrypts an enveloped-data or authEnveloped-data message with any key of the user's history. */
export function decryptMessage(message: Uint8Array, keys: readonly KeyPair[], options: { readonly streamFrom?: number } = {}): DecryptedMessage {
  const parsed = parseEntity(message);
  if (classifySmime(parsed).kind !== 'opaque') throw new KeyfleetError('KF_MIME_NOT_SMIME', 'the message is not encrypted (no application/pkcs7-mime entity)');
  const outer = fieldsBytes(parsed.headers.filter((h) => !isContentField(h.name)));
  if (parsed.transferEncoding === 'base64' && parsed.body.length >= (options.streamFrom ?? STREAM_DECRYPT_MIN)) {
    const reserve = byteLength(outer);
    const r = decryptContentStream(base64Source(parsed.body), keys, reserve);
    if (r) {
      let p = 0;
      for (const f of outer) {
        r.out.set(f, p);
        p += f.length;
      }
      return { message: r.out.subarray(0, reserve + r.length), contentCipher: r.contentCipher, recipient: r.recipient };
    }
  }
  const der = base64Der(parsed);
  const { contentType } = decodeContentInfo(der);
  if (contentType !== OID.envelopedData && contentType !== OID.authEnvelopedData) {
    throw new KeyfleetError('KF_MIME_NOT_SMIME', 'the message is not encrypted (the CMS content is not enveloped-data)');
  }
  const r = decryptContent(der, keys);
  return { message: join([...outer, r.content]), contentCipher: r.contentCipher, recipient: r.recipient };
}

function base64Source(body: Uint8Array): DerSource {
  const reader = new Base64Reader(body);
  return {
    read: (out, offset, max) => reader.read(out, offset, max),
    mark: () => {
      const at = reader.mark();
      return () => reader.reset(at);
    },
    get remainingBound() {
      return reader.remainingBound;
    },
  };
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
