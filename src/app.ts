// Builds the Fastify app: a factory with no port, no process concerns. Tests call it and use
// inject(); src/server.ts listens. Route plugins are listed here by domain.
import { createServer, type ServerOptions } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerFactory } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { AppContext } from './context.ts';
import { AppError } from './errors.ts';
import { adminAuthHook, partnerAuthHook } from './http/auth.ts';
import { documentRoutes, swaggerOptions } from './http/openapi.ts';
import { MAX_PARAM_LENGTH, clientErrorHandler, frameworkErrors, installErrorHandling, logFailedRequest } from './http/error-handler.ts';
import { installJsonParser } from './http/json-body.ts';
import { opsRoutes, type OpsOptions } from './http/ops-routes.ts';
import { registerRateLimit } from './http/rate-limit.ts';
import { lazyRequestLogger } from './http/request-logger.ts';
import { requestIdOf } from './http/request-id.ts';
import { statusClass } from './infra/metrics.ts';
import { registerFormats } from './http/schemas.ts';
import { validatorCompiler } from './http/validator-compiler.ts';
import { partnerAdminRoutes } from './partners/partner-routes.ts';
import { sqlSourceAdminRoutes } from './partners/sql-source-routes.ts';
import { templateRoutes } from './coupons/template-routes.ts';
import { pointsAdminRoutes } from './points/admin-routes.ts';
import { pointsRoutes } from './points/ledger-routes.ts';
import { couponRoutes } from './coupons/coupon-routes.ts';
import { claimRoutes } from './claims/claim-routes.ts';
import { createClaimFastPath, type ClaimFastPath } from './claims/claim-fast-path.ts';
import { claimSettingsRoutes } from './claims/claim-settings-routes.ts';
import { distributionRoutes } from './coupons/distribution-routes.ts';
import { revocationRoutes } from './coupons/revocation-routes.ts';
import { jobRoutes } from './jobs/job-routes.ts';
import { accrualRoutes } from './points/accrual-routes.ts';
import { LiveFeed } from './claims/live-feed.ts';
import { liveRoutes } from './claims/live-routes.ts';
import { consoleRoutes } from './console/console-routes.ts';

export interface AppOptions extends OpsOptions {
  /** The admin bearer token; admin routes refuse everything when absent. */
  readonly adminToken: string | undefined;
  /** Log each request (pino); off in tests unless asked for. */
  readonly logRequests?: boolean;
}

registerFormats();

/**
 * Fastify ignores a bare hop count (it cannot check the peer): a count n is given as "the socket
 * and the n − 1 hops before it are proxies", which trusts whoever connects directly; docs/configuration.md says so.
 */
function trustProxyOption(setting: false | number | string[]): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof setting !== 'number') return setting;
  return (_address, hop) => hop < setting;
}

/**
 * Fastify's own HTTP/1 server, with the claim fast path in front of its handler (decision 230).
 * The settings are the four Fastify applies to the server it makes itself (lib/server.js).
 */
function serverWith(fastPath: () => ClaimFastPath | undefined): FastifyServerFactory {
  return (handler, opts) => {
    const options = opts as { http?: ServerOptions; keepAliveTimeout: number; requestTimeout: number; connectionTimeout: number; maxRequestsPerSocket: number };
    const server = createServer(options.http ?? {}, (req, res) => {
      if (!fastPath()?.(req, res, handler)) handler(req, res);
    });
    server.keepAliveTimeout = options.keepAliveTimeout;
    server.requestTimeout = options.requestTimeout;
    server.setTimeout(options.connectionTimeout);
    if (options.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = options.maxRequestsPerSocket;
    return server;
  };
}

export async function buildApp(ctx: AppContext, options: AppOptions): Promise<FastifyInstance> {
  // Off while requests are logged (Fastify logs each one) and once the app closes (Fastify answers 503).
  let fastPath: ClaimFastPath | undefined;
  let open = true;
  const app = Fastify({
    serverFactory: serverWith(() => fastPath),
    loggerInstance: ctx.logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: !options.logRequests }),
    childLoggerFactory: lazyRequestLogger,
    bodyLimit: ctx.config.bodyLimitBytes,
    // Without it a client that stops sending mid-body keeps what its request holds (a CSV upload's
    // connection and open transaction, the accrual staging slot) for as long as the socket lives.
    connectionTimeout: ctx.config.idleTimeoutMs,
    genReqId: (request) => requestIdOf(request.headers),
    requestIdHeader: false,
    return503OnClosing: true,
    // request.ip: the socket's address, or with STAMPEDE_TRUST_PROXY the last trusted hop of X-Forwarded-For.
    trustProxy: trustProxyOption(ctx.config.trustProxy),
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors,
    clientErrorHandler,
  }).withTypeProvider<TypeBoxTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  // Callback hooks, not async ones, on every request: no promise and no microtask turn each (decision 210).
  app.addHook('onSend', (request, reply, payload, done) => {
    void reply.header('X-Request-Id', request.id);
    done(null, payload);
  });
  // The rate limits' background settling belongs to the serving app.
  app.addHook('onClose', async () => { ctx.buckets.stop(); });
  installErrorHandling(app);
  installJsonParser(app);

  app.addHook('onResponse', (request, reply, done) => {
    ctx.metrics.httpRequestDuration.observe(reply.elapsedTime / 1000, request.routeOptions.url ?? 'unmatched', request.method, statusClass(reply.statusCode));
    if (reply.statusCode >= 500) logFailedRequest(request.log, reply.statusCode, request.method, request.url, reply.elapsedTime);
    done();
  });

  await app.register(swagger, swaggerOptions());
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(consoleRoutes());
  // Open live streams would hold app.close() until its timeout: they are ended before the server closes.
  const liveFeed = new LiveFeed(ctx);
  app.addHook('preClose', async () => {
    open = false;
    await liveFeed.closeAll();
  });

  await app.register(async (ops) => {
    documentRoutes(ops, 'public');
    await ops.register(opsRoutes(ctx, options));
  });

  await app.register(async (admin) => {
    documentRoutes(admin, 'admin');
    const token = options.adminToken;
    admin.addHook('onRequest', token ? adminAuthHook(token) : async () => {
      throw new AppError('ADMIN_TOKEN_INVALID', 'The admin API is disabled: STAMPEDE_ADMIN_TOKEN is not set.');
    });
    await admin.register(partnerAdminRoutes(ctx));
    await admin.register(sqlSourceAdminRoutes(ctx));
    await admin.register(pointsAdminRoutes(ctx));
  });

  await app.register(async (partner) => {
    documentRoutes(partner, 'partner');
    partner.addHook('onRequest', partnerAuthHook(ctx));
    await registerRateLimit(partner, ctx);
    await partner.register(templateRoutes(ctx));
    await partner.register(pointsRoutes(ctx));
    await partner.register(couponRoutes(ctx));
    await partner.register(claimRoutes(ctx));
    await partner.register(claimSettingsRoutes(ctx));
    await partner.register(liveRoutes(ctx, liveFeed));
    await partner.register(distributionRoutes(ctx));
    await partner.register(revocationRoutes(ctx));
    await partner.register(jobRoutes(ctx));
    await partner.register(accrualRoutes(ctx));
  });
  if (!options.logRequests) fastPath = createClaimFastPath(ctx, () => open);

  return app;
}
