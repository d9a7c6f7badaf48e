/**
 * Why the policy layer refuses an input. Each refusal is a KeyfleetError
 * whose `detail` is one of these stable strings, so the API (problem+json),
 * the CLI and tests can tell the cases apart without parsing messages.
 * The code is KF_USAGE until the catalogue (src/errors.ts) gains
 * policy-specific codes.
 */
import { type ErrorCode, KeyfleetError } from '../errors.ts';

export const PolicyRefusals = [
  // Shape of an input (json-schema.ts).
  'schema-violation',
  // Resources.
  'trusted-root-not-base64',
  'trusted-root-not-certificate',
  'trusted-root-not-ca',
  'scep-profile-without-trusted-root',
  'scep-subject-format-invalid',
  'scep-url-invalid',
  'scep-validity-invalid',
  // The S/MIME app configuration policy.
  'platform-not-ios',
  'enrollment-type-not-managed-devices',
  'app-not-outlook',
  'app-missing',
  'certificate-deployment-without-smime',
  'smime-setting-without-smime',
  'certificate-settings-without-deployment',
  'deployment-without-certificate-profiles',
  'derived-credential-issuer-not-configured',
  'profile-id-required',
  'profile-id-not-applicable',
  'profile-missing',
  'profile-wrong-kind',
  'profile-wrong-purpose',
  'ldap-host-invalid',
  // Certificate delivery states.
  'certificate-transition-impossible',
  // PFX import.
  'not-pkcs12',
  'pfx-without-key',
  'pfx-without-certificate',
  'pfx-multiple-keys',
  'pfx-purpose-mismatch',
  'connector-key-not-rsa',
  'connector-key-too-small',
  'password-too-long-for-connector-key',
] as const;
export type PolicyRefusal = (typeof PolicyRefusals)[number];

export function refuse(detail: PolicyRefusal, message: string, code: ErrorCode = 'KF_USAGE'): KeyfleetError {
  return new KeyfleetError(code, message, { detail });
}
