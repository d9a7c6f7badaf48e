/**
 * Issue 5's "Faults and bad input" that no other test proves end to end, one
 * test each, named after the fault. (Already proven elsewhere: the connector
 * down, two connectors, a connector killed mid-lease or outdated or revoked,
 * the service restarting under the connector — test/connector/e2e.test.ts;
 * a replayed enrolment token, another device's delivery, tampered and swapped
 * deliveries, two concurrent check-ins of one agent, a replayed signature —
 * test/device/agent.test.ts; withdrawn challenges — agent-scep.test.ts.)
 *
 * The in-process service here is serve's wiring with the service's clock in
 * the test's hands (faults-support.ts), so a device's past can be a week or
 * an hour ago; devices are the real agent (src/device) over loopback HTTP,
 * and the connector the real connector loop. Each test asserts what the
 * user depends on — the keystore — and what the admin sees
 * (GET /api/v1/managedDevices/{id}/status). The server restart, with a real
 * `keyfleet serve` process, is in faults-restart.test.ts.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { ConnectorClient } from '../../src/connector/client.ts';
import { connectorKeyFrom } from '../../src/connector/keystore.ts';
import { runConnector } from '../../src/connector/run.ts';
import { CONNECTOR_VERSION } from '../../src/connector/version.ts';
import { ISSUING_CA_ID } from '../../src/ca/authority.ts';
import { DeviceAgent } from '../../src/device/agent.ts';
import { type CheckinAnswer, DeviceApiClient } from '../../src/device/api-client.ts';
import { enrolOverScep, type ScepEnrolmentRequest } from '../../src/device/scep-enrol.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import type { ImportedItem, ReportItem, ScepItem } from '../../src/protocol/device-api.ts';
import { signRequest } from '../../src/protocol/request-signing.ts';
import { type Json, type Seed, type TestService, connectorKey, encryptionCertificate, enrollmentToken, eventually, importPfx, seed } from '../device/agent-support.ts';
import { DAY, MINUTE, type DeviceStatus, deviceStatus, startClockedService } from './faults-support.ts';

const facts = (name: string) => ({ deviceName: name, model: 'iPhone15,2', operatingSystem: 'iOS' as const, osVersion: '18.1' });

interface Device {
  readonly agent: DeviceAgent;
  readonly deviceId: string;
  /** The device's own signed API client (the agent's identity key), with the service-side clock. */
  readonly api: DeviceApiClient;
  readonly key: KeyObject;
}

const scepOf = (a: CheckinAnswer): ScepItem => {
  assert.equal(a.status, 200);
  return a.status === 200 ? a.state.scep[0]! : assert.fail('no SCEP item');
};
const requestOf = (a: CheckinAnswer): NonNullable<ScepItem['request']> & ScepEnrolmentRequest => scepOf(a).request ?? assert.fail(`no SCEP request: ${JSON.stringify(scepOf(a))}`);
const importedOf = (a: CheckinAnswer): readonly ImportedItem[] => (a.status === 200 ? a.state.imported : assert.fail('not a full answer'));
const rows = (view: DeviceStatus, source: 'scep' | 'pkcsImported') => view.managedDeviceCertificateStates.filter((c) => c['source'] === source);

