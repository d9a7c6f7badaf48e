/**
 * Parameterised header values: Content-Type (RFC 2045 §5.1) and
 * Content-Disposition (RFC 2183), with RFC 2231 extended values and
 * continuations.
 *
 *   content    := "Content-Type" ":" type "/" subtype *(";" parameter)
 *   parameter  := attribute "=" value
 *   value      := token / quoted-string
 *   RFC 2231   :  name*=charset'lang'%XX..   name*0=..  name*1*=%XX..
 *
 * Parsing is lenient where real mail is sloppy (unquoted values holding
 * tspecials such as Outlook-style boundaries `----=_Part_1`, a missing ";",
 * comments) and strict only where it must be: the result is always a
 * well-formed structure or undefined.
 */
import { malformed } from './bytes.ts';

/** A parsed Content-Type (RFC 2045 §5.1). */
export interface ContentType {
  /** Lower-cased, e.g. "multipart". */
  readonly type: string;
  /** Lower-cased, e.g. "signed". */
  readonly subtype: string;
  /** `type/subtype`, lower-cased. */
  readonly mediaType: string;
  /** Parameters by lower-cased name; values decoded (RFC 2231) but case kept. */
  readonly params: ReadonlyMap<string, string>;
}

/** A parsed Content-Disposition (RFC 2183 §2). */
export interface ContentDisposition {
  /** Lower-cased, e.g. "attachment". */
  readonly type: string;
  readonly params: ReadonlyMap<string, string>;
}

/** RFC 2045 §5.1 token: any CHAR except SPACE, CTLs and tspecials. */
const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;
const TOKEN_CHAR = /[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]/;

class Scanner {
  pos = 0;
  readonly s: string;

  constructor(s: string) {
    this.s = s;
  }

  get done(): boolean {
    return this.pos >= this.s.length;
  }

  peek(): string {
    return this.s[this.pos] ?? '';
  }

  /** Skips whitespace and RFC 5322 comments (nested, with quoted pairs). */
  skipCfws(): void {
    for (;;) {
      while (/[ \t\r\n]/.test(this.peek()) && !this.done) this.pos++;
      if (this.peek() !== '(') return;
      let depth = 0;
      while (!this.done) {
        const c = this.s[this.pos++];
        if (c === '\\') this.pos++;
        else if (c === '(') depth++;
        else if (c === ')' && --depth === 0) break;
      }
    }
  }

  token(): string {
    const start = this.pos;
    while (!this.done && TOKEN_CHAR.test(this.peek())) this.pos++;
    return this.s.slice(start, this.pos);
  }

  /** A quoted-string at `pos` (which holds the opening quote); unterminated runs to the end. */
  quoted(): string {
    this.pos++;
    let out = '';
    while (!this.done) {
      const c = this.s[this.pos++]!;
      if (c === '"') return out;
      if (c === '\\' && !this.done) out += this.s[this.pos++];
      else out += c;
    }
    return out;
  }

  skipTo(c: string): void {
    const i = this.s.indexOf(c, this.pos);
    this.pos = i < 0 ? this.s.length : i;
  }
}

interface RawParam {
  readonly name: string;
  readonly value: string;
}

function parseRawParams(sc: Scanner): RawParam[] {
  const out: RawParam[] = [];
  for (;;) {
    sc.skipCfws();
    if (sc.done) return out;
    // Tolerate a missing ";" before a parameter, and stray empty ones (";;").
    if (sc.peek() === ';') {
      sc.pos++;
      continue;
    }
    const name = sc.token().toLowerCase();
    sc.skipCfws();
    if (name === '' || sc.peek() !== '=') {
      if (sc.pos === sc.s.length) return out;
      sc.pos++;
      sc.skipTo(';');
      continue;
    }
    sc.pos++;
    sc.skipCfws();
    let value: string;
    if (sc.peek() === '"') {
      value = sc.quoted();
    } else {
      const start = sc.pos;
      value = sc.token();
      const afterToken = sc.pos;
      sc.skipCfws();
      if (!sc.done && sc.peek() !== ';') {
        // An unquoted value with tspecials or spaces (`boundary=----=_Part_1`,
        // `name=my file.pdf`): take everything up to the next ";".
        sc.pos = start;
        sc.skipTo(';');
        value = sc.s.slice(start, sc.pos).replace(/[ \t\r\n]+$/, '');
      } else if (afterToken === start) {
        value = '';
      }
    }
    out.push({ name, value });
  }
}

/** Decodes %XX escapes into bytes; other characters as UTF-8. */
function percentDecode(s: string): Uint8Array {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      const ch = String.fromCodePoint(s.codePointAt(i)!);
      bytes.push(...Buffer.from(ch, 'utf8'));
      i += ch.length - 1;
    }
  }
  return Uint8Array.from(bytes);
}

function decodeCharset(bytes: Uint8Array, charset: string): string {
  try {
    return new TextDecoder(charset === '' ? 'utf-8' : charset).decode(bytes);
  } catch {
    // An unknown charset label: UTF-8 is the most likely truth today.
    return new TextDecoder('utf-8').decode(bytes);
  }
}

/** Most RFC 2231 sections of one parameter we assemble. */
const MAX_SECTIONS = 1000;

interface Section {
  readonly value: string;
  readonly extended: boolean;
}

/**
 * Combines raw parameters into values (RFC 2231 §3-4): `name*` is an
 * extended value `charset'language'%XX`, `name*N` and `name*N*` are
 * continuation sections assembled in order from 0. When both a plain and an
 * RFC 2231 form are present the RFC 2231 one wins (it carries more), and of
 * duplicate plain parameters the first wins.
 */
