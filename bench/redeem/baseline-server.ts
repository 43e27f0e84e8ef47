// The baseline server: the product's own app (same Fastify set-up, API-key auth, rate limit,
// error mapping, metrics hook, pool size) with one extra route, POST
// /baseline/v1/coupons/{couponId}/redeem, served by baseline-redeem.ts. The only difference the
// benchmark measures is the redeem strategy. Env as the product: PORT, DATABASE_URL, …
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { AppContext } from '../../src/context.ts';
import { partnerAuthHook } from '../../src/http/auth.ts';
import { registerRateLimit } from '../../src/http/rate-limit.ts';
import { Amount, OrderId, UserId, Uuid } from '../../src/http/schemas.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { openRuntime } from '../../src/runtime.ts';
import { redeemWithRowLock } from './baseline-redeem.ts';

const baselineRoutes = (ctx: AppContext): FastifyPluginAsyncTypebox => async (app) => {
  app.post('/baseline/v1/coupons/:couponId/redeem', {
    schema: {
      params: Type.Object({ couponId: Uuid }, { additionalProperties: false }),
      body: Type.Object({ userId: UserId, orderId: OrderId, orderAmount: Amount }, { additionalProperties: false }),
    },
  }, async (request) => redeemWithRowLock(ctx.db, { partnerId: request.principal.partnerId, couponId: request.params.couponId, ...request.body }));
};

const config = loadConfig();
const logger = createLogger(config.logLevel);
const runtime = await openRuntime(config, logger, { checkRedisDurability: false, runMigrations: false });
const app = await buildApp(runtime.ctx, { adminToken: undefined });
await app.register(async (partner) => {
  partner.addHook('onRequest', partnerAuthHook(runtime.ctx));
  await registerRateLimit(partner, runtime.ctx);
  await partner.register(baselineRoutes(runtime.ctx));
});
await app.listen({ port: config.port, host: config.host });
const stop = () => {
  void app.close().then(() => runtime.close()).then(() => process.exit(0), () => process.exit(1));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
