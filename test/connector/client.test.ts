/**
 * The connector's HTTP client against a scripted loopback server (what a
 * misbehaving server or proxy might answer), its private-key file loader,
 * and the server's DeliveryQueueSignal.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, publicEncrypt, constants } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConnectorClient, parseClaimResponse, retryable } from '../../src/connector/client.ts';
import { loadConnectorKeyFile } from '../../src/connector/keystore.ts';
import { DeliveryQueueSignal } from '../../src/delivery/connectors.ts';
import { isKeyfleetError } from '../../src/errors.ts';

const CREDENTIAL = `kfc_${'a'.repeat(43)}`;

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

describe('ConnectorClient', () => {
  let server: Server;
  let url: string;
  let handler: Handler = (_req, _body, res) => res.end();
  const seen: { url: string; headers: IncomingMessage['headers']; body: string }[] = [];

  before(async () => {
    server = createServer(async (req, res) => {
      let body = '';
      for await (const c of req) body += (c as Buffer).toString('utf8');
      seen.push({ url: req.url ?? '', headers: req.headers, body });
      handler(req, body, res);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  const client = (timeoutMs = 2_000) => new ConnectorClient({ url, credential: CREDENTIAL, version: '6.2601.1.0', timeoutMs });
  const json = (status: number, value: unknown, type = 'application/json') => (_req: IncomingMessage, _body: string, res: ServerResponse) => {
    res.writeHead(status, { 'content-type': type });
    res.end(JSON.stringify(value));
  };
  const claimed = {
    requestId: 'r1',
    claimToken: 't1',
    leaseExpiresAt: new Date(Date.now() + 60_000).toISOString(),
    deviceId: 'd1',
    deviceCertificate: 'AAAA',
    pfx: { id: 'p1', thumbprint: 'A'.repeat(40), paddingScheme: 'oaepSha256', encryptedPfxBlob: 'AAAA', encryptedPfxPassword: 'AAAA' },
  };

  test('every request carries the credential and the version; claim and result go to /connector/v1', async () => {
    handler = json(200, { requests: [claimed] });
    const result = await client().claim(3, 0);
    assert.equal(result.requests.length, 1);
    assert.ok(result.serverDate !== undefined, 'the Date header is read');
    handler = (_req, _body, res) => res.writeHead(204).end();
    await client().postResult('r1', { claimToken: 't1', payload: 'AAAA' });
    const [c, r] = seen.slice(-2);
    assert.equal(c!.url, '/connector/v1/claim');
    assert.deepEqual(JSON.parse(c!.body), { max: 3, waitSeconds: 0 });
    assert.equal(r!.url, '/connector/v1/requests/r1/result');
    for (const s of [c!, r!]) {
      assert.equal(s.headers.authorization, `Bearer ${CREDENTIAL}`);
      assert.equal(s.headers['keyfleet-connector-version'], '6.2601.1.0');
    }
  });

  test('problems keep their code; server errors, rate limits and non-protocol answers are retryable', async () => {
    const cases: [number, unknown, string, boolean][] = [
      [426, { code: 'KF_CONNECTOR_OUTDATED', detail: 'too old' }, 'KF_CONNECTOR_OUTDATED', false],
      [401, { code: 'KF_UNAUTHENTICATED', detail: 'no' }, 'KF_UNAUTHENTICATED', false],
      [409, { code: 'KF_CONFLICT', detail: 'late' }, 'KF_CONFLICT', false],
      [500, { code: 'KF_INTERNAL', detail: 'internal error' }, 'KF_SERVICE_UNREACHABLE', true],
      [503, { code: 'KF_STORE_UNAVAILABLE', detail: 'db down' }, 'KF_STORE_UNAVAILABLE', true],
      [429, {}, 'KF_SERVICE_UNREACHABLE', true],
      [418, { code: 'KF_MADE_UP' }, 'KF_SERVICE_UNREACHABLE', true],
    ];
    for (const [status, body, code, again] of cases) {
      handler = json(status, body, 'application/problem+json');
      await assert.rejects(client().claim(1, 0), (e) => isKeyfleetError(e, code as never) && retryable(e) === again, `${status}`);
    }
    handler = (_req, _body, res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<html>bad gateway</html>');
    await assert.rejects(client().claim(1, 0), (e) => isKeyfleetError(e, 'KF_SERVICE_UNREACHABLE') && retryable(e));
  });

  test('an answer larger than a claim of `max` can be is refused, declared or streamed', async () => {
    handler = json(200, { requests: [], pad: 'x'.repeat(500 * 1024) });
    await assert.rejects(client().claim(1, 0), (e) => isKeyfleetError(e, 'KF_SERVICE_UNREACHABLE') && /larger than/.test(e.message));
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = 'x'.repeat(64 * 1024);
      for (let i = 0; i < 10; i++) res.write(chunk);
      res.end();
    };
    await assert.rejects(client().claim(1, 0), (e) => isKeyfleetError(e, 'KF_SERVICE_UNREACHABLE') && /larger than/.test(e.message));
  });

  test('a server that does not answer times out (wait + timeout), retryably', async () => {
    handler = () => {};
    const started = Date.now();
    await assert.rejects(client(300).claim(1, 0), (e) => isKeyfleetError(e, 'KF_SERVICE_UNREACHABLE') && retryable(e) && /no answer within/.test(e.message));
    assert.ok(Date.now() - started < 2_000);
  });

  test('a claim answer not of the protocol’s shape is refused field by field', () => {
    const bad = (mutate: (r: Record<string, unknown>) => void) => {
      const r = structuredClone(claimed) as unknown as Record<string, unknown>;
      mutate(r);
      return { requests: [r] };
    };
    const cases = {
      'not an object': 'nope',
      'requests missing': {},
      'too many': { requests: [claimed, claimed] },
      'thumbprint not hex': bad((r) => ((r['pfx'] as Record<string, unknown>)['thumbprint'] = 'Z'.repeat(40))),
      'blob not base64': bad((r) => ((r['pfx'] as Record<string, unknown>)['encryptedPfxBlob'] = 'not base64!')),
      'no lease date': bad((r) => (r['leaseExpiresAt'] = 'soon')),
      'request id with a slash': bad((r) => (r['requestId'] = '../admin')),
    };
    for (const [why, body] of Object.entries(cases)) assert.throws(() => parseClaimResponse(body, 1), (e) => isKeyfleetError(e, 'KF_SERVICE_UNREACHABLE'), why);
    assert.equal(parseClaimResponse({ requests: [claimed] }, 1).length, 1);
  });

  test('bad configuration is a usage error before any request', () => {
    assert.throws(() => new ConnectorClient({ url, credential: 'kf_admin-token', version: '1' }), (e) => isKeyfleetError(e, 'KF_USAGE'));
    assert.throws(() => new ConnectorClient({ url: 'ftp://example.com', credential: CREDENTIAL, version: '1' }), (e) => isKeyfleetError(e, 'KF_USAGE'));
  });

  test('a payload larger than the server accepts is not sent', async () => {
    const before = seen.length;
    await assert.rejects(client().postResult('r1', { claimToken: 't', payload: 'A'.repeat(100 * 1024) }), (e) => isKeyfleetError(e, 'KF_INPUT_TOO_LARGE'));
    assert.equal(seen.length, before);
  });
});

describe('loadConnectorKeyFile', () => {
  let dir: string;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' });
  before(() => (dir = mkdtempSync(join(tmpdir(), 'keyfleet-connector-key-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const file = (name: string, contents: string | Buffer, mode: number) => {
    const p = join(dir, name);
    writeFileSync(p, contents);
    chmodSync(p, mode);
    return p;
  };

  test('a 0600 (or 0400) PKCS#8 RSA key decrypts what was OAEP-encrypted to its public half', async () => {
    for (const [name, mode] of [['a.key', 0o600], ['b.key', 0o400]] as const) {
      const key = loadConnectorKeyFile(file(name, pem, mode));
      const ct = publicEncrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha384' }, Buffer.from('pfx password'));
      assert.equal(Buffer.from(await key.decryptOaep(ct, 'sha384')).toString(), 'pfx password');
    }
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    loadConnectorKeyFile(file('c.der', der, 0o600));
  });

  test('group- or world-accessible key files are refused, naming the mode', () => {
    for (const mode of [0o640, 0o604, 0o644, 0o660, 0o601]) {
      assert.throws(() => loadConnectorKeyFile(file(`m${mode.toString(8)}.key`, pem, mode)), (e) => isKeyfleetError(e, 'KF_KEY_INVALID') && e.message.includes(`0${mode.toString(8)}`) && /too open/.test(e.message));
    }
  });

  test('not a key, an EC key, a directory, a missing file: refused', () => {
    assert.throws(() => loadConnectorKeyFile(file('junk.key', 'not a key', 0o600)), (e) => isKeyfleetError(e, 'KF_KEY_INVALID'));
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' });
    assert.throws(() => loadConnectorKeyFile(file('ec.key', ec, 0o600)), (e) => isKeyfleetError(e, 'KF_KEY_INVALID'));
    const sub = join(dir, 'sub');
    mkdirSync(sub, { mode: 0o700 });
    assert.throws(() => loadConnectorKeyFile(sub), (e) => isKeyfleetError(e, 'KF_USAGE'));
    assert.throws(() => loadConnectorKeyFile(join(dir, 'missing.key')), (e) => isKeyfleetError(e, 'KF_USAGE'));
  });
});

describe('DeliveryQueueSignal', () => {
  test('notify wakes that tenant’s waiters at once, not another tenant’s', async () => {
    const signal = new DeliveryQueueSignal();
    const started = Date.now();
    let otherWoke = false;
    const other = signal.wait('other', 300).then(() => (otherWoke = Date.now() - started < 250));
    const mine = signal.wait('acme', 10_000);
    const epoch = signal.epoch('acme');
    setTimeout(() => signal.notify('acme'), 50);
    await mine;
    assert.ok(Date.now() - started < 1_000);
    assert.equal(signal.epoch('acme'), epoch + 1);
    assert.equal(signal.epoch('other'), 0);
    await other;
    assert.equal(otherWoke, false);
  });

  test('a wait ends after its time or when its abort signal fires', async () => {
    const signal = new DeliveryQueueSignal();
    let started = Date.now();
    await signal.wait('acme', 100);
    assert.ok(Date.now() - started >= 90);
    const abort = new AbortController();
    started = Date.now();
    setTimeout(() => abort.abort(), 50);
    await signal.wait('acme', 10_000, abort.signal);
    assert.ok(Date.now() - started < 1_000);
    await signal.wait('acme', 10_000, abort.signal);
  });
});
