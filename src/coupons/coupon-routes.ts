// Partner routes for issued coupons: read, list a user's coupons, redeem on an order, cancel.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import type { AppContext } from '../context.ts';
import { DEFAULT_PAGE_SIZE, decodeCursor, isUuidString, toPage } from '../http/pagination.ts';
import { Amount, ErrorResponse, OrderId, Page, PageQuery, Timestamp, UserId, Uuid } from '../http/schemas.ts';
import { listUserCoupons, type Coupon, type Redemption } from './coupon-repository.ts';
import { discountFor, maxDiscountFor } from './discount-rules.ts';
import { cancel, readCoupon, redeem } from './redemption.ts';
import { effectiveStatus, redemptionRefusal } from './redemption-rules.ts';
import { Discount } from './template-routes.ts';

const Status = Type.Union([Type.Literal('ISSUED'), Type.Literal('USED'), Type.Literal('EXPIRED'), Type.Literal('REVOKED')]);

const CouponParams = Type.Object({ couponId: Uuid }, { additionalProperties: false });
const UserParams = Type.Object({ userId: UserId }, { additionalProperties: false });
const RedeemBody = Type.Object({ userId: UserId, orderId: OrderId, orderAmount: Amount }, { additionalProperties: false });
const CancelBody = Type.Object({ orderId: OrderId }, { additionalProperties: false });
const CouponQuery = Type.Object({ orderAmount: Type.Optional(Amount) }, { additionalProperties: false });
const UserCouponsQuery = Type.Object({ ...PageQuery.properties, status: Type.Optional(Status) }, { additionalProperties: false });

const RedemptionResponse = Type.Object({
  couponId: Uuid,
  orderId: Type.String(),
  orderAmount: Type.Integer(),
  discountAmount: Type.Integer(),
  status: Type.Literal('USED'),
  redeemedAt: Timestamp,
});

const CouponResponse = Type.Object({
  id: Uuid,
  templateId: Uuid,
  userId: Type.String(),
  status: Status,
  validFrom: Timestamp,
  validUntil: Timestamp,
  issuedAt: Timestamp,
  usedAt: Type.Union([Timestamp, Type.Null()]),
  orderId: Type.Union([Type.String(), Type.Null()]),
  orderAmount: Type.Union([Type.Integer(), Type.Null()]),
  discountAmount: Type.Union([Type.Integer(), Type.Null()]),
  template: Type.Object({ name: Type.String(), discount: Discount, minOrderAmount: Type.Integer() }),
});

const CouponDetailResponse = Type.Object({
  ...CouponResponse.properties,
  maxDiscountAmount: Type.Union([Type.Integer(), Type.Null()], { description: 'null: a PERCENT discount without a cap' }),
  quote: Type.Union([
    Type.Object({
      orderAmount: Type.Integer(),
      discountAmount: Type.Integer(),
      redeemable: Type.Boolean(),
      refusal: Type.Union([Type.String(), Type.Null()], { description: 'the error code a redeem would answer now' }),
    }),
    Type.Null(),
  ], { description: 'present when ?orderAmount= is given' }),
});

function couponResponse(coupon: Coupon, now: Date): Static<typeof CouponResponse> {
  return {
    id: coupon.id,
    templateId: coupon.templateId,
    userId: coupon.userId,
    status: effectiveStatus(coupon, now),
    validFrom: coupon.validFrom.toISOString(),
    validUntil: coupon.validUntil.toISOString(),
    issuedAt: coupon.issuedAt.toISOString(),
    usedAt: coupon.usedAt?.toISOString() ?? null,
    orderId: coupon.orderId,
    orderAmount: coupon.orderAmount,
    discountAmount: coupon.discountAmount,
    template: { name: coupon.template.name, discount: coupon.template.discount, minOrderAmount: coupon.minOrderAmount },
  };
}

function redemptionResponse(redemption: Redemption): Static<typeof RedemptionResponse> {
  return { ...redemption, status: 'USED', redeemedAt: redemption.redeemedAt.toISOString() };
}

export function couponRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/v1/coupons/:couponId', {
      schema: { operationId: 'getCoupon', summary: 'Read a coupon, optionally quoting an order amount', tags: ['coupons'], params: CouponParams, querystring: CouponQuery, response: { 200: CouponDetailResponse, 404: ErrorResponse } },
    }, async (request) => {
      const now = ctx.clock();
      const coupon = await readCoupon(ctx, request.principal.partnerId, request.params.couponId);
      const { orderAmount } = request.query;
      const refusal = orderAmount === undefined ? undefined : redemptionRefusal(coupon, orderAmount, now);
      return {
        ...couponResponse(coupon, now),
        maxDiscountAmount: maxDiscountFor(coupon.template.discount),
        quote: orderAmount === undefined ? null : {
          orderAmount,
          discountAmount: discountFor(coupon.template.discount, orderAmount),
          redeemable: refusal === undefined,
          refusal: refusal ?? null,
        },
      };
    });

    app.get('/v1/users/:userId/coupons', {
      schema: { operationId: 'listUserCoupons', summary: 'List a user\'s coupons', tags: ['coupons'], params: UserParams, querystring: UserCouponsQuery, response: { 200: Page(CouponResponse), 400: ErrorResponse } },
    }, async (request) => {
      const now = ctx.clock();
      const { partnerId } = request.principal;
      const { userId } = request.params;
      const limit = request.query.limit ?? DEFAULT_PAGE_SIZE;
      const before = decodeCursor(request.query.cursor, isUuidString);
      await ctx.pendingCoupons.persistUserCoupons(partnerId, userId);
      const rows = await listUserCoupons(ctx.db, { partnerId, userId, status: request.query.status, now, limit: limit + 1, before });
      return toPage(rows, limit, (row) => couponResponse(row, now), (row) => row.id);
    });

    app.post('/v1/coupons/:couponId/redeem', {
      schema: {
        operationId: 'redeemCoupon', summary: 'Redeem a coupon on an order', tags: ['coupons'], params: CouponParams, body: RedeemBody,
        response: { 200: RedemptionResponse, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 422: ErrorResponse },
      },
    }, async (request) => {
      const redemption = await redeem(ctx, { partnerId: request.principal.partnerId, couponId: request.params.couponId, ...request.body });
      return redemptionResponse(redemption);
    });

    app.post('/v1/coupons/:couponId/cancel-redemption', {
      schema: {
        operationId: 'cancelRedemption', summary: 'Cancel a redemption (the order was cancelled)', tags: ['coupons'], params: CouponParams, body: CancelBody,
        response: { 200: CouponResponse, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    }, async (request) => {
      const coupon = await cancel(ctx, request.principal.partnerId, request.params.couponId, request.body.orderId);
      return couponResponse(coupon, ctx.clock());
    });
  };
}
