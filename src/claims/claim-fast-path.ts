// The claim route's fast path (decisions 230, 245). A plain claim (no Idempotency-Key, a cached key
// and template) is answered from Node's request event, without Fastify's request pipeline
// (routing, hooks, body parser, validation, reply), which cost more than the rest of a refusal
// (decision 210) and a third of a 201. It runs the route's own parts: the API-key cache, the rate
// limit, the body schema, the throttles, the gate's known refusal or its decision, and Fastify's
// error answers (errorAnswer). Anything else is handed to Fastify untouched; a body it already read
// is replayed to Fastify's parser (replayFastPathBody), so Fastify answers exactly as without it.
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import type { FastifyBaseLogger, preParsingHookHandler } from 'fastify';
import { Compile } from 'typebox/compile';
import type { AppContext } from '../context.ts';
import type { CouponTemplate } from '../coupons/template-repository.ts';
import { errorAnswer, logFailedRequest } from '../http/error-handler.ts';
import { takeRateLimit } from '../http/rate-limit.ts';
import { requestIdOf } from '../http/request-id.ts';
import { IdParams } from '../http/schemas.ts';
import { statusClass } from '../infra/metrics.ts';
import { ClaimBody, JSON_UTF8, answerImmediately, decideClaim, type ImmediateAnswer } from './claim-answers.ts';

