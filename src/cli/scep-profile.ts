/** The SCEP profile `ca init` creates, as the ScepStore keeps it. */
import type { ScepProfileRecord } from '../store/scep.ts';
import type { CertificateProfile } from '../ca/templates.ts';

export const DEFAULT_SCEP_PROFILE = 'default';

export function scepProfileRecord(name: string, caId: string, profile: CertificateProfile, now = new Date()): ScepProfileRecord {
  return { name, caId, template: profile, createdAt: now };
}
