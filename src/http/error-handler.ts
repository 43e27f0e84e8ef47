// The one edge where errors become HTTP. Domain errors carry their catalog code; framework errors
// are mapped to catalog codes; anything else is a 500 whose details stay in the log.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  ClientClosedError, ClientOfflineError, ConnectionTimeoutError, DisconnectsClientError, ErrorReply, ReconnectStrategyError,
  SocketClosedUnexpectedlyError, SocketTimeoutError,
} from 'redis';
import { AppError, ERROR_CATALOG, type ErrorCode } from '../errors.ts';

interface FieldProblem {
  field: string;
  message: string;
}

export function errorBody(code: ErrorCode, message?: string, details?: unknown) {
  return { error: { code, message: message ?? ERROR_CATALOG[code].message, ...(details === undefined ? {} : { details }) } };
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    void reply.code(404).send(errorBody('ROUTE_NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}`));
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof AppError) {
      if (error.status === 503 && !reply.hasHeader('Retry-After')) void reply.header('Retry-After', '1');
      return reply.code(error.status).send(errorBody(error.code, error.message, error.details));
    }
    if (error.validation) {
      const problems = error.validation.map((issue) => toFieldProblem(error.validationContext ?? 'body', issue));
      const first = problems[0];
      return reply.code(400).send(errorBody('VALIDATION_FAILED', first ? `${first.field}: ${first.message}` : undefined, problems));
    }
    switch (error.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return reply.code(413).send(errorBody('PAYLOAD_TOO_LARGE'));
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return reply.code(415).send(errorBody('UNSUPPORTED_MEDIA_TYPE'));
    }
    if (isUnavailable(error)) {
      request.log.error({ err: error }, 'backing service unavailable');
      return reply.code(503).header('Retry-After', '1').send(errorBody('SERVICE_UNAVAILABLE'));
    }
    if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
      // Malformed JSON, empty bodies and similar framework-level refusals.
      return reply.code(400).send(errorBody('VALIDATION_FAILED', error.message));
    }
    request.log.error({ err: error }, 'unhandled error');
    return reply.code(500).send(errorBody('INTERNAL_ERROR'));
  });
}

function toFieldProblem(context: string, issue: NonNullable<FastifyError['validation']>[number]): FieldProblem {
  const params = issue.params as Record<string, unknown> | undefined;
  const path = issue.instancePath.split('/').filter(Boolean);
  const missing = params?.requiredProperties ?? params?.missingProperty;
  if (Array.isArray(missing) && missing.length > 0) path.push(String(missing[0]));
  else if (typeof missing === 'string') path.push(missing);
  const extra = params?.additionalProperties ?? params?.additionalProperty;
  if (Array.isArray(extra) && extra.length > 0) path.push(String(extra[0]));
  else if (typeof extra === 'string') path.push(extra);
  return { field: [context, ...path].join('.'), message: issue.message ?? 'is not valid' };
}

const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P03', '53300']);

// node-redis' connection errors, matched by class: they do not set `name` (every one is "Error").
const REDIS_UNAVAILABLE = [
  ClientClosedError, ClientOfflineError, DisconnectsClientError, SocketClosedUnexpectedlyError,
  ConnectionTimeoutError, SocketTimeoutError, ReconnectStrategyError,
];
/** Redis replies that mean "not now": still loading its data after a restart, busy with a script, a replica without its master. */
const REDIS_NOT_NOW = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN) /;

function isUnavailable(error: FastifyError): boolean {
  const code = String((error as { code?: unknown }).code ?? '');
  return UNAVAILABLE_CODES.has(code) || code.startsWith('08')
    || REDIS_UNAVAILABLE.some((type) => error instanceof type)
    || (error instanceof ErrorReply && REDIS_NOT_NOW.test(error.message));
}
