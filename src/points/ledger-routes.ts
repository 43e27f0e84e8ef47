// Partner routes of the points ledger (docs/architecture.md). Mutations require Idempotency-Key,
// are declared in ledger-operations.ts and run through the context's group commit (group-commit.ts);
// reads take pointType as a query parameter.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { AppContext } from '../context.ts';
import { AppError } from '../errors.ts';
import { DEFAULT_PAGE_SIZE, decodeCursor, toPage } from '../http/pagination.ts';
import { Amount, ErrorResponse, Page, Text, Timestamp, UserId, Uuid } from '../http/schemas.ts';
import { idempotencyKeyOf, type IdempotentCall } from './idempotency.ts';
import { CANCEL, EARN, ledgerCall, TRANSFER, USE } from './ledger-operations.ts';
import { listTransactions, readBalance, type TransactionRow } from './ledger-repository.ts';

export const DEFAULT_POINT_TYPE = 'default';
export const PointType = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', maxLength: 64, description: `Defaults to "${DEFAULT_POINT_TYPE}"; types never mix.` });
const Reason = Text(500);
const OrderId = Text(128);
const MAX_EXPIRY_DAYS = 36_500;
/** How many upcoming expiry instants the balance read lists. */
const EXPIRING_LIMIT = 10;

const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ description: 'Required: 1–255 printable ASCII characters; same key + same body replays the first answer.' })),
});

const EarnBody = Type.Object({
  userId: UserId,
  amount: Amount,
  expiresAt: Type.Optional(Timestamp),
  expiresInDays: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_EXPIRY_DAYS })),
  reason: Type.Optional(Reason),
  orderId: Type.Optional(OrderId),
  pointType: Type.Optional(PointType),
}, { additionalProperties: false });

const UseBody = Type.Object({
  userId: UserId,
  amount: Amount,
  orderId: Type.Optional(OrderId),
  reason: Type.Optional(Reason),
  pointType: Type.Optional(PointType),
}, { additionalProperties: false });

const CancelBody = Type.Object({ reason: Type.Optional(Reason), pointType: Type.Optional(PointType) }, { additionalProperties: false });

const TransferBody = Type.Object({
  fromUserId: UserId,
  toUserId: UserId,
  amount: Amount,
  reason: Type.Optional(Reason),
  pointType: Type.Optional(PointType),
}, { additionalProperties: false });

const TransactionType = Type.Union([
  Type.Literal('EARN'), Type.Literal('USE'), Type.Literal('CANCEL_EARN'), Type.Literal('CANCEL_USE'),
  Type.Literal('EXPIRE'), Type.Literal('TRANSFER_OUT'), Type.Literal('TRANSFER_IN'),
]);
const EarnResponse = Type.Object({ transactionId: Uuid, type: Type.Literal('EARN'), amount: Type.Integer(), balance: Type.Integer(), expiresAt: Timestamp });
const UseResponse = Type.Object({ transactionId: Uuid, type: Type.Literal('USE'), amount: Type.Integer(), balance: Type.Integer() });
const CancelResponse = Type.Object({
  transactionId: Uuid, type: Type.Union([Type.Literal('CANCEL_EARN'), Type.Literal('CANCEL_USE')]),
  amount: Type.Integer(), balance: Type.Integer(), cancelledTransactionId: Uuid,
});
const TransferResponse = Type.Object({ transactionId: Uuid, fromBalance: Type.Integer(), toBalance: Type.Integer() });
const BalanceResponse = Type.Object({
  balance: Type.Integer(),
  expiring: Type.Array(Type.Object({ expiresAt: Timestamp, amount: Type.Integer() }), { description: `The next ${EXPIRING_LIMIT} expiry instants.` }),
});
const TransactionItem = Type.Object({
  id: Uuid, type: TransactionType, amount: Type.Integer({ description: 'Signed: credits positive, debits negative.' }),
  relatedTransactionId: Type.Union([Uuid, Type.Null()]), orderId: Type.Union([Type.String(), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]), createdAt: Timestamp,
});
const UserParams = Type.Object({ userId: UserId }, { additionalProperties: false });
const PointsQuery = Type.Object({ pointType: Type.Optional(PointType) }, { additionalProperties: false });
const TransactionsQuery = Type.Object({
  pointType: Type.Optional(PointType),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: DEFAULT_PAGE_SIZE })),
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
}, { additionalProperties: false });

const refusals = { 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 422: ErrorResponse, 503: ErrorResponse };

const isSeq = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) > 0;

