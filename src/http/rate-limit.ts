// Per-API-key rate limits with @fastify/rate-limit. Its bundled Redis store speaks ioredis only,
// so this file adapts the same fixed-window algorithm to node-redis (one atomic Lua call per
// request, see rate-limit-1.lua) so the limit holds across every API process.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { AppContext } from '../context.ts';
import { AppError } from '../errors.ts';
import { loadLuaScript, runLuaScript } from '../infra/lua.ts';
import type { Redis } from '../infra/redis.ts';

const RATE_LIMIT = loadLuaScript(new URL('./rate-limit-1.lua', import.meta.url));
const WINDOW_MS = 1_000;

type IncrCallback = (error: Error | null, result?: { current: number; ttl: number }) => void;

function redisStoreFor(redis: Redis) {
  return class RedisRateLimitStore {
    incr(key: string, callback: IncrCallback, timeWindow = WINDOW_MS): void {
      runLuaScript(redis, RATE_LIMIT, [`stampede:ratelimit:${key}`], [String(timeWindow)])
        .then((reply) => {
          const [current, ttl] = reply as [number, number];
          callback(null, { current, ttl });
        })
        .catch((error: Error) => callback(error));
    }

    child(): RedisRateLimitStore {
      return this;
    }
  };
}

export async function registerRateLimit(scope: FastifyInstance, ctx: AppContext): Promise<void> {
  await scope.register(rateLimit, {
    hook: 'preHandler', // after authentication: the limit is per key, never per IP
    timeWindow: WINDOW_MS,
    max: (request: FastifyRequest) => request.principal.rateLimitPerSecond ?? ctx.config.rateLimitPerSecond,
    keyGenerator: (request: FastifyRequest) => request.principal.keyId,
    // A Redis hiccup must not turn into a claim outage: let the request through and log it.
    skipOnError: true,
    ...(ctx.redis ? { store: redisStoreFor(ctx.redis) } : {}),
    errorResponseBuilder: (_request, context) =>
      new AppError('RATE_LIMITED', `Rate limit of ${context.max} requests per second exceeded; retry in ${context.after}.`),
  });
}
