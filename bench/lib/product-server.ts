// A baseline server built from the product's own app (same Fastify set-up, API-key auth, rate
// limit, error mapping, metrics hook, pool size) plus the baseline's routes in a partner scope,
// so a benchmark measures only the strategy the routes implement. Env as the product: PORT,
// DATABASE_URL, … Exits cleanly on SIGTERM/SIGINT.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { AppContext } from '../../src/context.ts';
import { partnerAuthHook } from '../../src/http/auth.ts';
import { registerRateLimit } from '../../src/http/rate-limit.ts';
import { createLogger } from '../../src/infra/logger.ts';
import { openRuntime } from '../../src/runtime.ts';

export async function serveProductWith(partnerRoutes: (ctx: AppContext) => FastifyPluginAsyncTypebox): Promise<void> {
  const config = loadConfig();
  const runtime = await openRuntime(config, createLogger(config.logLevel), { checkRedisDurability: false, runMigrations: false });
  const app = await buildApp(runtime.ctx, { adminToken: undefined });
  await app.register(async (partner) => {
    partner.addHook('onRequest', partnerAuthHook(runtime.ctx));
    await registerRateLimit(partner, runtime.ctx);
    await partner.register(partnerRoutes(runtime.ctx));
  });
  await app.listen({ port: config.port, host: config.host });
  const stop = () => {
    void app.close().then(() => runtime.close()).then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
