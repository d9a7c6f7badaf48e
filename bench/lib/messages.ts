/**
 * Realistic RFC 5322 messages of an exact total size: the headers a mail
 * client writes (From, To, Subject, Date, Message-ID, MIME-Version), CRLF line
 * ends, and — from 100 KB up — multipart/mixed with a short text part and a
 * base64 attachment in 76-character lines (RFC 2045 §6.8), which is how large
 * mail actually travels. The attachment is random bytes, like the compressed
 * files people mail, so nothing downstream compresses or short-cuts it.
 */
import { randomBytes } from 'node:crypto';
import { BENCH_EMAIL } from './pki.ts';

export interface MessageSize {
  /** "1 KB", "100 KB", "10 MB", "100 MB"; 1 KB = 1024 bytes, 1 MB = 2^20 bytes. */
  readonly label: string;
  readonly bytes: number;
}

export const KB = 1024;
export const MB = 1024 * 1024;

export const SIZES: readonly MessageSize[] = [
  { label: '1 KB', bytes: KB },
  { label: '100 KB', bytes: 100 * KB },
  { label: '10 MB', bytes: 10 * MB },
  { label: '100 MB', bytes: 100 * MB },
];

export function sizeByLabel(label: string): MessageSize {
  const size = SIZES.find((s) => s.label === label);
  if (size === undefined) throw new Error(`unknown message size "${label}" (expected ${SIZES.map((s) => s.label).join(', ')})`);
  return size;
}

const CRLF = '\r\n';
const BOUNDARY = '=_keyfleet_bench_7f3a9c';
/** Prose for the text part, wrapped to 72 characters a line. */
const PROSE =
  'Hello Bob, please find the quarterly figures attached. The totals for the ' +
  'northern region are final; the southern region still waits for two late ' +
  'invoices, which should arrive before Friday. Let me know if anything looks off. ';

function headers(size: MessageSize, contentType: string): string {
  return [
    `From: Alice Bench <${BENCH_EMAIL}>`,
    'To: Bob Bench <bob@bench.keyfleet.example>',
    `Subject: Quarterly figures (${size.label} benchmark message)`,
    'Date: Tue, 14 May 2024 09:30:00 +0200',
    `Message-ID: <bench-${size.bytes}@bench.keyfleet.example>`,
    'MIME-Version: 1.0',
    `Content-Type: ${contentType}`,
  ].join(CRLF);
}

/** Exactly `length` bytes of prose in CRLF-terminated lines of at most 76 bytes, wrapped at words. */
function prose(length: number): string {
  const words = PROSE.trim().split(' ');
  let next = 0;
  const word = (): string => words[next++ % words.length]!;
  let out = '';
  let remaining = length;
  while (remaining > 76) {
    let line = word();
    while (line.length + 1 + words[next % words.length]!.length <= 72) line += ' ' + word();
    // Never leave a single byte: it could not hold a CRLF.
    if (remaining - line.length - 2 === 1) line += ' ';
    out += line + CRLF;
    remaining -= line.length + 2;
  }
  if (remaining === 1) return out + ' '; // only when asked for one byte
  if (remaining === 0) return out;
  let last = '';
  while (last.length < remaining - 2) last += word() + ' ';
  return out + last.slice(0, remaining - 2) + CRLF;
}

/** Length of `rawBytes` base64-encoded in 76-character lines joined by CRLF (none after the last). */
function base64Length(rawBytes: number): number {
  const chars = 4 * Math.ceil(rawBytes / 3);
  return chars + 2 * Math.max(0, Math.ceil(chars / 76) - 1);
}

/** Writes `raw` as base64 in 76-character CRLF-separated lines into `out` at `offset`; returns the new offset. */
function writeBase64Lines(raw: Buffer, out: Buffer, offset: number): number {
  const RAW_PER_LINE = 57; // 57 bytes → 76 base64 characters
  const LINES_PER_BLOCK = 4096;
  let pos = offset;
  for (let start = 0; start < raw.length; start += RAW_PER_LINE * LINES_PER_BLOCK) {
    const encoded = Buffer.from(raw.subarray(start, start + RAW_PER_LINE * LINES_PER_BLOCK).toString('base64'), 'latin1');
    for (let i = 0; i < encoded.length; i += 76) {
      if (pos !== offset) pos += out.write(CRLF, pos, 'latin1');
      pos += encoded.copy(out, pos, i, Math.min(i + 76, encoded.length));
    }
  }
  return pos;
}

/** A complete message of exactly `size.bytes` bytes. */
export function buildMessage(size: MessageSize): Buffer {
  if (size.bytes < 50 * KB) {
    const head = headers(size, 'text/plain; charset=utf-8') + CRLF + 'Content-Transfer-Encoding: 7bit' + CRLF + CRLF;
    const message = Buffer.from(head + prose(size.bytes - head.length), 'latin1');
    if (message.length !== size.bytes) throw new Error(`bench message is ${message.length} bytes, wanted ${size.bytes}`);
    return message;
  }
  const head =
    headers(size, `multipart/mixed; boundary="${BOUNDARY}"`) + CRLF + CRLF +
    'This is a multi-part message in MIME format.' + CRLF +
    `--${BOUNDARY}` + CRLF +
    'Content-Type: text/plain; charset=utf-8' + CRLF +
    'Content-Transfer-Encoding: 7bit' + CRLF + CRLF;
  const middle =
    CRLF + `--${BOUNDARY}` + CRLF +
    'Content-Type: application/zip; name="figures.zip"' + CRLF +
    'Content-Transfer-Encoding: base64' + CRLF +
    'Content-Disposition: attachment; filename="figures.zip"' + CRLF + CRLF;
  const tail = CRLF + `--${BOUNDARY}--` + CRLF;
  const available = size.bytes - head.length - middle.length - tail.length;
  // Whole 78-byte base64 lines for the attachment, leaving 300–380 bytes of text.
  const rawBytes = Math.floor((available - 300) / 78) * 57;
  const text = prose(available - base64Length(rawBytes));

  const message = Buffer.allocUnsafe(size.bytes);
  let pos = message.write(head + text + middle, 0, 'latin1');
  pos = writeBase64Lines(randomBytes(rawBytes), message, pos);
  pos += message.write(tail, pos, 'latin1');
  if (pos !== size.bytes) throw new Error(`bench message is ${pos} bytes, wanted ${size.bytes}`);
  return message;
}
