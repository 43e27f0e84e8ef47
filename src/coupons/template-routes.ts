// Partner routes for coupon templates (the "events" users claim from).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { v7 as uuidv7 } from 'uuid';
import type { AppContext } from '../context.ts';
import { AppError } from '../errors.ts';
import { DEFAULT_PAGE_SIZE, decodeCursor, isUuidString, toPage } from '../http/pagination.ts';
import { Amount, ErrorResponse, IdParams, Page, PageQuery, Text, Timestamp, Uuid } from '../http/schemas.ts';
import { findTemplate, insertTemplate, listTemplates, type CouponTemplate } from './template-repository.ts';
import { listTemplateChanges, type TemplateChange } from './template-change-repository.ts';
import { templateDraftProblems } from './template-rules.ts';

export const Discount = Type.Union([
  Type.Object({ type: Type.Literal('FIXED'), value: Amount }, { additionalProperties: false }),
  Type.Object(
    { type: Type.Literal('PERCENT'), value: Type.Integer({ minimum: 1, maximum: 100 }), maxAmount: Type.Optional(Amount) },
    { additionalProperties: false },
  ),
]);
const Validity = Type.Union([
  Type.Object({ type: Type.Literal('ABSOLUTE'), validFrom: Timestamp, validUntil: Timestamp }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('RELATIVE'), days: Type.Integer({ minimum: 1, maximum: 3650 }) }, { additionalProperties: false }),
]);

const ThrottleFields = {
  perUserPerSecond: Type.Union([Type.Integer({ minimum: 1, maximum: 1_000 }), Type.Null()], {
    description: 'claim attempts one user may make per second on this event (beyond: 429 CLAIM_THROTTLED); null: not throttled',
  }),
  perClientAddressPerSecond: Type.Union([Type.Integer({ minimum: 1, maximum: 100_000 }), Type.Null()], {
    description: 'claim attempts one client address may make per second on this event (the socket\'s address, or with ' +
      'STAMPEDE_TRUST_PROXY the last trusted hop of X-Forwarded-For; beyond: 429 CLAIM_THROTTLED); null: not throttled',
  }),
};
const ClaimThrottleInput = Type.Object(
  { perUserPerSecond: Type.Optional(ThrottleFields.perUserPerSecond), perClientAddressPerSecond: Type.Optional(ThrottleFields.perClientAddressPerSecond) },
  { additionalProperties: false, description: 'Optional per-user and per-address limits on claim attempts (docs/claims.md); a field left out is unchanged (not throttled at creation).' },
);

export const CreateTemplateBody = Type.Object(
  {
    name: Text(200),
    discount: Discount,
    minOrderAmount: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000_000_000 })),
    totalQuantity: Type.Union([Type.Integer({ minimum: 1, maximum: 100_000_000 }), Type.Null()], {
      description: 'null: unlimited',
    }),
    perUserLimit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 1 })),
    claimStartsAt: Timestamp,
    claimEndsAt: Timestamp,
    validity: Validity,
    claimThrottle: Type.Optional(ClaimThrottleInput),
  },
  { additionalProperties: false },
);

export const TemplateResponse = Type.Object({
  id: Uuid,
  name: Type.String(),
  discount: Discount,
  minOrderAmount: Type.Integer(),
  totalQuantity: Type.Union([Type.Integer(), Type.Null()]),
  perUserLimit: Type.Integer(),
  issuedCount: Type.Integer(),
  remaining: Type.Union([Type.Integer(), Type.Null()], { description: 'null: unlimited' }),
  claimStartsAt: Timestamp,
  claimEndsAt: Timestamp,
  validity: Validity,
  paused: Type.Boolean({ description: 'claims answer 409 CLAIM_PAUSED while true' }),
  claimThrottle: Type.Object(ThrottleFields),
  createdAt: Timestamp,
});

export const PatchTemplateBody = Type.Object(
  {
    name: Type.Optional(Text(200)),
    paused: Type.Optional(Type.Boolean()),
    totalQuantity: Type.Optional(Type.Union([Type.Integer({ minimum: 1, maximum: 100_000_000 }), Type.Null()], {
      description: 'raise, or lower down to the coupons already issued (then sold out); null: unlimited',
    })),
    claimEndsAt: Type.Optional(Type.Union([Timestamp, Type.Literal('now')], {
      description: 'earlier (\'now\': the server\'s clock, ends the event at once) or later; after claimStartsAt',
    })),
    perUserLimit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'raise only' })),
    validity: Type.Optional(Validity),
    claimThrottle: Type.Optional(ClaimThrottleInput),
  },
  { additionalProperties: false, minProperties: 1, description: 'Any of the changeable settings; each applies to the next claim in every process.' },
);

