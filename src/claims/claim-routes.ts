// POST /v1/coupon-templates/{id}/claims: the first-come-first-served claim (docs/architecture.md, "Claims").
// The hot path: template from the in-process cache (no PostgreSQL), one gate call, which makes the
// coupon's UUIDv7 (so the answer already carries the id the row will have) only for a claim it may
// issue. Refusals are the common answer under a stampede, so they are sent straight from the
// catalog, serialised once, instead of thrown. An event's claim
// throttles (per user, per client address) are decided before the gate, in this process, from
// buckets settled with Redis in the background (infra/shared-buckets.ts).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { v7 as uuidv7 } from 'uuid';
import type { AppContext } from '../context.ts';
import { couponValidity } from '../coupons/validity.ts';
import { AppError, ERROR_CATALOG, errorBody } from '../errors.ts';
import { refusal } from '../http/openapi.ts';
import { ErrorResponse, IdParams, Timestamp, UserId, Uuid } from '../http/schemas.ts';
import type { CouponTemplate } from '../coupons/template-repository.ts';
import type { BucketDecision } from '../infra/shared-buckets.ts';
import { REFUSALS, type AnsweredRefusal } from './claim-gate.ts';

const ClaimBody = Type.Object({ userId: UserId }, { additionalProperties: false });

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

/**
 * Each gate refusal's status and body, serialised once: nearly every answer in a stampede is one of
 * them, and a string body with its content type skips the serializer (decision 210).
 */
const REFUSAL_ANSWERS = new Map(Object.entries(REFUSALS).map(([refusal, { code }]) =>
  [Number(refusal) as AnsweredRefusal, { status: ERROR_CATALOG[code].status, body: JSON.stringify(errorBody(code)) }]));
const JSON_UTF8 = 'application/json; charset=utf-8';

interface Claim {
  readonly userId: string;
  readonly idempotencyKey: string | undefined;
  /** The request: its address (request.ip) is read only by an event that throttles by it. */
  readonly client: { readonly ip: string };
}

export function claimRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  const { metrics } = ctx;
  return async (app) => {
    app.post('/v1/coupon-templates/:id/claims', {
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
    const label = metrics.templateLabel(template.id);
    const throttled = throttle(ctx, template, userId, client);
    if (throttled) {
      metrics.claimThrottled.inc({ template: label, reason: throttled.reason });
      void reply.code(429).header('Retry-After', String(Math.max(1, Math.ceil(throttled.decision.retryAfterMs / 1000))))
        .send(errorBody('CLAIM_THROTTLED', `Too many claim attempts for this event from this ${throttled.reason === 'user' ? 'user' : 'client address'}; retry after Retry-After seconds.`));
      return undefined;
    }
    const started = performance.now();
    const known = idempotencyKey === undefined ? ctx.claimGate.knownRefusal?.(template, userId) : undefined;
    if (known !== undefined) {
      refuse(template, label, known, performance.now() - started, reply);
      return undefined;
    }
    return decide(template, label, userId, idempotencyKey, started, reply);
  }

  async function decide(template: CouponTemplate, label: string, userId: string, idempotencyKey: string | undefined, started: number, reply: FastifyReply): Promise<void> {
    let result;
    try {
      result = await ctx.claimGate.claim(template, uuidv7, userId, idempotencyKey);
    } catch (error) {
      if (error instanceof AppError && error.code === 'CLAIM_NOT_REPLICATED') metrics.claims.inc(label, 'not_replicated');
      throw error;
    }
    const elapsedMs = performance.now() - started;
    if ('refusal' in result) {
      refuse(template, label, result.refusal, elapsedMs, reply);
      return;
    }
    metrics.claimGateDuration.observe(elapsedMs / 1000, ctx.claimGate.kind);
    const { issued } = result;
    metrics.claims.inc(label, 'issued');
    ctx.liveClaims.record(template.id, 'issued', elapsedMs);
    if (template.totalQuantity !== null) metrics.claimRemaining.set({ template: label }, Math.max(0, template.totalQuantity - issued.issuedCount));
    // The window the gate gave the coupon (the validity in force at its claim); the template's for older state.
    const validity = issued.validFrom && issued.validUntil
      ? { validFrom: issued.validFrom, validUntil: issued.validUntil }
      : couponValidity(template.validity, issued.issuedAt);
    void reply.code(201).send({
      couponId: issued.couponId,
      templateId: template.id,
      userId,
      status: 'ISSUED' as const,
      validFrom: validity.validFrom.toISOString(),
      validUntil: validity.validUntil.toISOString(),
    });
  }

  function refuse(template: CouponTemplate, label: string, refusal: AnsweredRefusal, elapsedMs: number, reply: FastifyReply): void {
    metrics.claimGateDuration.observe(elapsedMs / 1000, ctx.claimGate.kind);
    const { outcome } = REFUSALS[refusal];
    metrics.claims.inc(label, outcome);
    ctx.liveClaims.record(template.id, outcome, elapsedMs);
    const answer = REFUSAL_ANSWERS.get(refusal)!;
    void reply.code(answer.status).header('content-type', JSON_UTF8).send(answer.body);
  }
}

/**
 * The event's throttles, the client address's first: a refused attempt spends no user token. The
 * address (request.ip) is read only for an event that throttles by it. Each
 * partner's buckets are capped in number (infra/shared-buckets.ts), so user ids cannot fill memory.
 */
function throttle(ctx: AppContext, template: CouponTemplate, userId: string, client: { readonly ip: string }): { reason: 'user' | 'address'; decision: BucketDecision } | undefined {
  const { perUserPerSecond, perClientAddressPerSecond } = template.claimThrottle;
  if (perClientAddressPerSecond !== null) {
    const decision = ctx.buckets.take({ scope: `claim-address:${template.id}`, key: client.ip, group: template.partnerId, limit: perClientAddressPerSecond, settle: 'beyond-share' });
    if (!decision.allowed) return { reason: 'address', decision };
  }
  if (perUserPerSecond !== null) {
    const decision = ctx.buckets.take({ scope: `claim-user:${template.id}`, key: userId, group: template.partnerId, limit: perUserPerSecond, settle: 'beyond-share' });
    if (!decision.allowed) return { reason: 'user', decision };
  }
  return undefined;
}
