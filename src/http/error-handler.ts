// The one edge where errors become HTTP. Domain errors carry their catalog code; framework errors
// are mapped to catalog codes; anything else is a 500 whose details stay in the log. Refusals made
// before any route runs (router, HTTP parser) answer the same `{error: {code, message}}` shape:
// `frameworkErrors` and `clientErrorHandler` are Fastify options, set by app.ts.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  ClientClosedError, ClientOfflineError, ConnectionTimeoutError, DisconnectsClientError, ErrorReply, ReconnectStrategyError,
  SocketClosedUnexpectedlyError, SocketTimeoutError,
} from 'redis';
import { AppError, ERROR_CATALOG, errorBody, type ErrorCode } from '../errors.ts';
import { isPoolExhausted } from '../infra/db.ts';
import { patternMeaning } from './schemas.ts';

/** Refusals that pass with time say when to come back (unless the route said it already). */
const RETRY_AFTER_SECONDS: Partial<Record<ErrorCode, number>> = {
  BULK_UPLOAD_LIMIT_REACHED: 5, BULK_UPLOADS_BUSY: 5, DATABASE_BUSY: 1, SERVICE_UNAVAILABLE: 1,
  // A partner's quota frees when one of its jobs finishes: a guess, not a promise.
  JOB_QUEUE_FULL: 30, JOB_STAGED_BYTES_LIMIT: 30,
};

interface FieldProblem {
  field: string;
  message: string;
}

/** Router refusals (Fastify's `frameworkErrors` option): a bad percent-encoding, an over-long path parameter. */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    void reply.code(414).send(errorBody('URI_TOO_LONG', `A path parameter is longer than ${MAX_PARAM_LENGTH} characters.`));
  } else if (error.code === 'FST_ERR_BAD_URL') {
    void reply.code(400).send(errorBody('MALFORMED_REQUEST', 'The URL is not valid percent-encoding.'));
  } else {
    request.log.error({ err: error }, 'router error');
    void reply.code(500).send(errorBody('INTERNAL_ERROR'));
  }
}

/**
 * The longest raw path parameter the router accepts (Fastify's default is 100): a 128-character
 * user id may be percent-encoded to three times its length. Longer is 414 URI_TOO_LONG.
 */
export const MAX_PARAM_LENGTH = 3 * 128;

/**
 * Node's HTTP parser refused the request before Fastify saw it (Fastify's `clientErrorHandler`
 * option): headers or request line over Node's 16 KB, a malformed request, a request that did not
 * arrive in time. No reply object exists, so the answer is written on the socket, then it is closed.
 */
export function clientErrorHandler(this: FastifyInstance, error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const code: ErrorCode = error.code === 'HPE_HEADER_OVERFLOW' ? 'HEADERS_TOO_LARGE'
    : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'REQUEST_TIMEOUT' : 'MALFORMED_REQUEST';
  this.log.debug({ err: error }, 'client error');
  const status = ERROR_CATALOG[code].status;
  const body = JSON.stringify(errorBody(code));
  if (socket.writable) {
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n`
      + `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  } else {
    socket.destroy();
  }
}

export function installErrorHandling(app: FastifyInstance): void {
  // Which methods each route pattern answers, so a known path with another method is a 405.
  const routes: Array<{ pattern: RegExp; method: string }> = [];
  app.addHook('onRoute', (route) => {
    const pattern = new RegExp(`^${route.url.split('/').map((part) => (part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/')}$`);
    for (const method of [route.method].flat()) routes.push({ pattern, method });
  });
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const path = request.url.split('?')[0]!;
    const allowed = [...new Set(routes.filter((route) => route.pattern.test(path)).map((route) => route.method))];
    if (allowed.length > 0) {
      void reply.code(405).header('Allow', allowed.join(', '))
        .send(errorBody('METHOD_NOT_ALLOWED', `${request.method} is not allowed here; use ${allowed.join(', ')}.`));
      return;
    }
    void reply.code(404).send(errorBody('ROUTE_NOT_FOUND', `No route ${request.method} ${path.slice(0, 200)}`));
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const { status, body, retryAfter } = errorAnswer(error, request.log);
    if (retryAfter !== undefined && !reply.hasHeader('retry-after')) void reply.header('Retry-After', retryAfter);
    return reply.code(status).send(body);
  });
}

/** An error's answer: its status, its catalog body and, for a refusal that passes with time, Retry-After (seconds). */
export interface ErrorAnswer {
  readonly status: number;
  readonly body: ReturnType<typeof errorBody>;
  readonly retryAfter?: string;
}