function assembleParams(raw: readonly RawParam[]): Map<string, string> {
  const plain = new Map<string, string>();
  const sections = new Map<string, Map<number, Section>>();
  for (const { name, value } of raw) {
    const m = /^(.+?)\*(?:(0|[1-9][0-9]{0,3})(\*)?)?$/.exec(name);
    if (!m) {
      if (!plain.has(name)) plain.set(name, value);
      continue;
    }
    const base = m[1]!;
    const index = m[2] === undefined ? 0 : Number(m[2]);
    const extended = m[2] === undefined || m[3] === '*';
    if (index >= MAX_SECTIONS) continue;
    let map = sections.get(base);
    if (!map) sections.set(base, (map = new Map()));
    if (!map.has(index)) map.set(index, { value, extended });
  }
  const out = new Map(plain);
  for (const [base, map] of sections) {
    const parts: Section[] = [];
    for (let i = 0; map.has(i); i++) parts.push(map.get(i)!);
    if (parts.length === 0) continue;
    if (!parts.some((p) => p.extended)) {
      out.set(base, parts.map((p) => p.value).join(''));
      continue;
    }
    let charset = '';
    const chunks: Uint8Array[] = [];
    parts.forEach((p, i) => {
      let v = p.value;
      if (i === 0 && p.extended) {
        const q = /^([^']*)'[^']*'/.exec(v);
        if (q) {
          charset = q[1]!.toLowerCase();
          v = v.slice(q[0].length);
        }
      }
      chunks.push(p.extended ? percentDecode(v) : Buffer.from(v, 'utf8'));
    });
    out.set(base, decodeCharset(Buffer.concat(chunks), charset));
  }
  return out;
}

/** Parses a Content-Type value; undefined when it has no `type/subtype` (RFC 2045 §5.2 then says text/plain). */
export function parseContentType(value: string): ContentType | undefined {
  const sc = new Scanner(value);
  sc.skipCfws();
  const type = sc.token().toLowerCase();
  sc.skipCfws();
  if (type === '' || sc.peek() !== '/') return undefined;
  sc.pos++;
  sc.skipCfws();
  const subtype = sc.token().toLowerCase();
  if (subtype === '') return undefined;
  return { type, subtype, mediaType: `${type}/${subtype}`, params: assembleParams(parseRawParams(sc)) };
}

/** Parses a Content-Disposition value (RFC 2183); undefined when it has no disposition type. */
export function parseContentDisposition(value: string): ContentDisposition | undefined {
  const sc = new Scanner(value);
  sc.skipCfws();
  const type = sc.token().toLowerCase();
  if (type === '') return undefined;
  return { type, params: assembleParams(parseRawParams(sc)) };
}

/** RFC 2231 attribute-char: token characters except "*", "'" and "%". */
const ATTR_CHAR = /[!#$&+\-.0-9A-Z^_`a-z|~]/;

function percentEncode(value: string): string[] {
  // One entry per character, so that continuation sections never split one
  // (some readers decode each section on its own).
  const out: string[] = [];
  for (const ch of value) {
    let enc = '';
    for (const b of Buffer.from(ch, 'utf8')) {
      const c = String.fromCharCode(b);
      enc += b < 0x80 && ATTR_CHAR.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    }
    out.push(enc);
  }
  return out;
}

/** Section length for RFC 2231 continuations, so that each fits on a folded line. */
const SECTION = 60;
/** Plain values longer than this are split into continuations (keeps lines under 998). */
const LONG_VALUE = 900;

/**
 * Formats `name=value` parameter(s): a bare token when possible, else a
 * quoted-string, else (non-ASCII or control characters) an RFC 2231
 * extended value in UTF-8, split into continuation sections when long.
 */
export function formatParameter(name: string, value: string): string[] {
  if (!TOKEN.test(name) || /[*'%]/.test(name)) throw malformed(`invalid parameter name ${JSON.stringify(name)}`);
  const ascii = /^[\x20-\x7e\t]*$/.test(value);
  if (ascii && value.length <= LONG_VALUE) {
    return [TOKEN.test(value) ? `${name}=${value}` : `${name}=${quote(value)}`];
  }
  if (ascii) {
    const out: string[] = [];
    for (let i = 0; i * SECTION < value.length; i++) out.push(`${name}*${i}=${quote(value.slice(i * SECTION, (i + 1) * SECTION))}`);
    return out;
  }
  const prefix = "utf-8''";
  const units = percentEncode(value);
  const sections: string[] = [];
  let cur = '';
  for (const u of units) {
    if (cur.length + u.length > (sections.length === 0 ? SECTION - prefix.length : SECTION)) {
      sections.push(cur);
      cur = '';
    }
    cur += u;
  }
  sections.push(cur);
  if (sections.length === 1) return [`${name}*=${prefix}${sections[0]}`];
  return sections.map((s, i) => (i === 0 ? `${name}*0*=${prefix}${s}` : `${name}*${i}*=${s}`));
}

function quote(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * Formats `value; p1=v1; p2=v2` with a space after each ";" so that
 * `formatHeaderField` can fold between parameters.
 */
export function formatParameterized(value: string, params: Iterable<readonly [string, string]>): string {
  const out = [value];
  for (const [name, v] of params) out.push(...formatParameter(name, v));
  return out.join('; ');
}
