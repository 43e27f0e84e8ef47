// POST /v1/coupon-templates/{id}/claims: the first-come-first-served claim (docs/architecture.md, "Claims").
// The hot path: template from the in-process cache (no PostgreSQL), one gate call, which makes the
// coupon's UUIDv7 (so the answer already carries the id the row will have) only for a claim it may
// issue. Refusals are the common answer under a stampede, so they are sent straight from the
// catalog, serialised once, instead of thrown (claim-answers.ts). An event's claim throttles (per
// user, per client address) are decided before the gate, in this process, from buckets settled
// with Redis in the background (infra/shared-buckets.ts). A plain claim mostly never gets here:
// the fast path answers it before Fastify (claim-fast-path.ts, decisions 230 and 245).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { AppContext } from '../context.ts';
import { AppError } from '../errors.ts';
import { refusal } from '../http/openapi.ts';
import { ErrorResponse, IdParams, Timestamp, Uuid } from '../http/schemas.ts';
import type { CouponTemplate } from '../coupons/template-repository.ts';
import { ClaimBody, JSON_UTF8, answerImmediately, decideClaim } from './claim-answers.ts';
import { CLAIM_ROUTE, replayFastPathBody } from './claim-fast-path.ts';

const ClaimHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({
    minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7E]+$',
    description: 'Optional: 1–255 printable ASCII characters. A retry with the same key gets the first outcome (the same coupon) ' +
      'as long as the claim survived; answer 503 CLAIM_NOT_REPLICATED asks for exactly such a retry.',
  })),
});

const ClaimResponse = Type.Object({
  couponId: Uuid,
  templateId: Uuid,
  userId: Type.String(),
  status: Type.Literal('ISSUED'),
  validFrom: Timestamp,
  validUntil: Timestamp,
});

interface Claim {
  readonly userId: string;
  readonly idempotencyKey: string | undefined;
  /** The request: its address (request.ip) is read only by an event that throttles by it. */
  readonly client: { readonly ip: string };
}

export function claimRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  const { metrics } = ctx;
  return async (app) => {
    app.post(CLAIM_ROUTE, {
      schema: {
        operationId: 'claimCoupon', tags: ['claims'],
        summary: 'Claim one coupon of an event, first come first served',
        params: IdParams,
        headers: ClaimHeaders,
        body: ClaimBody,
        response: {
          201: ClaimResponse, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 422: ErrorResponse,
          429: refusal(429, ['RATE_LIMITED', 'CLAIM_THROTTLED']), 503: ErrorResponse,
        },
      },
      // A body the claim fast path read before it handed the request over (claim-fast-path.ts).
      preParsing: replayFastPathBody,
    }, (request, reply) => {
      // Synchronous while it can be (a cached template, a refusal the gate knows at once: nearly
      // every claim of a stampede), with no promise or microtask turn (decision 210).
      const claim: Claim = { userId: request.body.userId, idempotencyKey: request.headers['idempotency-key'], client: request };
      const template = ctx.claimTemplates.cachedForPartner(request.principal.partnerId, request.params.id);
      if (template) return answer(template, claim, reply);
      return ctx.claimTemplates.forPartner(request.principal.partnerId, request.params.id).then((found) => {
        if (!found) {
          metrics.claims.inc('unknown', 'not_found');
          throw new AppError('TEMPLATE_NOT_FOUND');
        }
        return answer(found, claim, reply);
      });
    });
  };

  // The helpers take the untyped reply: their 201 body is the route's ClaimResponse, their refusals
  // catalog bodies (serialised once).

  /** Throttles, then the gate. Undefined once answered here; the gate's decision is awaited otherwise. */
  function answer(template: CouponTemplate, { userId, idempotencyKey, client }: Claim, reply: FastifyReply): Promise<void> | undefined {
    const started = performance.now();
    const known = idempotencyKey === undefined ? ctx.claimGate.knownRefusal?.(template, userId) : undefined;
    const now = answerImmediately(ctx, template, userId, client, known, started);
    if (now) {
      if (now.retryAfter !== undefined) void reply.header('Retry-After', now.retryAfter);
      void reply.code(now.status).header('content-type', JSON_UTF8).send(now.body);
      return undefined;
    }
    return decideClaim(ctx, template, userId, idempotencyKey, started).then((decided) => {
      if ('issued' in decided) void reply.code(201).send(decided.issued);
      else void reply.code(decided.status).header('content-type', JSON_UTF8).send(decided.body);
    });
  }
}
