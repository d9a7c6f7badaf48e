/**
 * The Email notification over real SMTP on loopback (the `smtp-server`
 * package): what arrives is parsed with our own MIME parser and checked
 * (envelope, headers, both parts, the link); STARTTLS with authentication;
 * and every way the server can fail — refusing (5xx), refusing the
 * credentials, not offering STARTTLS, down, silent — gives a coded error
 * promptly, never a hang.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import { isKeyfleetError, type KeyfleetError } from '../../src/errors.ts';
import { PORTAL_NOTIFICATION_SUBJECT, SmtpMailer, type PortalNotificationMail, type SmtpMailerOptions } from '../../src/delivery/mailer.ts';
import { decodeTransferEncoding, getHeader, parseEntity, type MimeEntity } from '../../src/smime/mime/index.ts';
import { runOk } from '../support/exec.ts';

interface Received {
  readonly raw: Buffer;
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  readonly secure: boolean;
  readonly user: string | undefined;
}

interface LoopbackSmtp {
  readonly port: number;
  readonly received: Received[];
  close(): Promise<void>;
}

function smtpError(message: string, responseCode: number): Error {
  return Object.assign(new Error(message), { responseCode });
}

async function startSmtp(options: SMTPServerOptions = {}): Promise<LoopbackSmtp> {
  const received: Received[] = [];
  const server = new SMTPServer({
    logger: false,
    // A stalled client must not hold close() for the default 30 s.
    closeTimeout: 500,
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          raw: Buffer.concat(chunks),
          mailFrom: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          rcptTo: session.envelope.rcptTo.map((a) => a.address),
          secure: session.secure,
          user: session.user,
        });
        callback();
      });
    },
    ...options,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return { port, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const mail: PortalNotificationMail = {
  to: 'bob@contoso.example',
  displayName: 'Bob Jones',
  deviceName: 'Bob’s iPhone',
  link: 'https://keyfleet.contoso.example/portal/open/ntf_7f3a',
};

function mailerFor(port: number, extra: Partial<SmtpMailerOptions> = {}): SmtpMailer {
  return new SmtpMailer({ host: '127.0.0.1', port, security: 'none', from: '"Company Portal" <portal@contoso.example>', connectTimeoutMs: 2_000, sendTimeoutMs: 5_000, ...extra });
}

function textOf(part: MimeEntity): string {
  const charset = part.contentType.params.get('charset') ?? 'us-ascii';
  assert.equal(charset.toLowerCase(), 'utf-8', 'the parts are UTF-8');
  return Buffer.from(decodeTransferEncoding(part.body, part.transferEncoding)).toString('utf8');
}

/**
 * Far above the mailer's own timeouts (≤ 500 ms here): the bound tells a prompt failure from a hang, not a
 * fast machine from a slow one.
 */
const HANG_BOUND_MS = 15_000;

