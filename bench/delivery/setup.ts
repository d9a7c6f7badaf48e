/**
 * Everything before the clock (not measured): the database with
 * bench:service's 300,000-device tenant (under serve's tenant), the CA
 * (`keyfleet ca init`), the keys every simulated device holds, identity
 * certificates issued by the tenant's CA for the devices that will call,
 * the delivery sets' users, devices and imported encryption history, the
 * admin's resources (trusted root, SCEP signing profile, PKCS-imported
 * profile, the S/MIME policy — created but not assigned), an admin token,
 * two registered connectors and their key, and every device's
 * desiredStateHash (as re-evaluation leaves it), so the server starts with
 * nothing to re-evaluate.
 */
import { type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultProfile } from '../../src/ca/templates.ts';
import { DEFAULT_TENANT, keyStoreFor, openAuthority } from '../../src/cli/context.ts';
import { ConnectorService } from '../../src/delivery/connectors.ts';
import { EvaluatorCache } from '../../src/delivery/evaluator-cache.ts';
import { reevaluateAllDevices } from '../../src/delivery/reevaluate.ts';
import { LOCAL_OPERATOR, createToken } from '../../src/directory/access.ts';
import { Resources } from '../../src/http/admin/resources-service.ts';
import { connectorKeygen } from '../../src/policy/index.ts';
import { encodeName } from '../../src/x509/name.ts';
import { freePort, keyfleetCli } from '../pki/servers.ts';
import type { BenchDb } from '../service/db.ts';
import { BULK_TABLE_NAMES, type Sizes, seedResources } from '../service/seed.ts';
import { exportKey, p256Keys, rsaKeys } from './keys.ts';
import { HISTORY, buildHistory, mailCa } from './pfx.ts';
import { DOMAIN, type Identity, SERVE_TENANT, type SetName, type SetPlan, idleDeviceIds, seededTables, setDeviceId, setPlan, setTables } from './tenant.ts';

/** enrollment.ts's device identity profile (not exported there): CN = device id, clientAuth, P-256, one year. */
const IDENTITY_PROFILE = defaultProfile('deviceIdentity', { name: 'device-identity', keyTypes: ['p-256'] });
/** RSA-2048 keys shared by the devices' SCEP requests and by the imported certificates. */
const RSA_POOL = 64;
/** Identity certificates signed at once (the CA signs on the thread pool). */
const ISSUE_IN_FLIGHT = 8;
const ANALYZE = [...BULK_TABLE_NAMES, 'resources', 'resource_assignments', 'audit_events', 'api_tokens', 'issued_certificates', 'connectors'];

export interface SimDevice {
  readonly id: string;
  readonly key: KeyObject;
  readonly certificate: Uint8Array;
}

export interface SeededSet {
  readonly plan: SetPlan;
  readonly devices: readonly SimDevice[];
}

export interface Seeded {
  /** sqlite or postgres: log files are named by it. */
  readonly db: string;
  /** --data of the server (SQLite file, or master key and settings beside PostgreSQL). */
  readonly dataDir: string;
  /** The environment for keyfleet processes: KEYFLEET_DATABASE_URL set for PostgreSQL, empty for SQLite. */
  readonly env: NodeJS.ProcessEnv;
  readonly port: number;
  readonly baseUrl: string;
  readonly adminToken: string;
  readonly connectorKeyPath: string;
  readonly connectorCredentialFiles: readonly string[];
  readonly sets: ReadonlyMap<SetName, SeededSet>;
  readonly idle: readonly SimDevice[];
  /** PKCS#8 DER (base64) RSA-2048 keys for the devices' SCEP enrolments. */
  readonly scepKeys: readonly string[];
  readonly resources: { readonly rootProfileId: string; readonly scepProfileId: string; readonly pkcsProfileId: string; readonly policyId: string; readonly appId: string };
  /** Seconds per set-up step. */
  readonly steps: Readonly<Record<string, number>>;
}

export interface SetupPlan {
  readonly sizes: Sizes;
  readonly deliveryDevices: number;
  readonly sets: readonly SetName[];
  readonly idleDevices: number;
  readonly scratch: string;
  readonly progress: (text: string) => void;
}