/** The route's pattern: the claim route registers it, and its HTTP metrics are labelled with it either way. */
export const CLAIM_ROUTE = '/v1/coupon-templates/:id/claims';
const CLAIM_PATH = /^\/v1\/coupon-templates\/([^/?#%]+)\/claims$/;
/** A claim body is {"userId": at most 128 characters}; a longer one takes Fastify's path. */
const FAST_PATH_MAX_BODY_BYTES = 1024;
const READ_BODY = Symbol('stampede.claimFastPathBody');

type RawRequest = IncomingMessage & { [READ_BODY]?: Buffer };
type HandOver = (req: IncomingMessage, res: ServerResponse) => void;

/** The fast path: takes the request (true) or leaves it, untouched, to the caller (false). */
export type ClaimFastPath = (req: IncomingMessage, res: ServerResponse, handOver: HandOver) => boolean;

export function createClaimFastPath(ctx: AppContext, isOpen: () => boolean): ClaimFastPath {
  const params = Compile(IdParams);
  const body = Compile(ClaimBody);
  /** Answers waiting for the end of this turn's reads (sendSoon). */
  const soon: Soon[] = [];

  return (req, res, handOver) => {
    if (req.method !== 'POST' || !isOpen()) return false;
    const path = CLAIM_PATH.exec(req.url!);
    if (!path) return false;
    const { headers } = req;
    // Only the plain claim: a retry (Idempotency-Key) is rare, and its header is Fastify's to validate.
    if (headers['idempotency-key'] !== undefined || headers['transfer-encoding'] !== undefined || !isJson(headers)) return false;
    const length = Number(headers['content-length']);
    if (!(length > 0 && length <= FAST_PATH_MAX_BODY_BYTES)) return false;
    // As the auth hook (onRequest): a key this process holds; any other look-up is Fastify's.
    const apiKey = headers['x-api-key'];
    const principal = typeof apiKey === 'string' ? ctx.keys.cached(apiKey) : undefined;
    const templateId = path[1]!;
    if (!principal || !params.Check({ id: templateId })) return false;
    const startedAt = performance.now();

    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A client gone mid-body: Node closes the socket; nothing is held but these closures.
    req.on('error', () => undefined);
    req.on('end', () => {
      const read = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      try {
        if (taken(read)) return;
      } catch (error) {
        // A bug here must cost this request (a 500, as Fastify answers a throwing handler), not the process.
        const requestId = requestIdOf(headers);
        if (!res.headersSent) send(res, requestId, startedAt, errorAnswered(error as Error, ctx.logger.child({ reqId: requestId })));
        return;
      }
      (req as RawRequest)[READ_BODY] = read;
      handOver(req, res);
    });
    return true;

    /** Answers the claim here, now or once the gate decided; false (nothing spent, nothing counted) to hand it over. */
    function taken(read: Buffer): boolean {
      if (!isOpen() || read.length !== length) return false;
      let value: unknown;
      try {
        value = JSON.parse(read.toString('utf8'));
      } catch {
        return false;
      }
      if (!body.Check(value)) return false;
      const { userId } = value;
      const template = ctx.claimTemplates.cachedForPartner(principal!.partnerId, templateId);
      // An event that throttles by client address needs Fastify's request.ip (trustProxy).
      if (!template || template.claimThrottle.perClientAddressPerSecond !== null) return false;
      // From here on this request is answered here: what follows spends tokens and counts.
      const started = performance.now();
      const requestId = requestIdOf(headers);
      const limited = takeRateLimit(ctx, principal!);
      if (limited) {
        sendSoon({ res, requestId, startedAt, answer: { ...errorAnswered(limited.error, ctx.logger), retryAfter: String(limited.retryAfterSeconds) } });
        return true;
      }
      const now = answerImmediately(ctx, template, userId, NO_ADDRESS, ctx.claimGate.knownRefusal?.(template, userId), started);
      if (now) {
        sendSoon({ res, requestId, startedAt, answer: now });
        return true;
      }
      void answerDecision(res, requestId, startedAt, template, userId, started);
      return true;
    }
  };

  /**
   * Answers decided as their request is read go out once this turn's reads are done (setImmediate:
   * libuv's check phase), not one by one among the reads. A gate reply read in the same turn then
   * sends its 201s before them, not after every refusal of the turn (decision 245).
   */
  function sendSoon(answer: Soon): void {
    if (soon.push(answer) === 1) setImmediate(sendAll);
  }
  function sendAll(): void {
    for (const { res, requestId, startedAt, answer } of soon.splice(0)) {
      try {
        send(res, requestId, startedAt, answer);
      } catch (error) {
        ctx.logger.error({ err: error, reqId: requestId }, 'claim answer could not be sent');
        res.destroy();
      }
    }
  }

  /** The gate's decision, answered as the route would; an error as Fastify's error handler would. */
  async function answerDecision(res: ServerResponse, requestId: string, startedAt: number, template: CouponTemplate,
    userId: string, started: number): Promise<void> {
    try {
      const decided = await decideClaim(ctx, template, userId, undefined, started);
      send(res, requestId, startedAt, 'issued' in decided ? { status: 201, body: JSON.stringify(decided.issued) } : decided);
    } catch (error) {
      const log = ctx.logger.child({ reqId: requestId });
      // Sending failed, not the claim: nothing more can be said on this response.
      if (res.headersSent) return log.error({ err: error }, 'claim answer failed after its headers were sent');
      send(res, requestId, startedAt, errorAnswered(error as Error, log));
    }
  }

  /** Sends an answer with the route's headers, counted and logged as Fastify's onResponse hook would. */
  function send(res: ServerResponse, requestId: string, startedAt: number, answer: ImmediateAnswer): void {
    const headers: OutgoingHttpHeaders = { 'content-type': JSON_UTF8, 'x-request-id': requestId, 'content-length': Buffer.byteLength(answer.body) };
    if (answer.retryAfter !== undefined) headers['retry-after'] = answer.retryAfter;
    res.writeHead(answer.status, headers);
    res.end(answer.body);
    const elapsedMs = performance.now() - startedAt;
    ctx.metrics.httpRequestDuration.observe(elapsedMs / 1000, CLAIM_ROUTE, 'POST', statusClass(answer.status));
    ctx.metrics.claimFastPathAnswers.inc(String(answer.status));
    if (answer.status >= 500) logFailedRequest(ctx.logger.child({ reqId: requestId }), answer.status, 'POST', res.req.url!, elapsedMs);
  }
}

/** Fastify's error handler's answer to an error (errorAnswer), serialised for sending as is. */
function errorAnswered(error: Error, log: FastifyBaseLogger): ImmediateAnswer {
  const { status, body, retryAfter } = errorAnswer(error, log);
  return { status, body: JSON.stringify(body), ...(retryAfter === undefined ? {} : { retryAfter }) };
}

interface Soon {
  readonly res: ServerResponse;
  readonly requestId: string;
  readonly startedAt: number;
  readonly answer: ImmediateAnswer;
}

/** Never read: the fast path leaves events that throttle by address to Fastify. */
const NO_ADDRESS = { ip: '' };

function isJson(headers: IncomingHttpHeaders): boolean {
  const type = headers['content-type'];
  return type === 'application/json' || type === JSON_UTF8;
}

/** The claim route's preParsing hook: the body the fast path read before it handed the request over. */
export const replayFastPathBody: preParsingHookHandler = (request, _reply, payload, done) => {
  const read = (request.raw as RawRequest)[READ_BODY];
  done(null, read === undefined ? payload : new PassThrough().end(read));
};
