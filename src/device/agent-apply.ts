/**
 * Applying one desired state to the device (docs/delivery.md "Check-in"):
 * trusted roots and managed app configuration into the keystore, removals,
 * SCEP enrolment of signing certificates, imported certificates opened from
 * their deliveries, and a report for every change — each report handed to
 * `queue`, which persists it before anything is sent.
 *
 * Progress goes to the portal as it happens: the whole assignment first, in
 * one change (held items as installed, the rest waiting), then each item's
 * retrieving → installed | failed.
 *
 * A report is made only when the service's view would change: an install,
 * a failure not reported before, a policy whose status or settings moved.
 * Reports move the device's ETag, so reporting the same thing on every
 * check-in would keep every check-in a full one.
 */
import { createHash } from 'node:crypto';
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import type { AppConfigurationItem, DesiredState, ImportedItem, ReportItem, ScepItem } from '../protocol/device-api.ts';
import { decodeKeyDelivery } from '../protocol/key-delivery.ts';
import { decryptContent, describeEnvelope } from '../smime/cms/enveloped-data.ts';
import { type Certificate, decodeCertificate } from '../x509/certificate.ts';
import { nameToString } from '../x509/name.ts';
import { OUTLOOK_BUNDLE_ID } from '../mail/settings.ts';
import { type DeviceApiClient, retryable } from './api-client.ts';
import type { AgentState } from './agent-state.ts';
import type { DeviceIdentity, DeviceKeystore, KeystoreContents } from './keystore.ts';
import type { PortalItem, PortalProgress } from './portal.ts';
import { type ScepEnrolmentOptions, enrolOverScep } from './scep-enrol.ts';

export type ItemKind = 'trustedRoot' | 'signing' | 'encryption' | 'configuration' | 'policy';

export interface AppliedItem {
  readonly kind: ItemKind;
  readonly id: string;
  readonly thumbprint?: string;
  readonly label: string;
}

export interface FailedItem extends AppliedItem {
  readonly errorCode: string;
  readonly detail: string;
}

export interface PendingItem extends AppliedItem {
  readonly why: string;
}

export interface ApplyOutcome {
  readonly installed: AppliedItem[];
  readonly removed: AppliedItem[];
  readonly failed: FailedItem[];
  /** Waiting on the service (a delivery not prepared yet, the service unreachable): try again later. */
  readonly pending: PendingItem[];
  readonly policyReports: Record<string, string>;
}

export interface ApplyContext {
  readonly api: DeviceApiClient;
  readonly keystore: DeviceKeystore;
  readonly identity: DeviceIdentity;
  readonly progress: PortalProgress | undefined;
  readonly state: AgentState;
  readonly scep: ScepEnrolmentOptions;
  /** SCEP items and deliveries tried earlier in this check-in: not tried again until the next one. */
  readonly tried: Set<string>;
  /** Persists a report to the outbox. */
  readonly queue: (item: ReportItem) => Promise<void>;
}

export function configurationLabel(bundleId: string): string {
  return bundleId === OUTLOOK_BUNDLE_ID ? 'Outlook S/MIME settings' : `Settings for ${bundleId}`;
}

function certificateLabel(prefix: string, c: Certificate): string {
  return `${prefix}: ${c.emailAddresses[0] ?? nameToString(c.subject)} (until ${c.notAfter.toISOString().slice(0, 10)})`;
}

/** Which desired-state items the device holds now: by thumbprint, per kind. */
function held(c: KeystoreContents) {
  return {
    signing: new Set(c.signing.map((s) => s.certificate.thumbprint)),
    encryption: new Set(c.encryption.map((e) => e.certificate.thumbprint)),
    roots: new Set(c.trustedRoots.map((r) => r.certificate.thumbprint)),
    configs: new Map(c.appConfigurations.map((a) => [a.bundleId, a])),
  };
}