async function issueAll(ca: Awaited<ReturnType<typeof openAuthority>>, ids: readonly string[], keys: readonly KeyObject[]): Promise<Identity[]> {
  const out = new Array<Identity>(ids.length);
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const i = next++;
      const id = ids[i]!;
      const issued = await ca.issue({ publicKey: keys[i]!, profile: IDENTITY_PROFILE, names: { subject: encodeName([['CN', id]]), emails: [], upns: [] }, requester: `device ${id}` });
      out[i] = { id, certificate: issued.der, thumbprint: issued.certificate.fingerprint256 };
    }
  };
  await Promise.all(Array.from({ length: ISSUE_IN_FLIGHT }, worker));
  return out;
}

export async function seedDelivery(db: BenchDb, plan: SetupPlan): Promise<Seeded> {
  const steps: Record<string, number> = {};
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    plan.progress(`${db.name}: ${name}`);
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      steps[name] = (performance.now() - t0) / 1000;
    }
  };
  const dataDir = db.location.dataDir ?? join(plan.scratch, `${db.name}-data`);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const env: NodeJS.ProcessEnv = { ...process.env, KEYFLEET_DATABASE_URL: db.location.url ?? '' };
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  if (SERVE_TENANT !== DEFAULT_TENANT) throw new Error('serve tenant mismatch');

  await step('schema and CA (keyfleet ca init)', async () => {
    await db.create();
    keyfleetCli(['ca', 'init', '--data', dataDir, '--base-url', baseUrl], env);
  });

  const sets = plan.sets.map((name) => setPlan(name, plan.deliveryDevices));
  const idleIds = idleDeviceIds(plan.sizes, plan.idleDevices);
  const deviceCount = idleIds.length + sets.reduce((n, s) => n + s.devices, 0);
  const { identityKeys, rsaPool } = await step(`keys (${deviceCount.toLocaleString('en-US')} P-256, ${RSA_POOL} RSA-2048)`, async () => ({
    identityKeys: await p256Keys(deviceCount),
    rsaPool: (await rsaKeys(RSA_POOL)).map(exportKey),
  }));

  const connectorDir = join(plan.scratch, `${db.name}-connector`);
  mkdirSync(connectorDir, { recursive: true, mode: 0o700 });
  const connectorKeyPath = join(connectorDir, 'connector.key');
  const connectorPair = connectorKeygen(4096);
  writeFileSync(connectorKeyPath, connectorPair.privateKeyPem, { mode: 0o600 });

  const now = Date.now();
  const slots = Math.max(...sets.map((s) => s.users), 0);
  const history = await step(`imported history (${(slots * HISTORY).toLocaleString('en-US')} PKCS#12 files)`, async () =>
    slots === 0 ? [] : buildHistory({ ...(await mailCa(rsaPool[0]!, now)), keyPool: rsaPool.slice(RSA_POOL / 2), connectorPublicKeyPem: connectorPair.publicKeyPem, now, domain: DOMAIN }, slots),
  );

  const allIds = [...idleIds, ...sets.flatMap((s) => Array.from({ length: s.devices }, (_, d) => setDeviceId(s.name, d)))];
  const identities = await step(`identity certificates (${allIds.length.toLocaleString('en-US')}, tenant CA)`, async () => {
    const store = await db.open();
    try {
      const ca = await openAuthority({ dataDir, store, tenant: store.forTenant(SERVE_TENANT), close: () => store.close() });
      return await issueAll(ca, allIds, identityKeys);
    } finally {
      await store.close();
    }
  });
  const byId = new Map(identities.map((i) => [i.id, i]));
  const idleSet = new Map(idleIds.map((id) => [id, byId.get(id)!]));

  await step('bulk load', () =>
    db.bulkLoad(
      [...seededTables(plan.sizes, now, idleSet), ...sets.flatMap((s) => setTables(s, now, identities.filter((i) => i.id.startsWith(`dlv-${s.name}-`)), history))],
      (text) => plan.progress(`${db.name}: ${text}`),
    ),
  );

  const store = await db.open();
  try {
    const tenant = store.forTenant(SERVE_TENANT);
    const admin = new Resources(tenant, LOCAL_OPERATOR);
    const resources = await step('resources, admin token, connectors', async () => {
      await seedResources(tenant, plan.sizes);
      const ca = await openAuthority({ dataDir, store, tenant, close: async () => {} });
      const rootDer = (ca.root ?? ca.certificate).der;
      const root64 = Buffer.from(rootDer).toString('base64');
      // The seed's trusted root is a placeholder ('AAAA'): a full check-in of a seeded device decodes it.
      await admin.update('certificateProfile', 'prof-root', { trustedRootCertificate: root64 });
      const root = await admin.create('certificateProfile', { kind: 'iosTrustedRootCertificate', displayName: 'Keyfleet bench root', certFileName: 'keyfleet-root.cer', trustedRootCertificate: root64 });
      const scep = await admin.create('certificateProfile', {
        kind: 'iosScepCertificateProfile', displayName: 'S/MIME signing (delivery bench)', subjectNameFormat: 'commonNameAsEmail', subjectAlternativeNameType: ['emailAddress'],
        keyUsage: ['digitalSignature'], keySize: 2048, extendedKeyUsages: [{ name: 'Secure Email', objectIdentifier: '1.3.6.1.5.5.7.3.4' }],
        certificateValidityPeriodValue: 1, certificateValidityPeriodScale: 'years', renewalThresholdPercentage: 20, scepServerUrls: [`${baseUrl}/scep`], rootCertificateId: root.id,
      });
      const pkcs = await admin.create('certificateProfile', { kind: 'iosImportedPfxCertificateProfile', displayName: 'Encryption history (delivery bench)', intendedPurpose: 'smimeEncryption' });
      const policy = await admin.create('policy', {
        displayName: 'Outlook S/MIME (delivery bench)', description: 'SCEP signing, imported encryption history', deviceEnrollmentType: 'managedDevices', platform: 'iOS/iPadOS',
        targetedMobileApps: ['app-outlook'], enableSmime: true, deploySmimeCertificates: true,
        signingCertificateProfileType: 'scep', signingCertificateProfileId: scep.id, encryptionCertificateProfileType: 'pkcsImported', encryptionCertificateProfileId: pkcs.id,
        endUserNotification: 'companyPortal',
      });
      return { rootProfileId: root.id, scepProfileId: scep.id, pkcsProfileId: pkcs.id, policyId: policy.id, appId: 'app-outlook' };
    });
    const adminToken = (await createToken(tenant, LOCAL_OPERATOR, 'bench:delivery', 'administrator')).secret;
    const connectors = new ConnectorService({ store });
    const connectorCredentialFiles: string[] = [];
    for (const n of [1, 2]) {
      const file = join(connectorDir, `connector-${n}.credential`);
      writeFileSync(file, (await connectors.register(tenant, LOCAL_OPERATOR, `bench connector ${n}`)).secret, { mode: 0o600 });
      connectorCredentialFiles.push(file);
    }
    await step('analyze', () => db.analyze(ANALYZE));
    await step('desired-state hashes of every device (re-evaluation)', async () => {
      const evaluator = await new EvaluatorCache().forTenant(tenant);
      await reevaluateAllDevices(tenant, evaluator);
    });
    keyStoreFor(dataDir); // the master key is there (serve will refuse to start otherwise)

    let at = idleIds.length;
    const seededSets = new Map<SetName, SeededSet>();
    for (const s of sets) {
      seededSets.set(s.name, { plan: s, devices: identities.slice(at, at + s.devices).map((i, d) => ({ id: i.id, key: identityKeys[at + d]!, certificate: i.certificate })) });
      at += s.devices;
    }
    return {
      db: db.name, dataDir, env, port, baseUrl, adminToken, connectorKeyPath, connectorCredentialFiles, sets: seededSets,
      idle: identities.slice(0, idleIds.length).map((i, k) => ({ id: i.id, key: identityKeys[k]!, certificate: i.certificate })),
      scepKeys: rsaPool.slice(0, RSA_POOL / 2), resources, steps,
    };
  } finally {
    await store.close();
  }
}
