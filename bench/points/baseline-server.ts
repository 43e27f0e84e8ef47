// The bench:points baseline server: the product's own app (same Fastify set-up, API-key auth,
// rate limit, error mapping, pool size) with three extra routes under /baseline/v1/points/ served
// by baseline-points.ts, served through bench/lib/product-server.ts. The difference measured is
// the ledger design. Env as the product.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { AppContext } from '../../src/context.ts';
import { AppError } from '../../src/errors.ts';
import { Amount, UserId } from '../../src/http/schemas.ts';
import { serveProductWith } from '../lib/product-server.ts';
import { naiveEarn, naiveTransfer, naiveUse, type BaselineAnswer } from './baseline-points.ts';

const keyOf = (request: FastifyRequest): string => {
  const key = request.headers['idempotency-key'];
  if (typeof key !== 'string' || key === '') throw new AppError('IDEMPOTENCY_KEY_REQUIRED');
  return key;
};

/** A deadlock is answered as the 500 it is in this design, labelled so the benchmark can count it. */
const answer = async (reply: FastifyReply, work: () => Promise<BaselineAnswer>) => {
  try {
    const { status, body } = await work();
    return reply.code(status).send(body);
  } catch (error) {
    if ((error as { code?: string }).code === '40P01') throw new AppError('INTERNAL_ERROR', 'deadlock detected');
    throw error;
  }
};

const Earn = Type.Object({ userId: UserId, amount: Amount, orderId: Type.Optional(Type.String({ maxLength: 128 })) }, { additionalProperties: false });
const Transfer = Type.Object({ fromUserId: UserId, toUserId: UserId, amount: Amount }, { additionalProperties: false });

const baselineRoutes = (ctx: AppContext): FastifyPluginAsyncTypebox => async (app) => {
  app.post('/baseline/v1/points/earn', { schema: { body: Earn } }, async (request, reply) =>
    answer(reply, () => naiveEarn(ctx.db, request.principal.partnerId, keyOf(request), request.body.userId, request.body.amount)));
  app.post('/baseline/v1/points/use', { schema: { body: Earn } }, async (request, reply) =>
    answer(reply, () => naiveUse(ctx.db, request.principal.partnerId, keyOf(request), request.body.userId, request.body.amount)));
  app.post('/baseline/v1/points/transfer', { schema: { body: Transfer } }, async (request, reply) =>
    answer(reply, () => naiveTransfer(ctx.db, request.principal.partnerId, keyOf(request), request.body.fromUserId, request.body.toUserId, request.body.amount)));
};

await serveProductWith(baselineRoutes);
