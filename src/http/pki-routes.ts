/**
 * HTTP for the PKI: SCEP (RFC 8894 §4.1: GET and POST on /scep/<profile>,
 * also under the conventional …/pkiclient.exe), OCSP (RFC 6960 Appendix A:
 * POST /ocsp, GET /ocsp/<base64>), the CRL at its distribution point and
 * the issuing CA certificate (authorityInfoAccess caIssuers).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { handleOcspHttp } from '../ca/ocsp-http.ts';
import type { PkiServices } from './pki.ts';

/** SCEP requests are a CSR inside two CMS layers: small. */
const SCEP_BODY_LIMIT = 256 * 1024;
const OCSP_BODY_LIMIT = 64 * 1024;

interface ScepQuery {
  operation?: string;
  message?: string;
}

export function registerPkiRoutes(app: FastifyInstance, pki: PkiServices): void {
  // PKIOperation bodies arrive as application/x-pki-message (and, from some clients, octet-stream or nothing at all).
  app.addContentTypeParser(['application/x-pki-message', 'application/pkcs7-mime', 'application/octet-stream', 'application/ocsp-request'], { parseAs: 'buffer', bodyLimit: SCEP_BODY_LIMIT }, (_req, body, done) => done(null, body));

  const scep = async (request: FastifyRequest<{ Params: { profile: string }; Querystring: ScepQuery }>, reply: FastifyReply) => {
    const operation = request.query.operation ?? '';
    const message = request.method === 'POST' ? (request.body as Buffer | undefined) : request.query.message;
    const response = await pki.scep.handle(operation, message, request.params.profile);
    return reply.code(response.status).header('content-type', response.contentType).send(Buffer.from(response.body));
  };
  // High-volume protocol endpoints log warnings and errors only (bench:pki: a log line per request costs ~2%).
  const quiet = { logLevel: 'warn' } as const;
  for (const path of ['/scep/:profile', '/scep/:profile/pkiclient.exe']) {
    app.get(path, quiet, scep);
    app.post(path, { ...quiet, bodyLimit: SCEP_BODY_LIMIT }, scep);
  }

  const ocsp = async (request: FastifyRequest, reply: FastifyReply) => {
    const body = request.method === 'POST' ? (request.body as Buffer | undefined) : undefined;
    const response = await handleOcspHttp(pki.ocsp, { method: request.method, path: request.url, ...(body ? { body } : {}) });
    return reply.code(response.status).headers(response.headers).send(Buffer.from(response.body));
  };
  app.post('/ocsp', { ...quiet, bodyLimit: OCSP_BODY_LIMIT }, ocsp);
  app.get('/ocsp/*', quiet, ocsp);

  app.get('/crl/issuing.crl', async (_request, reply) => reply.header('content-type', 'application/pkix-crl').send(Buffer.from(await pki.currentCrl())));
  app.get('/ca/issuing.crt', async (_request, reply) => reply.header('content-type', 'application/pkix-cert').send(Buffer.from(pki.ca.certificate.der)));
}