/**
 * What any error thrown while a request is handled answers, logged as it deserves: Fastify's error
 * handler and the claim fast path (which runs the gate without Fastify, decision 245) both use it.
 */
export function errorAnswer(error: FastifyError | Error, log: FastifyBaseLogger): ErrorAnswer {
  if (error instanceof AppError) {
    const retryAfter = RETRY_AFTER_SECONDS[error.code] ?? (error.status === 503 ? 1 : undefined);
    return { status: error.status, body: errorBody(error.code, error.message, error.details), ...(retryAfter === undefined ? {} : { retryAfter: String(retryAfter) }) };
  }
  const framework = error as FastifyError;
  if (framework.validation) {
    const problems = framework.validation.map((issue) => toFieldProblem(framework.validationContext ?? 'body', issue));
    const first = problems[0];
    return { status: 400, body: errorBody('VALIDATION_FAILED', first ? `${first.field}: ${first.message}` : undefined, problems) };
  }
  switch (framework.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, body: errorBody('PAYLOAD_TOO_LARGE') };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, body: errorBody('UNSUPPORTED_MEDIA_TYPE') };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, body: errorBody('MALFORMED_JSON', framework.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'The JSON body is empty.' : undefined) };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { status: 400, body: errorBody('MALFORMED_REQUEST', 'The Content-Length does not match the body.') };
  }
  if (isPoolExhausted(error)) {
    log.warn({ err: error }, 'database pool exhausted');
    return { status: 503, body: errorBody('DATABASE_BUSY'), retryAfter: String(RETRY_AFTER_SECONDS.DATABASE_BUSY) };
  }
  if (isUnavailable(framework)) {
    log.error({ err: error }, 'backing service unavailable');
    return { status: 503, body: errorBody('SERVICE_UNAVAILABLE'), retryAfter: '1' };
  }
  if (typeof framework.statusCode === 'number' && framework.statusCode >= 400 && framework.statusCode < 500) {
    // Other framework-level refusals of the request's form; their own text is not shown.
    log.debug({ err: error }, 'request refused by the framework');
    return { status: 400, body: errorBody('VALIDATION_FAILED') };
  }
  log.error({ err: error }, 'unhandled error');
  return { status: 500, body: errorBody('INTERNAL_ERROR') };
}

/** Every 5xx leaves one line carrying the request id (also when request logging is off): from an alert or a client's X-Request-Id to the failing request. */
export function logFailedRequest(log: FastifyBaseLogger, statusCode: number, method: string, url: string, responseTimeMs: number): void {
  log.error({ statusCode, method, url, responseTimeMs }, 'request failed');
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
  return { field: [context, ...path].join('.'), message: patternMeaning(params?.pattern) ?? issue.message ?? 'is not valid' };
}

const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03', '53300']);
// pg's own errors for a connection PostgreSQL dropped (a restart, an immediate shutdown) carry no
// code; a Unix socket that is gone while PostgreSQL restarts fails its connect with ENOENT.
const PG_CONNECTION_LOST = /^(Connection terminated( unexpectedly)?|Client has encountered a connection error and is not queryable)$/;

// node-redis' connection errors, matched by class: they do not set `name` (every one is "Error").
const REDIS_UNAVAILABLE = [
  ClientClosedError, ClientOfflineError, DisconnectsClientError, SocketClosedUnexpectedlyError,
  ConnectionTimeoutError, SocketTimeoutError, ReconnectStrategyError,
];
/**
 * Redis replies that mean "not now": still loading its data after a restart, busy with a script, a
 * replica without its master, a cluster whose slot owner is failing over, a write or a blocked
 * command that reached a master just demoted to replica (READONLY, UNBLOCKED).
 */
const REDIS_NOT_NOW = /^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN|READONLY|UNBLOCKED) /;

function isUnavailable(error: FastifyError): boolean {
  const code = String((error as { code?: unknown }).code ?? '');
  return UNAVAILABLE_CODES.has(code) || code.startsWith('08')
    || (code === 'ENOENT' && (error as { syscall?: unknown }).syscall === 'connect')
    || (code === '' && PG_CONNECTION_LOST.test(error.message))
    || REDIS_UNAVAILABLE.some((type) => error instanceof type)
    || (error instanceof ErrorReply && REDIS_NOT_NOW.test(error.message));
}
