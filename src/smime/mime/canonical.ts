/**
 * Canonical line endings (RFC 8551 §3.1.1, RFC 5751 §3.1.1): before a MIME
 * entity is signed, every line break becomes CRLF, because the verifier
 * hashes what travelled, and mail transport delivers CRLF.
 *
 * Each bare LF and each bare CR is one line break and becomes CRLF; CR LF
 * stays. So CR CR LF becomes CRLF CRLF (a bare CR, then a CRLF), which keeps
 * the function idempotent (REFERENCE.md pitfall 5). OpenSSL's SMIME_crlf_copy
 * differs there: it strips every CR before an LF and so turns CR CR LF into
 * one CRLF. Both sides hash what they send, so the difference only matters
 * when re-canonicalising someone else's damaged text.
 *
 * Speed (bodies of 100 MB, issue 2): one pass; line breaks are found with
 * Buffer.indexOf (memchr) and the runs between them copied natively; where
 * breaks are dense (runs shorter than DENSE bytes, such as a body of empty
 * lines) a block is handled byte by byte instead, so that no input costs
 * more than a pass over its length. The output is allocated at the first
 * break that needs fixing, with room for one fix per 32 bytes, and grows by
 * doubling beyond that. Large inputs are first checked by isCanonicalCrlf,
 * which is faster than finding their line breaks one by one, and returned
 * as they are when canonical (the usual case: mail arrives with CRLF).
 */
import { CR, LF, asBuffer } from './bytes.ts';

/** Runs shorter than this switch to the byte loop for one block. */
const DENSE = 24;
const BLOCK = 4096;
/** Up to this size a byte loop is cheaper than a native search per line break. */
const SMALL = 4096;
/** From this size on, the canonical check runs as a regular expression over latin1 slices. */
const LARGE = 64 * 1024;
/** Young-generation strings (src/smime/mime/transfer-encoding.ts B64_CHUNK_IN says why). */
const SLICE = 64 * 1024;
/** A bare CR or a bare LF. */
const BARE_BREAK = /\r(?!\n)|(?<!\r)\n/;

/**
 * The bytes with every bare CR and bare LF turned into CRLF. Returns the
 * input itself (no copy) when it is already canonical.
 */
export function toCanonicalCrlf(bytes: Uint8Array): Uint8Array {
  const src = asBuffer(bytes);
  const n = src.length;
  if ((n >= LARGE || n <= SMALL) && isCanonicalCrlf(src)) return bytes;
  let out: Buffer | undefined;
  let o = 0; // write position in out
  let s = 0; // start of the run not yet copied to out (0 until out exists)
  let fixes = 0;
  const reserve = (k: number): Buffer => {
    if (out === undefined) {
      out = Buffer.allocUnsafe(n + (n >> 5) + k);
    } else if (o + k > out.length) {
      const next = Buffer.allocUnsafe(Math.max(out.length * 2, o + k));
      out.copy(next, 0, 0, o);
      out = next;
    }
    return out;
  };
  let nextLf = src.indexOf(LF);
  let nextCr = src.indexOf(CR);
  let lastBreak = 0;
  while (nextLf >= 0 || nextCr >= 0) {
    const q = nextCr < 0 || (nextLf >= 0 && nextLf < nextCr) ? nextLf : nextCr;
    let after: number;
    if (src[q] === CR && src[q + 1] === LF) {
      after = q + 2;
    } else {
      // A bare CR or a bare LF (an LF after a CR was consumed with that CR).
      after = q + 1;
      fixes++;
      const buf = reserve(q - s + 2);
      o += src.copy(buf, o, s, q);
      buf[o++] = CR;
      buf[o++] = LF;
      s = after;
    }
    if (after - lastBreak < DENSE && after < n) {
      // Dense line breaks: one block byte by byte (at most BLOCK + 1 bytes in, twice that out).
      const buf = reserve(after - s + 2 * BLOCK + 4);
      o += src.copy(buf, o, s, after);
      const end = Math.min(n, after + BLOCK);
      let i = after;
      for (; i < end; i++) {
        const c = src[i]!;
        if (c === CR || c === LF) {
          if (c === CR && src[i + 1] === LF) i++;
          else fixes++;
          buf[o++] = CR;
          buf[o++] = LF;
        } else {
          buf[o++] = c;
        }
      }
      after = i;
      s = i;
    }
    // Search again only for a kind of break that was passed: once absent, it stays absent.
    if (nextLf >= 0 && nextLf < after) nextLf = src.indexOf(LF, after);
    if (nextCr >= 0 && nextCr < after) nextCr = src.indexOf(CR, after);
    lastBreak = after;
  }
  if (fixes === 0) return bytes;
  const buf = reserve(n - s);
  o += src.copy(buf, o, s, n);
  // Keep at most a quarter of slack (only growth can leave that much).
  return o < buf.length * 0.75 ? Buffer.from(buf.subarray(0, o)) : buf.subarray(0, o);
}

/** True when every CR is followed by LF and every LF preceded by CR; stops at the first that is not. */
export function isCanonicalCrlf(bytes: Uint8Array): boolean {
  const src = asBuffer(bytes);
  const n = src.length;
  if (n >= LARGE) return isCanonicalLarge(src);
  if (n <= SMALL) return isCanonicalSmall(src);
  let nextLf = src.indexOf(LF);
  let nextCr = src.indexOf(CR);
  let lastBreak = 0;
  while (nextLf >= 0 || nextCr >= 0) {
    const q = nextCr < 0 || (nextLf >= 0 && nextLf < nextCr) ? nextLf : nextCr;
    if (src[q] !== CR || src[q + 1] !== LF) return false;
    let after = q + 2;
    if (after - lastBreak < DENSE) {
      const end = Math.min(n, after + BLOCK);
      let i = after;
      for (; i < end; i++) {
        const c = src[i];
        if (c === CR) {
          if (src[i + 1] !== LF) return false;
          i++;
        } else if (c === LF) {
          return false;
        }
      }
      after = i;
    }
    if (nextLf >= 0 && nextLf < after) nextLf = src.indexOf(LF, after);
    if (nextCr >= 0 && nextCr < after) nextCr = src.indexOf(CR, after);
    lastBreak = after;
  }
  return true;
}

/**
 * isCanonicalCrlf for large inputs: V8's regular expression engine scans a
 * latin1 string for a bare CR or LF about twice as fast as finding every
 * line break with Buffer.indexOf (a native call per line). Slices of 64 KB
 * keep the strings small; a slice never ends between a CR and its LF, so a
 * slice starting with LF has a bare LF.
 */
function isCanonicalLarge(src: Buffer): boolean {
  const n = src.length;
  for (let a = 0; a < n; ) {
    let b = Math.min(n, a + SLICE);
    if (b < n && src[b - 1] === CR) b++;
    if (BARE_BREAK.test(src.toString('latin1', a, b))) return false;
    a = b;
  }
  return true;
}

/** isCanonicalCrlf for small inputs (a 1 KB message): one byte loop, no native call per line. */
function isCanonicalSmall(src: Buffer): boolean {
  const n = src.length;
  for (let i = 0; i < n; i++) {
    const c = src[i];
    if (c === CR) {
      if (src[i + 1] !== LF) return false;
      i++;
    } else if (c === LF) {
      return false;
    }
  }
  return true;
}
