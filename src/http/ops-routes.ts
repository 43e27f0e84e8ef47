// Unauthenticated operational routes: liveness, readiness and Prometheus metrics.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AppContext } from '../context.ts';
import { catalogReason } from '../errors.ts';

const Check = Type.Object({ status: Type.Union([Type.Literal('ok'), Type.Literal('down')]), error: Type.Optional(Type.String()) });

export interface OpsOptions {
  /** Replaces this process's registry output, e.g. with the cluster-wide aggregate. */
  readonly metricsText?: () => Promise<{ contentType: string; body: string }>;
}

export function opsRoutes(ctx: AppContext, options: OpsOptions = {}): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get('/health/live', { schema: { operationId: 'getLiveness', summary: 'Liveness: the process answers', tags: ['ops'], response: { 200: Type.Object({ status: Type.Literal('ok') }) } } }, async () => ({
      status: 'ok' as const,
    }));

    app.get('/health/ready', {
      schema: {
        operationId: 'getReadiness', summary: 'Readiness: PostgreSQL (and Redis, when configured) answer', tags: ['ops'],
        response: {
          200: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Check) }),
          503: Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Check) }),
        },
      },
    }, async (_request, reply) => {
      const checks: Record<string, { status: 'ok' | 'down'; error?: string }> = {
        database: await probe(ctx, 'database', async () => { await ctx.db.query('SELECT 1'); }),
      };
      if (ctx.redis) {
        const redis = ctx.redis;
        checks.redis = await probe(ctx, 'redis', async () => { await redis.ping(); });
      }
      const ready = Object.values(checks).every((check) => check.status === 'ok');
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks });
    });

    app.get('/metrics', { schema: { tags: ['ops'], hide: true } }, async (_request, reply) => {
      const { contentType, body } = options.metricsText
        ? await options.metricsText()
        : { contentType: ctx.metrics.registry.contentType, body: await ctx.metrics.registry.metrics() };
      return reply.header('Content-Type', contentType).send(body);
    });
  };
}

const PROBE_TIMEOUT_MS = 2_000;

/** A failed probe answers a catalogued reason; what went wrong (hosts, SQL) goes to the log only. */
async function probe(ctx: AppContext, name: string, check: () => Promise<void>): Promise<{ status: 'ok' | 'down'; error?: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('timed out')), PROBE_TIMEOUT_MS); }),
    ]);
    return { status: 'ok' };
  } catch (error) {
    ctx.logger.warn({ err: error, check: name }, 'readiness probe failed');
    return { status: 'down', error: catalogReason(error, 'SERVICE_UNAVAILABLE') };
  } finally {
    clearTimeout(timer);
  }
}
