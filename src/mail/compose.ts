/**
 * A new message as RFC 5322 text (RFC 2045-2047 for MIME and non-ASCII
 * header text): a text/plain body, or multipart/mixed with attachments.
 * This is the plain message that the client then signs and encrypts with
 * the engine (src/smime/message.ts), which keeps From/To/Subject outside
 * and protects the Content-* entity.
 */
import { randomUUID } from 'node:crypto';
import { KeyfleetError } from '../errors.ts';
import { buildEntity, buildMultipart, encodeBase64, encodeQuotedPrintable, fieldBytes, formatParameterized } from '../smime/mime/index.ts';
import type { HeaderInput } from '../smime/mime/index.ts';

export interface Attachment {
  readonly fileName: string;
  /** Default application/octet-stream. */
  readonly contentType?: string;
  readonly content: Uint8Array;
}

export interface MessageDraft {
  /** "Name <address>" or a bare address; default the account's address. */
  readonly from?: string;
  readonly to: readonly string[];
  readonly cc?: readonly string[];
  /** Encrypted to, never written into the message. */
  readonly bcc?: readonly string[];
  readonly subject: string;
  readonly text: string;
  readonly attachments?: readonly Attachment[];
  readonly date?: Date;
  readonly messageId?: string;
}

const ADDR = /^[^\s@<>(),;:"[\]\\]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/;

/** The address of a "Name <address>" or bare mailbox, lower-cased; KF_USAGE when there is none. */
export function mailboxAddress(mailbox: string): string {
  const angle = /<([^<>]*)>\s*$/.exec(mailbox);
  const address = (angle ? angle[1]! : mailbox).trim();
  if (!ADDR.test(address)) throw new KeyfleetError('KF_USAGE', `not an email address: ${JSON.stringify(mailbox)}`);
  return address.toLowerCase();
}

/** Every recipient's address, lower-cased, each once, in order. */
export function recipientAddresses(draft: MessageDraft): string[] {
  const all = [...draft.to, ...(draft.cc ?? []), ...(draft.bcc ?? [])].map(mailboxAddress);
  return [...new Set(all)];
}

/** RFC 2047 encoded-words (B, UTF-8) for text that is not printable ASCII; each word at most 75 characters. */
export function encodeWords(text: string): string {
  if (/^[\x20-\x7e]*$/.test(text)) return text;
  const words: string[] = [];
  let chunk = '';
  for (const ch of text) {
    // 45 bytes of UTF-8 make 60 base64 characters: "=?utf-8?B?" + 60 + "?=" is 72.
    if (Buffer.byteLength(chunk + ch, 'utf8') > 45) {
      words.push(chunk);
      chunk = '';
    }
    chunk += ch;
  }
  if (chunk) words.push(chunk);
  return words.map((w) => `=?utf-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join(' ');
}

function formatMailbox(mailbox: string): string {
  const address = mailboxAddress(mailbox);
  const angle = /^(.*)<[^<>]*>\s*$/.exec(mailbox);
  const name = angle?.[1]?.trim().replace(/^"(.*)"$/, '$1');
  if (!name) return address;
  const display = /^[\x20-\x7e]*$/.test(name) ? `"${name.replace(/["\\]/g, '\\$&')}"` : encodeWords(name);
  return `${display} <${address}>`;
}

/** RFC 5322 §3.3 date-time in UTC. */
export function formatDate(d: Date): string {
  return d.toUTCString().replace(/GMT$/, '+0000');
}

function textBody(text: string): { readonly headers: HeaderInput[]; readonly body: Uint8Array } {
  const crlf = text.replace(/\r\n|\r|\n/g, '\r\n');
  const body = crlf.endsWith('\r\n') ? crlf : `${crlf}\r\n`;
  const plain = /^[\x20-\x7e\t\r\n]*$/.test(body) && body.split('\r\n').every((l) => l.length <= 998);
  const bytes = Buffer.from(body, 'utf8');
  return {
    headers: [
      ['Content-Type', plain ? 'text/plain; charset=us-ascii' : 'text/plain; charset=utf-8'],
      ['Content-Transfer-Encoding', plain ? '7bit' : 'quoted-printable'],
    ],
    body: plain ? bytes : encodeQuotedPrintable(bytes),
  };
}

function attachmentEntity(a: Attachment): Uint8Array {
  const type = a.contentType ?? 'application/octet-stream';
  if (!/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i.test(type)) throw new KeyfleetError('KF_USAGE', `not a media type: ${JSON.stringify(type)}`);
  return buildEntity({
    headers: [
      ['Content-Type', formatParameterized(type, [['name', a.fileName]])],
      ['Content-Transfer-Encoding', 'base64'],
      ['Content-Disposition', formatParameterized('attachment', [['filename', a.fileName]])],
    ],
    body: encodeBase64(a.content),
  }).raw;
}

/** The draft as an RFC 5322 message with CRLF line breaks. */
export function buildMessage(draft: MessageDraft, defaults: { readonly from: string; readonly now: Date }): Uint8Array {
  if (draft.to.length + (draft.cc?.length ?? 0) + (draft.bcc?.length ?? 0) === 0) throw new KeyfleetError('KF_USAGE', 'a message needs at least one recipient');
  const from = formatMailbox(draft.from ?? defaults.from);
  const domain = mailboxAddress(from).split('@')[1]!;
  const outer: HeaderInput[] = [
    ['From', from],
    ['To', draft.to.map(formatMailbox).join(', ')],
    ...(draft.cc?.length ? [['Cc', draft.cc.map(formatMailbox).join(', ')] as HeaderInput] : []),
    ['Subject', encodeWords(draft.subject)],
    ['Date', formatDate(draft.date ?? defaults.now)],
    ['Message-ID', draft.messageId ?? `<${randomUUID()}@${domain}>`],
    ['MIME-Version', '1.0'],
  ];
  const text = textBody(draft.text);
  let content: Uint8Array;
  if (!draft.attachments?.length) {
    content = buildEntity({ headers: text.headers, body: text.body }).raw;
  } else {
    const parts = [buildEntity({ headers: text.headers, body: text.body }).raw, ...draft.attachments.map(attachmentEntity)];
    content = buildMultipart('mixed', {}, parts).raw;
  }
  return Buffer.concat([...outer.map(fieldBytes), content]);
}
