/**
 * The Email end-user notification (docs/delivery.md "Notifications"): when
 * the S/MIME policy's notificationType is `email`, the user is told by mail
 * to open the Company Portal on their enrolled device to retrieve their
 * S/MIME certificates, with a link that opens the landing page there (seed:
 * "Sends an email to the end user informing them that they need to launch
 * Company Portal to retrieve their S/MIME certificates").
 *
 * The message carries no secret: no challenge, no token, nothing but the
 * caller's link, which names a notification and nothing more.
 */
import nodemailer, { type SMTPSentMessageInfo, type Transporter } from 'nodemailer';
import { KeyfleetError, type ErrorCode } from '../errors.ts';

/** One Company Portal notification, addressed to one user about one device. */
export interface PortalNotificationMail {
  /** The user's mail address (addr-spec only, no display name). */
  readonly to: string;
  readonly displayName: string;
  readonly deviceName: string;
  /** http(s) URL that opens the landing page (…/portal/open/{notificationId}). */
  readonly link: string;
}

export interface SentMail {
  /** The Message-ID header given to the message, angle brackets included. */
  readonly messageId: string;
}

export interface NotificationMailer {
  sendPortalNotification(mail: PortalNotificationMail, options?: { readonly signal?: AbortSignal }): Promise<SentMail>;
  /** Releases connections; later sends open new ones. */
  close(): void;
}

/**
 * How the connection is protected. `tls`: TLS from the first byte (port
 * 465). `starttls`: STARTTLS is required, a server that does not offer it is
 * refused. `opportunistic`: STARTTLS when offered. `none`: never TLS (a relay
 * on loopback or a private network only).
 */
export type SmtpSecurity = 'tls' | 'starttls' | 'opportunistic' | 'none';

export interface SmtpMailerOptions {
  readonly host: string;
  readonly port: number;
  readonly security: SmtpSecurity;
  readonly auth?: { readonly user: string; readonly pass: string };
  /** The From address: `keyfleet@example.com` or `"Company Portal" <keyfleet@example.com>`. */
  readonly from: string;
  /** PEM CA certificates to trust for the server's TLS certificate instead of the system store. */
  readonly ca?: string | readonly string[];
  /** The TLS server name to check, when it differs from host. */
  readonly servername?: string;
  /** The name sent in EHLO; nodemailer's default is the machine's hostname. */
  readonly clientName?: string;
  /** Milliseconds for TCP connect and for the server's greeting (each). Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Milliseconds the whole send may take, whatever the server does. Default 60 s. */
  readonly sendTimeoutMs?: number;
}

export const PORTAL_NOTIFICATION_SUBJECT = 'Open Company Portal to get your S/MIME certificates';

/** Every SMTP failure: refused, unreachable, too slow, or TLS/credentials that do not work. */
const MAIL_UNAVAILABLE: ErrorCode = 'KF_MAIL_SEND_FAILED';

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_SEND_TIMEOUT_MS = 60_000;

export class SmtpMailer implements NotificationMailer {
  readonly #transport: Transporter<SMTPSentMessageInfo>;
  readonly #from: string;
  readonly #server: string;
  readonly #sendTimeoutMs: number;

