/**
 * `keyfleet device …`: act as one enrolled iOS/iPadOS device (the Company
 * Portal agent, src/device/agent.ts) whose state lives in --state DIR.
 *
 *   enroll        redeem an enrollment token (kfe_…) with a key made here
 *   checkin       apply the desired state now and report
 *   status        what this device is and holds
 *   notifications the in-app notification list
 *   portal        serve the landing page, listen for push, check in; until SIGINT
 *   keystore      list the keystore, or export one item as PKCS#12 or PEM
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { KeyfleetError } from '../errors.ts';
import { DeviceAgent, type CheckinSummary, type ListenEvent } from '../device/agent.ts';
import { PortalProgress, startPortal } from '../device/portal.ts';
import type { ExportOptions, KeystoreItemKind } from '../device/keystore.ts';
import { dispatch, parseOptions, readBoundedFile, readInput, requireOption, writeOutput } from './io.ts';

const USAGE = `Usage:
  keyfleet device enroll --server URL --token kfe_…|- --state DIR [--name N] [--model M] [--os iOS|iPadOS]
                         [--os-version V] [--serial S] [--portal-port N] [--json]
  keyfleet device checkin --state DIR [--full] [--json]
  keyfleet device status --state DIR [--json]
  keyfleet device notifications --state DIR [--json]
  keyfleet device portal --state DIR [--port N] [--interval SECONDS] [--quiet]
  keyfleet device keystore list --state DIR [--json]
  keyfleet device keystore export --state DIR --thumbprint T [--kind signing|encryption|trusted-root|device-identity|contact]
                         (--format pkcs12 --password-file F [--legacy] | --format pem [--include-key]) [--out F]
--token - reads the token from stdin. The portal listens on 127.0.0.1 (by default on the port given at enrolment).`;

export async function deviceCommand(argv: string[]): Promise<number> {
  return dispatch('device', argv, { enroll, checkin, status, notifications, portal, keystore: keystoreCommand }, USAGE);
}

const need = (value: string | undefined, option: string): string => requireOption(value, option, USAGE);

function port(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new KeyfleetError('KF_USAGE', `${option} must be 0–65535\n${USAGE}`);
  return n;
}

function json(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function enroll(argv: string[]): Promise<number> {
  const { values } = parseOptions(
    argv,
    {
      server: { type: 'string' },
      token: { type: 'string' },
      state: { type: 'string' },
      name: { type: 'string' },
      model: { type: 'string' },
      os: { type: 'string' },
      'os-version': { type: 'string' },
      serial: { type: 'string' },
      'portal-port': { type: 'string' },
      json: { type: 'boolean' },
    },
    USAGE,
  );
  const os = values.os ?? 'iOS';
  if (os !== 'iOS' && os !== 'iPadOS') throw new KeyfleetError('KF_USAGE', `--os must be iOS or iPadOS\n${USAGE}`);
  const portalPort = port(values['portal-port'], '--portal-port');
  if (portalPort === 0) throw new KeyfleetError('KF_USAGE', `--portal-port needs a fixed port: mail links lead there\n${USAGE}`);
  let token = need(values.token, '--token');
  if (token === '-') token = (await readInput(undefined, 1024)).toString('utf8').trim();
  const agent = new DeviceAgent({ stateDir: need(values.state, '--state') });
  const state = await agent.enroll(need(values.server, '--server'), token, {
    deviceName: values.name ?? `${hostname()} (keyfleet device)`,
    model: values.model ?? (os === 'iPadOS' ? 'iPad' : 'iPhone'),
    operatingSystem: os,
    osVersion: values['os-version'] ?? '18.0',
    ...(values.serial === undefined ? {} : { serialNumber: values.serial }),
    ...(portalPort === undefined ? {} : { portalUrl: `http://127.0.0.1:${portalPort}` }),
  });
  if (values.json) json({ deviceId: state.deviceId, userId: state.userId, serverUrl: state.serverUrl, stateDir: agent.stateDir });
  else process.stdout.write(`enrolled device ${state.deviceId} (user ${state.userId}) with ${state.serverUrl}; state in ${agent.stateDir}\n`);
  return 0;
}

async function checkin(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { state: { type: 'string' }, full: { type: 'boolean' }, json: { type: 'boolean' } }, USAGE);
  const agent = new DeviceAgent({ stateDir: need(values.state, '--state') });
  const summary = await agent.checkin({ full: values.full === true });
  if (values.json) json(summary);
  else process.stdout.write(describeCheckin(summary));
  return summary.failed.length > 0 ? 1 : 0;
}

export function describeCheckin(s: CheckinSummary): string {
  const lines: string[] = [];
  if (s.result === 'unchanged') lines.push('nothing changed since the last check-in');
  else if (s.result === 'retired' || s.result === 'wiped') lines.push(`the device was ${s.result}: its company certificates, roots and settings are gone`);
  else lines.push(`applied the desired state (${s.rounds} round${s.rounds === 1 ? '' : 's'})`);
  for (const i of s.installed) lines.push(`  installed  ${i.kind.padEnd(13)} ${i.label}`);
  for (const i of s.removed) lines.push(`  removed    ${i.kind.padEnd(13)} ${i.label}`);
  for (const i of s.pending) lines.push(`  pending    ${i.kind.padEnd(13)} ${i.label}: ${i.why}`);
  for (const i of s.failed) lines.push(`  failed     ${i.kind.padEnd(13)} ${i.label}: ${i.errorCode}: ${i.detail}`);
  const refused = s.reports.filter((r) => !r.ok);
  if (refused.length > 0) lines.push(`  ${refused.length} of ${s.reports.length} reports refused by the service: ${refused.map((r) => `${r.item.kind} ${r.item.id} ${r.item.state} (${r.code})`).join('; ')}`);
  return `${lines.join('\n')}\n`;
}

async function status(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { state: { type: 'string' }, json: { type: 'boolean' } }, USAGE);
  const s = await new DeviceAgent({ stateDir: need(values.state, '--state') }).status();
  if (values.json) {
    json(s);
    return 0;
  }
  const k = s.keystore;
  process.stdout.write(
    [
      `device        ${s.state.deviceId} (${s.state.deviceName})`,
      `user          ${s.state.userId}`,
      `service       ${s.state.serverUrl}`,
      `state         ${s.state.managementState}${s.state.outbox.length > 0 ? ` (${s.state.outbox.length} reports not yet sent)` : ''}`,
      `last check-in ${s.state.lastCheckinAt ?? 'never'}`,
      `identity      ${s.identity === undefined ? 'none' : `${s.identity.thumbprint} until ${s.identity.notAfter}`}`,
      `keystore      ${k.signing} signing, ${k.encryption} encryption, ${k.trustedRoots} trusted roots, ${k.contacts} contacts; settings for ${k.appConfigurations.join(', ') || 'no app'}`,
    ].join('\n') + '\n',
  );
  return 0;
}

async function notifications(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { state: { type: 'string' }, json: { type: 'boolean' } }, USAGE);
  const list = await new DeviceAgent({ stateDir: need(values.state, '--state') }).notifications();
  if (values.json) json(list);
  else if (list.length === 0) process.stdout.write('no notifications\n');
  else for (const n of list) process.stdout.write(`${n.createdDateTime}  ${n.read ? '     ' : 'new  '}${n.title}: ${n.body}\n`);
  return 0;
}

async function portal(argv: string[]): Promise<number> {
  const { values } = parseOptions(argv, { state: { type: 'string' }, port: { type: 'string' }, interval: { type: 'string' }, quiet: { type: 'boolean' } }, USAGE);
  const stateDir = need(values.state, '--state');
  const interval = values.interval === undefined ? undefined : Number(values.interval);
  if (interval !== undefined && (!Number.isInteger(interval) || interval < 5 || interval > 86_400)) throw new KeyfleetError('KF_USAGE', `--interval must be 5–86400 seconds\n${USAGE}`);
  const probe = new DeviceAgent({ stateDir });
  const state = probe.state();
  const enrolledPort = state.portalUrl === undefined ? undefined : Number(new URL(state.portalUrl).port);
  const progress = new PortalProgress({ deviceName: state.deviceName });
  const agent = new DeviceAgent({ stateDir, progress });
  const server = await startPortal({ progress, port: port(values.port, '--port') ?? enrolledPort ?? 0 });
  process.stdout.write(`keyfleet: Company Portal for ${state.deviceName} at ${server.url}\n`);
  const log = (line: string) => {
    if (!values.quiet) process.stderr.write(`keyfleet device: ${line}\n`);
  };
  await agent.notifications().catch((e: unknown) => log(`notifications not read: ${e instanceof Error ? e.message : String(e)}`));
  const listener = agent.listen({ ...(interval === undefined ? {} : { intervalMs: interval * 1000 }), onEvent: (e) => log(describeEvent(e)) });
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
    void listener.done.then(resolve);
  });
  await listener.stop();
  await server.close();
  return 0;
}

function describeEvent(e: ListenEvent): string {
  switch (e.type) {
    case 'connected':
      return 'push channel connected';
    case 'disconnected':
      return `push channel down (${e.error}); reconnecting in ${Math.round(e.retryInMs / 100) / 10} s`;
    case 'changed':
      return `the service says the desired state changed (${e.version})`;
    case 'notification':
      return `notification: ${e.notification.title}`;
    case 'checkin':
      return `check-in (${e.reason}): ${describeCheckin(e.summary).trimEnd().replace(/\n/g, '\n  ')}`;
    case 'checkin-failed':
      return `check-in (${e.reason}) failed: ${e.error}`;
    case 'stopped':
      return `stopped: ${e.why}`;
  }
}

const KINDS: readonly KeystoreItemKind[] = ['signing', 'encryption', 'trusted-root', 'device-identity', 'contact'];

async function keystoreCommand(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === 'list') {
    const { values } = parseOptions(rest, { state: { type: 'string' }, json: { type: 'boolean' } }, USAGE);
    const listing = await (await new DeviceAgent({ stateDir: need(values.state, '--state') }).keystore()).list();
    if (values.json) json(listing);
    else {
      process.stdout.write(`${listing.path} (generation ${listing.generation}, written ${listing.writtenAt})\n`);
      for (const i of listing.items) process.stdout.write(`${i.kind.padEnd(16)} ${i.thumbprint}  ${i.subject}  until ${i.notAfter.slice(0, 10)}${i.hasPrivateKey ? '  (with key)' : ''}\n`);
      for (const a of listing.appConfigurations) process.stdout.write(`settings         ${a.bundleId}: ${a.settings.length} keys, updated ${a.updatedAt}\n`);
    }
    return 0;
  }
  if (verb === 'export') {
    const { values } = parseOptions(
      rest,
      {
        state: { type: 'string' }, thumbprint: { type: 'string' }, kind: { type: 'string' }, format: { type: 'string' },
        'password-file': { type: 'string' }, legacy: { type: 'boolean' }, 'include-key': { type: 'boolean' }, out: { type: 'string' },
      },
      USAGE,
    );
    const kind = values.kind as KeystoreItemKind | undefined;
    if (kind !== undefined && !KINDS.includes(kind)) throw new KeyfleetError('KF_USAGE', `--kind must be one of ${KINDS.join(', ')}\n${USAGE}`);
    let options: ExportOptions;
    if (values.format === 'pkcs12') {
      const file = need(values['password-file'], '--password-file');
      const password = (file === '-' ? await readInput(undefined, 4096) : readBoundedFile(file, 4096, 'password file')).toString('utf8').replace(/\r?\n$/, '');
      options = { format: 'pkcs12', password, profile: values.legacy ? 'legacy' : 'modern' };
    } else if (values.format === 'pem') {
      options = { format: 'pem', includeKey: values['include-key'] === true };
    } else throw new KeyfleetError('KF_USAGE', `--format must be pkcs12 or pem\n${USAGE}`);
    const keystore = await new DeviceAgent({ stateDir: need(values.state, '--state') }).keystore();
    const data = await keystore.export(need(values.thumbprint, '--thumbprint'), options, kind);
    if (values.out === undefined) await writeOutput(undefined, data);
    else {
      // It may hold a private key: readable by its owner only, whatever the umask or an older file's mode.
      writeFileSync(values.out, data, { mode: 0o600 });
      chmodSync(values.out, 0o600);
    }
    return 0;
  }
  throw new KeyfleetError('KF_USAGE', `${verb === undefined ? 'keyfleet device keystore needs list or export' : `unknown keystore command "${verb}"`}\n${USAGE}`);
}