export async function applyDesiredState(ctx: ApplyContext, desired: DesiredState): Promise<ApplyOutcome> {
  const out: ApplyOutcome = {
    installed: [], removed: [], failed: [], pending: [],
    policyReports: {},
  };
  const portal = (item: PortalItem) => ctx.progress?.upsertItem(item);
  showAssignment(ctx.progress, desired, held(await ctx.keystore.snapshot()));

  await applyRootsAndConfigurations(ctx, desired, out);
  await applyRemovals(ctx, desired, out);
  for (const item of desired.scep) await applyScep(ctx, item, out, portal);
  for (const item of desired.imported) await applyImported(ctx, item, out, portal);
  await reportPolicies(ctx, desired, out);
  return out;
}

/** The whole assignment in one change, so the page never says ready while items are still to come. */
function showAssignment(progress: PortalProgress | undefined, desired: DesiredState, h: ReturnType<typeof held>): void {
  if (progress === undefined) return;
  const items: PortalItem[] = [];
  for (const r of desired.trustedRoots) {
    items.push({ id: `root:${r.thumbprint}`, kind: 'trustedRoot', label: rootLabel(r.certificate), state: h.roots.has(r.thumbprint) ? 'installed' : 'waiting' });
  }
  for (const s of desired.scep) {
    const have = s.request === undefined && s.thumbprint !== undefined && h.signing.has(s.thumbprint);
    items.push({ id: s.id, kind: 'signingCertificate', label: 'Signing certificate', state: have ? 'installed' : 'waiting' });
  }
  for (const i of desired.imported) {
    const have = h.encryption.has(i.thumbprint);
    items.push({ id: i.id, kind: 'encryptionCertificate', label: `Encryption certificate ${i.thumbprint.slice(0, 8)}`, state: have ? 'installed' : 'waiting', ...(have || i.deliveryId !== undefined ? {} : { detail: 'being prepared by your organisation' }) });
  }
  for (const a of desired.appConfigurations) {
    const current = h.configs.get(a.bundleId);
    const same = current !== undefined && JSON.stringify(current.settings) === JSON.stringify(a.settings.map((s) => ({ appConfigKey: s.appConfigKey, appConfigKeyType: s.appConfigKeyType, appConfigKeyValue: s.appConfigKeyValue })));
    items.push({ id: `config:${a.bundleId}`, kind: 'configuration', label: configurationLabel(a.bundleId), state: same ? 'installed' : 'waiting' });
  }
  const ids = new Set(items.map((i) => i.id));
  for (const old of progress.snapshot().items) if (!ids.has(old.id) && old.state !== 'removed') items.push({ ...old, state: 'removed' });
  progress.upsertItems(items);
}

function rootLabel(b64: string): string {
  try {
    return `Trusted root: ${nameToString(decodeCertificate(Buffer.from(b64, 'base64')).subject)}`;
  } catch {
    return 'Trusted root';
  }
}

