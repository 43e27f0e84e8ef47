// POST /v1/coupon-templates/{id}/claims: the first-come-first-served claim (docs/architecture.md, "Claims").
// The hot path: template from the in-process cache (no PostgreSQL), a UUIDv7 made here so the
// answer already carries the id the row will have, one gate call. Refusals are the common answer
// under a stampede, so they are sent straight from the catalog instead of thrown. An event's claim
// throttles (per user, per client address) are decided before the gate, in this process, from
// buckets settled with Redis in the background (infra/shared-buckets.ts).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { v7 as uuidv7 } from 'uuid';
import type { AppContext } from '../context.ts';
import { couponValidity } from '../coupons/validity.ts';
import { AppError, ERROR_CATALOG, errorBody } from '../errors.ts';
import { refusal } from '../http/openapi.ts';
import { ErrorResponse, IdParams, Timestamp, UserId, Uuid } from '../http/schemas.ts';
import type { CouponTemplate } from '../coupons/template-repository.ts';
import type { BucketDecision } from '../infra/shared-buckets.ts';
import { REFUSALS } from './claim-gate.ts';

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
    }, async (request, reply) => {
      const { userId } = request.body;
      const template = await ctx.claimTemplates.forPartner(request.principal.partnerId, request.params.id);
      if (!template) {
        metrics.claims.inc({ template: 'unknown', outcome: 'not_found' });
        throw new AppError('TEMPLATE_NOT_FOUND');
      }
      const label = metrics.templateLabel(template.id);
      const throttled = throttle(ctx, template, userId, request.ip);
      if (throttled) {
        metrics.claimThrottled.inc({ template: label, reason: throttled.reason });
        return reply.code(429).header('Retry-After', String(Math.max(1, Math.ceil(throttled.decision.retryAfterMs / 1000))))
          .send(errorBody('CLAIM_THROTTLED', `Too many claim attempts for this event from this ${throttled.reason === 'user' ? 'user' : 'client address'}; retry after Retry-After seconds.`));
      }
      const couponId = uuidv7();
      const started = performance.now();
      let result;
      try {
        result = await ctx.claimGate.claim(template, couponId, userId, request.headers['idempotency-key']);
      } catch (error) {
        if (error instanceof AppError && error.code === 'CLAIM_NOT_REPLICATED') metrics.claims.inc({ template: label, outcome: 'not_replicated' });
        throw error;
      }
      const elapsedMs = performance.now() - started;
      metrics.claimGateDuration.observe({ gate: ctx.claimGate.kind }, elapsedMs / 1000);
      if ('refusal' in result) {
        const { code, outcome } = REFUSALS[result.refusal];
        metrics.claims.inc({ template: label, outcome });
        ctx.liveClaims.record(template.id, outcome, elapsedMs);
        return reply.code(ERROR_CATALOG[code].status).send(errorBody(code));
      }
      const { issued } = result;
      metrics.claims.inc({ template: label, outcome: 'issued' });
      ctx.liveClaims.record(template.id, 'issued', elapsedMs);
      if (template.totalQuantity !== null) metrics.claimRemaining.set({ template: label }, Math.max(0, template.totalQuantity - issued.issuedCount));
      // The window the gate gave the coupon (the validity in force at its claim); the template's for older state.
      const validity = issued.validFrom && issued.validUntil
        ? { validFrom: issued.validFrom, validUntil: issued.validUntil }
        : couponValidity(template.validity, issued.issuedAt);
      return reply.code(201).send({
        couponId: issued.couponId,
        templateId: template.id,
        userId,
        status: 'ISSUED' as const,
        validFrom: validity.validFrom.toISOString(),
        validUntil: validity.validUntil.toISOString(),
      });
    });
  };
}

/**
 * The event's throttles, the client address's first: a refused attempt spends no user token. Each
 * partner's buckets are capped in number (infra/shared-buckets.ts), so user ids cannot fill memory.
 */
function throttle(ctx: AppContext, template: CouponTemplate, userId: string, address: string): { reason: 'user' | 'address'; decision: BucketDecision } | undefined {
  const { perUserPerSecond, perClientAddressPerSecond } = template.claimThrottle;
  if (perClientAddressPerSecond !== null) {
    const decision = ctx.buckets.take({ scope: `claim-address:${template.id}`, key: address, group: template.partnerId, limit: perClientAddressPerSecond, settle: 'beyond-share' });
    if (!decision.allowed) return { reason: 'address', decision };
  }
  if (perUserPerSecond !== null) {
    const decision = ctx.buckets.take({ scope: `claim-user:${template.id}`, key: userId, group: template.partnerId, limit: perUserPerSecond, settle: 'beyond-share' });
    if (!decision.allowed) return { reason: 'user', decision };
  }
  return undefined;
}
