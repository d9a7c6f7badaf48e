/**
 * The PKI services one tenant's CA offers over HTTP — SCEP, OCSP, the CRL
 * and the CA certificate — wired from the CA, its store and the RA. The
 * Fastify routes (pki-routes.ts) only translate HTTP to these.
 */
import type { TenantStore } from '../store/store.ts';
import { KeyfleetError, isKeyfleetError } from '../errors.ts';
import type { CertificateAuthority } from '../ca/authority.ts';
import type { RegistrationAuthority } from '../ca/registration-authority.ts';
import { type CertificateProfile, parseCertificateProfile } from '../ca/templates.ts';
import { type OcspResponder, createOcspResponder } from '../ca/ocsp.ts';
import { type ScepService, createScepService } from '../scep/service.ts';
import { StoreChallengeValidator, type ChallengeValidator } from '../scep/challenge.ts';
import { deviceMayEnrol, isMirroredProfile } from '../delivery/scep-enrolment.ts';
import { caScepIssuer, scepProfileOf } from '../scep/ca-issuer.ts';
import type { ScepProfile } from '../scep/policy.ts';

export interface PkiServices {
  readonly ca: CertificateAuthority;
  readonly scep: ScepService;
  readonly ocsp: OcspResponder;
  readonly challenges: StoreChallengeValidator;
  /** The current CRL (DER), regenerated when its nextUpdate is near. */
  currentCrl(): Promise<Uint8Array>;
}

export interface PkiServicesOptions {
  readonly tenant: TenantStore;
  readonly ca: CertificateAuthority;
  readonly ra: RegistrationAuthority;
  /** A delegated OCSP responder; without one the issuing CA signs OCSP responses itself. */
  readonly ocspResponder?: RegistrationAuthority;
  readonly clock?: () => Date;
}

const PROFILE_TTL_MS = 10_000;

function ocspHash(hash: string | undefined): 'sha256' | 'sha384' | 'sha512' {
  return hash === 'sha384' || hash === 'sha512' ? hash : 'sha256';
}

export function createPkiServices(options: PkiServicesOptions): PkiServices {
  const { tenant, ca, ra } = options;
  const clock = options.clock ?? (() => new Date());
  // SCEP profiles are few and read on every request; the CA profile behind
  // each is kept from the last lookup for the (synchronous) issuer callback.
  const caProfiles = new Map<string, { readonly profile: CertificateProfile; readonly scep: ScepProfile; readonly readAt: number }>();
  const challenges = new StoreChallengeValidator(tenant.scep, clock);
  // A challenge handed to a managed device enrols only while that device still waits for that profile.
  const deviceBound: ChallengeValidator = {
    validate(password, profile, now, admit) {
      return challenges.validate(password, profile, now, async (grant) => {
        // Withdrawn in effect: to the presenter, as if used.
        if (grant.deviceId !== undefined && isMirroredProfile(profile) && !(await deviceMayEnrol(tenant, grant.deviceId, profile))) return { reason: 'used' };
        return admit?.(grant);
      });
    },
  };
  const scep = createScepService({
    // Read on every request; parsed profiles are kept for a short while (a change shows within PROFILE_TTL_MS).
    profiles: async (name) => {
      const cached = caProfiles.get(name);
      if (cached && Date.now() - cached.readAt < PROFILE_TTL_MS) return cached.scep;
      const record = await tenant.scep.getProfile(name);
      if (!record) return undefined;
      const profile = { ...parseCertificateProfile(record.template), name };
      const entry = { profile, scep: scepProfileOf(profile), readAt: Date.now() };
      caProfiles.set(name, entry);
      return entry.scep;
    },
    issuer: caScepIssuer(ca, (name) => caProfiles.get(name)?.profile),
    ra,
    challengeValidator: deviceBound,
    store: tenant.scep,
    clock,
  });
  const ocsp = createOcspResponder({
    // A delegated responder (RFC 6960 §4.2.2.2) when there is one: every response to a request with a
    // nonce is signed afresh, and a P-256 signature costs a fraction of the CA's RSA one (bench:pki).
    // Otherwise the issuing CA signs, with its own signature scheme.
    signer: options.ocspResponder
      ? { certificate: options.ocspResponder.certificate, key: options.ocspResponder.key, hash: 'sha256' }
      : { certificate: ca.certificate, sign: (data) => ca.signer.sign(data), hash: ocspHash(ca.signer.scheme.hash) },
    caCertificates: [ca.certificate],
    clock,
    lookup: async (_issuer, serialHex) => {
      try {
        const record = await ca.get(serialHex);
        return record.status === 'revoked' && record.revokedAt
          ? { status: 'revoked', revokedAt: record.revokedAt, ...(record.revocationReason === undefined ? {} : { reason: record.revocationReason }) }
          : { status: 'good' };
      } catch (e) {
        if (isKeyfleetError(e, 'KF_NOT_FOUND') || isKeyfleetError(e, 'KF_USAGE')) return { status: 'unknown' };
        throw e;
      }
    },
  });
  return {
    ca,
    scep,
    ocsp,
    challenges,
    async currentCrl() {
      const refreshed = await ca.refreshCrlIfDue();
      const crl = refreshed ?? (await ca.latestCrl()) ?? (await ca.generateCrl());
      if (!crl) throw new KeyfleetError('KF_CA_NOT_INITIALISED', 'no CRL has been published');
      return crl.der;
    },
  };
}
