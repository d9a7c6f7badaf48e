/**
 * The Company Portal agent (src/device/agent.ts) against a real service
 * (agent-support.ts: keyfleet serve's wiring on SQLite, over HTTP on
 * loopback) with a real PFX connector: the seed's policy assigned to Sales,
 * Alice's device enrolls and receives the trusted root, a signing
 * certificate it SCEP-enrols itself, the Outlook settings and her
 * encryption history; the admin API sees every state; then the faults and
 * refusals of issue 5 that concern the device, and retire and wipe.
 * The steps run in order and build on one another.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { ConnectorClient } from '../../src/connector/client.ts';
import { connectorKeyFrom } from '../../src/connector/keystore.ts';
import { runConnector } from '../../src/connector/run.ts';
import { CONNECTOR_VERSION } from '../../src/connector/version.ts';
import { DeviceAgent, type CheckinSummary } from '../../src/device/agent.ts';
import { DeviceApiClient } from '../../src/device/api-client.ts';
import { PortalProgress, type PortalSnapshot } from '../../src/device/portal.ts';
import { DEFAULT_TENANT } from '../../src/cli/context.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { signRequest } from '../../src/protocol/request-signing.ts';
import { OUTLOOK_BUNDLE_ID } from '../../src/mail/settings.ts';
import type { Certificate } from '../../src/x509/certificate.ts';
import { buildOcspRequest, verifyOcspResponse } from '../../src/x509/ocsp-client.ts';
import { type Json, type Seed, type TestService, connectorKey, encryptionCertificate, enrollmentToken, eventually, importPfx, seed, startService } from './agent-support.ts';

const facts = (name: string) => ({ deviceName: name, model: 'iPhone15,2', operatingSystem: 'iOS' as const, osVersion: '18.1', serialNumber: `SN-${name.replace(/\W/g, '')}` });

describe('the Company Portal agent against a real service', { timeout: 300_000 }, () => {
  let s: TestService;
  let seeded: Seed;
  const dirs: string[] = [];
  const stateDir = (name: string) => {
    const d = mkdtempSync(join(tmpdir(), `kf-device-${name}-`));
    dirs.push(d);
    return d;
  };
  const stopConnector = new AbortController();
  let connectorRun: Promise<unknown>;
  let connector: KeyObject;
  const history: { key: KeyObject; certificate: Certificate; pfxId: string }[] = [];

  let alice: DeviceAgent;
  let bob: DeviceAgent;
  let bobId: string;
  let aliceProgress: PortalProgress;
  let aliceId: string;

  const status = async (deviceId: string) =>
    (await s.ok('GET', `/api/v1/managedDevices/${deviceId}/status`)) as { device: Json; policyStatuses: Json[]; managedDeviceCertificateStates: Json[] };

  /** Check-ins until nothing is pending (the connector works beside us). */
  const settle = async (agent: DeviceAgent): Promise<CheckinSummary[]> => {
    const all: CheckinSummary[] = [];
    await eventually('the device to hold everything', async () => {
      const summary = await agent.checkin();
      all.push(summary);
      return summary.pending.length === 0 && summary.failed.length === 0;
    });
    return all;
  };

  before(async () => {
    s = await startService();
    seeded = await seed(s);
    connector = connectorKey();
    for (const _ of [1, 2]) {
      const identity = await encryptionCertificate(s, 'alice@contoso.com');
      const pfx = await importPfx(s, 'alice@contoso.com', identity, connector);
      history.push({ ...identity, pfxId: pfx['id'] as string });
    }
    const registered = await s.ok('POST', '/api/v1/connectors', { name: 'test connector' });
    const client = new ConnectorClient({ url: s.origin, credential: registered['secret'] as string, version: CONNECTOR_VERSION });
    connectorRun = runConnector({ client, key: connectorKeyFrom(connector), signal: stopConnector.signal, waitSeconds: 1, backoff: { initialMs: 50, maxMs: 500 } });
  });

  after(async () => {
    stopConnector.abort();
    await connectorRun;
    await s.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('enrolls with a one-time token and a key made on the device; the token cannot be used again', async () => {
    const token = await enrollmentToken(s, seeded.users.alice);
    aliceProgress = new PortalProgress({ deviceName: 'Alice’s iPhone' });
    alice = new DeviceAgent({ stateDir: stateDir('alice'), progress: aliceProgress });
    const state = await alice.enroll(s.origin, token, facts('Alice’s iPhone'));
    aliceId = state.deviceId;
    assert.equal(state.userId, seeded.users.alice);
    assert.equal(state.managementState, 'managed');
    const identity = (await (await alice.keystore()).snapshot()).identity!;
    assert.equal(identity.deviceId, aliceId);
    assert.equal(identity.key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(identity.certificate.subject.rdns.flat().some((a) => a.value === aliceId), 'CN = device id');
    assert.equal(identity.caCertificates[0]!.fingerprint256, s.ca.certificate.fingerprint256);
    const device = await s.ok('GET', `/api/v1/managedDevices/${aliceId}`);
    assert.equal(device['deviceName'], 'Alice’s iPhone');

    const replay = new DeviceAgent({ stateDir: stateDir('replay') });
    await assert.rejects(replay.enroll(s.origin, token, facts('Mallory’s iPhone')), (e) => isKeyfleetError(e, 'KF_ENROLLMENT_REFUSED') && /already used/.test(e.message));
    assert.equal(replay.stateFile.exists(), false, 'nothing kept for a refused enrolment');
    await assert.rejects(alice.enroll(s.origin, await enrollmentToken(s, seeded.users.alice), facts('again')), (e) => isKeyfleetError(e, 'KF_CONFLICT'));
  });

  test('the first check-in installs the root, a SCEP signing certificate, the Outlook settings and the encryption history', async () => {
    const seen: PortalSnapshot[] = [];
    const unsubscribe = aliceProgress.subscribe((snap) => seen.push(snap));
    const first = await alice.checkin();
    unsubscribe();
    assert.equal(first.result, 'applied');
    // The whole assignment appears in one change, nothing installed yet; then each item moves on its own.
    assert.deepEqual(seen[0]!.items.map((i) => [i.kind, i.state]), [
      ['trustedRoot', 'waiting'], ['signingCertificate', 'waiting'], ['encryptionCertificate', 'waiting'], ['encryptionCertificate', 'waiting'], ['configuration', 'waiting'],
    ]);
    const signingStates = seen.map((x) => x.items.find((i) => i.kind === 'signingCertificate')!.state).filter((st, i, all) => st !== all[i - 1]);
    assert.deepEqual(signingStates, ['waiting', 'retrieving', 'installed']);
    assert.deepEqual(first.failed, []);
    const kinds = first.installed.map((i) => i.kind).sort();
    for (const k of ['configuration', 'policy', 'signing', 'trustedRoot']) assert.ok(kinds.includes(k as never), `${k} installed: ${kinds.join(', ')}`);
    assert.ok(first.reports.every((r) => r.ok), JSON.stringify(first.reports));
    await settle(alice);

    const ks = await (await alice.keystore()).snapshot();
    assert.deepEqual(ks.trustedRoots.map((r) => r.certificate.thumbprint), [seeded.rootCertificate.thumbprint]);
    assert.equal(ks.signing.length, 1);
    const signing = ks.signing[0]!;
    assert.deepEqual(signing.certificate.emailAddresses, ['alice@contoso.com']);
    assert.equal(signing.key.asymmetricKeyDetails?.modulusLength, 2048);
    assert.equal(signing.certificate.issuer.der.toString(), s.ca.certificate.subject.der.toString());
    assert.ok(signing.chain.some((c) => c.fingerprint256 === s.ca.certificate.fingerprint256), 'issuing CA kept with it');
    assert.deepEqual(ks.encryption.map((e) => e.certificate.thumbprint).sort(), history.map((h) => h.certificate.thumbprint).sort());
    for (const h of history) {
      const held = ks.encryption.find((e) => e.certificate.thumbprint === h.certificate.thumbprint)!;
      assert.equal(held.pfxId, h.pfxId);
      assert.ok(createPublicKey(held.key).export({ format: 'der', type: 'spki' }).equals(createPublicKey(h.key).export({ format: 'der', type: 'spki' })), 'the imported key itself');
    }
    const outlook = ks.appConfigurations.find((a) => a.bundleId === OUTLOOK_BUNDLE_ID)!;
    assert.ok(outlook.settings.some((x) => x.appConfigKey === 'com.microsoft.outlook.Mail.SMIMEEnabled' && x.appConfigKeyValue === 'true'));
    assert.match(outlook.plist ?? '', /SMIMEEnabled/);

    const view = await status(aliceId);
    assert.deepEqual(view.policyStatuses.map((p) => [p['policyId'], p['status']]), [[seeded.policy, 'compliant']]);
    const certs = view.managedDeviceCertificateStates;
    const scep = certs.filter((c) => c['source'] === 'scep');
    assert.equal(scep.length, 1);
    assert.equal(scep[0]!['certificateIssuanceState'], 'installed');
    assert.equal(String(scep[0]!['certificateThumbprint']).toUpperCase(), signing.certificate.thumbprint);
    assert.equal(String(scep[0]!['certificateSerialNumber']).toLowerCase(), signing.certificate.serialHex.toLowerCase());
    const imported = certs.filter((c) => c['source'] === 'pkcsImported');
    assert.deepEqual(imported.map((c) => c['certificateIssuanceState']), ['installed', 'installed']);

    const page = aliceProgress.snapshot();
    assert.equal(page.summary.ready, true, JSON.stringify(page.items));
    assert.deepEqual(new Set(page.items.map((i) => i.kind)), new Set(['trustedRoot', 'signingCertificate', 'encryptionCertificate', 'configuration']));
  });

  test('an idle check-in is answered 304 and changes nothing', async () => {
    const before = (await (await alice.keystore()).snapshot()).generation;
    const idle = await alice.checkin();
    assert.equal(idle.result, 'unchanged');
    assert.equal(idle.rounds, 1);
    assert.deepEqual(idle.reports, []);
    assert.equal((await (await alice.keystore()).snapshot()).generation, before, 'keystore not rewritten');
    // A full check-in (no ETag) serves the same state and asks for nothing new.
    const full = await alice.checkin({ full: true });
    assert.equal(full.result, 'applied');
    assert.deepEqual([full.installed, full.failed, full.reports], [[], [], []]);
  });

  test('a report naming the check-in it answers gets the new ETag back; a stale, partly refused or malformed one does not', async () => {
    const api = await apiOf(alice);
    const answer = await api.checkin();
    assert.equal(answer.status, 200);
    const policyId = answer.status === 200 ? answer.state.policies[0]!.id : '';
    const compliant = { kind: 'policy' as const, id: policyId, state: 'compliant' };

    const reported = await api.report([compliant], answer.etag);
    assert.ok(reported.etag !== undefined && reported.etag !== answer.etag, JSON.stringify(reported));
    assert.equal((await api.checkin(reported.etag)).status, 304, 'the ETag handed back is the service’s');

    // Based on a check-in the device's state has since moved past: applied, but the device must read back.
    const stale = await api.report([compliant], answer.etag);
    assert.deepEqual(stale, { results: [{ ok: true }] });
    const now = await api.checkin(reported.etag);
    assert.equal(now.status, 200);

    // One item refused: the service cannot say what the device believes.
    const partly = await api.report([compliant, { kind: 'imported', id: 'not-a-certificate-of-this-device', state: 'installed' }], now.etag);
    assert.deepEqual(partly.results.map((r) => r.ok), [true, false]);
    assert.equal(partly.etag, undefined);

    const header = signRequest(alice.state().deviceId, (await (await alice.keystore()).snapshot()).identity!.key, 'POST', '/device/v1/reports', JSON.stringify({ items: [compliant], basedOn: 'x'.repeat(300) }));
    const bad = await fetch(`${s.origin}/device/v1/reports`, { method: 'POST', headers: { 'keyfleet-device': header, 'content-type': 'application/json' }, body: JSON.stringify({ items: [compliant], basedOn: 'x'.repeat(300) }) });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { detail: string }).detail, /basedOn/);
    await settle(alice);
    assert.equal((await alice.checkin()).result, 'unchanged');
  });

  test('a device cannot fetch another device’s delivery (404, logged); Carol, outside Sales, gets nothing', async () => {
    const aliceApi = await apiOf(alice);
    const answer = await aliceApi.checkin();
    assert.equal(answer.status, 200);
    const deliveryId = answer.status === 200 ? answer.state.imported[0]!.deliveryId! : '';
    assert.ok(deliveryId);

    const carol = new DeviceAgent({ stateDir: stateDir('carol') });
    await carol.enroll(s.origin, await enrollmentToken(s, seeded.users.carol), facts('Carol’s iPhone'));
    const summary = await carol.checkin();
    assert.deepEqual([summary.installed, summary.failed, summary.pending], [[], [], []]);
    const ks = await (await carol.keystore()).snapshot();
    assert.deepEqual([ks.signing.length, ks.encryption.length, ks.trustedRoots.length, ks.appConfigurations.length], [0, 0, 0, 0]);

    const carolApi = await apiOf(carol);
    await assert.rejects(carolApi.delivery(deliveryId), (e) => isKeyfleetError(e, 'KF_NOT_FOUND'));
    assert.ok(s.logs.some((l) => /another device/.test(l.message) && l.fields['deliveryId'] === deliveryId), JSON.stringify(s.logs));
    // A signed request is good once: the same header again is a replay.
    const url = `${s.origin}/device/v1/notifications`;
    const header = signRequest(carol.state().deviceId, (await (await carol.keystore()).snapshot()).identity!.key, 'GET', '/device/v1/notifications');
    assert.equal((await fetch(url, { headers: { 'keyfleet-device': header } })).status, 200);
    const replayed = await fetch(url, { headers: { 'keyfleet-device': header } });
    assert.equal(replayed.status, 401);
    assert.match(((await replayed.json()) as { detail: string }).detail, /replayed/);
    // A report on Alice's certificate state from Carol's device names nothing of Carol's.
    const scepId = answer.status === 200 ? answer.state.scep[0]!.id : '';
    const refused = await carolApi.report([{ kind: 'scep', id: scepId, state: 'deleted' }]);
    assert.equal(refused.results[0]!.ok, false);
    assert.equal((await status(aliceId)).managedDeviceCertificateStates.find((c) => c['id'] === scepId)?.['certificateIssuanceState'], 'installed');
  });

  test('a delivery altered in transit, or another PFX’s delivery in its place, is refused and not stored; the genuine one then installs', async () => {
    const third = await encryptionCertificate(s, 'alice@contoso.com');
    const pfxId = (await importPfx(s, 'alice@contoso.com', third, connector))['id'] as string;
    await s.tick();
    const api = await apiOf(alice);
    await eventually('the connector to deliver the third certificate', () => readyFor(api, pfxId));
    const full = await api.checkin();
    assert.equal(full.status, 200);
    const other = full.status === 200 ? full.state.imported.find((i) => i.pfxId === history[0]!.pfxId)! : undefined;
    const otherPayload = (await api.delivery(other!.deliveryId!)).payload;

    // The check-in carries the ready deliveries the device has yet to install, and the same bytes GET serves.
    const inline = full.status === 200 ? full.state.imported.find((i) => i.pfxId === pfxId)! : undefined;
    assert.equal(inline?.payload, (await api.delivery(inline!.deliveryId!)).payload);

    // A man in the middle of the device's connection, rewriting the third certificate's delivery wherever it travels.
    let mode: 'flip' | 'swap' = 'flip';
    const tamper = (payload: string) => {
      const bytes = Buffer.from(payload, 'base64');
      bytes[bytes.length - 40]! ^= 0x01;
      return mode === 'flip' ? bytes.toString('base64') : otherPayload;
    };
    const inTransit: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      const url = String(input);
      if (response.status !== 200) return response;
      if (url.includes('/checkin')) {
        const state = (await response.json()) as { imported: { pfxId: string; payload?: string }[] };
        for (const i of state.imported) if (i.pfxId === pfxId && i.payload !== undefined) i.payload = tamper(i.payload);
        return Response.json(state, { headers: { etag: response.headers.get('etag')! } });
      }
      if (!url.includes('/deliveries/')) return response;
      const body = (await response.json()) as { id: string; pfxId: string; payload: string };
      return Response.json(body.pfxId === pfxId ? { ...body, payload: tamper(body.payload) } : body);
    };
    const intercepted = new DeviceAgent({ stateDir: alice.stateDir, http: { fetch: inTransit } });
    const rowOf = async () => (await status(aliceId)).managedDeviceCertificateStates.find((c) => String(c['certificateThumbprint']).toUpperCase() === third.certificate.thumbprint);
    const holds = async () => (await (await alice.keystore()).snapshot()).encryption.some((e) => e.certificate.thumbprint === third.certificate.thumbprint);

    const flipped = await intercepted.checkin();
    assert.equal(flipped.failed.find((f) => f.kind === 'encryption')?.errorCode, 'KF_CMS_DECRYPT_FAILED', JSON.stringify(flipped));
    assert.equal(await holds(), false);
    assert.equal((await rowOf())?.['certificateIssuanceState'], 'installFailed');
    assert.equal(flipped.etag, undefined, 'the next check-in is a full one, to try again');

    mode = 'swap';
    const swapped = await intercepted.checkin();
    assert.equal(swapped.failed.find((f) => f.kind === 'encryption')?.errorCode, 'KF_DELIVERY_INVALID', JSON.stringify(swapped));
    assert.equal(await holds(), false);

    // Untouched, it installs from the check-in itself: no delivery is fetched.
    const fetched: string[] = [];
    const counting: typeof fetch = (input, init) => {
      if (String(input).includes('/deliveries/')) fetched.push(String(input));
      return fetch(input, init);
    };
    const good = await new DeviceAgent({ stateDir: alice.stateDir, http: { fetch: counting } }).checkin();
    assert.ok(good.installed.some((i) => i.kind === 'encryption' && i.thumbprint === third.certificate.thumbprint), JSON.stringify(good));
    assert.deepEqual(fetched, []);
    assert.equal(await holds(), true);
    assert.equal((await rowOf())?.['certificateIssuanceState'], 'installed');
    history.push({ ...third, pfxId });
  });

  test('listen(): an admin change is pushed, a notification reaches the portal page, and the device applies the change', async () => {
    const events: string[] = [];
    const settingsBefore = JSON.stringify((await (await alice.keystore()).snapshot()).appConfigurations.find((a) => a.bundleId === OUTLOOK_BUNDLE_ID)?.settings);
    const listener = alice.listen({ intervalMs: 3_600_000, backoff: { initialMs: 50, maxMs: 500 }, onEvent: (e) => events.push(e.type) });
    try {
      await eventually('the push channel', () => events.includes('connected'));
      await s.ok('PATCH', `/api/v1/policies/${seeded.policy}`, { signAllMail: true });
      await s.tick();
      await eventually('a notification on the portal page', () => aliceProgress.snapshot().notifications.length > 0);
      await eventually('a check-in on the push', () => events.includes('changed') && events.filter((e) => e === 'checkin').length >= 2);
      await eventually('the new settings', async () => {
        const outlook = (await (await alice.keystore()).snapshot()).appConfigurations.find((a) => a.bundleId === OUTLOOK_BUNDLE_ID);
        return JSON.stringify(outlook?.settings ?? []) !== settingsBefore;
      });
      const listed = await alice.notifications();
      assert.ok(listed.length >= 1);
      assert.equal(listed[0]!.title, aliceProgress.snapshot().notifications[0]!.title);
      assert.equal(listed[0]!.read, false);
      await alice.markNotificationRead(listed[0]!.id);
      assert.equal((await alice.notifications()).find((n) => n.id === listed[0]!.id)?.read, true);
    } finally {
      await listener.stop();
    }
    assert.ok(events.includes('stopped'));
  });

  test('renewal: a signing certificate that is no longer good is replaced over SCEP at the next full check-in', async () => {
    const old = (await (await alice.keystore()).snapshot()).signing[0]!.certificate;
    // A one-day certificate renewed at 2% of its life: the renewal falls due before the new challenge would
    // expire, so only the install report can set when the device must be reconciled again.
    await s.ok('PATCH', `/api/v1/profiles/${seeded.scep}`, { certificateValidityPeriodValue: 1, certificateValidityPeriodScale: 'days', renewalThresholdPercentage: 2 });
    // Check-ins read profiles from the same snapshot as their evaluation, which the watcher's pass brings up to date.
    await s.tick();
    await s.ca.revoke(old.serialHex, 'keyCompromise');
    // The service notices at a full check-in: a 304 does not reconcile, so a revocation done in the CA alone waits for it.
    const renewed = await alice.checkin({ full: true });
    // Enrolled and reported in one round: the report's answer named the device's new ETag.
    assert.equal(renewed.rounds, 1);
    assert.deepEqual(renewed.failed, []);
    assert.ok(renewed.reports.every((r) => r.ok), JSON.stringify(renewed.reports));
    const signing = (await (await alice.keystore()).snapshot()).signing;
    assert.equal(signing.length, 1, 'the old certificate replaced');
    assert.notEqual(signing[0]!.certificate.serialHex, old.serialHex);
    const row = (await status(aliceId)).managedDeviceCertificateStates.find((c) => c['source'] === 'scep')!;
    assert.equal(row['certificateIssuanceState'], 'renewVerified');
    assert.equal(String(row['certificateThumbprint']).toUpperCase(), signing[0]!.certificate.thumbprint);
    const fresh = signing[0]!.certificate;
    const lifetime = fresh.notAfter.getTime() - fresh.notBefore.getTime();
    assert.ok(lifetime <= 86_400_000 + 10 * 60_000, `a one-day certificate (back-dated for clock skew): ${fresh.notBefore.toISOString()} – ${fresh.notAfter.toISOString()}`);
    const device = await s.ctx.store.forTenant(DEFAULT_TENANT).devices.getDevice(aliceId);
    assert.equal(device?.recheckAt?.getTime(), fresh.notBefore.getTime() + Math.ceil(lifetime * 0.02), 'the recheck moved to the renewal time');
    assert.equal((await alice.checkin()).result, 'unchanged');
  });

  test('reports lost on the way stay in the outbox and are sent first at the next check-in', async () => {
    bob = new DeviceAgent({ stateDir: stateDir('bob') });
    const { deviceId } = await bob.enroll(s.origin, await enrollmentToken(s, seeded.users.bob), facts('Bob’s iPhone'));
    bobId = deviceId;
    const dropReports: typeof fetch = (input, init) => (String(input).endsWith('/device/v1/reports') ? Promise.reject(new TypeError('connection reset')) : fetch(input, init));
    const offline = new DeviceAgent({ stateDir: bob.stateDir, http: { fetch: dropReports } });
    await assert.rejects(offline.checkin(), (e) => isKeyfleetError(e, 'KF_SERVICE_UNREACHABLE'));
    const kept = bob.state().outbox;
    assert.ok(kept.some((r) => r.kind === 'scep' && r.state === 'installed'), JSON.stringify(kept));
    assert.equal((await (await bob.keystore()).snapshot()).signing.length, 1, 'the certificate is on the device');
    assert.equal((await status(bobId)).managedDeviceCertificateStates[0]!['certificateIssuanceState'], 'challengeIssued');

    const next = await bob.checkin();
    assert.deepEqual(bob.state().outbox, []);
    assert.ok(next.reports.some((r) => r.ok && r.item.kind === 'scep' && r.item.state === 'installed'), JSON.stringify(next.reports));
    assert.equal((await status(bobId)).managedDeviceCertificateStates[0]!['certificateIssuanceState'], 'installed');
    assert.equal((await bob.checkin()).result, 'unchanged');
  });

  test('Bob removed from Sales: his device loses the certificate, root and settings; the SCEP certificate is revoked', async () => {
    const signing = (await (await bob.keystore()).snapshot()).signing[0]!.certificate;
    await s.ok('DELETE', `/api/v1/groups/${seeded.sales}/members/${seeded.users.bob}`);
    await s.tick();
    const removed = await bob.checkin();
    assert.equal(removed.result, 'applied');
    assert.deepEqual(new Set(removed.removed.map((r) => r.kind)), new Set(['signing', 'trustedRoot', 'configuration']));
    assert.ok(removed.reports.every((r) => r.ok), JSON.stringify(removed.reports));
    const ks = await (await bob.keystore()).snapshot();
    assert.deepEqual([ks.signing.length, ks.trustedRoots.length, ks.appConfigurations.length], [0, 0, 0]);
    assert.ok(ks.identity, 'still enrolled');
    const view = await status(bobId);
    assert.equal(view.managedDeviceCertificateStates[0]!['certificateIssuanceState'], 'removedFromCollection');
    assert.deepEqual(view.policyStatuses.map((p) => p['status']), ['notAssigned']);
    assert.equal(await ocspStatus(signing, s.ca.certificate), 'revoked');
    assert.equal((await bob.checkin()).result, 'unchanged');
  });

  test('retire: the SCEP certificate is revoked at once (OCSP says so); the next check-in removes everything and the device is then refused', async () => {
    const before = await (await alice.keystore()).snapshot();
    const signing = before.signing[0]!.certificate;
    const identityKey = before.identity!.key;
    await (await alice.keystore()).addContacts([history[0]!.certificate], 'signed-message');
    await s.ok('POST', `/api/v1/managedDevices/${aliceId}/retire`);
    assert.equal(await ocspStatus(signing, s.ca.certificate), 'revoked');

    const retired = await alice.checkin();
    assert.equal(retired.result, 'retired');
    assert.equal(retired.managementState, 'retired');
    assert.ok(retired.reports.every((r) => r.ok), JSON.stringify(retired.reports));
    const after = await (await alice.keystore()).snapshot();
    assert.deepEqual([after.signing.length, after.encryption.length, after.trustedRoots.length, after.appConfigurations.length], [0, 0, 0, 0]);
    assert.equal(after.identity, undefined, 'no longer enrolled');
    assert.equal(after.contacts.length, 1, 'retire leaves the user’s own data');
    assert.equal(aliceProgress.snapshot().items.every((i) => i.state === 'removed'), true);

    const view = await status(aliceId);
    assert.equal(view.device['managementState'], 'retired');
    // Its policies no longer apply: none on the device, and the policy's statuses no longer count it.
    assert.deepEqual(view.policyStatuses, []);
    const perDevice = (await s.ok('GET', `/api/v1/policies/${seeded.policy}/deviceStatuses`))['value'] as Json[];
    assert.ok(!perDevice.some((d) => d['deviceId'] === aliceId), JSON.stringify(perDevice));
    assert.ok(view.managedDeviceCertificateStates.every((c) => c['certificateIssuanceState'] === 'removedFromCollection'), JSON.stringify(view.managedDeviceCertificateStates));

    const stale = new DeviceApiClient({ serverUrl: s.origin, deviceId: aliceId, key: identityKey });
    await assert.rejects(stale.checkin(), (e) => isKeyfleetError(e, 'KF_UNAUTHENTICATED'));
    await assert.rejects(alice.checkin(), (e) => isKeyfleetError(e, 'KF_CONFLICT') && /retired/.test(e.message));
  });

  test('wipe (after two check-ins at once enrolled one certificate): everything goes, contacts too, and the device reports wiped', async () => {
    const agent = new DeviceAgent({ stateDir: stateDir('alice-ipad') });
    const { deviceId } = await agent.enroll(s.origin, await enrollmentToken(s, seeded.users.alice), { ...facts('Alice’s iPad'), operatingSystem: 'iPadOS' });
    // Two check-ins at once (a timer and a push, or a second process on the same state): one enrols, the other waits.
    const [one, two] = await Promise.all([agent.checkin(), new DeviceAgent({ stateDir: agent.stateDir }).checkin()]);
    assert.equal([one, two].flatMap((x) => x.installed.filter((i) => i.kind === 'signing')).length, 1, JSON.stringify([one, two]));
    await settle(agent);
    assert.equal((await (await agent.keystore()).snapshot()).signing.length, 1);
    assert.deepEqual((await status(deviceId)).managedDeviceCertificateStates.filter((c) => c['source'] === 'scep').map((c) => c['certificateIssuanceState']), ['installed']);
    await (await agent.keystore()).addContacts([history[1]!.certificate], 'attachment');
    await s.ok('POST', `/api/v1/managedDevices/${deviceId}/wipe`);
    const wiped = await agent.checkin();
    assert.equal(wiped.result, 'wiped');
    const ks = await (await agent.keystore()).snapshot();
    assert.deepEqual([ks.identity, ks.signing.length, ks.encryption.length, ks.trustedRoots.length, ks.appConfigurations.length, ks.contacts.length], [undefined, 0, 0, 0, 0, 0]);
    assert.equal((await s.ok('GET', `/api/v1/managedDevices/${deviceId}`))['managementState'], 'wiped');
  });

  async function apiOf(agent: DeviceAgent): Promise<DeviceApiClient> {
    const identity = (await (await agent.keystore()).snapshot()).identity!;
    return new DeviceApiClient({ serverUrl: s.origin, deviceId: agent.state().deviceId, key: identity.key });
  }
});

async function readyFor(api: DeviceApiClient, pfxId: string): Promise<boolean> {
  const answer = await api.checkin();
  return answer.status === 200 && answer.state.imported.some((i) => i.pfxId === pfxId && i.deliveryId !== undefined);
}

async function ocspStatus(cert: Certificate, issuer: Certificate): Promise<string> {
  const request = buildOcspRequest(cert, issuer);
  const response = await fetch(cert.ocspUrls[0]!, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: Buffer.from(request.der) });
  assert.equal(response.status, 200);
  return verifyOcspResponse(new Uint8Array(await response.arrayBuffer()), { cert, issuer, ...(request.nonce ? { nonce: request.nonce } : {}) }).status;
}
