// Per-API-key rate limits: a one-second window per key, decided in this process from token
// buckets that settle with Redis in the background (infra/shared-buckets.ts, docs/decisions/190),
// so the limit holds across every API process without a Redis call on the request path.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { AppError } from '../errors.ts';
import type { Principal } from './auth.ts';

/** Spends one of the key's requests this second; the refusal (429 RATE_LIMITED with its Retry-After seconds) when none is left. */
export function takeRateLimit(ctx: AppContext, principal: Principal): { error: AppError; retryAfterSeconds: number } | undefined {
  const limit = principal.rateLimitPerSecond ?? ctx.config.rateLimitPerSecond;
  const decision = ctx.buckets.take({ scope: 'api-key', key: principal.keyId, group: principal.partnerId, limit, settle: 'always' });
  if (decision.allowed) return undefined;
  ctx.metrics.rateLimited.inc();
  const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
  return {
    error: new AppError('RATE_LIMITED', `Rate limit of ${limit} requests per second exceeded; retry in ${seconds} second${seconds === 1 ? '' : 's'}.`),
    retryAfterSeconds: seconds,
  };
}

export async function registerRateLimit(scope: FastifyInstance, ctx: AppContext): Promise<void> {
  // After authentication: the limit is per key, never per address. A callback hook: no promise per request.
  scope.addHook('preHandler', (request, reply, done) => {
    const refused = takeRateLimit(ctx, request.principal);
    if (!refused) return done();
    void reply.header('Retry-After', String(refused.retryAfterSeconds));
    done(refused.error);
  });
}
