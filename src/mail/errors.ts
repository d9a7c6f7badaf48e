/**
 * The mail side's refusals:
 *
 * - certificate unavailable: no valid signing certificate for the account's
 *   address ("certificate not available" in Outlook), recipients without a
 *   valid encryption certificate, or nothing trustworthy to install.
 * - setting locked: the user asked for something the managed configuration
 *   does not let them change, or for S/MIME while it is off.
 */
import { type ErrorCode, KeyfleetError } from '../errors.ts';

export const CERTIFICATE_UNAVAILABLE: ErrorCode = 'KF_SMIME_CERTIFICATE_UNAVAILABLE';
export const SETTING_LOCKED: ErrorCode = 'KF_SMIME_SETTING_LOCKED';

/**
 * An encrypted send to recipients whose certificate is unknown or not
 * valid. Outlook asks the sender to remove them; nothing is sent
 * unencrypted instead (REFERENCE.md).
 */
export class RecipientCertificatesMissing extends KeyfleetError {
  readonly recipients: readonly string[];

  constructor(recipients: readonly string[]) {
    const list = recipients.join(', ');
    super(
      CERTIFICATE_UNAVAILABLE,
      `no valid encryption certificate for ${list}: remove ${recipients.length === 1 ? 'this recipient' : 'these recipients'} or send without encryption`,
      { detail: `recipient-certificate-missing: ${list}` },
    );
    this.recipients = recipients;
  }
}

export function certificateUnavailable(message: string, detail: string): KeyfleetError {
  return new KeyfleetError(CERTIFICATE_UNAVAILABLE, message, { detail });
}

export function settingLocked(message: string, detail: string): KeyfleetError {
  return new KeyfleetError(SETTING_LOCKED, message, { detail });
}
