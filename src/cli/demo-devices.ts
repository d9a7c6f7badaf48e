/**
 * The cast of `keyfleet demo` and what it asks of devices: who has which
 * device, checking in until nothing waits, counting what a keystore holds,
 * and asking the service's OCSP responder about a certificate as any
 * relying party would (RFC 6960 over HTTP POST, the response verified).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConnectorRunSummary } from '../connector/run.ts';
import type { CheckinSummary, DeviceAgent } from '../device/agent.ts';
import type { Certificate } from '../x509/certificate.ts';
import { type OcspCheckResult, buildOcspRequest, verifyOcspResponse } from '../x509/ocsp-client.ts';

/** A story step did not see what the story promises: the demo ends with this sentence. */
export class DemoCheckFailed extends Error {}

export const USERS = [
  { key: 'alice', name: 'Alice', email: 'alice@example.com' },
  { key: 'bob', name: 'Bob', email: 'bob@example.com' },
  { key: 'carol', name: 'Carol', email: 'carol@example.com' },
] as const;

export interface DeviceSpec {
  readonly name: string;
  readonly label: string;
  readonly user: 'alice' | 'bob' | 'carol';
  readonly model: string;
  readonly os: 'iOS' | 'iPadOS';
}

export const DEVICES: readonly DeviceSpec[] = [
  { name: 'alice-iphone', label: "Alice's iPhone", user: 'alice', model: 'iPhone', os: 'iOS' },
  { name: 'alice-ipad', label: "Alice's iPad", user: 'alice', model: 'iPad', os: 'iPadOS' },
  { name: 'bob-iphone', label: "Bob's iPhone", user: 'bob', model: 'iPhone', os: 'iOS' },
  { name: 'bob-ipad', label: "Bob's iPad", user: 'bob', model: 'iPad', os: 'iPadOS' },
  { name: 'carol-iphone', label: "Carol's iPhone", user: 'carol', model: 'iPhone', os: 'iOS' },
];

export interface DemoDevice extends DeviceSpec {
  readonly agent: DeviceAgent;
  readonly deviceId: string;
}

/** What a device's keystore holds that the policy put there. */
export interface DeviceCount {
  trustedRoots: number;
  signing: number;
  encryption: number;
  /** The signing certificate's serial (hex), when there is one. */
  signingSerial?: string;
}

export async function countOf(device: DemoDevice): Promise<DeviceCount> {
  const s = await (await device.agent.keystore()).snapshot();
  const serial = s.signing[0]?.certificate.serialHex;
  return { trustedRoots: s.trustedRoots.length, signing: s.signing.length, encryption: s.encryption.length, ...(serial === undefined ? {} : { signingSerial: serial }) };
}

/** How long a device may wait for its certificates (SCEP, then the connector's re-wrap) before the demo gives up. */
const SETTLE_MS = 30_000;

/**
 * Checks in until nothing is pending or failed: imported certificates are
 * ready only once the connector has re-wrapped them for this device.
 */
export async function settle(device: DemoDevice, connector: Promise<ConnectorRunSummary>): Promise<void> {
  // A connector that stopped (refused by the service) will never deliver: say so instead of waiting.
  let stopped: unknown;
  connector.then(
    () => (stopped ??= new DemoCheckFailed('the PFX connector stopped')),
    (e: unknown) => (stopped ??= e),
  );
  const deadline = Date.now() + SETTLE_MS;
  let last: CheckinSummary | undefined;
  while (Date.now() < deadline) {
    last = await device.agent.checkin();
    if (last.pending.length === 0 && last.failed.length === 0) return;
    if (stopped !== undefined) throw stopped;
    await sleep(150);
  }
  const waiting = [...(last?.failed.map((f) => `${f.label}: ${f.errorCode} ${f.detail}`) ?? []), ...(last?.pending.map((p) => `${p.label}: ${p.why}`) ?? [])];
  throw new DemoCheckFailed(`${device.label} still waits after ${SETTLE_MS / 1000} s (${waiting.join('; ') || 'no answer'})`);
}

/** The first hex digits of a serial: enough to tell certificates apart in a sentence. */
export function short(serialHex: string): string {
  return serialHex.length > 10 ? `${serialHex.slice(0, 8)}...` : serialHex;
}

/** One OCSP request for `cert`, with a nonce; the response is verified against the issuer (or its delegated responder). */
export async function ocspStatus(url: string, cert: Certificate, issuer: Certificate): Promise<OcspCheckResult> {
  const request = buildOcspRequest(cert, issuer);
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/ocsp-request', accept: 'application/ocsp-response' },
    body: Buffer.from(request.der),
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new DemoCheckFailed(`the OCSP responder answered HTTP ${response.status}`);
  const der = new Uint8Array(await response.arrayBuffer());
  return verifyOcspResponse(der, { cert, issuer, ...(request.nonce === undefined ? {} : { nonce: request.nonce }) });
}
