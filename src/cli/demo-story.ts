/**
 * Issue 5's story, as `keyfleet demo` tells it: each step does one thing
 * through the same interfaces a deployment uses — the admin API over HTTP
 * with the first administrator's token, the PFX connector's loop and
 * client, Company Portal agents and the mail side — and returns the line
 * that narrates it. A step that does not see what the story promises
 * throws, so the demo cannot succeed by printing.
 */
import { type KeyObject, generateKeyPair as generateKeyPairCb } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ConnectorClient } from '../connector/client.ts';
import { connectorKeyFrom } from '../connector/keystore.ts';
import { type ConnectorRunSummary, runConnector } from '../connector/run.ts';
import { CONNECTOR_VERSION } from '../connector/version.ts';
import { DeviceAgent } from '../device/agent.ts';
import { keystoreContactBook, keystoreMailKeys } from '../device/mail-keys.ts';
import { MailClient } from '../mail/index.ts';
import { readPfxMetadata } from '../pkcs12/pfx-metadata.ts';
import { OUTLOOK_IOS_BUNDLE_ID, preparePfxImport } from '../policy/index.ts';
import { encryptMessage } from '../smime/message.ts';
import type { Certificate } from '../x509/certificate.ts';
import { apiRequest } from './admin.ts';
import { type MailCa, type MailCredential, createMailCa } from './demo-pki.ts';
import type { DemoService } from './demo-service.ts';
import { DEVICES, DemoCheckFailed, type DemoDevice, type DeviceCount, USERS, countOf, ocspStatus, settle, short } from './demo-devices.ts';

const generateKeyPair = promisify(generateKeyPairCb);
type Json = Record<string, unknown>;

/** One device as the admin API shows it. */
export interface SummaryRow {
  readonly name: string;
  readonly deviceId: string;
  readonly device: string;
  readonly user: string;
  readonly managementState: string;
  /** Each assigned policy's status, or "none". */
  readonly policy: string;
  /** How many of its certificates are in each certificateIssuanceState. */
  readonly certificates: Readonly<Record<string, number>>;
}

/** What the story found, for --json and the test. */
export interface DemoFacts {
  devices: (DeviceCount & { name: string; user: string; deviceId: string })[];
  mail?: { outcome: string; encrypted: boolean; signatureValid: boolean; signer: string | undefined; oldMessageDecryptedWith: string | undefined; oldestCertificate: string };
  unassigned: (DeviceCount & { name: string })[];
  retired?: { name: string; deviceId: string; managementState: string; signingSerial: string };
  /** What OCSP says about each device's first signing certificate. */
  ocsp: Record<string, string>;
}

function check(ok: boolean, why: string): asserts ok {
  if (!ok) throw new DemoCheckFailed(why);
}

export class DemoStory {
  readonly facts: DemoFacts = { devices: [], unassigned: [], ocsp: {} };
  readonly #service: DemoService;
  readonly #dir: string;
  readonly #ids: Record<string, string> = {};
  readonly #devices = new Map<string, DemoDevice>();
  #mailCa: MailCa | undefined;
  readonly #history = new Map<string, MailCredential>();
  #connectorKey: KeyObject | undefined;
  readonly #stopConnector = new AbortController();
  #connector: Promise<ConnectorRunSummary> | undefined;
  /** Each device's signing certificate and its issuer, as first installed. */
  readonly #signing = new Map<string, { readonly certificate: Certificate; readonly issuer: Certificate }>();

  constructor(service: DemoService, dir: string) {
    this.#service = service;
    this.#dir = dir;
  }

  #api<T = Json>(method: string, path: string, body?: unknown): Promise<T> {
    return apiRequest(method, path, body, { KEYFLEET_URL: this.#service.origin, KEYFLEET_TOKEN: this.#service.adminToken }) as Promise<T>;
  }

  #device(name: string): DemoDevice {
    return this.#devices.get(name)!;
  }

