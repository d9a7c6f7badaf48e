/**
 * How a resource's document is checked, for the service (resources-service.ts): validation per
 * collection, the one derived-credential issuer per tenant, the references between resources
 * (what a deletion or a change would break), and the store as validatePolicy's lookups.
 */
import { KeyfleetError, isKeyfleetError } from '../../errors.ts';
import {
  DERIVED_CREDENTIAL_KIND,
  type CertificateProfileResource,
  type DerivedCredentialIssuer,
  type MobileApp,
  type PolicyLookups,
  type Stored,
  parseCertificateProfileInput,
  parseDerivedCredentialSettings,
  parseMobileApp,
  validatePolicy,
  validateScepProfile,
} from '../../policy/index.ts';
import type { JsonObject, ResourceCollection, ResourceRecord } from '../../store/resources.ts';
import type { TenantStore } from '../../store/store.ts';

/** The kind column of a policy (Graph's type for it). */
export const POLICY_KIND = 'iosMobileAppConfiguration';

export const NOUN: Record<ResourceCollection, string> = {
  app: 'app',
  certificateProfile: 'certificate profile',
  policy: 'policy',
  derivedCredential: 'derived-credential setting',
};

/** A document checked as its collection requires, with what the store keeps beside it. */
export async function validated(tx: TenantStore, collection: ResourceCollection, json: unknown): Promise<{ kind: string; displayName: string; body: JsonObject }> {
  const doc = (kind: string, value: { displayName: string }) => ({ kind, displayName: value.displayName, body: value as unknown as JsonObject });
  switch (collection) {
    case 'app': {
      const app = parseMobileApp(json);
      return doc(app.kind, app);
    }
    case 'certificateProfile': {
      const profile = parseCertificateProfileInput(json);
      if (profile.kind === 'iosScepCertificateProfile') await validateScepProfile(profile, lookups(tx).profile);
      return doc(profile.kind, profile);
    }
    case 'policy':
      return doc(POLICY_KIND, await validatePolicy(json, lookups(tx)));
    case 'derivedCredential':
      return doc(DERIVED_CREDENTIAL_KIND, parseDerivedCredentialSettings(json));
  }
}

/** The patch without `id` and `kind`, which may be repeated but not changed. */
export function immutablesChecked(before: ResourceRecord, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    throw new KeyfleetError('KF_USAGE', 'a JSON merge patch (RFC 7396) of a resource must be an object');
  }
  const { id, ...rest } = patch as Record<string, unknown>;
  if (id !== undefined && id !== before.id) throw new KeyfleetError('KF_USAGE', `id cannot change (it is "${before.id}")`);
  if (Object.hasOwn(rest, 'kind') && rest['kind'] !== before.body['kind']) {
    throw new KeyfleetError('KF_USAGE', `kind cannot change (it is "${before.kind}"); create a new ${NOUN[before.collection]} instead`);
  }
  return rest;
}

/** Intune keeps one derived-credential issuer per tenant (src/policy/derived-credential.ts). */
export async function onlyDerivedCredential(tx: TenantStore): Promise<void> {
  const [existing] = (await tx.resources.listResources('derivedCredential', { limit: 1 })).items;
  if (existing !== undefined) {
    throw new KeyfleetError('KF_CONFLICT', `a derived-credential issuer is already configured ("${existing.id}"); a tenant has one at a time: change or delete it first`);
  }
}

/** The store as validatePolicy's lookups. */
export function lookups(tx: TenantStore): PolicyLookups {
  return {
    app: async (id) => {
      const r = await tx.resources.getResource('app', id);
      return r === undefined ? undefined : ({ ...r.body, id: r.id } as unknown as Stored<MobileApp>);
    },
    profile: async (id) => {
      const r = await tx.resources.getResource('certificateProfile', id);
      return r === undefined ? undefined : ({ ...r.body, id: r.id } as unknown as CertificateProfileResource);
    },
    derivedCredentialIssuer: async () => {
      const [setting] = (await tx.resources.listResources('derivedCredential', { limit: 1 })).items;
      return setting?.body['issuer'] as DerivedCredentialIssuer | undefined;
    },
  };
}

export async function allResources(t: TenantStore, collection: ResourceCollection, kind?: string): Promise<ResourceRecord[]> {
  const out: ResourceRecord[] = [];
  let cursor: string | undefined;
  do {
    const p = await t.resources.listResources(collection, { limit: 1000, ...(cursor === undefined ? {} : { cursor }), ...(kind === undefined ? {} : { kind }) });
    out.push(...p.items);
    cursor = p.nextCursor;
  } while (cursor !== undefined);
  return out;
}

/** The resources that rely on `id` (scans: there are tens of profiles and policies, not thousands). */
export async function referrers(t: TenantStore, collection: ResourceCollection, id: string): Promise<ResourceRecord[]> {
  if (collection === 'policy') return [];
  const out: ResourceRecord[] = [];
  if (collection === 'certificateProfile') out.push(...(await allResources(t, 'certificateProfile', 'iosScepCertificateProfile')).filter((p) => p.body['rootCertificateId'] === id));
  const policies = await allResources(t, 'policy');
  out.push(
    ...policies.filter(({ body: b }) => {
      switch (collection) {
        case 'app':
          return Array.isArray(b['targetedMobileApps']) && b['targetedMobileApps'].includes(id);
        case 'certificateProfile':
          return b['signingCertificateProfileId'] === id || b['encryptionCertificateProfileId'] === id;
        case 'derivedCredential':
          return b['signingCertificateProfileType'] === 'derivedCredential' || b['encryptionCertificateProfileType'] === 'derivedCredential';
      }
    }),
  );
  return out;
}

/**
 * After a change to an app or profile: every policy using it must still validate (a bundle id patched
 * away from Outlook, an imported profile's purpose changed). A SCEP profile's trusted root keeps its
 * kind, which is all validateScepProfile asks of it.
 */
export async function stillValidReferrers(tx: TenantStore, collection: ResourceCollection, id: string): Promise<void> {
  if (collection !== 'app' && collection !== 'certificateProfile') return;
  for (const r of await referrers(tx, collection, id)) {
    if (r.collection !== 'policy') continue;
    try {
      await validatePolicy(r.body, lookups(tx));
    } catch (e) {
      if (!isKeyfleetError(e)) throw e;
      throw new KeyfleetError('KF_CONFLICT', `policy "${r.id}" uses ${NOUN[collection]} "${id}" and would no longer be valid: ${e.message}`, { cause: e });
    }
  }
}
