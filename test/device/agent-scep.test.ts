/**
 * The agent's SCEP enrolment (src/device/scep-enrol.ts) against the real
 * service's SCEP endpoint, with a challenge the device API issued: the CA
 * is pinned before the challenge leaves the device, a substituted RA never
 * gets to read it, and the challenge is one-time and bound to the subject.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceAgent } from '../../src/device/agent.ts';
import { DeviceApiClient } from '../../src/device/api-client.ts';
import { type ScepEnrolmentRequest, enrolOverScep } from '../../src/device/scep-enrol.ts';
import { isKeyfleetError } from '../../src/errors.ts';
import { decodeCertsOnly, encodeCertsOnly } from '../../src/scep/certs-only.ts';
import { decodePkiMessage } from '../../src/scep/message.ts';
import { decryptContent } from '../../src/smime/cms/enveloped-data.ts';
import { createTestCa } from '../scep/support.ts';
import { type Seed, type TestService, enrollmentToken, seed, startService } from './agent-support.ts';

describe('SCEP enrolment by the agent', { timeout: 120_000 }, () => {
  let s: TestService;
  let seeded: Seed;
  let api: DeviceApiClient;
  const dir = mkdtempSync(join(tmpdir(), 'kf-device-scep-'));

  before(async () => {
    s = await startService();
    seeded = await seed(s);
    const agent = new DeviceAgent({ stateDir: dir });
    const { deviceId } = await agent.enroll(s.origin, await enrollmentToken(s, seeded.users.alice), { deviceName: 'Alice’s iPhone', model: 'iPhone', operatingSystem: 'iOS', osVersion: '18.1' });
    api = new DeviceApiClient({ serverUrl: s.origin, deviceId, key: (await (await agent.keystore()).snapshot()).identity!.key });
  });
  after(async () => {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The SCEP request of a full check-in: a fresh one after each failure the device reports. */
  async function scepRequest(): Promise<{ id: string; request: ScepEnrolmentRequest }> {
    const answer = await api.checkin();
    assert.equal(answer.status, 200);
    const item = answer.status === 200 ? answer.state.scep[0]! : undefined;
    assert.ok(item?.request, 'a SCEP request');
    return { id: item.id, request: item.request };
  }

  const recording = (log: string[], substitute?: (url: URL, response: Response) => Promise<Response>): typeof fetch => async (input, init) => {
    const url = new URL(String(input));
    log.push(url.searchParams.get('operation') ?? '');
    const response = await fetch(input, init);
    return substitute ? substitute(url, response) : response;
  };

  test('a CA fingerprint that does not match: nothing is sent, and the challenge still works with the right CA', async () => {
    const { request } = await scepRequest();
    const operations: string[] = [];
    const wrong = await enrolOverScep({ ...request, caFingerprint: 'AB'.repeat(32) }, { fetch: recording(operations) });
    assert.deepEqual(wrong.ok ? 'issued' : [wrong.state, wrong.errorCode], ['requestSubmitFailed', 'ca-fingerprint-mismatch']);
    assert.deepEqual(operations, ['GetCACert'], 'the challenge never left the device');

    const right = await enrolOverScep(request);
    assert.ok(right.ok, JSON.stringify(right));
    assert.deepEqual(right.certificate.emailAddresses, ['alice@contoso.com']);

    const again = await enrolOverScep(request);
    assert.deepEqual(again.ok ? 'issued' : again.state, 'challengeValidationFailed', 'one-time');
  });

  test('an RA certificate substituted in GetCACert (not the pinned CA’s) never receives the challenge', async () => {
    const { request } = await scepRequest();
    const mallory = await createTestCa();
    const bodies: Uint8Array[] = [];
    const operations: string[] = [];
    const mitm = recording(operations, async (url, response) => {
      const operation = url.searchParams.get('operation');
      if (operation === 'GetCACert') {
        const genuine = decodeCertsOnly(new Uint8Array(await response.arrayBuffer()));
        const ca = genuine.filter((c) => c.basicConstraints?.cA === true);
        return new Response(Buffer.from(encodeCertsOnly([mallory.ra.certificate, ...ca])), { headers: { 'content-type': 'application/x-x509-ca-ra-cert' } });
      }
      return response;
    });
    const captured: typeof fetch = async (input, init) => {
      if (init?.method === 'POST' && init.body instanceof Uint8Array) bodies.push(new Uint8Array(init.body));
      return mitm(input, init);
    };
    const result = await enrolOverScep(request, { fetch: captured });
    assert.equal(result.ok, false, 'the service cannot open a request not encrypted to its RA either');
    assert.equal(bodies.length, 1);
    const envelope = decodePkiMessage(bodies[0]!, { allowSha1: true }).envelope!;
    assert.throws(() => decryptContent(envelope, [{ certificate: mallory.ra.certificate, key: mallory.ra.key }]), (e) => isKeyfleetError(e, 'KF_CMS_NO_MATCHING_KEY'));
  });

  test('the challenge is bound to the subject: another subject is refused', async () => {
    // Report the failure above so that the service issues a fresh challenge.
    const { id } = await scepRequest();
    await api.report([{ kind: 'scep', id, state: 'requestSubmitFailed', errorCode: 'test' }]);
    const { request } = await scepRequest();
    const other = await enrolOverScep({ ...request, subject: 'CN=bob@contoso.com' });
    assert.deepEqual(other.ok ? 'issued' : other.state, 'challengeValidationFailed');
  });
  // A challenge handed out before must not outlive the device’s right to it.
  const freshDevice = async (user: string) => {
    const agent = new DeviceAgent({ stateDir: join(dir, `d-${Math.random().toString(36).slice(2)}`) });
    const { deviceId } = await agent.enroll(s.origin, await enrollmentToken(s, user), { deviceName: 'device', model: 'iPhone', operatingSystem: 'iOS', osVersion: '18.1' });
    const client = new DeviceApiClient({ serverUrl: s.origin, deviceId, key: (await (await agent.keystore()).snapshot()).identity!.key });
    const answer = await client.checkin();
    assert.equal(answer.status, 200);
    return { deviceId, client, request: answer.status === 200 ? answer.state.scep[0]!.request! : undefined! };
  };

  test('a challenge handed out before the device was retired no longer enrols', async () => {
    const { deviceId, request } = await freshDevice(seeded.users.alice);
    await s.ok('POST', `/api/v1/managedDevices/${deviceId}/retire`);
    const r = await enrolOverScep(request);
    assert.deepEqual(r.ok ? `issued ${r.certificate.serialHex}` : r.state, 'challengeValidationFailed');
  });

  test('a challenge handed out before the user left the group no longer enrols once the device checked in', async () => {
    const { client, request } = await freshDevice(seeded.users.bob);
    await s.ok('DELETE', `/api/v1/groups/${seeded.sales}/members/${seeded.users.bob}`);
    await s.tick();
    await client.checkin();
    const r = await enrolOverScep(request);
    assert.deepEqual(r.ok ? `issued ${r.certificate.serialHex}` : r.state, 'challengeValidationFailed');
    await s.ok('POST', `/api/v1/groups/${seeded.sales}/members`, { type: 'user', id: seeded.users.bob });
    await s.tick();
  });

  test('… nor when the device does not check in after the change', async () => {
    const { request } = await freshDevice(seeded.users.bob);
    await s.ok('DELETE', `/api/v1/groups/${seeded.sales}/members/${seeded.users.bob}`);
    await s.tick();
    const r = await enrolOverScep(request);
    assert.deepEqual(r.ok ? `issued ${r.certificate.serialHex}` : r.state, 'challengeValidationFailed');
  });
});