  /** Each step: a short name (for a failure) and what it does, returning its narration. */
  steps(): { readonly name: string; run(): Promise<string | readonly string[]> }[] {
    return [
      { name: 'create the users', run: () => this.users() },
      { name: 'create group Sales', run: () => this.group() },
      { name: 'add Outlook', run: () => this.outlook() },
      { name: 'add the trusted roots', run: () => this.roots() },
      { name: 'add the certificate profiles', run: () => this.profiles() },
      { name: 'import the encryption certificates', run: () => this.importHistory() },
      { name: 'create and assign the policy', run: () => this.policy() },
      { name: 'start the PFX connector', run: () => this.startConnector() },
      { name: 'enrol the devices', run: () => this.enrol() },
      { name: 'first check-ins', run: () => this.firstCheckins() },
      { name: 'compare the signing certificates', run: () => this.distinctSigning() },
      { name: 'Bob sends Alice his certificate', run: () => this.exchangeCertificate() },
      { name: 'mail from Alice to Bob', run: () => this.mail() },
      { name: 'open an old message', run: () => this.oldMail() },
      { name: 'remove Bob from Sales', run: () => this.unassign() },
      { name: "retire Alice's iPad", run: () => this.retire() },
      { name: 'ask OCSP', run: () => this.ocsp() },
    ];
  }

  async users(): Promise<string> {
    for (const u of USERS) {
      const created = await this.#api('POST', 'api/v1/users', { userPrincipalName: u.email, displayName: u.name, mail: u.email, isExchangeOnline: true, accountEnabled: true });
      this.#ids[u.key] = String(created['id']);
    }
    return "Created users Alice, Bob and Carol through the admin API, with the first administrator's token.";
  }

  async group(): Promise<string> {
    this.#ids['sales'] = String((await this.#api('POST', 'api/v1/groups', { displayName: 'Sales' }))['id']);
    for (const key of ['alice', 'bob']) await this.#api('POST', `api/v1/groups/${this.#ids['sales']}/members`, { type: 'user', id: this.#ids[key] });
    return 'Created group Sales with Alice and Bob; Carol is not in it, so nothing for Sales may reach her.';
  }

