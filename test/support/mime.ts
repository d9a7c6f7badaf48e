/**
 * Just enough MIME to move CMS between whole messages and the raw DER that
 * gpgsm and NSS cmsutil read and write: wrap DER as application/pkcs7-mime
 * or multipart/signed (RFC 8551 §3.4, RFC 1847), and take it back out.
 * Independent of src/ on purpose, so the harness cannot share our bugs.
 */

export type SmimeType = 'signed-data' | 'enveloped-data' | 'authEnveloped-data';
export type Header = readonly [name: string, value: string];

export interface Entity {
  /** Header fields in order, unfolded (RFC 5322 §2.2.3). */
  readonly headers: readonly Header[];
  /** The body exactly as it appears after the blank line. */
  readonly body: Buffer;
}

const CRLF = '\r\n';

/** Split an entity at its first empty line (CRLF or bare LF line endings). */
export function parseEntity(bytes: Uint8Array): Entity {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  let bodyStart = buf.length;
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] !== 0x0a) continue;
    // A line that is empty (LF) or holds only CR ends the header section.
    if (i === 0 || buf[i - 1] === 0x0a) {
      end = i;
      bodyStart = i + 1;
      break;
    }
    if (buf[i - 1] === 0x0d && (i === 1 || buf[i - 2] === 0x0a)) {
      end = i - 1;
      bodyStart = i + 1;
      break;
    }
  }
  const headerText = buf.subarray(0, end === -1 ? buf.length : end).toString('latin1');
  const headers: Header[] = [];
  for (const line of headerText.split(/\r?\n/)) {
    if (line === '') continue;
    const last = headers[headers.length - 1];
    if (/^[ \t]/.test(line) && last !== undefined) {
      headers[headers.length - 1] = [last[0], `${last[1]} ${line.trim()}`];
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`MIME test helper: not a header line: ${JSON.stringify(line.slice(0, 80))}`);
    headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return { headers, body: buf.subarray(bodyStart) };
}

export function header(entity: Entity, name: string): string | undefined {
  const lower = name.toLowerCase();
  return entity.headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

export interface ContentType {
  /** type/subtype in lower case. */
  readonly type: string;
  /** Parameter names in lower case; values unquoted. */
  readonly params: Readonly<Record<string, string>>;
}

export function contentType(entity: Entity): ContentType {
  const value = header(entity, 'content-type') ?? 'text/plain';
  const [type = '', ...rest] = splitParams(value);
  const params: Record<string, string> = {};
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq <= 0) continue;
    let v = p.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    params[p.slice(0, eq).trim().toLowerCase()] = v;
  }
  return { type: type.trim().toLowerCase(), params };
}

function splitParams(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i] ?? '';
    if (c === '\\' && quoted) {
      cur += c + (value[i + 1] ?? '');
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      cur += c;
    } else if (c === ';' && !quoted) {
      out.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  out.push(cur);
  return out;
}

/**
 * The body parts of a multipart entity, each exactly as it appears between
 * its delimiters: RFC 2046 §5.1.1 makes the line break before a delimiter
 * part of the delimiter, so it is not part of the body part.
 */
export function multipartParts(entity: Entity): Buffer[] {
  const boundary = contentType(entity).params['boundary'];
  if (boundary === undefined) throw new Error('MIME test helper: multipart without boundary');
  const body = entity.body;
  const text = body.toString('latin1');
  const delimiter = `--${boundary}`;
  const starts: { lineStart: number; contentStart: number; close: boolean }[] = [];
  let pos = 0;
  while (pos <= text.length) {
    const lineEnd = text.indexOf('\n', pos);
    const line = text.slice(pos, lineEnd === -1 ? text.length : lineEnd).replace(/\r$/, '');
    if (line.startsWith(delimiter)) {
      const tail = line.slice(delimiter.length);
      if (tail.startsWith('--')) {
        starts.push({ lineStart: pos, contentStart: -1, close: true });
        break;
      }
      if (tail.trim() === '') starts.push({ lineStart: pos, contentStart: lineEnd === -1 ? text.length : lineEnd + 1, close: false });
    }
    if (lineEnd === -1) break;
    pos = lineEnd + 1;
  }
  const parts: Buffer[] = [];
  for (let i = 0; i < starts.length - 1; i++) {
    const s = starts[i];
    const next = starts[i + 1];
    if (s === undefined || next === undefined || s.close) continue;
    let end = next.lineStart;
    if (end > 0 && text[end - 1] === '\n') end--;
    if (end > 0 && text[end - 1] === '\r') end--;
    parts.push(body.subarray(s.contentStart, Math.max(s.contentStart, end)));
  }
  if (parts.length === 0) throw new Error('MIME test helper: multipart has no body parts');
  return parts;
}

