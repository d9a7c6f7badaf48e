/**
 * Byte helpers shared by the MIME modules. Bodies can be 100 MB and more
 * (issue 2), so everything here works on Buffers with native searches and
 * never turns a body into a JS string.
 */
import { KeyfleetError } from '../../errors.ts';

export const CR = 0x0d;
export const LF = 0x0a;
export const SP = 0x20;
export const HT = 0x09;
export const CRLF: Uint8Array = Buffer.from('\r\n', 'latin1');

/** A Buffer view over the same memory (no copy), for Buffer's native indexOf/copy. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function malformed(message: string): KeyfleetError {
  return new KeyfleetError('KF_MIME_MALFORMED', message);
}

/** One contiguous copy of `chunks` (Buffer.concat, which accepts Uint8Arrays). */
export function concatBytes(chunks: readonly Uint8Array[]): Buffer {
  return Buffer.concat(chunks);
}

/**
 * An append-only byte buffer that grows by doubling; used by the encoders,
 * whose output size is only known at the end.
 */
export class ByteSink {
  private buf: Buffer;
  length = 0;

  constructor(initialCapacity: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, initialCapacity));
  }

  /** Makes room for `n` more bytes and returns the buffer to write into at `length`. */
  reserve(n: number): Buffer {
    const need = this.length + n;
    if (need > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    return this.buf;
  }

  append(src: Buffer, start: number, end: number): void {
    if (end <= start) return;
    const buf = this.reserve(end - start);
    this.length += src.copy(buf, this.length, start, end);
  }

  /** The bytes written; copied to an exact-size buffer when much of the capacity is unused. */
  result(): Buffer {
    if (this.length < this.buf.length * 0.75) return Buffer.from(this.buf.subarray(0, this.length));
    return this.buf.subarray(0, this.length);
  }
}

/** ASCII-case-insensitive comparison of a header or parameter name. */
export function sameName(a: string, b: string): boolean {
  return a.length === b.length && a.toLowerCase() === b.toLowerCase();
}