export function pointsRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  const mutate = async (reply: FastifyReply, call: IdempotentCall) => {
    const outcome = await ctx.pointsGroupCommit.run(call);
    if (outcome.kind === 'refused') throw outcome.error;
    if (outcome.kind === 'replayed') void reply.header('Idempotent-Replayed', 'true');
    return reply.code(outcome.status).send(outcome.body);
  };

  return async (app) => {
    app.post('/v1/points/earn', {
      schema: { operationId: 'earnPoints', summary: 'Credit points to a user', tags: ['points'], headers: IdempotencyHeaders, body: EarnBody, response: { 201: EarnResponse, ...refusals } },
    }, async (request, reply) => {
      const key = idempotencyKeyOf(request.headers);
      const body = request.body;
      if (body.expiresAt !== undefined && body.expiresInDays !== undefined) {
        throw invalid('body.expiresAt', 'give expiresAt or expiresInDays, not both');
      }
      const expiresAt = body.expiresAt === undefined ? undefined : new Date(body.expiresAt);
      if (expiresAt && expiresAt.getTime() <= ctx.clock().getTime()) throw invalid('body.expiresAt', 'must be in the future');
      const input = { ...body, expiresAt, pointType: body.pointType ?? DEFAULT_POINT_TYPE };
      return mutate(reply, ledgerCall(EARN, request.principal.partnerId, key, input));
    });

    app.post('/v1/points/use', {
      schema: { operationId: 'usePoints', summary: 'Spend a user\'s points, soonest-expiring first', tags: ['points'], headers: IdempotencyHeaders, body: UseBody, response: { 201: UseResponse, ...refusals } },
    }, async (request, reply) => {
      const key = idempotencyKeyOf(request.headers);
      const input = { ...request.body, pointType: request.body.pointType ?? DEFAULT_POINT_TYPE };
      return mutate(reply, ledgerCall(USE, request.principal.partnerId, key, input));
    });

    app.post('/v1/points/transactions/:txId/cancel', {
      config: { optionalBody: CancelBody },
      schema: {
        operationId: 'cancelPointsTransaction', summary: 'Cancel an earn or a use', tags: ['points'], headers: IdempotencyHeaders,
        params: Type.Object({ txId: Uuid }, { additionalProperties: false }),
        body: Type.Union([CancelBody, Type.Null(), Type.Undefined()], { description: 'optional' }),
        response: { 201: CancelResponse, ...refusals },
      },
    }, async (request, reply) => {
      const key = idempotencyKeyOf(request.headers);
      const input = { transactionId: request.params.txId, ...(request.body ?? {}) };
      return mutate(reply, ledgerCall(CANCEL, request.principal.partnerId, key, input));
    });

    app.post('/v1/points/transfer', {
      schema: { operationId: 'transferPoints', summary: 'Move points between two users', tags: ['points'], headers: IdempotencyHeaders, body: TransferBody, response: { 201: TransferResponse, ...refusals } },
    }, async (request, reply) => {
      const key = idempotencyKeyOf(request.headers);
      const input = { ...request.body, pointType: request.body.pointType ?? DEFAULT_POINT_TYPE };
      if (input.fromUserId === input.toUserId) throw new AppError('SAME_WALLET_TRANSFER');
      return mutate(reply, ledgerCall(TRANSFER, request.principal.partnerId, key, input));
    });

    app.get('/v1/users/:userId/points', {
      schema: { operationId: 'getPointsBalance', summary: 'Read a user\'s balance and next expiries', tags: ['points'], params: UserParams, querystring: PointsQuery, response: { 200: BalanceResponse, 400: ErrorResponse } },
    }, async (request) => {
      const wallet = await readBalance(ctx.db, request.principal.partnerId, request.params.userId,
        request.query.pointType ?? DEFAULT_POINT_TYPE, ctx.clock(), EXPIRING_LIMIT);
      return { balance: wallet.balance, expiring: wallet.expiring.map((e) => ({ expiresAt: e.expiresAt.toISOString(), amount: e.amount })) };
    });

    app.get('/v1/users/:userId/points/transactions', {
      schema: { operationId: 'listPointsTransactions', summary: 'List a user\'s point transactions, newest first', tags: ['points'], params: UserParams, querystring: TransactionsQuery, response: { 200: Page(TransactionItem), 400: ErrorResponse } },
    }, async (request) => {
      const limit = request.query.limit ?? DEFAULT_PAGE_SIZE;
      const before = decodeCursor(request.query.cursor, isSeq);
      const rows = await listTransactions(ctx.db, request.principal.partnerId, request.params.userId,
        request.query.pointType ?? DEFAULT_POINT_TYPE, limit + 1, before);
      return toPage(rows, limit, transactionItem, (row) => row.seq);
    });
  };
}

const transactionItem = (row: TransactionRow) => ({
  id: row.id, type: row.type, amount: row.amount, relatedTransactionId: row.relatedTransactionId,
  orderId: row.orderId, reason: row.reason, createdAt: row.createdAt.toISOString(),
});

function invalid(field: string, message: string): AppError {
  return new AppError('VALIDATION_FAILED', `${field}: ${message}`, [{ field, message }]);
}
