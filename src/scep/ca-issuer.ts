/**
 * The ScepIssuer over the real CertificateAuthority (src/ca/authority.ts):
 * a PKCSReq is issued with the names the CSR carries (already checked
 * against the challenge and profile by the SCEP layer), a RenewalReq with
 * the CA's renew (same subject and SAN, new key from the CSR). Issuance is
 * immediate; nothing is ever pending with this issuer.
 */
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import type { CertificateAuthority } from '../ca/authority.ts';
import type { CertificateProfile } from '../ca/templates.ts';
import { decodeCertificate } from '../x509/certificate.ts';
import type { CurveName, ScepKeyPolicy, ScepProfile } from './policy.ts';
import type { ScepIssueOutcome, ScepIssueRequest, ScepIssuedCertificate, ScepIssuer } from './service.ts';

type Authority = Pick<CertificateAuthority, 'issue' | 'renew' | 'get' | 'chain' | 'certificate'>;

/** The SCEP key policy a CA profile implies (its keyTypes, e.g. rsa-2048, p-256). */
export function keyPolicyOf(profile: Pick<CertificateProfile, 'keyTypes'>): ScepKeyPolicy {
  const rsaBits: number[] = [];
  const ecCurves: CurveName[] = [];
  for (const k of profile.keyTypes as readonly string[]) {
    const rsa = /^rsa-(\d+)$/.exec(k);
    if (rsa) rsaBits.push(Number(rsa[1]));
    else if (k === 'p-256') ecCurves.push('P-256');
    else if (k === 'p-384') ecCurves.push('P-384');
  }
  return { rsaBits, ecCurves };
}

/** A SCEP profile for a CA profile. */
export function scepProfileOf(profile: CertificateProfile, options: { readonly allowRenewal?: boolean } = {}): ScepProfile {
  return { name: profile.name, keyPolicy: keyPolicyOf(profile), ...(options.allowRenewal === undefined ? {} : { allowRenewal: options.allowRenewal }) };
}

export function caScepIssuer(authority: Authority, profileFor: (scepProfile: string) => CertificateProfile | undefined): ScepIssuer {
  const chain = [authority.certificate, ...authority.chain];
  return {
    async issue(request: ScepIssueRequest): Promise<ScepIssueOutcome> {
      const profile = profileFor(request.profile.name);
      if (!profile) return { status: 'rejected', failInfo: 'badRequest', reason: `no certificate profile for SCEP profile ${request.profile.name}` };
      try {
        const issued =
          request.messageType === 'RenewalReq' && request.renewalOf
            ? await authority.renew(request.renewalOf.serialHex, { csr: request.csr, requester: request.requester, profile })
            : await authority.issue({
                // Already decoded and its signature checked by the SCEP layer: not again.
                csr: request.csr,
                profile,
                names: { subject: request.csr.subject.der, emails: request.csr.subjectAltName?.rfc822Names ?? [], upns: request.csr.subjectAltName?.upns ?? [] },
                requester: request.requester,
              });
        return { status: 'issued', certificate: issued.certificate, chain };
      } catch (e) {
        // The CA's own checks (key type, names) refuse with a coded error: a badRequest, not a server fault.
        if (isKeyfleetError(e, 'KF_KEY_INVALID') || isKeyfleetError(e, 'KF_USAGE') || isKeyfleetError(e, 'KF_CONFLICT')) return { status: 'rejected', failInfo: 'badRequest', reason: e.message };
        throw e;
      }
    },

    async lookup(serialHex: string): Promise<ScepIssuedCertificate | undefined> {
      try {
        const record = await authority.get(serialHex);
        return { certificate: decodeCertificate(record.certificateDer), revoked: record.status === 'revoked' };
      } catch (e) {
        if (isKeyfleetError(e, 'KF_NOT_FOUND') || (e instanceof KeyfleetError && e.code === 'KF_USAGE')) return undefined;
        throw e;
      }
    },
  };
}