/** Roots and configurations in one keystore write; managed ones no longer assigned go. */
async function applyRootsAndConfigurations(ctx: ApplyContext, desired: DesiredState, out: ApplyOutcome): Promise<void> {
  const roots: { id: string; certificate: Certificate; profileId: string }[] = [];
  for (const r of desired.trustedRoots) {
    const id = `root:${r.thumbprint}`;
    try {
      const certificate = decodeCertificate(Buffer.from(r.certificate, 'base64'));
      if (certificate.thumbprint !== r.thumbprint) throw new KeyfleetError('KF_CERT_INVALID', `the root is ${certificate.thumbprint}, not the ${r.thumbprint} announced`);
      if (certificate.basicConstraints?.cA !== true) throw new KeyfleetError('KF_CERT_INVALID', 'the trusted root is not a CA certificate');
      roots.push({ id, certificate, profileId: r.profileId });
    } catch (e) {
      const f = failure('trustedRoot', id, 'Trusted root', e);
      out.failed.push(f);
      ctx.progress?.upsertItem({ id, kind: 'trustedRoot', label: 'Trusted root', state: 'failed', detail: f.detail });
    }
  }
  const wantedRoots = new Set(roots.map((r) => r.certificate.thumbprint));
  const wantedBundles = new Set(desired.appConfigurations.map((a) => a.bundleId));
  const { result } = await ctx.keystore.update((d) => {
    const changes = { roots: [] as typeof roots, configs: [] as AppConfigurationItem[], goneRoots: [] as Certificate[], goneConfigs: [] as string[] };
    for (const r of roots) if (d.addTrustedRoot({ certificate: r.certificate, profileId: r.profileId })) changes.roots.push(r);
    for (const old of d.trustedRoots) if (old.profileId !== undefined && !wantedRoots.has(old.certificate.thumbprint)) changes.goneRoots.push(old.certificate);
    for (const c of changes.goneRoots) d.remove(c.thumbprint, ['trusted-root']);
    for (const a of desired.appConfigurations) if (d.setAppConfiguration({ bundleId: a.bundleId, settings: a.settings, plist: a.plist })) changes.configs.push(a);
    for (const old of d.appConfigurations) if (!wantedBundles.has(old.bundleId)) changes.goneConfigs.push(old.bundleId);
    for (const b of changes.goneConfigs) d.removeAppConfiguration(b);
    return changes;
  });
  for (const r of roots) ctx.progress?.upsertItem({ id: r.id, kind: 'trustedRoot', label: rootLabel(Buffer.from(r.certificate.der).toString('base64')), state: 'installed' });
  for (const r of result.roots) out.installed.push({ kind: 'trustedRoot', id: r.id, thumbprint: r.certificate.thumbprint, label: rootLabel(Buffer.from(r.certificate.der).toString('base64')) });
  for (const c of result.goneRoots) out.removed.push({ kind: 'trustedRoot', id: `root:${c.thumbprint}`, thumbprint: c.thumbprint, label: `Trusted root: ${nameToString(c.subject)}` });
  for (const a of desired.appConfigurations) ctx.progress?.upsertItem({ id: `config:${a.bundleId}`, kind: 'configuration', label: configurationLabel(a.bundleId), state: 'installed' });
  for (const a of result.configs) out.installed.push({ kind: 'configuration', id: `config:${a.bundleId}`, label: configurationLabel(a.bundleId) });
  for (const b of result.goneConfigs) out.removed.push({ kind: 'configuration', id: `config:${b}`, label: configurationLabel(b) });
}

/**
 * Deletes what the service says must go and reports it: removedFromCollection
 * for what the device held, deleted for what never reached it (an imported
 * certificate still waiting cannot be "removed from the collection").
 */
async function applyRemovals(ctx: ApplyContext, desired: DesiredState, out: ApplyOutcome): Promise<void> {
  if (desired.remove.length === 0) return;
  const { result } = await ctx.keystore.update((d) =>
    desired.remove.map((r) => {
      const signing = d.signing.some((s) => s.certificate.thumbprint === r.thumbprint);
      const encryption = d.encryption.some((e) => e.certificate.thumbprint === r.thumbprint);
      d.remove(r.thumbprint, ['signing', 'encryption']);
      return { item: r, signing, encryption };
    }),
  );
  for (const { item, signing, encryption } of result) {
    await ctx.queue({ kind: item.kind, id: item.id, state: signing || encryption ? 'removedFromCollection' : 'deleted', thumbprint: item.thumbprint });
    const label = `Certificate ${item.thumbprint.slice(0, 8)}`;
    out.removed.push({ kind: item.kind === 'scep' ? 'signing' : 'encryption', id: item.id, thumbprint: item.thumbprint, label });
    ctx.progress?.upsertItem({ id: item.id, kind: item.kind === 'scep' ? 'signingCertificate' : 'encryptionCertificate', label, state: 'removed' });
  }
}