const ChangeFields = Type.Record(Type.String({ maxLength: 32 }), Type.Unknown(), { description: 'changed fields, as the template shows them' });
const TemplateChangeResponse = Type.Object({
  id: Uuid,
  templateId: Uuid,
  apiKeyId: Type.Union([Uuid, Type.Null()]),
  changedAt: Timestamp,
  before: ChangeFields,
  after: ChangeFields,
});
const changeResponse = (change: TemplateChange) => ({
  id: change.id, templateId: change.templateId, apiKeyId: change.apiKeyId, changedAt: change.changedAt.toISOString(),
  before: change.before, after: change.after,
});

export function templateResponse(template: CouponTemplate): Static<typeof TemplateResponse> {
  const { validity } = template;
  return {
    id: template.id,
    name: template.name,
    discount: template.discount,
    minOrderAmount: template.minOrderAmount,
    totalQuantity: template.totalQuantity,
    perUserLimit: template.perUserLimit,
    issuedCount: template.issuedCount,
    remaining: template.totalQuantity === null ? null : Math.max(0, template.totalQuantity - template.issuedCount),
    claimStartsAt: template.claimStartsAt.toISOString(),
    claimEndsAt: template.claimEndsAt.toISOString(),
    validity: validity.type === 'ABSOLUTE'
      ? { type: 'ABSOLUTE', validFrom: validity.validFrom.toISOString(), validUntil: validity.validUntil.toISOString() }
      : validity,
    paused: template.paused,
    claimThrottle: { ...template.claimThrottle },
    createdAt: template.createdAt.toISOString(),
  };
}

/**
 * The claim gate's count (one Redis HGET, or an in-process read) is ahead of PostgreSQL's while
 * the persister catches up; show it, so a partner watching an event sees claims the moment they
 * are acknowledged. Templates the gate holds no state for keep PostgreSQL's count.
 */
export async function withLiveIssuedCount(ctx: AppContext, template: CouponTemplate): Promise<CouponTemplate> {
  const live = await ctx.claimGate.issuedCount(template);
  return live === undefined ? template : { ...template, issuedCount: live };
}

export function templateRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post('/v1/coupon-templates', {
      schema: { operationId: 'createCouponTemplate', summary: 'Create a coupon template (a claim event)', tags: ['coupons'], body: CreateTemplateBody, response: { 201: TemplateResponse, 400: ErrorResponse } },
    }, async (request, reply) => {
      const body = request.body;
      const draft = { ...body, minOrderAmount: body.minOrderAmount ?? 0, perUserLimit: body.perUserLimit ?? 1 };
      const problems = templateDraftProblems(draft);
      if (problems.length > 0) throw new AppError('VALIDATION_FAILED', `${problems[0]!.field}: ${problems[0]!.message}`, problems);
      const template = await insertTemplate(ctx.db, uuidv7(), request.principal.partnerId, draft);
      return reply.code(201).send(templateResponse(template));
    });

    app.get('/v1/coupon-templates/:id', {
      schema: { operationId: 'getCouponTemplate', summary: 'Read a coupon template with its live issued count', tags: ['coupons'], params: IdParams, response: { 200: TemplateResponse, 404: ErrorResponse } },
    }, async (request) => {
      const template = await findTemplate(ctx.db, request.principal.partnerId, request.params.id);
      if (!template) throw new AppError('TEMPLATE_NOT_FOUND');
      return templateResponse(await withLiveIssuedCount(ctx, template));
    });

    app.get('/v1/coupon-templates/:id/changes', {
      schema: {
        operationId: 'listCouponTemplateChanges', summary: 'List the changes made to a template, newest first', tags: ['coupons'],
        params: IdParams, querystring: PageQuery, response: { 200: Page(TemplateChangeResponse), 400: ErrorResponse, 404: ErrorResponse },
      },
    }, async (request) => {
      const template = await findTemplate(ctx.db, request.principal.partnerId, request.params.id);
      if (!template) throw new AppError('TEMPLATE_NOT_FOUND');
      const limit = request.query.limit ?? DEFAULT_PAGE_SIZE;
      const before = decodeCursor(request.query.cursor, isUuidString);
      const rows = await listTemplateChanges(ctx.db, request.principal.partnerId, template.id, limit + 1, before);
      return toPage(rows, limit, changeResponse, (row) => row.id);
    });

    app.get('/v1/coupon-templates', {
      schema: { operationId: 'listCouponTemplates', summary: 'List the partner\'s coupon templates, newest first', tags: ['coupons'], querystring: PageQuery, response: { 200: Page(TemplateResponse), 400: ErrorResponse } },
    }, async (request) => {
      const limit = request.query.limit ?? DEFAULT_PAGE_SIZE;
      const before = decodeCursor(request.query.cursor, isUuidString);
      const rows = await listTemplates(ctx.db, request.principal.partnerId, limit + 1, before);
      const live = await Promise.all(rows.map((row) => withLiveIssuedCount(ctx, row)));
      return toPage(live, limit, templateResponse, (row) => row.id);
    });
  };
}
