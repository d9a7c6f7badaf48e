/**
 * Errors over HTTP as RFC 9457 problem details. Coded errors keep their
 * safe message; anything else is logged with its cause and answered as a
 * generic 500, so internal detail never reaches a client.
 */
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { KeyfleetError, errorCatalogue, type ErrorCode } from '../errors.ts';

export const PROBLEM_TYPE_BASE = 'urn:keyfleet:problem:';

export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly code: ErrorCode | 'KF_INTERNAL';
}

export function problemFor(e: KeyfleetError): Problem {
  return { type: `${PROBLEM_TYPE_BASE}${e.code}`, title: errorCatalogue[e.code].title, status: e.status, detail: e.message, code: e.code };
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problem.status).header('content-type', 'application/problem+json; charset=utf-8').send(JSON.stringify(problem));
}

/** Fastify's own client errors (bad JSON, body too large, wrong content type) mapped to our codes. */
function fromFastify(e: FastifyError): KeyfleetError | undefined {
  switch (e.statusCode) {
    case 413:
      return new KeyfleetError('KF_INPUT_TOO_LARGE', 'request body is larger than this endpoint accepts');
    case 415:
      return new KeyfleetError('KF_UNSUPPORTED_MEDIA_TYPE', e.message);
    case 405:
      return new KeyfleetError('KF_METHOD_NOT_ALLOWED', e.message);
    case 404:
      return new KeyfleetError('KF_NOT_FOUND', e.message);
  }
  if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) return new KeyfleetError('KF_USAGE', e.message);
  return undefined;
}

export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | KeyfleetError, request, reply) => {
    const coded = error instanceof KeyfleetError ? error : fromFastify(error);
    if (coded) {
      if (coded.status >= 500) request.log.error({ err: error }, 'request failed');
      return sendProblem(reply, problemFor(coded));
    }
    request.log.error({ err: error }, 'internal error');
    return sendProblem(reply, { type: `${PROBLEM_TYPE_BASE}KF_INTERNAL`, title: 'Internal error', status: 500, detail: 'internal error', code: 'KF_INTERNAL' });
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problemFor(new KeyfleetError('KF_NOT_FOUND', `no route for ${request.method} ${request.url.split('?')[0]}`))),
  );
}
