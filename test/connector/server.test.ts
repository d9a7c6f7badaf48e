/**
 * The service side of the connector over real loopback HTTP, on SQLite and
 * (when reachable) PostgreSQL: admin registration, listing and revocation
 * with their permissions and audit entries; connector authentication and
 * the minimum version; the long-poll claim (woken by DeliveryQueueSignal,
 * or by its store poll for work queued elsewhere); leases that expire; and
 * the result: accepted once, for the lease's token only, and only as
 * AuthEnvelopedData to the request's device.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyObject } from 'node:crypto';
import { connectorKeyFrom } from '../../src/connector/keystore.ts';
import { rewrap } from '../../src/connector/rewrap.ts';
import { CONNECTOR_VERSION } from '../../src/connector/version.ts';
import { compareVersions } from '../../src/delivery/connectors.ts';
import { createToken, LOCAL_OPERATOR } from '../../src/directory/access.ts';
import type { ClaimedRequest } from '../../src/protocol/connector-api.ts';
import { encryptContent } from '../../src/smime/cms/enveloped-data.ts';
import { postgresBackend, sqliteBackend } from '../store/backends.ts';
import type { StoreBackend } from '../store/suite.ts';
import { TENANT, call, seed, startService, type Service } from './harness.ts';
import { type DeviceCa, createDeviceCa, rsaKey } from './support.ts';

let ca: DeviceCa;
let connectorKey: KeyObject;

before(async () => {
  ca = await createDeviceCa();
  connectorKey = rsaKey(2048);
});

test('compareVersions: dotted numbers, part by part, missing parts are 0', () => {
  assert.equal(compareVersions('6.1911.11.0', '6.1911.11.0'), 0);
  assert.equal(compareVersions('6.1911.10.99', '6.1911.11.0'), -1);
  assert.equal(compareVersions('6.2001.1.0', '6.1911.11.0'), 1);
  assert.equal(compareVersions('6.10', '6.9.9.9'), 1);
  assert.equal(compareVersions('6.1911.11', '6.1911.11.0'), 0);
  assert.equal(compareVersions('7', '6.9999.9999.9999'), 1);
  assert.ok(compareVersions(CONNECTOR_VERSION, '6.1911.11.0') > 0, 'our own connector meets the seed’s minimum');
});

for (const backend of [sqliteBackend(), await postgresBackend()]) {
  describe(`connector service over HTTP on ${backend.name}`, { skip: backend.skip }, () => serviceSuite(backend));
}

function serviceSuite(backend: StoreBackend): void {
  let svc: Service;
  let secret: string;
  let connectorId: string;
  const v = CONNECTOR_VERSION;
  const claim = (body: unknown, token = secret, version: string | null = v) => call(svc.url, 'POST', '/connector/v1/claim', { token, ...(version === null ? {} : { version }), body });
  const post = (id: string, body: unknown, token = secret) => call(svc.url, 'POST', `/connector/v1/requests/${id}/result`, { token, version: v, body });
  const claimed = (r: { body: Record<string, unknown> | undefined }) => (r.body?.['requests'] ?? []) as ClaimedRequest[];
  const statusOf = async (id: string) => (await svc.tenant.delivery.getDeliveryRequest(id))?.status;

  before(async () => {
    svc = await startService(backend, { leaseSeconds: 2, pollMs: 200 });
    const r = await call(svc.url, 'POST', '/api/v1/connectors', { token: svc.adminToken, body: { name: 'connector A' } });
    assert.equal(r.status, 201);
    secret = r.body!['secret'] as string;
    connectorId = r.body!['id'] as string;
  });
  after(() => svc.close());

  test('register returns the kfc_ secret once; the store and the audit log keep only its hash', async () => {
    assert.match(secret, /^kfc_[A-Za-z0-9_-]{43}$/);
    const stored = await svc.tenant.delivery.getConnector(connectorId);
    assert.ok(stored);
    assert.notEqual(stored.secretHash, secret);
    const list = await call(svc.url, 'GET', '/api/v1/connectors', { token: svc.adminToken });
    assert.equal(list.status, 200);
    assert.ok(!JSON.stringify(list.body).includes(secret));
    const entries = await svc.tenant.audit.list({ resourceType: 'connector' });
    assert.ok(entries.items.some((e) => e.action === 'connector.create' && e.resourceId === connectorId));
    assert.ok(!JSON.stringify(entries.items).includes(secret));
  });

  test('permissions: the help desk lists connectors but cannot register or revoke them', async () => {
    const { secret: helpDesk } = await createToken(svc.tenant, LOCAL_OPERATOR, 'help desk', 'helpDesk');
    assert.equal((await call(svc.url, 'GET', '/api/v1/connectors', { token: helpDesk })).status, 200);
    const refused = await call(svc.url, 'POST', '/api/v1/connectors', { token: helpDesk, body: { name: 'x' } });
    assert.equal(refused.status, 403);
    assert.equal(refused.body!['code'], 'KF_FORBIDDEN');
    assert.match(refused.type, /application\/problem\+json/);
    assert.equal((await call(svc.url, 'DELETE', `/api/v1/connectors/${connectorId}`, { token: helpDesk })).status, 403);
    assert.equal((await call(svc.url, 'GET', '/api/v1/connectors')).status, 401);
    assert.equal((await call(svc.url, 'POST', '/api/v1/connectors', { token: svc.adminToken, body: { name: 'x', extra: 1 } })).status, 400);
  });

  test('connector authentication: no, malformed, unknown credential → 401; no version → 400; an admin token is no connector credential', async () => {
    for (const token of [undefined, 'kfc_short', `kfc_${'A'.repeat(43)}`, svc.adminToken]) {
      const r = await call(svc.url, 'POST', '/connector/v1/claim', { ...(token === undefined ? {} : { token }), version: v, body: { max: 1 } });
      assert.equal(r.status, 401, String(token));
      assert.equal(r.body!['code'], 'KF_UNAUTHENTICATED');
    }
    const noVersion = await claim({ max: 1 }, secret, null);
    assert.equal(noVersion.status, 400);
    assert.equal(noVersion.body!['code'], 'KF_USAGE');
  });

  test('claim with nothing queued answers an empty list; the connector’s version and last-seen are recorded', async () => {
    const r = await claim({ max: 5, waitSeconds: 0 });
    assert.equal(r.status, 200);
    assert.deepEqual(claimed(r), []);
    const list = await call(svc.url, 'GET', '/api/v1/connectors', { token: svc.adminToken });
    const me = (list.body!['value'] as Record<string, unknown>[]).find((c) => c['id'] === connectorId)!;
    assert.equal(me['version'], v);
    assert.equal(me['state'], 'active');
    assert.ok(typeof me['lastSeenDateTime'] === 'string');
  });

  test('a connector below the minimum version is refused (426 KF_CONNECTOR_OUTDATED) and leases nothing', async () => {
    const { requests } = await seed(svc.tenant, ca, connectorKey, 1, 1, 'old');
    const r = await claim({ max: 10 }, secret, '6.1911.10.0');
    assert.equal(r.status, 426);
    assert.equal(r.body!['code'], 'KF_CONNECTOR_OUTDATED');
    assert.equal(await statusOf(requests[0]!.id), 'pending');
    const list = await call(svc.url, 'GET', '/api/v1/connectors', { token: svc.adminToken });
    assert.equal((list.body!['value'] as Record<string, unknown>[]).find((c) => c['id'] === connectorId)!['state'], 'outdated');
    // Clean up: deliver it, so later tests start from an empty queue.
    const got = claimed(await claim({ max: 10 }));
    for (const c of got) assert.equal((await post(c.requestId, { claimToken: c.claimToken, error: { code: 'rewrap-failed', detail: 'test' } })).status, 204);
  });

  test('a claim waits for work and wakes at once when this process queues some (DeliveryQueueSignal)', async () => {
    const started = Date.now();
    const waiting = claim({ max: 10, waitSeconds: 20 });
    await new Promise((r) => setTimeout(r, 300));
    const { requests } = await seed(svc.tenant, ca, connectorKey, 1, 1, 'wake');
    svc.connectors.queue.notify(TENANT);
    const got = claimed(await waiting);
    assert.deepEqual(got.map((c) => c.requestId), [requests[0]!.id]);
    assert.ok(Date.now() - started < 5_000, 'answered long before the 20 s wait');
    await post(got[0]!.requestId, { claimToken: got[0]!.claimToken, error: { code: 'rewrap-failed', detail: 'test' } });
  });

  test('work queued by another process (no signal) is found by the poll', async () => {
    const waiting = claim({ max: 10, waitSeconds: 20 });
    await new Promise((r) => setTimeout(r, 300));
    const { requests } = await seed(svc.tenant, ca, connectorKey, 1, 1, 'poll');
    const started = Date.now();
    const got = claimed(await waiting);
    assert.deepEqual(got.map((c) => c.requestId), [requests[0]!.id]);
    assert.ok(Date.now() - started < 3_000);
    await post(got[0]!.requestId, { claimToken: got[0]!.claimToken, error: { code: 'rewrap-failed', detail: 'test' } });
  });

  test('a result completes its lease once; a second or wrong-token result is KF_CONFLICT', async () => {
    const { requests, devices } = await seed(svc.tenant, ca, connectorKey, 1, 1, 'once');
    const [c] = claimed(await claim({ max: 1 }));
    assert.ok(c);
    assert.equal(c.requestId, requests[0]!.id);
    assert.equal(c.deviceCertificate, Buffer.from(devices[0]!.certificate.der).toString('base64'));
    const outcome = await rewrap(connectorKeyFrom(connectorKey), c);
    assert.ok(outcome.ok);
    const payload = Buffer.from(outcome.payload).toString('base64');
    const wrong = await post(c.requestId, { claimToken: 'not-the-token', payload });
    assert.equal(wrong.status, 409);
    assert.equal(wrong.body!['code'], 'KF_CONFLICT');
    assert.equal((await post(c.requestId, { claimToken: c.claimToken, payload })).status, 204);
    const stored = await svc.tenant.delivery.getDeliveryRequest(c.requestId);
    assert.equal(stored?.status, 'ready');
    assert.deepEqual(Buffer.from(stored!.payload!), Buffer.from(outcome.payload));
    const again = await post(c.requestId, { claimToken: c.claimToken, payload });
    assert.equal(again.status, 409);
    assert.equal((await post('no-such-request', { claimToken: c.claimToken, payload })).status, 404);
  });

  test('a payload that is not AES-256-GCM AuthEnvelopedData to the request’s device is refused; the lease stays', async () => {
    const { requests } = await seed(svc.tenant, ca, connectorKey, 1, 1, 'check');
    const [c] = claimed(await claim({ max: 1 }));
    assert.equal(c!.requestId, requests[0]!.id);
    const stranger = await ca.issueDevice('stranger');
    const device = (await svc.tenant.devices.getDevice(c!.deviceId))!;
    const { decodeCertificate } = await import('../../src/x509/certificate.ts');
    const deviceCert = decodeCertificate(device.identityCertificate!);
    const bad = {
      'another device': encryptContent(Buffer.from('x'), [{ certificate: stranger.certificate }], { cipher: 'aes-256-gcm' }),
      'two recipients': encryptContent(Buffer.from('x'), [{ certificate: deviceCert }, { certificate: stranger.certificate }], { cipher: 'aes-256-gcm' }),
      'AES-CBC EnvelopedData': encryptContent(Buffer.from('x'), [{ certificate: deviceCert }], { cipher: 'aes-256-cbc' }),
      'AES-128-GCM': encryptContent(Buffer.from('x'), [{ certificate: deviceCert }], { cipher: 'aes-128-gcm' }),
      'not CMS': Buffer.from('this is not a CMS structure at all'),
    };
    for (const [why, bytes] of Object.entries(bad)) {
      const r = await post(c!.requestId, { claimToken: c!.claimToken, payload: Buffer.from(bytes).toString('base64') });
      assert.equal(r.status, 400, why);
      assert.equal(r.body!['code'], 'KF_DELIVERY_INVALID', why);
    }
    const tooBig = await post(c!.requestId, { claimToken: c!.claimToken, payload: Buffer.alloc(70 * 1024).toString('base64') });
    assert.equal(tooBig.status, 413);
    assert.equal(await statusOf(c!.requestId), 'claimed');
    const good = await rewrap(connectorKeyFrom(connectorKey), c!);
    assert.ok(good.ok);
    assert.equal((await post(c!.requestId, { claimToken: c!.claimToken, payload: Buffer.from(good.payload).toString('base64') })).status, 204);
  });

  test('an error result marks the request failed with the connector’s code', async () => {
    await seed(svc.tenant, ca, connectorKey, 1, 1, 'fail');
    const [c] = claimed(await claim({ max: 1 }));
    assert.equal((await post(c!.requestId, { claimToken: c!.claimToken, error: { code: 'thumbprint-not-found', detail: 'no such certificate' } })).status, 204);
    const stored = await svc.tenant.delivery.getDeliveryRequest(c!.requestId);
    assert.equal(stored?.status, 'failed');
    assert.equal(stored?.errorCode, 'thumbprint-not-found');
    assert.equal((await post(c!.requestId, { claimToken: c!.claimToken, error: { code: 'Bad Code!', detail: '' } })).status, 400);
  });

  test('a lease that ends returns the request to the queue; the first lease’s late result is then refused', async () => {
    const { requests } = await seed(svc.tenant, ca, connectorKey, 1, 1, 'lease');
    const [first] = claimed(await claim({ max: 1 }));
    assert.equal(first!.requestId, requests[0]!.id);
    assert.deepEqual(claimed(await claim({ max: 1 })), [], 'leased: no one else gets it');
    await new Promise((r) => setTimeout(r, 2_100));
    const [second] = claimed(await claim({ max: 1 }));
    assert.equal(second!.requestId, first!.requestId);
    assert.notEqual(second!.claimToken, first!.claimToken);
    assert.equal((await svc.tenant.delivery.getDeliveryRequest(first!.requestId))?.attempts, 2);
    const late = await post(first!.requestId, { claimToken: first!.claimToken, error: { code: 'rewrap-failed', detail: 'late' } });
    assert.equal(late.status, 409);
    assert.equal((await post(second!.requestId, { claimToken: second!.claimToken, error: { code: 'rewrap-failed', detail: 'x' } })).status, 204);
  });

  test('a request whose device was retired is cancelled at claim time, not sent', async () => {
    const { requests, devices } = await seed(svc.tenant, ca, connectorKey, 1, 1, 'retired');
    await svc.tenant.devices.updateDevice(devices[0]!.deviceId, { managementState: 'retirePending' }, new Date());
    assert.deepEqual(claimed(await claim({ max: 5 })), []);
    assert.equal(await statusOf(requests[0]!.id), 'cancelled');
  });

  test('tenants are apart: another tenant’s connector neither claims nor completes this tenant’s requests', async () => {
    await svc.store.ensureTenant('other', 'Other');
    const other = svc.store.forTenant('other');
    const { secret: otherAdmin } = await createToken(other, LOCAL_OPERATOR, 'other admin', 'administrator');
    const reg = await call(svc.url, 'POST', '/api/v1/connectors', { token: otherAdmin, body: { name: 'other connector' } });
    const otherSecret = reg.body!['secret'] as string;
    const { requests } = await seed(svc.tenant, ca, connectorKey, 1, 1, 'apart');
    assert.deepEqual(claimed(await claim({ max: 10 }, otherSecret)), []);
    const [mine] = claimed(await claim({ max: 10 }));
    assert.equal(mine!.requestId, requests[0]!.id);
    const cross = await post(mine!.requestId, { claimToken: mine!.claimToken, error: { code: 'rewrap-failed', detail: 'x' } }, otherSecret);
    assert.equal(cross.status, 404);
    const list = await call(svc.url, 'GET', '/api/v1/connectors', { token: otherAdmin });
    assert.deepEqual((list.body!['value'] as Record<string, unknown>[]).map((c) => c['name']), ['other connector']);
    assert.equal((await call(svc.url, 'DELETE', `/api/v1/connectors/${connectorId}`, { token: otherAdmin })).status, 404);
    await post(mine!.requestId, { claimToken: mine!.claimToken, error: { code: 'rewrap-failed', detail: 'x' } });
  });

  test('bodies are bounded and checked: max out of range, unknown fields, oversized → 400/413', async () => {
    assert.equal((await claim({ max: 0 })).status, 400);
    assert.equal((await claim({ max: 101 })).status, 400);
    assert.equal((await claim({ max: 1, waitSeconds: 31 })).status, 400);
    assert.equal((await claim({ max: 1, extra: true })).status, 400);
    const huge = await call(svc.url, 'POST', '/connector/v1/claim', { token: secret, version: v, raw: JSON.stringify({ max: 1, pad: 'x'.repeat(4096) }) });
    assert.equal(huge.status, 413);
  });

  test('revoking a credential stops it at once; revoking twice is KF_CONFLICT', async () => {
    const reg = await call(svc.url, 'POST', '/api/v1/connectors', { token: svc.adminToken, body: { name: 'short-lived' } });
    const s = reg.body!['secret'] as string;
    assert.equal((await claim({ max: 1 }, s)).status, 200);
    assert.equal((await call(svc.url, 'DELETE', `/api/v1/connectors/${reg.body!['id'] as string}`, { token: svc.adminToken })).status, 204);
    const refused = await claim({ max: 1 }, s);
    assert.equal(refused.status, 401);
    assert.equal(refused.body!['code'], 'KF_UNAUTHENTICATED');
    assert.equal((await call(svc.url, 'DELETE', `/api/v1/connectors/${reg.body!['id'] as string}`, { token: svc.adminToken })).status, 409);
    const list = await call(svc.url, 'GET', '/api/v1/connectors', { token: svc.adminToken });
    assert.equal((list.body!['value'] as Record<string, unknown>[]).find((c) => c['id'] === reg.body!['id'])!['state'], 'revoked');
    const entries = await svc.tenant.audit.list({ resourceType: 'connector', resourceId: reg.body!['id'] as string });
    assert.deepEqual(entries.items.map((e) => e.action).sort(), ['connector.create', 'connector.revoke']);
  });

  test('a credential revoked while its claim waits is refused at the next look at the queue', async () => {
    const reg = await call(svc.url, 'POST', '/api/v1/connectors', { token: svc.adminToken, body: { name: 'revoked while waiting' } });
    const waiting = claim({ max: 1, waitSeconds: 20 }, reg.body!['secret'] as string);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await call(svc.url, 'DELETE', `/api/v1/connectors/${reg.body!['id'] as string}`, { token: svc.adminToken })).status, 204);
    const { requests } = await seed(svc.tenant, ca, connectorKey, 1, 1, 'revoked-wait');
    svc.connectors.queue.notify(TENANT);
    const r = await waiting;
    assert.equal(r.status, 401);
    assert.equal(await statusOf(requests[0]!.id), 'pending');
    const [c] = claimed(await claim({ max: 1 }));
    await post(c!.requestId, { claimToken: c!.claimToken, error: { code: 'rewrap-failed', detail: 'x' } });
  });

  test('closing the server ends waiting claims at once', async () => {
    const extra = await startService(sqliteBackend(), { pollMs: 200 });
    const reg = await call(extra.url, 'POST', '/api/v1/connectors', { token: extra.adminToken, body: { name: 'c' } });
    const waiting = call(extra.url, 'POST', '/connector/v1/claim', { token: reg.body!['secret'] as string, version: v, body: { max: 1, waitSeconds: 30 } });
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await extra.close();
    const r = await waiting;
    assert.equal(r.status, 200);
    assert.ok(Date.now() - started < 5_000, `close took ${Date.now() - started} ms`);
  });
}