  async outlook(): Promise<string> {
    const app = await this.#api('POST', 'api/v1/apps', {
      kind: 'iosStoreApp',
      displayName: 'Microsoft Outlook',
      publisher: 'Microsoft Corporation',
      bundleId: OUTLOOK_IOS_BUNDLE_ID,
      appStoreUrl: 'https://apps.apple.com/app/microsoft-outlook/id951937596',
    });
    this.#ids['outlook'] = String(app['id']);
    return 'Added Outlook for iOS: the S/MIME policy reaches it as managed app configuration.';
  }

  async roots(): Promise<string> {
    this.#mailCa = await createMailCa('Demo Mail CA');
    const root = this.#service.ca.root ?? this.#service.ca.certificate;
    const trusted = async (key: string, displayName: string, cert: Certificate) => {
      const body = { kind: 'iosTrustedRootCertificate', displayName, certFileName: `${key}.cer`, trustedRootCertificate: Buffer.from(cert.der).toString('base64') };
      this.#ids[key] = String((await this.#api('POST', 'api/v1/profiles', body))['id']);
    };
    await trusted('keyfleetRoot', 'Keyfleet Demo Root CA', root);
    await trusted('mailRoot', 'Demo Mail CA', this.#mailCa.certificate);
    return "Added trusted roots: Keyfleet's CA (signing) and the Demo Mail CA that issued the encryption certificates.";
  }

  async profiles(): Promise<string> {
    const scep = await this.#api('POST', 'api/v1/profiles', {
      kind: 'iosScepCertificateProfile',
      displayName: 'S/MIME signing (SCEP)',
      description: 'A signing certificate unique to each device and user',
      subjectNameFormat: 'commonNameAsEmail',
      subjectAlternativeNameType: ['emailAddress'],
      keyUsage: ['digitalSignature'],
      // SCEP needs RSA on the device (RFC 8894 §3: the request is encrypted and signed with RSA).
      keySize: 2048,
      extendedKeyUsages: [{ name: 'Secure Email', objectIdentifier: '1.3.6.1.5.5.7.3.4' }],
      certificateValidityPeriodValue: 1,
      certificateValidityPeriodScale: 'years',
      renewalThresholdPercentage: 20,
      scepServerUrls: [`${this.#service.origin}/scep`],
      rootCertificateId: this.#ids['keyfleetRoot'],
    });
    this.#ids['scep'] = String(scep['id']);
    const pkcs = await this.#api('POST', 'api/v1/profiles', { kind: 'iosImportedPfxCertificateProfile', displayName: 'Encryption history', intendedPurpose: 'smimeEncryption' });
    this.#ids['pkcs'] = String(pkcs['id']);
    return 'Added a SCEP signing profile (a key and certificate per device) and one for imported encryption certificates.';
  }

  async importHistory(): Promise<string> {
    this.#connectorKey = (await generateKeyPair('rsa', { modulusLength: 2048 })).privateKey;
    const ca = this.#mailCa!;
    // Bob's history, oldest first: one expired a year ago, two overlapping as at a renewal. Alice has one.
    const history: [string, string, string, number, number][] = [
      ['bob-1', 'Bob', 'bob@example.com', -1095, -365],
      ['bob-2', 'Bob', 'bob@example.com', -400, 330],
      ['bob-3', 'Bob', 'bob@example.com', -30, 700],
      ['alice', 'Alice', 'alice@example.com', -30, 700],
    ];
    for (const [label, cn, email, from, to] of history) {
      const credential = await ca.issueEncryption(label, cn, email, from, to);
      this.#history.set(label, credential);
      // The admin's side of `keyfleet pfx import`: the PFX stays locked, its password is encrypted to the connector.
      const upload = preparePfxImport(
        { pfx: credential.pfx, password: credential.password, connectorPublicKey: this.#connectorKey, userPrincipalName: email, intendedPurpose: 'smimeEncryption', keyName: 'demo-connector' },
        readPfxMetadata,
      );
      await this.#api('POST', 'api/v1/userPfxCertificates', upload);
    }
    return "Imported Bob's 3 encryption certificates (one expired) and Alice's 1 as PKCS#12; only the connector can open them.";
  }

  async policy(): Promise<string> {
    const policy = await this.#api('POST', 'api/v1/policies', {
      displayName: 'Outlook S/MIME',
      description: 'SCEP signing, imported encryption history',
      deviceEnrollmentType: 'managedDevices',
      platform: 'iOS/iPadOS',
      targetedMobileApps: [this.#ids['outlook']],
      enableSmime: true,
      deploySmimeCertificates: true,
      signingCertificateProfileType: 'scep',
      signingCertificateProfileId: this.#ids['scep'],
      encryptionCertificateProfileType: 'pkcsImported',
      encryptionCertificateProfileId: this.#ids['pkcs'],
      endUserNotification: 'companyPortal',
    });
    this.#ids['policy'] = String(policy['id']);
    const include = { include: [this.#ids['sales']], exclude: [] };
    await this.#api('POST', `api/v1/policies/${this.#ids['policy']}/assignments`, include);
    await this.#api('POST', `api/v1/apps/${this.#ids['outlook']}/assignments`, include);
    for (const p of ['keyfleetRoot', 'mailRoot', 'scep', 'pkcs']) await this.#api('POST', `api/v1/profiles/${this.#ids[p]}/assignments`, include);
    return 'Created the S/MIME policy (SCEP signing, imported encryption) and assigned it, Outlook, roots and profiles to Sales.';
  }

  async startConnector(): Promise<string> {
    const registered = await this.#api('POST', 'api/v1/connectors', { name: 'demo-connector' });
    const client = new ConnectorClient({ url: this.#service.origin, credential: String(registered['secret']), version: CONNECTOR_VERSION });
    this.#connector = runConnector({ client, key: connectorKeyFrom(this.#connectorKey!), signal: this.#stopConnector.signal, waitSeconds: 10 });
    // A connector that stops early (refused, say) fails the step that waits for it, not an unhandled rejection.
    this.#connector.catch(() => {});
    return 'Started the PFX connector: it opens each imported PFX in memory and re-encrypts it for one device.';
  }

  async enrol(): Promise<string> {
    for (const d of DEVICES) {
      const { token } = await this.#api<{ token: string }>('POST', `api/v1/users/${this.#ids[d.user]}/enrollmentTokens`, {});
      const agent = new DeviceAgent({ stateDir: join(this.#dir, 'devices', d.name) });
      const state = await agent.enroll(this.#service.origin, token, { deviceName: d.label, model: d.model, operatingSystem: d.os, osVersion: '18.0' });
      this.#devices.set(d.name, { ...d, agent, deviceId: state.deviceId });
    }
    return "Enrolled five devices with one-time tokens: Alice's and Bob's iPhones and iPads, and Carol's iPhone.";
  }

  async firstCheckins(): Promise<string[]> {
    // In parallel, as real devices would; each checks in until nothing waits (imported certificates wait for the connector).
    const counts = await Promise.all(DEVICES.map(async (d) => {
      const device = this.#device(d.name);
      await settle(device, this.#connector!);
      const signing = (await (await device.agent.keystore()).snapshot()).signing[0];
      if (signing !== undefined) this.#signing.set(d.name, { certificate: signing.certificate, issuer: signing.chain[0] ?? this.#service.ca.certificate });
      return countOf(device);
    }));
    const lines: string[] = [];
    DEVICES.forEach((d, i) => {
      const c = counts[i]!;
      this.facts.devices.push({ name: d.name, user: d.user, deviceId: this.#device(d.name).deviceId, ...c });
      if (d.user === 'carol') {
        check(c.signing + c.encryption + c.trustedRoots === 0, `${d.label} holds certificates though Carol is not in Sales`);
        lines.push(`${d.label} checked in: nothing for it, as Carol is not in Sales.`);
        return;
      }
      const expected = d.user === 'bob' ? 3 : 1;
      check(c.signing === 1 && c.trustedRoots === 2 && c.encryption === expected, `${d.label} holds ${c.signing} signing, ${c.encryption} encryption certificates and ${c.trustedRoots} roots; expected 1, ${expected} and 2`);
      lines.push(`${d.label} checked in: 2 roots, its own signing certificate (${short(c.signingSerial!)}), ${d.user === 'bob' ? "Bob's 3 encryption certificates" : "Alice's encryption certificate"}.`);
    });
    return lines;
  }

  async distinctSigning(): Promise<string> {
    const serials = this.facts.devices.flatMap((d) => (d.signingSerial === undefined ? [] : [d.signingSerial]));
    check(serials.length === 4 && new Set(serials).size === 4, `expected four different signing certificates, got ${serials.length} (${new Set(serials).size} different)`);
    return 'Four devices, four different signing certificates: each key was made on its device and never left it.';
  }

  async #mailClient(name: string, account: string): Promise<MailClient> {
    const keystore = await this.#device(name).agent.keystore();
    return new MailClient({ account, keys: keystoreMailKeys(keystore), contactBook: keystoreContactBook(keystore) });
  }

  async exchangeCertificate(): Promise<string> {
    const bob = await this.#mailClient('bob-ipad', 'bob@example.com');
    const alice = await this.#mailClient('alice-iphone', 'alice@example.com');
    const note = await bob.compose({ to: ['alice@example.com'], subject: 'My certificate', text: 'Signed, so you can write to me encrypted.\r\n' }, { sign: true, encrypt: false });
    const installed = await alice.installFromMessage(note.message);
    const current = this.#history.get('bob-3')!.certificate.thumbprint;
    check([...installed.installed, ...installed.alreadyKnown].some((c) => c.thumbprint === current), "Bob's current encryption certificate did not reach Alice's contacts");
    return "Bob sent Alice a signed note from his iPad; her Outlook kept the encryption certificate that came with it.";
  }

  async mail(): Promise<string> {
    const alice = await this.#mailClient('alice-iphone', 'alice@example.com');
    const bob = await this.#mailClient('bob-ipad', 'bob@example.com');
    const sent = await alice.compose({ to: ['bob@example.com'], subject: 'Quarterly numbers', text: 'Signed and sealed.\r\n' }, { sign: true, encrypt: true });
    const opened = await bob.open(sent.message);
    const signatureValid = opened.signature?.valid === true;
    this.facts.mail = {
      outcome: opened.outcome,
      encrypted: opened.encrypted,
      signatureValid,
      signer: opened.signature?.signers[0]?.address,
      oldMessageDecryptedWith: undefined,
      oldestCertificate: this.#history.get('bob-1')!.certificate.thumbprint,
    };
    check(opened.outcome === 'verified' && opened.encrypted && signatureValid, `Bob's iPad opened Alice's message as ${opened.outcome}${opened.encrypted ? '' : ' (not encrypted)'}`);
    check(Buffer.from(opened.message).toString('utf8').includes('Signed and sealed.'), "Bob's iPad did not read the text Alice wrote");
    return "Alice signed and encrypted a message to Bob on her iPhone; Bob's iPad decrypted it and her signature verified.";
  }

  async oldMail(): Promise<string> {
    const bob = await this.#mailClient('bob-ipad', 'bob@example.com');
    const oldest = this.#history.get('bob-1')!.certificate;
    const old = encryptMessage(Buffer.from('From: alice@example.com\r\nTo: bob@example.com\r\nSubject: Two years ago\r\n\r\nOld news.\r\n'), [{ certificate: oldest }]);
    const opened = await bob.open(old);
    this.facts.mail!.oldMessageDecryptedWith = opened.decryptedWith?.thumbprint;
    check(opened.decryptedWith?.thumbprint === oldest.thumbprint, "Bob's iPad could not open mail encrypted to his oldest certificate");
    return "Mail encrypted to Bob's oldest certificate (expired a year ago) opened there too: his key history is on the iPad.";
  }

  async unassign(): Promise<string> {
    await this.#api('DELETE', `api/v1/groups/${this.#ids['sales']}/members/${this.#ids['bob']}`);
    for (const name of ['bob-iphone', 'bob-ipad']) {
      const device = this.#device(name);
      // The service re-evaluates in the background; a device that asks too early is told at its next check-in.
      let left = await countOf(device);
      for (let i = 0; i < 40 && left.signing + left.encryption > 0; i++) {
        if (i > 0) await sleep(250);
        await device.agent.checkin({ full: true });
        left = await countOf(device);
      }
      this.facts.unassigned.push({ name, ...left });
      check(left.signing + left.encryption === 0, `${device.label} still holds ${left.signing} signing and ${left.encryption} encryption certificates`);
    }
    return 'Removed Bob from Sales: his signing certificates were revoked; at check-in his devices deleted all their S/MIME certificates.';
  }

  async retire(): Promise<string> {
    const device = this.#device('alice-ipad');
    await this.#api('POST', `api/v1/managedDevices/${device.deviceId}/retire`);
    const summary = await device.agent.checkin();
    const shown = await this.#api('GET', `api/v1/managedDevices/${device.deviceId}`);
    check(summary.result === 'retired' && shown['managementState'] === 'retired', `${device.label} answered ${summary.result}; the service says ${String(shown['managementState'])}`);
    const left = await countOf(device);
    check(left.signing + left.encryption + left.trustedRoots === 0, `${device.label} kept company certificates after retiring`);
    this.facts.retired = { name: 'alice-ipad', deviceId: device.deviceId, managementState: String(shown['managementState']), signingSerial: this.#signing.get('alice-ipad')!.certificate.serialHex };
    return "Retired Alice's iPad: its signing certificate was revoked, and at check-in it removed all company certificates.";
  }

  /** Asks the OCSP responder, as any relying party would, about each device's signing certificate. */
  async ocsp(): Promise<string> {
    const url = `${this.#service.origin}/ocsp`;
    for (const [name, { certificate, issuer }] of this.#signing) this.facts.ocsp[name] = (await ocspStatus(url, certificate, issuer)).status;
    const expected: Record<string, string> = { 'alice-iphone': 'good', 'alice-ipad': 'revoked', 'bob-iphone': 'revoked', 'bob-ipad': 'revoked' };
    for (const [name, status] of Object.entries(expected)) check(this.facts.ocsp[name] === status, `OCSP says ${this.#device(name).label}'s signing certificate is ${this.facts.ocsp[name] ?? 'not known'}, not ${status}`);
    return `OCSP at ${url} agrees: revoked for Bob's devices and Alice's iPad, good for her iPhone.`;
  }

  /** The admin's view of every device, from the API, in the story's order. */
  async summary(): Promise<SummaryRow[]> {
    const names = new Map(USERS.map((u) => [this.#ids[u.key], u.name]));
    const order = [...this.#devices.values()].map((d) => d.deviceId);
    const page = await this.#api<{ value: Json[] }>('GET', 'api/v1/managedDevices?limit=100');
    const listed = [...page.value].sort((a, b) => order.indexOf(String(a['id'])) - order.indexOf(String(b['id'])));
    const rows: SummaryRow[] = [];
    for (const d of listed) {
      const id = String(d['id']);
      const status = await this.#api<{ policyStatuses: Json[]; managedDeviceCertificateStates: Json[] }>('GET', `api/v1/managedDevices/${id}/status`);
      const certificates: Record<string, number> = {};
      for (const c of status.managedDeviceCertificateStates) {
        const s = String(c['certificateIssuanceState']);
        certificates[s] = (certificates[s] ?? 0) + 1;
      }
      rows.push({
        name: [...this.#devices.values()].find((x) => x.deviceId === id)?.name ?? id,
        deviceId: id,
        device: String(d['deviceName']),
        user: names.get(String(d['userId'])) ?? String(d['userId']),
        managementState: String(d['managementState']),
        policy: status.policyStatuses.map((p) => String(p['status'])).join(', ') || 'none',
        certificates,
      });
    }
    return rows;
  }

  /** Stops the connector (after the work in hand). */
  async stop(): Promise<void> {
    this.#stopConnector.abort();
    await this.#connector?.catch(() => undefined);
  }
}