async function applyScep(ctx: ApplyContext, item: ScepItem, out: ApplyOutcome, portal: (i: PortalItem) => void): Promise<void> {
  const label = 'Signing certificate';
  const snapshot = await ctx.keystore.snapshot();
  const have = item.thumbprint !== undefined && snapshot.signing.some((s) => s.certificate.thumbprint === item.thumbprint);
  if (item.request === undefined) {
    // The service believes a certificate is installed that this device does not hold (a restored keystore):
    // saying so makes it start over with a new challenge.
    if (!have && (item.state === 'installed' || item.state === 'renewVerified')) await ctx.queue({ kind: 'scep', id: item.id, state: 'deleted', errorCode: 'not-on-device' });
    return;
  }
  if (ctx.tried.has(item.id)) {
    out.pending.push({ kind: 'signing', id: item.id, label, why: 'enrolment failed earlier in this check-in; trying again at the next' });
    return;
  }
  ctx.tried.add(item.id);
  portal({ id: item.id, kind: 'signingCertificate', label, state: 'retrieving' });
  const r = item.request;
  const result = await enrolOverScep(
    { url: r.url, challenge: r.challenge, subject: r.subject, keySize: r.keySize, caFingerprint: r.caFingerprint, ...(r.sanEmail ? { sanEmail: r.sanEmail } : {}), ...(r.sanUpn ? { sanUpn: r.sanUpn } : {}) },
    ctx.scep,
  );
  if (!result.ok) {
    await ctx.queue({ kind: 'scep', id: item.id, state: result.state, errorCode: result.errorCode });
    out.failed.push({ kind: 'signing', id: item.id, label, errorCode: result.errorCode, detail: result.detail });
    portal({ id: item.id, kind: 'signingCertificate', label, state: 'failed', detail: result.detail });
    return;
  }
  const { certificate, key, chain } = result;
  // A renewal replaces the profile's earlier certificate; mail signed with it still verifies from the message.
  await ctx.keystore.update((d) => {
    for (const old of d.signing.filter((s) => s.profileId === item.profileId)) d.remove(old.certificate.thumbprint, ['signing']);
    d.addSigning({ profileId: item.profileId, certificate, key, chain });
  });
  await ctx.queue({ kind: 'scep', id: item.id, state: 'installed', serialNumber: certificate.serialHex, thumbprint: certificate.thumbprint });
  const done = certificateLabel(label, certificate);
  out.installed.push({ kind: 'signing', id: item.id, thumbprint: certificate.thumbprint, label: done });
  portal({ id: item.id, kind: 'signingCertificate', label: done, state: 'installed' });
}

async function applyImported(ctx: ApplyContext, item: ImportedItem, out: ApplyOutcome, portal: (i: PortalItem) => void): Promise<void> {
  const label = `Encryption certificate ${item.thumbprint.slice(0, 8)}`;
  const snapshot = await ctx.keystore.snapshot();
  const holding = snapshot.encryption.find((e) => e.certificate.thumbprint === item.thumbprint);
  if (holding !== undefined) {
    if (item.state !== 'installed') await ctx.queue({ kind: 'imported', id: item.id, state: 'installed', thumbprint: item.thumbprint });
    portal({ id: item.id, kind: 'encryptionCertificate', label: certificateLabel('Encryption certificate', holding.certificate), state: 'installed' });
    return;
  }
  if (item.deliveryId === undefined) {
    out.pending.push({ kind: 'encryption', id: item.id, thumbprint: item.thumbprint, label, why: 'the service has not prepared it for this device yet' });
    return;
  }
  if (ctx.tried.has(item.deliveryId)) {
    out.pending.push({ kind: 'encryption', id: item.id, thumbprint: item.thumbprint, label, why: 'it could not be opened earlier in this check-in; trying again at the next' });
    return;
  }
  ctx.tried.add(item.deliveryId);
  portal({ id: item.id, kind: 'encryptionCertificate', label, state: 'retrieving' });
  let opened;
  try {
    opened = await openDelivery(ctx, item, item.deliveryId);
  } catch (e) {
    if (retryable(e) || isKeyfleetError(e, 'KF_CONFLICT')) {
      out.pending.push({ kind: 'encryption', id: item.id, thumbprint: item.thumbprint, label, why: e instanceof Error ? e.message : String(e) });
      portal({ id: item.id, kind: 'encryptionCertificate', label, state: 'waiting', detail: 'will try again' });
      return;
    }
    const f = failure('encryption', item.id, label, e);
    if (item.state !== 'installFailed') await ctx.queue({ kind: 'imported', id: item.id, state: 'installFailed', errorCode: f.errorCode });
    out.failed.push({ ...f, thumbprint: item.thumbprint });
    portal({ id: item.id, kind: 'encryptionCertificate', label, state: 'failed', detail: f.detail });
    return;
  }
  await ctx.keystore.update((d) => d.addEncryption({ pfxId: item.pfxId, certificate: opened.certificate, key: opened.privateKey }));
  if (item.state !== 'installed') await ctx.queue({ kind: 'imported', id: item.id, state: 'installed', thumbprint: opened.certificate.thumbprint });
  const done = certificateLabel('Encryption certificate', opened.certificate);
  out.installed.push({ kind: 'encryption', id: item.id, thumbprint: opened.certificate.thumbprint, label: done });
  portal({ id: item.id, kind: 'encryptionCertificate', label: done, state: 'installed' });
}

