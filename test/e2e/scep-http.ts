/**
 * Our own SCEP client (src/scep/client.ts) over real HTTP with fetch(): for
 * what micromdm's scepclient cannot do (AES and DES-EDE3 envelopes, a chosen
 * transactionID, SAN entries in the CSR, GET against a server that offers
 * POST) and to look at CertReps byte for byte.
 */
import assert from 'node:assert/strict';
import { type KeyObject, generateKeyPairSync } from 'node:crypto';
import { type Certificate, decodeCertificate } from '../../src/x509/certificate.ts';
import { encodeName } from '../../src/x509/name.ts';
import { decodeCertsOnly } from '../../src/scep/certs-only.ts';
import { type CertRepResult, type RequestOptions, type ScepRequest, buildPkcsReq, parseCertRep } from '../../src/scep/client.ts';
import { encodeCertificationRequest } from '../../src/scep/csr.ts';
import { selfSigned } from '../scep/support.ts';

export interface HttpAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: Buffer;
}

async function answer(r: Response): Promise<HttpAnswer> {
  return { status: r.status, contentType: r.headers.get('content-type') ?? '', body: Buffer.from(await r.arrayBuffer()) };
}

/** GetCACert (RFC 8894 §4.2): the RA first, then the CA chain. */
export async function getCaCerts(scepUrl: string): Promise<Certificate[]> {
  const r = await answer(await fetch(`${scepUrl}?operation=GetCACert`));
  assert.equal(r.status, 200, r.body.toString('latin1'));
  return r.contentType === 'application/x-x509-ca-ra-cert' ? decodeCertsOnly(r.body) : [decodeCertificate(r.body)];
}

/** PKIOperation over POST (DER body) or GET (base64 in `message`, URL-escaped). */
export async function pkiOperation(scepUrl: string, der: Uint8Array, method: 'POST' | 'GET'): Promise<HttpAnswer> {
  if (method === 'POST') {
    return answer(await fetch(`${scepUrl}?operation=PKIOperation`, { method: 'POST', headers: { 'content-type': 'application/x-pki-message' }, body: Buffer.from(der) }));
  }
  return answer(await fetch(`${scepUrl}?operation=PKIOperation&message=${encodeURIComponent(Buffer.from(der).toString('base64'))}`));
}

export interface Device {
  readonly key: KeyObject;
  /** The self-signed certificate that signs a PKCSReq (RFC 8894 §2.3). */
  readonly certificate: Certificate;
  /** The subject as RDN pairs, most significant first (C, O, OU, CN). */
  readonly rdns: readonly (readonly [string, string])[];
}

/** An RSA key and a self-signed certificate for `C=US, O=scep-client, OU=MDM, CN=<cn>` (scepclient's subject shape). */
export async function newDevice(cn: string, bits = 2048): Promise<Device> {
  const rdns = [['C', 'US'], ['O', 'scep-client'], ['OU', 'MDM'], ['CN', cn]] as const;
  const key = generateKeyPairSync('rsa', { modulusLength: bits }).privateKey;
  return { key, certificate: await selfSigned(key, encodeName(rdns)), rdns };
}

/** The challenge subject for a device, in OpenSSL's one-line form (what `scep challenge --subject` takes). */
export function subjectOf(cn: string): string {
  return `C=US, O=scep-client, OU=MDM, CN=${cn}`;
}

export interface CsrOptions {
  readonly challenge?: string;
  readonly sanEmails?: readonly string[];
}

/** A PKCSReq for the device's key, encrypted to the RA. */
export function pkcsReq(device: Device, ra: readonly Certificate[], csr: CsrOptions, options: RequestOptions = {}): ScepRequest {
  const der = encodeCertificationRequest(
    { subject: encodeName(device.rdns), ...(csr.challenge !== undefined ? { challengePassword: csr.challenge } : {}), ...(csr.sanEmails ? { sanEmails: csr.sanEmails } : {}) },
    device.key,
  );
  return buildPkcsReq(der, { certificate: device.certificate, key: device.key }, ra.slice(0, 1), options);
}

/** Sends a request and checks the CertRep as a client must (signed by the RA, nonces, transactionID). */
export async function exchange(scepUrl: string, request: ScepRequest, trusted: readonly Certificate[], method: 'POST' | 'GET' = 'POST'): Promise<{ readonly http: HttpAnswer; readonly rep: CertRepResult }> {
  const http = await pkiOperation(scepUrl, request.der, method);
  assert.equal(http.status, 200, `PKIOperation over ${method}: ${http.status} ${http.body.toString('latin1')}`);
  assert.equal(http.contentType, 'application/x-pki-message');
  return { http, rep: parseCertRep(http.body, request, trusted) };
}