/** Runs `send`, expects a coded error, and that it came within `withinMs` (no hang). */
async function expectUnavailable(send: () => Promise<unknown>, withinMs: number): Promise<KeyfleetError> {
  const started = performance.now();
  let caught: unknown;
  try {
    await send();
  } catch (e) {
    caught = e;
  }
  const took = performance.now() - started;
  assert.ok(isKeyfleetError(caught), `expected a KeyfleetError, got ${String(caught)}`);
  assert.equal(caught.status, 502);
  assert.ok(took < withinMs, `the error took ${Math.round(took)} ms`);
  return caught;
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('SmtpMailer', { timeout: 60_000 }, () => {
  it('delivers the Company Portal notification: envelope, headers, text and HTML parts, the link', async () => {
    const smtp = await startSmtp();
    const mailer = mailerFor(smtp.port);
    try {
      const sent = await mailer.sendPortalNotification(mail);
      assert.equal(smtp.received.length, 1);
      const got = smtp.received[0]!;
      assert.equal(got.mailFrom, 'portal@contoso.example');
      assert.deepEqual(got.rcptTo, ['bob@contoso.example']);

      const message = parseEntity(got.raw);
      assert.equal(getHeader(message.headers, 'Subject'), PORTAL_NOTIFICATION_SUBJECT);
      assert.equal(getHeader(message.headers, 'From'), 'Company Portal <portal@contoso.example>');
      assert.equal(getHeader(message.headers, 'To'), 'Bob Jones <bob@contoso.example>');
      assert.equal(getHeader(message.headers, 'Message-ID'), sent.messageId);
      assert.equal(getHeader(message.headers, 'Auto-Submitted'), 'auto-generated');
      assert.equal(message.contentType.mediaType, 'multipart/alternative');
      assert.deepEqual(message.parts.map((p) => p.contentType.mediaType), ['text/plain', 'text/html']);

      const text = textOf(message.parts[0]!);
      assert.match(text, /^Hello Bob Jones,/);
      assert.match(text, /open the Company Portal on that device/);
      assert.ok(text.includes('Bob’s iPhone'), 'the device is named (UTF-8 survives the transfer encoding)');
      const links = text.match(/https?:\/\/\S+/g);
      assert.deepEqual(links, [mail.link]);

      const html = textOf(message.parts[1]!);
      assert.match(html, /<a href="https:\/\/keyfleet\.contoso\.example\/portal\/open\/ntf_7f3a">Open the Company Portal<\/a>/);
      assert.ok(html.includes('<strong>Bob’s iPhone</strong>'), html);
    } finally {
      mailer.close();
      await smtp.close();
    }
  });

  it('escapes names in the HTML part and keeps them on one line in the text part', async () => {
    const smtp = await startSmtp();
    const mailer = mailerFor(smtp.port);
    try {
      await mailer.sendPortalNotification({ ...mail, displayName: 'Eve <img src=x onerror=alert(1)>', deviceName: 'pad\r\nBcc: victim@example.com' });
      const message = parseEntity(smtp.received[0]!.raw);
      const html = textOf(message.parts[1]!);
      assert.ok(!html.includes('<img'), html);
      assert.ok(html.includes('Eve &#60;img src=x onerror=alert(1)&#62;'));
      const text = textOf(message.parts[0]!);
      assert.ok(text.includes('on pad Bcc: victim@example.com.'), text);
      assert.equal(getHeader(message.headers, 'Bcc'), undefined);
      assert.deepEqual(smtp.received[0]!.rcptTo, ['bob@contoso.example']);
    } finally {
      mailer.close();
      await smtp.close();
    }
  });

  it('refuses bad input before connecting: a non-http link, a header-breaking address', async () => {
    const mailer = mailerFor(await closedPort());
    try {
      for (const bad of [
        { ...mail, link: 'javascript:alert(1)' },
        { ...mail, link: 'not a url' },
        { ...mail, link: 'https://user:secret@example.com/x' },
        { ...mail, to: 'bob@contoso.example\r\nBcc: eve@example.com' },
        { ...mail, to: 'Bob <bob@contoso.example>' },
        { ...mail, displayName: 'Bob\r\nBcc: eve@example.com' },
      ]) {
        await assert.rejects(mailer.sendPortalNotification(bad), (e: unknown) => isKeyfleetError(e, 'KF_USAGE'));
      }
    } finally {
      mailer.close();
    }
  });

  describe('over STARTTLS with authentication', () => {
    let dir: string;
    let cert: string;
    let key: string;
    let smtp: LoopbackSmtp;
    let plainServer: LoopbackSmtp;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'kf-mailer-'));
      const certFile = join(dir, 'smtp.pem');
      const keyFile = join(dir, 'smtp.key');
      await runOk('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', keyFile, '-out', certFile]);
      cert = readFileSync(certFile, 'utf8');
      key = readFileSync(keyFile, 'utf8');
      smtp = await startSmtp({
        disabledCommands: [],
        authOptional: false,
        key,
        cert,
        authMethods: ['PLAIN', 'LOGIN'],
        onAuth(auth, _session, callback) {
          if (auth.username === 'portal' && auth.password === 'pa55-w0rd-secret') callback(null, { user: 'portal' });
          else callback(smtpError('Invalid username or password', 535));
        },
      });
      plainServer = await startSmtp();
    });
    after(async () => {
      await smtp?.close();
      await plainServer?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('upgrades, authenticates, and delivers; the password is nowhere in the message', async () => {
      const mailer = mailerFor(smtp.port, { security: 'starttls', ca: cert, servername: 'localhost', auth: { user: 'portal', pass: 'pa55-w0rd-secret' } });
      try {
        await mailer.sendPortalNotification(mail);
      } finally {
        mailer.close();
      }
      const got = smtp.received.at(-1)!;
      assert.equal(got.secure, true);
      assert.equal(got.user, 'portal');
      assert.ok(!got.raw.includes('pa55-w0rd-secret'));
    });

    it('a wrong password: a coded error that names neither the password nor the user', async () => {
      const mailer = mailerFor(smtp.port, { security: 'starttls', ca: cert, servername: 'localhost', auth: { user: 'portal', pass: 'wrong-secret' } });
      try {
        const e = await expectUnavailable(() => mailer.sendPortalNotification(mail), HANG_BOUND_MS);
        assert.match(e.message, /refused the credentials/);
        for (const secret of ['wrong-secret', 'portal']) assert.ok(!e.message.includes(secret) && !(e.detail ?? '').includes(secret), e.message);
      } finally {
        mailer.close();
      }
    });

    it('an untrusted server certificate is refused', async () => {
      const mailer = mailerFor(smtp.port, { security: 'starttls', servername: 'localhost', auth: { user: 'portal', pass: 'pa55-w0rd-secret' } });
      try {
        await expectUnavailable(() => mailer.sendPortalNotification(mail), HANG_BOUND_MS);
      } finally {
        mailer.close();
      }
    });

    it('security "starttls" refuses a server that does not offer STARTTLS rather than send in the clear', async () => {
      const before = plainServer.received.length;
      const mailer = mailerFor(plainServer.port, { security: 'starttls', ca: cert });
      try {
        await expectUnavailable(() => mailer.sendPortalNotification(mail), HANG_BOUND_MS);
      } finally {
        mailer.close();
      }
      assert.equal(plainServer.received.length, before);
    });
  });

  describe('failures are prompt, coded errors', () => {
    it('the server refuses the recipient (550)', async () => {
      const smtp = await startSmtp({ onRcptTo: (_a, _s, cb) => cb(smtpError('No such user here', 550)) });
      const mailer = mailerFor(smtp.port);
      try {
        const e = await expectUnavailable(() => mailer.sendPortalNotification(mail), HANG_BOUND_MS);
        assert.equal(e.detail, 'smtp:550');
        assert.match(e.message, new RegExp(`^mail server 127\\.0\\.0\\.1:${smtp.port} refused the message \\(550\\)$`));
      } finally {
        mailer.close();
        await smtp.close();
      }
    });

    it('the server refuses the connection (554 greeting)', async () => {
      const smtp = await startSmtp({ onConnect: (_s, cb) => cb(smtpError('Service closed', 554)) });
      const mailer = mailerFor(smtp.port);
      try {
        await expectUnavailable(() => mailer.sendPortalNotification(mail), HANG_BOUND_MS);
        assert.equal(smtp.received.length, 0);
      } finally {
        mailer.close();
        await smtp.close();
      }
    });

    it('the server is down', async () => {
      const mailer = mailerFor(await closedPort());
      try {
        const e = await expectUnavailable(() => mailer.sendPortalNotification(mail), HANG_BOUND_MS);
        assert.match(e.message, /cannot be reached/);
      } finally {
        mailer.close();
      }
    });

    it('the server accepts the connection and never speaks: the greeting timeout ends it', async () => {
      const sockets = new Set<Socket>();
      const silent: Server = createServer((s) => sockets.add(s.on('error', () => {})));
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
      const mailer = mailerFor((silent.address() as AddressInfo).port, { connectTimeoutMs: 300 });
      try {
        const e = await expectUnavailable(() => mailer.sendPortalNotification(mail), HANG_BOUND_MS);
        assert.match(e.message, /did not answer/);
      } finally {
        mailer.close();
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => silent.close(() => resolve()));
      }
    });

    it('the server stalls after the greeting: the send deadline ends it', async () => {
      const smtp = await startSmtp({ onRcptTo: () => {} });
      const mailer = mailerFor(smtp.port, { sendTimeoutMs: 500 });
      try {
        const e = await expectUnavailable(() => mailer.sendPortalNotification(mail), HANG_BOUND_MS);
        assert.match(e.message, /did not answer/);
      } finally {
        mailer.close();
        await smtp.close();
      }
    });
  });
});
