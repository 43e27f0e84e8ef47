// Request authentication: partner calls carry X-API-Key, admin calls a bearer token.
import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import { AppError, isAppError } from '../errors.ts';

/** The partner a request acts for (its API key's, from ctx.keys). */
export type Principal = NonNullable<Awaited<ReturnType<AppContext['keys']['authenticate']>>>;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the partner auth hook on every partner-scoped route. */
    principal: Principal;
  }
}

/**
 * A callback hook, not an async one: a key this process holds (nearly every request) is answered
 * without a promise or a turn of the microtask queue (decision 210).
 */
export function partnerAuthHook(ctx: AppContext) {
  return (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void => {
    const header = request.headers['x-api-key'];
    const apiKey = Array.isArray(header) ? header[0] : header;
    if (!apiKey) return done(new AppError('API_KEY_MISSING'));
    const cached = ctx.keys.cached(apiKey);
    if (cached !== undefined) return admit(request, cached, done);
    // Unknown-key look-ups are limited per client address (request.ip, the peer's address: clients
    // behind one proxy share its budget; only look-ups of keys that do not exist spend it).
    ctx.keys.authenticate(apiKey, request.ip).then((principal) => admit(request, principal, done), (error: unknown) => {
      if (isAppError(error) && error.code === 'API_KEY_LOOKUPS_LIMITED') {
        void reply.header('Retry-After', String((error.details as { retryAfterSeconds: number }).retryAfterSeconds));
      }
      done(error as Error);
    });
  };
}

function admit(request: FastifyRequest, principal: Principal | null, done: (error?: Error) => void): void {
  if (!principal) return done(new AppError('API_KEY_INVALID'));
  request.principal = principal;
  done();
}

export function adminAuthHook(adminToken: string) {
  const expected = digest(adminToken);
  return async (request: FastifyRequest): Promise<void> => {
    const header = request.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
    // Compare digests so the comparison takes the same time whatever the token's length.
    if (!token || !timingSafeEqual(digest(token), expected)) throw new AppError('ADMIN_TOKEN_INVALID');
  };
}

const digest = (value: string) => createHash('sha256').update(value).digest();
