/**
 * What one managed device should have (issue 4 "effective policies and
 * certificates for a user or device"; the delivery issue sends it): the apps
 * to install, each app's managed configuration, and the certificates to
 * deliver — SCEP profiles to enrol for, and for a PKCS-imported profile the
 * user's imported PFX certificates of its purpose, the whole history, since
 * old mail stays encrypted to old keys.
 *
 * The desiredStateHash is SHA-256 over a canonical form of exactly those
 * items, so it changes when something the device should have changes and
 * not otherwise: which policies produced a setting, conflicts and warnings
 * are status, not state, and stay out of it. The form is versioned (its
 * prefix): a change of form changes every hash once, on purpose.
 */
import { createHash } from 'node:crypto';
import type { AppConfigSetting } from '../policy/index.ts';

/** One of the user's imported PFX certificates, without the encrypted PFX and password. */
export interface PfxRef {
  readonly id: string;
  readonly thumbprint: string;
  readonly intendedPurpose: string;
}

export type DesiredCertificate =
  | { readonly kind: 'trustedRoot'; readonly profileId: string }
  | { readonly kind: 'scep'; readonly profileId: string }
  | {
      readonly kind: 'pkcsImported';
      readonly profileId: string;
      readonly intendedPurpose: string;
      /** The user's imported certificates of the profile's purpose, ordered by id; may be empty. */
      readonly pfx: readonly PfxRef[];
    };

export interface DesiredAppConfiguration {
  readonly appId: string;
  /** The merged settings of the applicable policies (conflicting keys left out), ordered by key. */
  readonly settings: readonly AppConfigSetting[];
}

/** Every list is ordered by id, so two equal states are equal arrays. */
export interface DesiredState {
  readonly apps: readonly string[];
  readonly appConfigurations: readonly DesiredAppConfiguration[];
  readonly certificates: readonly DesiredCertificate[];
}

/** What a retired or wiped device (or one with a retire or wipe pending) should have. */
export const EMPTY_DESIRED_STATE: DesiredState = Object.freeze({ apps: [], appConfigurations: [], certificates: [] });

const FORM = 'keyfleet-desired-state/1\n';

const settingsForm = new WeakMap<readonly AppConfigSetting[], string>();

/** The settings as [key, type, value] tuples; memoised, since devices share their few merged setting lists. */
function settingsText(settings: readonly AppConfigSetting[]): string {
  let text = settingsForm.get(settings);
  if (text === undefined) {
    text = JSON.stringify(settings.map((s) => [s.appConfigKey, s.appConfigKeyType, s.appConfigKeyValue]));
    settingsForm.set(settings, text);
  }
  return text;
}

/**
 * The canonical text: positional JSON arrays (no key order to agree on) of
 * the already ordered lists. PFX certificates are named by id and
 * thumbprint: a re-import under a new id is a new item for the device.
 */
export function canonicalDesiredState(d: DesiredState): string {
  let text = `${FORM}${JSON.stringify(d.apps)}\n`;
  for (const c of d.appConfigurations) text += `${JSON.stringify(c.appId)}${settingsText(c.settings)}\n`;
  for (const c of d.certificates) {
    text += c.kind === 'pkcsImported'
      ? `${JSON.stringify([c.profileId, c.kind, c.intendedPurpose, c.pfx.map((p) => [p.id, p.thumbprint])])}\n`
      : `${JSON.stringify([c.profileId, c.kind])}\n`;
  }
  return text;
}

/** SHA-256 of the canonical form, lower-case hex. */
export function desiredStateHash(d: DesiredState): string {
  return createHash('sha256').update(canonicalDesiredState(d)).digest('hex');
}

const ordered = new WeakMap<readonly AppConfigSetting[], readonly AppConfigSetting[]>();

/**
 * The settings ordered by key (code-unit order), as the canonical form needs
 * them; memoised per list, so a device's configuration keeps the identity
 * its merge had and settingsText stays a lookup.
 */
export function orderedSettings(settings: readonly AppConfigSetting[]): readonly AppConfigSetting[] {
  let out = ordered.get(settings);
  if (out === undefined) {
    out = [...settings].sort((a, b) => compareIds(a.appConfigKey, b.appConfigKey));
    ordered.set(settings, out);
  }
  return out;
}

/** Code-unit order: locale-independent, so every process orders ids alike. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
