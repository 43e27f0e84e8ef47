// Admin routes: partners and their API keys.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { v7 as uuidv7 } from 'uuid';
import type { AppContext } from '../context.ts';
import { AppError } from '../errors.ts';
import { withTransaction } from '../infra/db.ts';
import { ErrorResponse, IdParams, Text, Uuid } from '../http/schemas.ts';
import { generateApiKey } from './api-key.ts';
import { insertApiKey, insertPartner, revokeApiKey, updatePartnerSettings, type PartnerRow } from './partner-repository.ts';

const RateLimit = Type.Union([Type.Integer({ minimum: 1, maximum: 10_000_000 }), Type.Null()], {
  description: 'Requests per second per API key; null means the service default.',
});
const NoticeDays = Type.Integer({ minimum: 1, maximum: 365, description: 'How many days ahead the daily points.expiring webhook digest looks (default 7).' });
const Partner = Type.Object({ id: Uuid, name: Type.String(), rateLimitPerSecond: Type.Union([Type.Integer(), Type.Null()]), pointsExpiringNoticeDays: Type.Integer() });
const partnerResponse = (row: PartnerRow) => ({ id: row.id, name: row.name, rateLimitPerSecond: row.rateLimitPerSecond, pointsExpiringNoticeDays: row.pointsExpiringNoticeDays });
const ApiKeyCreated = Type.Object({ id: Uuid, apiKey: Type.String({ description: 'Shown once; store it now.' }) });

export function partnerAdminRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post('/v1/partners', {
      schema: {
        operationId: 'createPartner', summary: 'Create a partner and its first API key', tags: ['admin'],
        body: Type.Object(
          { name: Text(200), rateLimitPerSecond: Type.Optional(RateLimit) },
          { additionalProperties: false },
        ),
        response: { 201: Type.Intersect([Partner, Type.Object({ apiKey: Type.String() })]), 400: ErrorResponse },
      },
    }, async (request, reply) => {
      const key = generateApiKey();
      const partner = await withTransaction(ctx.db, async (tx) => {
        const row = await insertPartner(tx, { id: uuidv7(), name: request.body.name, rateLimitPerSecond: request.body.rateLimitPerSecond ?? null });
        await insertApiKey(tx, { id: uuidv7(), partnerId: row.id, prefix: key.prefix, hash: key.hash });
        return row;
      });
      return reply.code(201).send({ ...partnerResponse(partner), apiKey: key.apiKey });
    });

    app.patch('/v1/partners/:id', {
      schema: {
        operationId: 'updatePartner', summary: 'Change a partner\'s settings (rate limit, points expiring notice)', tags: ['admin'],
        params: IdParams,
        body: Type.Object(
          { rateLimitPerSecond: Type.Optional(RateLimit), pointsExpiringNoticeDays: Type.Optional(NoticeDays) },
          { additionalProperties: false, minProperties: 1 },
        ),
        response: { 200: Partner, 404: ErrorResponse },
      },
    }, async (request) => {
      const row = await updatePartnerSettings(ctx.db, request.params.id, request.body);
      if (!row) throw new AppError('PARTNER_NOT_FOUND');
      if (request.body.rateLimitPerSecond !== undefined) await ctx.keys.invalidatePartner(row.id);
      return partnerResponse(row);
    });

    app.post('/v1/partners/:id/api-keys', {
      schema: { operationId: 'createApiKey', summary: 'Issue another API key for a partner', tags: ['admin'], params: IdParams, response: { 201: ApiKeyCreated, 404: ErrorResponse } },
    }, async (request, reply) => {
      const key = generateApiKey();
      const id = uuidv7();
      try {
        await insertApiKey(ctx.db, { id, partnerId: request.params.id, prefix: key.prefix, hash: key.hash });
      } catch (error) {
        if ((error as { code?: string }).code === '23503') throw new AppError('PARTNER_NOT_FOUND');
        throw error;
      }
      return reply.code(201).send({ id, apiKey: key.apiKey });
    });

    app.delete('/v1/api-keys/:id', {
      schema: { operationId: 'revokeApiKey', summary: 'Revoke an API key', tags: ['admin'], params: IdParams, response: { 204: Type.Null(), 404: ErrorResponse } },
    }, async (request, reply) => {
      const hash = await revokeApiKey(ctx.db, request.params.id);
      if (!hash) throw new AppError('API_KEY_NOT_FOUND');
      await ctx.keys.invalidate([hash], true);
      return reply.code(204).send(null);
    });
  };
}