/**
 * Authenticates (AES-GCM), decrypts and checks one delivery — the one the check-in carried inline, else
 * fetched by id; nothing is stored here. Either way the KeyDelivery inside names its PFX and certificate.
 */
async function openDelivery(ctx: ApplyContext, item: ImportedItem, deliveryId: string) {
  let encoded = item.payload;
  if (encoded === undefined) {
    const delivery = await ctx.api.delivery(deliveryId);
    if (delivery.id !== deliveryId || delivery.pfxId !== item.pfxId) throw new KeyfleetError('KF_DELIVERY_INVALID', 'the delivery is not the one asked for');
    encoded = delivery.payload;
  }
  const payload = Buffer.from(encoded, 'base64');
  let envelope;
  try {
    envelope = describeEnvelope(payload);
  } catch (e) {
    throw new KeyfleetError('KF_DELIVERY_INVALID', 'the delivery is not a CMS envelope', { cause: e });
  }
  // Only AuthEnvelopedData's tag proves the key and certificate arrived as the connector sent them.
  if (envelope.contentType !== 'auth-enveloped-data') throw new KeyfleetError('KF_DELIVERY_INVALID', 'the delivery is not authenticated encryption (AuthEnvelopedData)');
  const { content } = decryptContent(payload, [{ certificate: ctx.identity.certificate, key: ctx.identity.key }]);
  try {
    return decodeKeyDelivery(content, { pfxId: item.pfxId, thumbprint: item.thumbprint });
  } finally {
    content.fill(0);
  }
}

/** Each assigned policy: compliant once its app configuration is in the keystore, error when it failed. */
async function reportPolicies(ctx: ApplyContext, desired: DesiredState, out: ApplyOutcome): Promise<void> {
  const failedConfigs = new Set(out.failed.filter((f) => f.kind === 'configuration').map((f) => f.id));
  for (const p of desired.policies) {
    if (p.notApplicable) continue;
    const configs = desired.appConfigurations.filter((a) => a.policyIds.includes(p.id));
    const failed = configs.some((a) => failedConfigs.has(`config:${a.bundleId}`));
    const status = failed ? 'error' : 'compliant';
    const fingerprint = `${status}:${createHash('sha256').update(JSON.stringify(configs.map((a) => [a.bundleId, a.settings]))).digest('hex').slice(0, 16)}`;
    out.policyReports[p.id] = fingerprint;
    if (ctx.state.policyReports[p.id] === fingerprint) continue;
    await ctx.queue({ kind: 'policy', id: p.id, state: status, ...(failed ? { errorCode: 'configuration-failed' } : {}) });
    if (!failed) out.installed.push({ kind: 'policy', id: p.id, label: p.displayName });
  }
}

function failure(kind: ItemKind, id: string, label: string, e: unknown): FailedItem {
  const errorCode = isKeyfleetError(e) ? e.code : 'internal-error';
  return { kind, id, label, errorCode, detail: e instanceof Error ? e.message.split('\n')[0]!.slice(0, 500) : String(e) };
}
