// Admin route of the points ledger: run the expiry sweep now (it also runs on a schedule).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { AppContext } from '../context.ts';
import { ErrorResponse } from '../http/schemas.ts';
import { expireDuePoints } from './expiry.ts';

export function pointsAdminRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post('/v1/admin/points/expire', {
      schema: {
        operationId: 'expirePoints', summary: 'Run the points expiry sweep now', tags: ['admin'],
        response: {
          200: Type.Object({ expiredLots: Type.Integer(), expiredPoints: Type.Integer(), prunedIdempotencyRecords: Type.Integer() }),
          401: ErrorResponse,
        },
      },
    }, async () => expireDuePoints(ctx, ctx.clock()));
  };
}
