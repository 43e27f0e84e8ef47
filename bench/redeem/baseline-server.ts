// The redeem baseline server: the product's app (bench/lib/product-server.ts) with one extra
// route, POST /baseline/v1/coupons/{couponId}/redeem, served by baseline-redeem.ts.
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AppContext } from '../../src/context.ts';
import { Amount, OrderId, UserId, Uuid } from '../../src/http/schemas.ts';
import { serveProductWith } from '../lib/product-server.ts';
import { redeemWithRowLock } from './baseline-redeem.ts';

const baselineRoutes = (ctx: AppContext): FastifyPluginAsyncTypebox => async (app) => {
  app.post('/baseline/v1/coupons/:couponId/redeem', {
    schema: {
      params: Type.Object({ couponId: Uuid }, { additionalProperties: false }),
      body: Type.Object({ userId: UserId, orderId: OrderId, orderAmount: Amount }, { additionalProperties: false }),
    },
  }, async (request) => redeemWithRowLock(ctx.db, { partnerId: request.principal.partnerId, couponId: request.params.couponId, ...request.body }));
};

await serveProductWith(baselineRoutes);