describe('faults and bad input, on a service whose clock the test holds', { timeout: 300_000 }, () => {
  /** How far the service's (and the device's) time is from now. */
  let offset = 0;
  const clock = () => new Date(Date.now() + offset);
  let s: TestService;
  let seeded: Seed;
  const alicePfx: { pfxId: string; thumbprint: string }[] = [];
  let connector: KeyObject;
  const stopConnector = new AbortController();
  let connectorRun: Promise<unknown>;
  const dirs: string[] = [];

  before(async () => {
    s = await startClockedService(clock);
    seeded = await seed(s);
    connector = connectorKey();
    await importFor('alice@contoso.com');
    const registered = await s.ok('POST', '/api/v1/connectors', { name: 'fault tests' });
    const client = new ConnectorClient({ url: s.origin, credential: registered['secret'] as string, version: CONNECTOR_VERSION });
    connectorRun = runConnector({ client, key: connectorKeyFrom(connector), signal: stopConnector.signal, waitSeconds: 1, backoff: { initialMs: 50, maxMs: 500 } });
  });
  afterEach(() => {
    offset = 0;
  });
  after(async () => {
    stopConnector.abort();
    await connectorRun;
    await s.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function importFor(upn: string): Promise<{ pfxId: string; thumbprint: string }> {
    const identity = await encryptionCertificate(s, upn);
    const pfx = { pfxId: (await importPfx(s, upn, identity, connector))['id'] as string, thumbprint: identity.certificate.thumbprint };
    if (upn.startsWith('alice')) alicePfx.push(pfx);
    return pfx;
  }

  /** A device enrolled now (by the service's clock), its agent keeping real time unless told otherwise. */
  async function enrol(userId: string, name: string): Promise<Device> {
    const stateDir = mkdtempSync(join(tmpdir(), 'kf-faults-device-'));
    dirs.push(stateDir);
    const agent = new DeviceAgent({ stateDir, clock });
    const { deviceId } = await agent.enroll(s.origin, await enrollmentToken(s, userId), facts(name));
    const key = (await (await agent.keystore()).snapshot()).identity!.key;
    return { agent, deviceId, key, api: new DeviceApiClient({ serverUrl: s.origin, deviceId, key, clock: () => clock().getTime() }) };
  }

  const status = (deviceId: string) => deviceStatus(s.ok, deviceId);
  /** Certificates the CA issued under the mirrored SCEP profiles. */
  const scepIssued = async () => (await s.ctx.tenant.ca.listIssued(ISSUING_CA_ID, { limit: 1000 })).filter((c) => c.profile?.startsWith('p-') === true);
  const scepLog = async () => s.ctx.tenant.scep.listTransactions({ limit: 1000 });

  /** Check-ins until nothing is pending (the connector works beside us). */
  async function settle(agent: DeviceAgent): Promise<void> {
    await eventually('the device to hold everything', async () => {
      const summary = await agent.checkin();
      return summary.pending.length === 0 && summary.failed.length === 0;
    });
  }

  /** The keystore and the admin's view agree that the device holds its signing certificate and Alice's history, each once. */
  async function assertComplete(d: Device, pfx: readonly { thumbprint: string }[]): Promise<void> {
    const ks = await (await d.agent.keystore()).snapshot();
    assert.equal(ks.signing.length, 1);
    assert.deepEqual(ks.encryption.map((e) => e.certificate.thumbprint).sort(), pfx.map((p) => p.thumbprint).sort(), 'each encryption certificate once');
    const view = await status(d.deviceId);
    const scep = rows(view, 'scep');
    assert.deepEqual(scep.map((r) => r['certificateIssuanceState']), ['installed']);
    assert.equal(String(scep[0]!['certificateThumbprint']).toUpperCase(), ks.signing[0]!.certificate.thumbprint);
    const imported = rows(view, 'pkcsImported');
    assert.deepEqual(imported.map((r) => String(r['certificateThumbprint']).toUpperCase()).sort(), pfx.map((p) => p.thumbprint).sort());
    assert.ok(imported.every((r) => r['certificateIssuanceState'] === 'installed'), JSON.stringify(imported));
    assert.deepEqual(view.policyStatuses.map((p) => [p['policyId'], p['status']]), [[seeded.policy, 'compliant']]);
  }

  test('a device offline for a week: the challenge it was handed expired meanwhile; its next check-in, even a conditional one, hands a fresh one, and it enrols and installs what waited; a skewed clock is refused with a clear error', async () => {
    offset = -7 * DAY;
    const d = await enrol(seeded.users.alice, 'Alice’s iPhone, a week in a drawer');
    // Its last check-ins before it went dark: the delivery got ready in between; then the device did nothing.
    await d.api.checkin();
    await eventually('the connector to prepare the delivery', async () => importedOf(await d.api.checkin()).every((i) => i.deliveryId !== undefined));
    let last: CheckinAnswer | undefined;
    await eventually('an idle check-in (304) on the state the device went dark with', async () => {
      last = await d.api.checkin();
      return (await d.api.checkin(last.etag)).status === 304;
    });
    const stale = requestOf(last!);
    assert.ok(Date.parse(stale.expiresAt) < Date.now() - 6 * DAY, stale.expiresAt);
    const wentDark = (await status(d.deviceId)).device['lastSyncDateTime'];

    offset = 0;
    const expired = await enrolOverScep(stale);
    assert.deepEqual(expired.ok ? 'issued' : expired.state, 'challengeValidationFailed', 'the week-old challenge enrols nothing');
    // Nothing the admin did moved the ETag; the challenge's expiry (recheckAt) makes the conditional check-in a full one.
    const back = await d.api.checkin(last!.etag);
    assert.equal(back.status, 200, 'not 304: the state the device holds names an expired challenge');
    const fresh = requestOf(back);
    assert.notEqual(fresh.challenge, stale.challenge);
    assert.ok(Date.parse(fresh.expiresAt) > Date.now() + 59 * MINUTE, fresh.expiresAt);

    const summary = await d.agent.checkin();
    assert.deepEqual(summary.failed, []);
    assert.ok(summary.installed.some((i) => i.kind === 'signing'), JSON.stringify(summary.installed));
    await settle(d.agent);
    await assertComplete(d, alicePfx);
    const view = await status(d.deviceId);
    assert.ok(Date.parse(String(view.device['lastSyncDateTime'])) > Date.parse(String(wentDark)) + 6 * DAY, 'the admin sees it back');

    // A device whose clock is wrong: every signed request is refused, saying why, and nothing changes.
    const generation = (await (await d.agent.keystore()).snapshot()).generation;
    for (const skew of [6 * MINUTE, -6 * MINUTE, -7 * DAY]) {
      const skewed = new DeviceAgent({ stateDir: d.agent.stateDir, clock: () => new Date(Date.now() + skew) });
      await assert.rejects(skewed.checkin({ full: true }), (e) => isKeyfleetError(e, 'KF_UNAUTHENTICATED') && /timestamp outside the allowed window/.test(e.message));
    }
    assert.equal((await (await d.agent.keystore()).snapshot()).generation, generation, 'the keystore untouched');
  });

  test('duplicate and out-of-order check-ins and reports: a signed request sent twice is a replay; six check-ins at once make one challenge, one row and one delivery per certificate; stale and replayed reports are refused item by item while the others apply', async () => {
    const d = await enrol(seeded.users.alice, 'Alice’s busy iPhone');
    const answers = await Promise.all(Array.from({ length: 6 }, () => d.api.checkin()));
    assert.equal(new Set(answers.map((a) => requestOf(a).challenge)).size, 1, 'one challenge, whichever answer the device uses');
    const first = await status(d.deviceId);
    assert.equal(rows(first, 'scep').length, 1);
    assert.equal(rows(first, 'pkcsImported').length, alicePfx.length);
    const requests = (await s.ctx.tenant.delivery.listDeliveryRequests({ deviceId: d.deviceId }, { limit: 100 })).items;
    assert.deepEqual(requests.map((r) => r.pfxId).sort(), alicePfx.map((p) => p.pfxId).sort(), 'one delivery request per certificate');

    // The same signed check-in twice: the second is a replay.
    const header = signRequest(d.deviceId, d.key, 'GET', '/device/v1/checkin');
    const once = await fetch(`${s.origin}/device/v1/checkin`, { headers: { 'keyfleet-device': header } });
    assert.equal(once.status, 200);
    const twice = await fetch(`${s.origin}/device/v1/checkin`, { headers: { 'keyfleet-device': header } });
    assert.equal(twice.status, 401);
    assert.match(((await twice.json()) as Json)['detail'] as string, /replayed/);

    await settle(d.agent);
    await assertComplete(d, alicePfx);
    const settled = await status(d.deviceId);
    const scepRow = rows(settled, 'scep')[0]!;
    const oldRow = rows(settled, 'pkcsImported')[0]!;

    // A certificate imported now; the device fails to install it once (say, its keychain was locked).
    const added = await importFor('alice@contoso.com');
    await s.tick();
    const newRow = await (async () => {
      let item: ImportedItem | undefined;
      await eventually('the new certificate’s delivery', async () => {
        item = importedOf(await d.api.checkin()).find((i) => i.pfxId === added.pfxId);
        return item?.deliveryId !== undefined;
      });
      return item!;
    })();
    const reportBody = JSON.stringify({
      items: [
        { kind: 'imported', id: newRow.id, state: 'installFailed', errorCode: 'keychain-locked' },
        // From a second outbox: the old certificate's failure from before it installed, and its SCEP install again.
        { kind: 'imported', id: String(oldRow['id']), state: 'installFailed', errorCode: 'stale' },
        { kind: 'scep', id: String(scepRow['id']), state: 'installed', serialNumber: String(scepRow['certificateSerialNumber']), thumbprint: String(scepRow['certificateThumbprint']) },
      ] satisfies ReportItem[],
    });
    const signed = signRequest(d.deviceId, d.key, 'POST', '/device/v1/reports', reportBody);
    const post = () => fetch(`${s.origin}/device/v1/reports`, { method: 'POST', headers: { 'keyfleet-device': signed, 'content-type': 'application/json' }, body: reportBody });
    const applied = (await (await post()).json()) as { results: { ok: boolean; detail?: string }[] };
    assert.deepEqual(applied.results.map((r) => r.ok), [true, false, false], JSON.stringify(applied));
    assert.match(applied.results[1]!.detail!, /cannot go from installed to installFailed/);
    assert.match(applied.results[2]!.detail!, /cannot go from installed to installed/);
    const replay = await post();
    assert.equal(replay.status, 401, 'the same signed report again is a replay');
    let view = await status(d.deviceId);
    const byId = (v: DeviceStatus, id: unknown) => v.managedDeviceCertificateStates.find((c) => c['id'] === id)!;
    assert.deepEqual([byId(view, newRow.id)['certificateIssuanceState'], byId(view, newRow.id)['certificateErrorCode']], ['installFailed', 'keychain-locked']);
    for (const r of [scepRow, oldRow]) assert.deepEqual(byId(view, r['id']), r, 'the refused items changed nothing');

    // The device's next check-in installs it; the failure report, arriving again late and signed afresh, is refused beside one that applies.
    const next = await d.agent.checkin();
    assert.ok(next.installed.some((i) => i.thumbprint === added.thumbprint), JSON.stringify(next));
    const late = await d.api.report([
      { kind: 'imported', id: newRow.id, state: 'installFailed', errorCode: 'keychain-locked' },
      { kind: 'policy', id: seeded.policy, state: 'compliant' },
    ]);
    assert.deepEqual(late.results.map((r) => r.ok), [false, true], JSON.stringify(late));
    view = await status(d.deviceId);
    assert.deepEqual([byId(view, newRow.id)['certificateIssuanceState'], byId(view, newRow.id)['certificateErrorCode']], ['installed', null]);
    await assertComplete(d, alicePfx);
  });

  test('a device presenting another user’s device’s SCEP challenge (with its own CSR) is refused, issued nothing, and logged; the attempt does not use the challenge up, so its owner then enrols with it', async () => {
    const a = await enrol(seeded.users.alice, 'Alice’s iPhone (A)');
    const b = await enrol(seeded.users.bob, 'Bob’s iPhone (B)');
    const aRequest = requestOf(await a.api.checkin());
    // B cannot ask for A's state: the device is the one that signed, whatever the URL names.
    const path = `/device/v1/checkin?deviceId=${a.deviceId}`;
    const asked = await fetch(`${s.origin}${path}`, { headers: { 'keyfleet-device': signRequest(b.deviceId, b.key, 'GET', path) } });
    assert.equal(asked.status, 200);
    const bState = (await asked.json()) as { deviceId: string; scep: ScepItem[] };
    assert.equal(bState.deviceId, b.deviceId);
    const bRequest = bState.scep[0]!.request!;
    assert.notEqual(bRequest.challenge, aRequest.challenge);

    // B holds A's challenge anyway (leaked, say) and puts it into a request for its own key and names.
    const issuedBefore = (await scepIssued()).length;
    const stolen = await enrolOverScep({ ...bRequest, challenge: aRequest.challenge });
    assert.deepEqual(stolen.ok ? `issued ${stolen.certificate.serialHex}` : stolen.state, 'challengeValidationFailed');
    assert.equal((await scepIssued()).length, issuedBefore, 'nothing issued');
    const logged = (await scepLog())[0]!;
    assert.deepEqual([logged.outcome, logged.failInfo, logged.requester], ['failure', 'badRequest', a.deviceId], 'the SCEP log names the device whose challenge it was');

    // A request the challenge does not admit leaves it unspent: A enrols with that very challenge.
    const still = scepOf(await a.api.checkin());
    assert.deepEqual([still.state, still.request?.challenge], ['challengeIssued', aRequest.challenge]);
    const enrolled = await a.agent.checkin();
    assert.deepEqual(enrolled.failed, [], JSON.stringify(enrolled));
    assert.ok(enrolled.installed.some((i) => i.kind === 'signing'), JSON.stringify(enrolled.installed));
    await settle(a.agent);
    await assertComplete(a, alicePfx);
    // B, with its own challenge, is unaffected.
    await settle(b.agent);
    assert.deepEqual(rows(await status(b.deviceId), 'scep').map((r) => r['certificateIssuanceState']), ['installed']);
    assert.equal((await (await b.agent.keystore()).snapshot()).signing[0]!.certificate.emailAddresses[0], 'bob@contoso.com');
  });

  // The same with a device of the same user: its own CSR carries the very subject and SAN A's challenge allows,
  // and nothing in a SCEP request says which device made the key, so the SCEP server cannot refuse it. What
  // it can do: not let the presenter claim the certificate, and revoke it with the device whose challenge it was.
  test('a device presenting the SCEP challenge of another device of the same user, with its own key: issued (SCEP cannot tell) and the challenge used up, but the certificate is not the presenter’s to claim and is revoked when its owner is retired', async () => {
    const a = await enrol(seeded.users.alice, 'Alice’s iPhone (A2)');
    const other = await enrol(seeded.users.alice, 'Alice’s iPad (B2)');
    const aRequest = requestOf(await a.api.checkin());
    const own = scepOf(await other.api.checkin());
    const stolen = await enrolOverScep({ ...own.request!, challenge: aRequest.challenge });
    if (!stolen.ok) return assert.equal(stolen.state, 'challengeValidationFailed'); // refused outright: better still
    const serial = stolen.certificate.serialHex;
    assert.equal((await s.ca.get(serial)).requester, a.deviceId, 'the CA knows whose challenge it was');
    const claim = await other.api.report([{ kind: 'scep', id: own.id, state: 'installed', serialNumber: serial, thumbprint: stolen.certificate.thumbprint }]);
    assert.deepEqual(claim.results.map((r) => r.ok), [false], 'a certificate issued on another device’s challenge is not this device’s');
    await settle(a.agent);
    assert.notEqual(rows(await status(a.deviceId), 'scep')[0]!['certificateSerialNumber'], serial);
    await s.ok('POST', `/api/v1/managedDevices/${a.deviceId}/retire`);
    assert.equal((await s.ca.get(serial)).status, 'revoked', 'everything issued on the retired device’s challenges is revoked');
  });

  test('an expired challenge: presented 61 minutes after it was handed out it is refused (challengeValidationFailed) and issues nothing; the next check-in hands a fresh one and the device enrols', async () => {
    offset = -61 * MINUTE;
    const d = await enrol(seeded.users.bob, 'Bob’s iPad');
    const old = requestOf(await d.api.checkin());
    offset = 0;

    const issuedBefore = (await scepIssued()).length;
    const late = await enrolOverScep(old);
    assert.deepEqual(late.ok ? 'issued' : [late.state, late.errorCode], ['challengeValidationFailed', 'scep-badRequest']);
    assert.equal((await scepIssued()).length, issuedBefore, 'nothing issued');
    // An expired challenge names no device any more: the log has the CSR's subject.
    const logged = (await scepLog())[0]!;
    assert.deepEqual([logged.outcome, logged.failInfo, logged.requester], ['failure', 'badRequest', old.subject]);
    // The device reports it, as the agent does; the admin sees why.
    const scepId = rows(await status(d.deviceId), 'scep')[0]!['id'] as string;
    assert.deepEqual((await d.api.report([{ kind: 'scep', id: scepId, state: late.ok ? 'installed' : late.state, errorCode: late.ok ? '' : late.errorCode }])).results.map((r) => r.ok), [true]);
    const failed = rows(await status(d.deviceId), 'scep')[0]!;
    assert.deepEqual([failed['certificateIssuanceState'], failed['certificateErrorCode']], ['challengeValidationFailed', 'scep-badRequest']);

    const fresh = requestOf(await d.api.checkin());
    assert.notEqual(fresh.challenge, old.challenge);
    assert.ok(Date.parse(fresh.expiresAt) > Date.now() + 59 * MINUTE);
    const enrolled = await d.agent.checkin();
    assert.deepEqual(enrolled.failed, []);
    assert.ok(enrolled.installed.some((i) => i.kind === 'signing'));
    const view = rows(await status(d.deviceId), 'scep')[0]!;
    assert.deepEqual([view['certificateIssuanceState'], view['certificateErrorCode']], ['installed', null]);
    assert.equal(String(view['certificateThumbprint']).toUpperCase(), (await (await d.agent.keystore()).snapshot()).signing[0]!.certificate.thumbprint);
    assert.equal((await scepIssued()).length, issuedBefore + 1);
  });
});
