// Request authentication: partner calls carry X-API-Key, admin calls a bearer token.
import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import { AppError } from '../errors.ts';
import type { Principal } from '../partners/key-authenticator.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the partner auth hook on every partner-scoped route. */
    principal: Principal;
  }
}

export function partnerAuthHook(ctx: AppContext) {
  return async (request: FastifyRequest): Promise<void> => {
    const header = request.headers['x-api-key'];
    const apiKey = Array.isArray(header) ? header[0] : header;
    if (!apiKey) throw new AppError('API_KEY_MISSING');
    const principal = await ctx.keys.authenticate(apiKey);
    if (!principal) throw new AppError('API_KEY_INVALID');
    request.principal = principal;
  };
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
