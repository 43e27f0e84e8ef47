// What the claim route and its fast path (claim-fast-path.ts) answer alike: the body schema, the
// answers decided in this process before any I/O (a throttle's 429, a refusal the gate knows) and
// the gate's decision, each counted in the metrics once, whichever path sends it.
import { Type } from 'typebox';
import { v7 as uuidv7 } from 'uuid';
import type { AppContext } from '../context.ts';
import type { CouponTemplate } from '../coupons/template-repository.ts';
import { couponValidity } from '../coupons/validity.ts';
import { AppError, ERROR_CATALOG, errorBody } from '../errors.ts';
import { UserId } from '../http/schemas.ts';
import type { BucketDecision } from '../infra/shared-buckets.ts';
import { REFUSALS, type AnsweredRefusal } from './claim-gate.ts';

export const ClaimBody = Type.Object({ userId: UserId }, { additionalProperties: false });

/**
 * Each gate refusal's status and body, serialised once: nearly every answer in a stampede is one of
 * them, and a string body with its content type skips the serializer (decision 210).
 */
const REFUSAL_ANSWERS = new Map(Object.entries(REFUSALS).map(([refusal, { code }]) =>
  [Number(refusal) as AnsweredRefusal, { status: ERROR_CATALOG[code].status, body: JSON.stringify(errorBody(code)) }]));
export const JSON_UTF8 = 'application/json; charset=utf-8';

/** An answer decided in this process, before any I/O: a throttle's 429 or a known refusal. */
export interface ImmediateAnswer {
  readonly status: number;
  /** Serialised already: sent as is with the JSON content type. */
  readonly body: string;
  readonly retryAfter?: string;
}

/**
 * What this process answers a claim before any I/O, with its metrics counted, or undefined: the
 * claim goes to the gate. `known` is the gate's knownRefusal for the claim (undefined: none). The
 * throttles come first: a throttled claim is refused whatever the event's state.
 */
export function answerImmediately(ctx: AppContext, template: CouponTemplate, userId: string, client: { readonly ip: string },
  known: AnsweredRefusal | undefined, started: number): ImmediateAnswer | undefined {
  const throttled = throttle(ctx, template, userId, client);
  if (throttled) {
    ctx.metrics.claimThrottled.inc({ template: ctx.metrics.templateLabel(template.id), reason: throttled.reason });
    return {
      status: 429,
      retryAfter: String(Math.max(1, Math.ceil(throttled.decision.retryAfterMs / 1000))),
      body: JSON.stringify(errorBody('CLAIM_THROTTLED', `Too many claim attempts for this event from this ${throttled.reason === 'user' ? 'user' : 'client address'}; retry after Retry-After seconds.`)),
    };
  }
  if (known === undefined) return undefined;
  ctx.claimGate.answeredKnown?.(template, known);
  return refused(ctx, template, ctx.metrics.templateLabel(template.id), known, performance.now() - started);
}

/** A 201's body: the claim route's ClaimResponse. */
export interface IssuedCoupon {
  readonly couponId: string;
  readonly templateId: string;
  readonly userId: string;
  readonly status: 'ISSUED';
  readonly validFrom: string;
  readonly validUntil: string;
}

/**
 * The gate's decision on a claim that no immediate answer settled, counted: the coupon (201) or a
 * refusal. An error is thrown to the caller's error answer (CLAIM_NOT_REPLICATED counted first).
 */
export async function decideClaim(ctx: AppContext, template: CouponTemplate, userId: string, idempotencyKey: string | undefined,
  started: number): Promise<{ readonly issued: IssuedCoupon } | ImmediateAnswer> {
  const { metrics } = ctx;
  const label = metrics.templateLabel(template.id);
  let result;
  try {
    result = await ctx.claimGate.claim(template, uuidv7, userId, idempotencyKey);
  } catch (error) {
    if (error instanceof AppError && error.code === 'CLAIM_NOT_REPLICATED') metrics.claims.inc(label, 'not_replicated');
    throw error;
  }
  const elapsedMs = performance.now() - started;
  if ('refusal' in result) return refused(ctx, template, label, result.refusal, elapsedMs);
  metrics.claimGateDuration.observe(elapsedMs / 1000, ctx.claimGate.kind);
  const { issued } = result;
  metrics.claims.inc(label, 'issued');
  ctx.liveClaims.record(template.id, 'issued', elapsedMs);
  if (template.totalQuantity !== null) metrics.claimRemaining.set({ template: label }, Math.max(0, template.totalQuantity - issued.issuedCount));
  // The window the gate gave the coupon (the validity in force at its claim); the template's for older state.
  const validity = issued.validFrom && issued.validUntil
    ? { validFrom: issued.validFrom, validUntil: issued.validUntil }
    : couponValidity(template.validity, issued.issuedAt);
  return {
    issued: {
      couponId: issued.couponId,
      templateId: template.id,
      userId,
      status: 'ISSUED',
      validFrom: validity.validFrom.toISOString(),
      validUntil: validity.validUntil.toISOString(),
    },
  };
}

/** A gate refusal's answer, counted. */
export function refused(ctx: AppContext, template: CouponTemplate, label: string, refusal: AnsweredRefusal, elapsedMs: number): ImmediateAnswer {
  ctx.metrics.claimGateDuration.observe(elapsedMs / 1000, ctx.claimGate.kind);
  const { outcome } = REFUSALS[refusal];
  ctx.metrics.claims.inc(label, outcome);
  ctx.liveClaims.record(template.id, outcome, elapsedMs);
  return REFUSAL_ANSWERS.get(refusal)!;
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
