/**
 * The effective state of a user or device: the policies, certificate
 * profiles and apps assigned to it (assignments.ts), the managed app
 * configuration each app receives, and the conflicts between policies.
 *
 * Conflicts (issue 4: "two conflicting policies for one app are reported as
 * a conflict, as Intune does"). An iOS app receives one configuration
 * dictionary, so the applicable policies for an app are merged key by key:
 * a key every policy that sets it gives the same type and value is
 * delivered; a key two policies set differently is a conflict, and neither
 * value is delivered for it, so Outlook falls back to its documented
 * default (compile.ts, outlookSmimeKeys) rather than to whichever policy
 * happened to be read first. The policies involved are reported with the
 * key and their values, and keep applying for the keys they agree on. This
 * is the behaviour Intune documents for conflicting device settings
 * ("the setting isn't applied and a conflict is reported"); we apply it per
 * key of the app configuration rather than refusing the whole policy.
 */
import { type AppConfigSetting, compilePolicy } from './compile.ts';
import { type AssignmentTarget, type CompiledAssignments, type GroupIndex, type Principal, effectiveAssignments } from './assignments.ts';
import type { SmimePolicy } from './smime-policy.ts';

/** A policy prepared once for evaluation (compiled settings and its references). */
export interface EvaluablePolicy {
  readonly id: string;
  readonly appId: string;
  readonly settings: readonly AppConfigSetting[];
  /** Certificate profiles the policy delivers through (SCEP or PKCS-imported). */
  readonly profileIds: readonly string[];
}

export function evaluablePolicy(id: string, policy: SmimePolicy): EvaluablePolicy {
  const profileIds = [policy.signingCertificateProfileId, policy.encryptionCertificateProfileId].filter((p): p is string => p !== undefined);
  return { id, appId: policy.targetedMobileApps[0]!, settings: compilePolicy(policy).settings, profileIds: [...new Set(profileIds)] };
}

/**
 * Policies are read-only once prepared: effectiveState memoises merges per
 * `policies` map, so build a new map when a policy changes.
 */
export interface AppConfiguration {
  readonly appId: string;
  /** The policies that apply to this app (conflicting ones included). */
  readonly policyIds: readonly string[];
  /** The merged settings, conflicting keys left out. */
  readonly settings: readonly AppConfigSetting[];
}

export interface SettingConflict {
  readonly appId: string;
  readonly appConfigKey: string;
  /** Each policy's value for the key, in policy order. */
  readonly values: readonly { readonly policyId: string; readonly appConfigKeyType: string; readonly appConfigKeyValue: string }[];
}

/** Something assigned that cannot take effect as assigned; reported, not fatal. */
export interface EffectiveWarning {
  readonly reason: 'policy-app-not-assigned' | 'policy-profile-not-assigned' | 'policy-unknown';
  readonly policyId: string;
  readonly targetId?: string;
}

export interface EffectiveState {
  readonly policies: readonly string[];
  readonly certificateProfiles: readonly string[];
  readonly apps: readonly string[];
  readonly appConfigurations: readonly AppConfiguration[];
  readonly conflicts: readonly SettingConflict[];
  readonly warnings: readonly EffectiveWarning[];
}

/**
 * Evaluates one principal. `policies` maps policy id → EvaluablePolicy
 * (prepare them once per policy change, not per evaluation).
 *
 * Warnings: a policy whose app is not assigned to the principal, or whose
 * certificate profile is not, still configures the app if it gets installed
 * (Intune behaves the same), but certificates will not arrive; the status
 * pages show why.
 */
export function effectiveState(
  principal: Principal | string,
  index: GroupIndex,
  assignments: readonly AssignmentTarget[] | CompiledAssignments,
  policies: ReadonlyMap<string, EvaluablePolicy>,
): EffectiveState {
  const assigned = effectiveAssignments(principal, index, assignments);
  const warnings: EffectiveWarning[] = [];
  const byApp = new Map<string, EvaluablePolicy[]>();
  const apps = new Set(assigned.apps);
  const profiles = new Set(assigned.certificateProfiles);
  for (const id of assigned.policies) {
    const p = policies.get(id);
    if (p === undefined) {
      warnings.push({ reason: 'policy-unknown', policyId: id });
      continue;
    }
    const list = byApp.get(p.appId);
    if (list) list.push(p);
    else byApp.set(p.appId, [p]);
    if (!apps.has(p.appId)) warnings.push({ reason: 'policy-app-not-assigned', policyId: id, targetId: p.appId });
    for (const profileId of p.profileIds) if (!profiles.has(profileId)) warnings.push({ reason: 'policy-profile-not-assigned', policyId: id, targetId: profileId });
  }

  const appConfigurations: AppConfiguration[] = [];
  const conflicts: SettingConflict[] = [];
  for (const [appId, list] of byApp) {
    const merged = cachedMerge(policies, appId, list);
    appConfigurations.push({ appId, policyIds: list.map((p) => p.id), settings: merged.settings });
    conflicts.push(...merged.conflicts);
  }
  return { ...assigned, appConfigurations, conflicts, warnings };
}

interface Merged {
  readonly settings: readonly AppConfigSetting[];
  readonly conflicts: readonly SettingConflict[];
}

/**
 * Merges are memoised per policy map and combination of policies: 300,000
 * devices share a few dozen combinations, and re-evaluating them all after a
 * membership change should cost the assignment checks, not the merges.
 * Bounded so a pathological number of combinations cannot grow it forever.
 */
const mergeCache = new WeakMap<ReadonlyMap<string, EvaluablePolicy>, Map<string, Merged>>();
const MERGE_CACHE_LIMIT = 10_000;

function cachedMerge(policies: ReadonlyMap<string, EvaluablePolicy>, appId: string, list: readonly EvaluablePolicy[]): Merged {
  if (list.length === 1) return { settings: list[0]!.settings, conflicts: [] };
  let cache = mergeCache.get(policies);
  if (!cache) mergeCache.set(policies, (cache = new Map()));
  const key = `${appId}\u0000${list.map((p) => p.id).join('\u0000')}`;
  let merged = cache.get(key);
  if (!merged) {
    if (cache.size >= MERGE_CACHE_LIMIT) cache.clear();
    merged = mergeSettings(appId, list);
    cache.set(key, merged);
  }
  return merged;
}

function mergeSettings(appId: string, list: readonly EvaluablePolicy[]): Merged {
  const byKey = new Map<string, { policyId: string; setting: AppConfigSetting }[]>();
  for (const p of list) {
    for (const s of p.settings) {
      const entries = byKey.get(s.appConfigKey);
      if (entries) entries.push({ policyId: p.id, setting: s });
      else byKey.set(s.appConfigKey, [{ policyId: p.id, setting: s }]);
    }
  }
  const settings: AppConfigSetting[] = [];
  const conflicts: SettingConflict[] = [];
  for (const [key, entries] of byKey) {
    const first = entries[0]!.setting;
    const agree = entries.every((e) => e.setting.appConfigKeyType === first.appConfigKeyType && e.setting.appConfigKeyValue === first.appConfigKeyValue);
    if (agree) {
      settings.push(first);
    } else {
      conflicts.push({
        appId,
        appConfigKey: key,
        values: entries.map((e) => ({ policyId: e.policyId, appConfigKeyType: e.setting.appConfigKeyType, appConfigKeyValue: e.setting.appConfigKeyValue })),
      });
    }
  }
  return { settings, conflicts };
}