  constructor(options: SmtpMailerOptions) {
    if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535) {
      throw new KeyfleetError('KF_USAGE', `SMTP port must be 1-65535, not ${options.port}`);
    }
    if (options.host === '' || /[\s/]/.test(options.host)) throw new KeyfleetError('KF_USAGE', 'SMTP host must be a host name or address');
    assertSafeHeaderText(options.from, 'From address');
    this.#from = options.from;
    this.#server = `${options.host}:${options.port}`;
    this.#sendTimeoutMs = options.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS;
    const connectTimeout = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const ca = options.ca === undefined ? undefined : typeof options.ca === 'string' ? options.ca : [...options.ca];
    this.#transport = nodemailer.createTransport({
      host: options.host,
      port: options.port,
      secure: options.security === 'tls',
      requireTLS: options.security === 'starttls',
      ignoreTLS: options.security === 'none',
      ...(options.auth === undefined ? {} : { auth: { user: options.auth.user, pass: options.auth.pass } }),
      ...(options.clientName === undefined ? {} : { name: options.clientName }),
      tls: {
        minVersion: 'TLSv1.2',
        ...(ca === undefined ? {} : { ca }),
        ...(options.servername === undefined ? {} : { servername: options.servername }),
      },
      connectionTimeout: connectTimeout,
      greetingTimeout: connectTimeout,
      dnsTimeout: connectTimeout,
      socketTimeout: this.#sendTimeoutMs,
      // The message is built from strings only: no attachment may name a file or URL.
      disableFileAccess: true,
      disableUrlAccess: true,
      logger: false,
    });
  }

  async sendPortalNotification(mail: PortalNotificationMail, options: { readonly signal?: AbortSignal } = {}): Promise<SentMail> {
    const message = composePortalNotification(mail);
    const deadline = AbortSignal.timeout(this.#sendTimeoutMs);
    const signal = options.signal === undefined ? deadline : AbortSignal.any([deadline, options.signal]);
    try {
      const info = await this.#transport.sendMail({
        from: this.#from,
        to: { name: mail.displayName, address: mail.to },
        subject: message.subject,
        text: message.text,
        html: message.html,
        // RFC 3834 §5: machine-made mail; auto-responders must not answer it.
        headers: { 'Auto-Submitted': 'auto-generated' },
        signal,
      });
      return { messageId: info.messageId };
    } catch (e) {
      throw this.#unavailable(e, deadline.aborted);
    }
  }

  close(): void {
    this.#transport.close();
  }

  /** The safe message names the server and the SMTP reply code; the server's own text (and anything else) stays in `cause`. */
  #unavailable(e: unknown, timedOut: boolean): KeyfleetError {
    const err = e as { code?: unknown; responseCode?: unknown; name?: unknown };
    const responseCode = typeof err.responseCode === 'number' ? err.responseCode : undefined;
    const code = typeof err.code === 'string' ? err.code : undefined;
    let what: string;
    if (timedOut || code === 'ETIMEDOUT') what = `did not answer within the time allowed`;
    else if (err.name === 'AbortError' || code === 'EABORT') what = 'send was cancelled';
    else if (code === 'EAUTH' || code === 'ENOAUTH') what = `refused the credentials${responseCode === undefined ? '' : ` (${responseCode})`}`;
    else if (code === 'ETLS') what = 'could not establish TLS';
    else if (responseCode !== undefined) what = `refused the message (${responseCode})`;
    else if (code === 'EDNS') what = 'cannot be resolved';
    else what = `cannot be reached${code === undefined ? '' : ` (${code})`}`;
    return new KeyfleetError(MAIL_UNAVAILABLE, `mail server ${this.#server} ${what}`, {
      cause: e,
      detail: responseCode === undefined ? (code ?? 'unknown') : `smtp:${responseCode}`,
    });
  }
}

export interface ComposedMail {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

/** The notification's subject and bodies; validates what the caller gave. */
export function composePortalNotification(mail: PortalNotificationMail): ComposedMail {
  if (!/^[^\s@<>",;]+@[^\s@<>",;]+$/.test(mail.to)) throw new KeyfleetError('KF_USAGE', 'notification mail needs a plain mail address (name@domain)');
  assertSafeHeaderText(mail.displayName, 'display name');
  const link = httpUrl(mail.link);
  const name = oneLine(mail.displayName) || 'there';
  const device = oneLine(mail.deviceName) || 'your device';
  const text = [
    `Hello ${name},`,
    '',
    `Your organisation has set up S/MIME for Outlook on ${device}. To sign and encrypt email in Outlook, open the Company Portal on that device and retrieve your S/MIME certificates.`,
    '',
    'If you are reading this on your enrolled device, open this link to go to the Company Portal:',
    link,
    '',
    'The Company Portal shows each certificate as it is retrieved. When it says "Ready to use in Outlook", you can sign and encrypt email.',
    '',
    'You received this message because your organisation manages S/MIME certificates for your device.',
    '',
  ].join('\n');
  const html = [
    '<!doctype html>',
    `<html><head><meta charset="utf-8"><title>${escapeHtml(PORTAL_NOTIFICATION_SUBJECT)}</title></head><body>`,
    `<p>Hello ${escapeHtml(name)},</p>`,
    `<p>Your organisation has set up S/MIME for Outlook on <strong>${escapeHtml(device)}</strong>. To sign and encrypt email in Outlook, open the Company Portal on that device and retrieve your S/MIME certificates.</p>`,
    `<p><a href="${escapeHtml(link)}">Open the Company Portal</a></p>`,
    `<p>If the button does not work on your enrolled device, open this address: ${escapeHtml(link)}</p>`,
    '<p>The Company Portal shows each certificate as it is retrieved. When it says &quot;Ready to use in Outlook&quot;, you can sign and encrypt email.</p>',
    '</body></html>',
    '',
  ].join('\n');
  return { subject: PORTAL_NOTIFICATION_SUBJECT, text, html };
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function httpUrl(link: string): string {
  let url: URL;
  try {
    url = new URL(link);
  } catch {
    throw new KeyfleetError('KF_USAGE', 'notification link is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new KeyfleetError('KF_USAGE', 'notification link must be an http or https URL');
  if (url.username !== '' || url.password !== '') throw new KeyfleetError('KF_USAGE', 'notification link must not carry credentials');
  return url.href;
}

/** Names shown in a body: control characters (line breaks included) become spaces. */
function oneLine(s: string): string {
  return s.replace(/[\p{Cc}\u2028\u2029]+/gu, ' ').trim();
}

function assertSafeHeaderText(s: string, what: string): void {
  if (/[\r\n\0]/.test(s)) throw new KeyfleetError('KF_USAGE', `${what} must be one line`);
}
