/** Realistic messages for the MIME tests, written out so every byte is visible. */

export function crlf(lines: readonly string[]): Buffer {
  return Buffer.from(lines.join('\r\n'), 'utf8');
}

export function lf(lines: readonly string[]): Buffer {
  return Buffer.from(lines.join('\n'), 'utf8');
}

export function text(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
}

/**
 * A Thunderbird-style message: multipart/mixed holding multipart/alternative
 * (text and HTML) and two attachments, one with an RFC 2231 file name.
 */
export const nestedMixed: readonly string[] = [
  'Return-Path: <alice@example.com>',
  'From: Alice Example <alice@example.com>',
  'To: Bob <bob@example.org>,',
  ' Carol <carol@example.org>',
  'Subject: Quarterly figures',
  'Date: Tue, 04 Mar 2025 10:15:00 +0100',
  'Message-ID: <4f1c2a@example.com>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed;',
  ' boundary="------------mixed0123456789"',
  'Content-Language: en-US',
  '',
  'This is a multi-part message in MIME format.',
  '--------------mixed0123456789',
  'Content-Type: multipart/alternative;',
  '\tboundary="------------alt9876543210"',
  '',
  '',
  '--------------alt9876543210',
  'Content-Type: text/plain; charset=UTF-8; format=flowed',
  'Content-Transfer-Encoding: 8bit',
  '',
  'Hi Bob, the figures are attached. Grüße',
  '',
  '--------------alt9876543210',
  'Content-Type: text/html; charset=UTF-8',
  'Content-Transfer-Encoding: 7bit',
  '',
  '<html><body><p>Hi Bob, the figures are attached.</p></body></html>',
  '',
  '--------------alt9876543210--',
  '',
  '--------------mixed0123456789',
  'Content-Type: application/pdf; name="q1.pdf"',
  'Content-Disposition: attachment; filename="q1.pdf"',
  'Content-Transfer-Encoding: base64',
  '',
  'JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURl',
  'Y29kZT4+CnN0cmVhbQp4nDPQM1Qo5ypUMFAw0DMwslAwtTTVMzdQsDAx0bNUKErlCtdSyOMK5AIA',
  '',
  '--------------mixed0123456789',
  'Content-Type: text/csv; charset=utf-8',
  "Content-Disposition: attachment; filename*0*=utf-8''%E2%82%AC%20rates;",
  ' filename*1=" 2025.csv"',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  'currency,rate',
  'EUR,1.00=',
  '',
  '--------------mixed0123456789--',
  '',
];

/** Outlook-style: an unquoted boundary holding "=" and a preamble. */
export const outlookAlternative: readonly string[] = [
  'From: "Dave" <dave@example.net>',
  'To: <erin@example.net>',
  'Subject: Lunch?',
  'MIME-Version: 1.0',
  'Content-Type: multipart/alternative; boundary=----=_NextPart_000_0012_01DB8C5A.2B3C4D50',
  '',
  'This is a multipart message in MIME format.',
  '',
  '------=_NextPart_000_0012_01DB8C5A.2B3C4D50',
  'Content-Type: text/plain; charset="us-ascii"',
  'Content-Transfer-Encoding: 7bit',
  '',
  'Noon?',
  '',
  '------=_NextPart_000_0012_01DB8C5A.2B3C4D50',
  'Content-Type: text/html; charset="us-ascii"',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  '<p>Noon=3F</p>',
  '',
  '------=_NextPart_000_0012_01DB8C5A.2B3C4D50--',
  '',
];

/** What `openssl smime -sign` writes (legacy x-pkcs7 types, micalg sha1, OpenSSL's preamble). */
export const opensslSigned: readonly string[] = [
  'MIME-Version: 1.0',
  'Content-Type: multipart/signed; protocol="application/x-pkcs7-signature"; micalg="sha1"; boundary="----D2D5B0C0A2E4B8B3C5F0E9A1B7C3D4E5"',
  '',
  'This is an S/MIME signed message',
  '',
  '------D2D5B0C0A2E4B8B3C5F0E9A1B7C3D4E5',
  'Content-Type: text/plain',
  '',
  'signed text',
  '',
  '------D2D5B0C0A2E4B8B3C5F0E9A1B7C3D4E5',
  'Content-Type: application/x-pkcs7-signature; name="smime.p7s"',
  'Content-Transfer-Encoding: base64',
  'Content-Disposition: attachment; filename="smime.p7s"',
  '',
  'MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0B',
  '',
  '------D2D5B0C0A2E4B8B3C5F0E9A1B7C3D4E5--',
  '',
  '',
];

/** An encrypted message as Outlook sends it. */
export const opaqueEnveloped: readonly string[] = [
  'From: alice@example.com',
  'To: bob@example.org',
  'Subject: secret',
  'MIME-Version: 1.0',
  'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"',
  'Content-Disposition: attachment; filename="smime.p7m"',
  'Content-Transfer-Encoding: base64',
  '',
  'MIAGCSqGSIb3DQEHA6CAMIACAQAxggFOMIIBSgIBADAyMCoxKDAmBgNVBAMTH1Rl',
  '',
];