/** The body with its Content-Transfer-Encoding (base64, quoted-printable, identity) undone. */
export function decodedBody(entity: Entity): Buffer {
  const cte = (header(entity, 'content-transfer-encoding') ?? '7bit').toLowerCase();
  if (cte === 'base64') return Buffer.from(entity.body.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
  if (cte === 'quoted-printable') {
    const s = entity.body
      .toString('latin1')
      .replace(/=\r?\n/g, '')
      .replace(/=([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(s, 'latin1');
  }
  return entity.body;
}

/** Canonical line endings (RFC 8551 §3.1.1): every bare LF becomes CRLF. */
export function canonicalize(bytes: Uint8Array): Buffer {
  return Buffer.from(Buffer.from(bytes).toString('latin1').replace(/\r?\n/g, CRLF), 'latin1');
}

export function base64Lines(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return lines.join(CRLF) + CRLF;
}

export function buildEntity(headers: readonly Header[], body: string | Uint8Array): Buffer {
  const head = headers.map(([n, v]) => `${n}: ${v}${CRLF}`).join('');
  return Buffer.concat([Buffer.from(`${head}${CRLF}`, 'latin1'), typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body)]);
}

/** DER CMS as an application/pkcs7-mime message (RFC 8551 §3.2). */
export function pkcs7MimeMessage(der: Uint8Array, smimeType: SmimeType, outer: readonly Header[] = []): Buffer {
  return buildEntity(
    [
      ...outer,
      ['MIME-Version', '1.0'],
      ['Content-Type', `application/pkcs7-mime; smime-type=${smimeType}; name="smime.p7m"`],
      ['Content-Transfer-Encoding', 'base64'],
      ['Content-Disposition', 'attachment; filename="smime.p7m"'],
    ],
    base64Lines(der),
  );
}

export type Micalg = 'sha-256' | 'sha-384' | 'sha-512';

/** A detached signature over `content` (a canonical MIME entity) as multipart/signed (RFC 8551 §3.5.3). */
export function multipartSignedMessage(content: Uint8Array, signatureDer: Uint8Array, micalg: Micalg, outer: readonly Header[] = []): Buffer {
  const boundary = `----keyfleet-test-${Buffer.from(signatureDer.subarray(-12)).toString('hex')}`;
  const body = Buffer.concat([
    Buffer.from(`This is an S/MIME signed message${CRLF}${CRLF}--${boundary}${CRLF}`, 'latin1'),
    Buffer.from(content),
    Buffer.from(
      `${CRLF}--${boundary}${CRLF}` +
        `Content-Type: application/pkcs7-signature; name="smime.p7s"${CRLF}` +
        `Content-Transfer-Encoding: base64${CRLF}` +
        `Content-Disposition: attachment; filename="smime.p7s"${CRLF}${CRLF}` +
        base64Lines(signatureDer) +
        `${CRLF}--${boundary}--${CRLF}`,
      'latin1',
    ),
  ]);
  return buildEntity(
    [
      ...outer,
      ['MIME-Version', '1.0'],
      ['Content-Type', `multipart/signed; protocol="application/pkcs7-signature"; micalg=${micalg}; boundary="${boundary}"`],
    ],
    body,
  );
}

export type ExtractedCms =
  | { readonly kind: 'detached'; readonly content: Buffer; readonly signature: Buffer; readonly micalg: string | undefined }
  | { readonly kind: 'pkcs7-mime'; readonly smimeType: string | undefined; readonly der: Buffer };

/**
 * The CMS inside an S/MIME message: the signed part (canonicalised, as a
 * receiving client does) and signature of multipart/signed, or the DER of
 * application/pkcs7-mime (also the legacy x-pkcs7-mime spelling).
 */
export function extractCms(message: Uint8Array): ExtractedCms {
  const entity = parseEntity(message);
  const ct = contentType(entity);
  if (ct.type === 'multipart/signed') {
    const [content, signaturePart] = multipartParts(entity);
    if (content === undefined || signaturePart === undefined) throw new Error('MIME test helper: multipart/signed needs two parts');
    return { kind: 'detached', content: canonicalize(content), signature: decodedBody(parseEntity(signaturePart)), micalg: ct.params['micalg'] };
  }
  if (ct.type === 'application/pkcs7-mime' || ct.type === 'application/x-pkcs7-mime') {
    return { kind: 'pkcs7-mime', smimeType: ct.params['smime-type'], der: decodedBody(entity) };
  }
  throw new Error(`MIME test helper: not an S/MIME message (Content-Type ${ct.type})`);
}

/** A small canonical text/plain MIME entity, what a client signs or encrypts. */
export function textEntity(text: string): Buffer {
  return buildEntity(
    [
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['Content-Transfer-Encoding', '7bit'],
    ],
    `${text.replace(/\r?\n/g, CRLF)}${CRLF}`,
  );
}
