// POST /v1/points/accruals: up to 10,000 earns in one request, applied asynchronously as a bulk
// job (202 {jobId}). The request is accepted whole or not at all: a bad item refuses it with 400
// and its index, more than 10,000 items with 413. Each item carries its own idempotency key (the
// key space of POST /v1/points/earn), so the request itself needs no Idempotency-Key: posting it
// again applies nothing twice.
import net from 'node:net';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyError } from 'fastify';
import { Type } from 'typebox';
import { v7 as uuidv7 } from 'uuid';
import type { AppContext } from '../context.ts';
import { AppError } from '../errors.ts';
import { Amount, ErrorResponse, Timestamp, UserId, Uuid, patternMeaning } from '../http/schemas.ts';
import { acceptJob } from '../jobs/accept-job.ts';
import { MAX_ACCRUAL_ITEMS, stageAccrualItems, type AccrualParams } from './accrual.ts';
import { DEFAULT_POINT_TYPE, PointType } from './ledger-routes.ts';

/** 10,000 items of at most ~560 bytes of JSON each. */
const ACCRUAL_BODY_LIMIT_BYTES = 8 * 1_048_576;

const AccrualItem = Type.Object({
  userId: UserId,
  amount: Amount,
  expiresAt: Type.Optional(Timestamp),
  idempotencyKey: Type.String({ pattern: '^[\\x21-\\x7E]{1,255}$', maxLength: 255 }),
}, { additionalProperties: false });

const AccrualBody = Type.Object({
  items: Type.Array(AccrualItem, { minItems: 1, maxItems: MAX_ACCRUAL_ITEMS }),
  scheduledAt: Type.Optional(Timestamp),
  pointType: Type.Optional(PointType),
}, { additionalProperties: false });

/**
 * Accrual requests are read, parsed and staged one at a time. Each holds its ~1 MB body, its 10,000
 * parsed items and their staged JSON until its COPY is committed; four at once took the process
 * over 300 MB of RSS in bench:bulk. A waiting request is held before its body is read (the bytes
 * wait in the socket), so memory no longer grows with the number of posts in flight; staging is
 * CPU on the one event loop anyway, so running several together bought no throughput.
 */
const STAGING_AT_ONCE = 1;

/**
 * How long a post may wait for the staging slot before it is refused (503, with Retry-After): room
 * for the posts queued ahead of it to be staged (~1–5 s each for 10,000 items) on a busy machine.
 */
const STAGING_WAIT_MS = 20_000;
/** Posts of one partner that may wait for the slot (beyond: 429; bench:bulk posts 4 at a time), and of all partners together (beyond: 503). */
const WAITING_PER_PARTNER = 4;
const WAITING_TOTAL = 64;
/** Most time a body may take to arrive once its post holds the slot (also bounded by the idle timeout and the upload deadline). */
const MAX_BODY_ARRIVAL_MS = 30_000;

/**
 * A counting semaphore handing its slots over in arrival order. Waiting is bounded per partner and
 * in total, and times out, so no partner can keep the others out by queueing posts behind a slow
 * one (issue 15); with one waiter per partner, arrival order takes turns between partners.
 */
function createGate(limit: number) {
  let active = 0;
  const waiting: Array<{ partnerId: string; admit: () => void }> = [];
  const waitingOf = new Map<string, number>();
  const dequeue = (entry: (typeof waiting)[number]) => {
    const at = waiting.indexOf(entry);
    if (at >= 0) waiting.splice(at, 1);
    const rest = (waitingOf.get(entry.partnerId) ?? 1) - 1;
    if (rest === 0) waitingOf.delete(entry.partnerId);
    else waitingOf.set(entry.partnerId, rest);
  };
  return async (partnerId: string): Promise<() => void> => {
    if (active < limit) {
      active++;
    } else {
      if ((waitingOf.get(partnerId) ?? 0) >= WAITING_PER_PARTNER) {
        throw new AppError('BULK_UPLOAD_LIMIT_REACHED', `This partner already has ${WAITING_PER_PARTNER} accrual posts waiting for staging.`);
      }
      if (waiting.length >= WAITING_TOTAL) throw new AppError('BULK_UPLOADS_BUSY');
      await new Promise<void>((resolve, reject) => {
        const entry = { partnerId, admit: () => { clearTimeout(timer); resolve(); } };
        const timer = setTimeout(() => {
          dequeue(entry);
          reject(new AppError('BULK_UPLOADS_BUSY', `The accrual staging slot stayed busy for ${STAGING_WAIT_MS} ms.`));
        }, STAGING_WAIT_MS);
        waiting.push(entry);
        waitingOf.set(partnerId, (waitingOf.get(partnerId) ?? 0) + 1);
      });
    }
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const next = waiting[0];
      if (next) {
        dequeue(next);
        next.admit();
      } else {
        active--;
      }
    };
  };
}

interface ItemProblem {
  field: string;
  message: string;
  index?: number;
}

const invalid = (problems: ItemProblem[]) => new AppError('VALIDATION_FAILED', `${problems[0]!.field}: ${problems[0]!.message}`, problems);

/** Schema errors as field problems, with the index of the item they concern. */
function schemaProblems(error: FastifyError): ItemProblem[] {
  return (error.validation ?? []).map((issue) => {
    const path = issue.instancePath.split('/').filter(Boolean);
    const params = issue.params as { requiredProperties?: string[]; additionalProperties?: string[]; pattern?: string } | undefined;
    const extra = params?.requiredProperties?.[0] ?? params?.additionalProperties?.[0];
    if (extra) path.push(extra);
    const index = path[0] === 'items' && path[1] !== undefined ? Number(path[1]) : undefined;
    return { field: ['body', ...path].join('.'), message: patternMeaning(params?.pattern) ?? issue.message ?? 'is not valid', ...(index === undefined ? {} : { index }) };
  });
}

export function accrualRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  const enterStaging = createGate(STAGING_AT_ONCE);
  return async (app) => {
    app.post('/v1/points/accruals', {
      bodyLimit: ACCRUAL_BODY_LIMIT_BYTES,
      attachValidation: true,
      // After authentication (the partner scope's onRequest), before the body is read.
      onRequest: async (request, reply) => {
        // Waiting for the slot is not idleness: the connection's idle timeout starts again with it.
        // (Only a real socket has one: inject() hands routes a stand-in.)
        const socket = request.raw.socket instanceof net.Socket ? request.raw.socket : undefined;
        socket?.setTimeout(0);
        const leave = await enterStaging(request.principal.partnerId).finally(() => socket?.setTimeout(ctx.config.idleTimeoutMs));
        if (reply.raw.writableFinished || request.raw.socket?.destroyed) {
          leave();
          return;
        }
        reply.raw.once('finish', leave);
        reply.raw.once('close', leave);
        // The slot is held while the body arrives: a body (at most 8 MB) that has not arrived within
        // MAX_BODY_ARRIVAL_MS (or the idle timeout, or the upload deadline, if shorter) of taking it
        // is cut off, even from a client that keeps trickling.
        const arrivalMs = Math.min(MAX_BODY_ARRIVAL_MS, ctx.config.idleTimeoutMs, ctx.config.uploadDeadlineMs);
        const deadline = setTimeout(() => request.raw.destroy(), arrivalMs);
        const stop = () => clearTimeout(deadline);
        request.raw.once('end', stop);
        reply.raw.once('close', stop);
      },
      // Counted before the schema runs, so an oversized list is a 413 and is not validated item by item.
      preValidation: async (request) => {
        const items = (request.body as { items?: unknown } | undefined)?.items;
        if (Array.isArray(items) && items.length > MAX_ACCRUAL_ITEMS) {
          throw new AppError('TOO_MANY_ITEMS', `At most ${MAX_ACCRUAL_ITEMS} items per request; got ${items.length}.`);
        }
      },
      schema: {
        operationId: 'createAccrual', summary: 'Earn up to 10,000 items as one bulk job', tags: ['points'],
        body: AccrualBody,
        response: { 202: Type.Object({ jobId: Uuid }), 400: ErrorResponse, 413: ErrorResponse, 429: ErrorResponse, 503: ErrorResponse },
      },
    }, async (request, reply) => {
      if (request.validationError) throw invalid(schemaProblems(request.validationError as FastifyError));
      const body = request.body;
      const now = ctx.clock();
      const problems: ItemProblem[] = [];
      const keys = new Map<string, number>();
      body.items.forEach((item, index) => {
        if (item.expiresAt !== undefined && Date.parse(item.expiresAt) <= now.getTime()) {
          problems.push({ field: `body.items.${index}.expiresAt`, message: 'must be in the future', index });
        }
        const first = keys.get(item.idempotencyKey);
        if (first !== undefined) {
          problems.push({ field: `body.items.${index}.idempotencyKey`, message: `repeats the key of item ${first}`, index });
        } else {
          keys.set(item.idempotencyKey, index);
        }
      });
      if (problems.length > 0) throw invalid(problems.slice(0, 100));

      const pointType = body.pointType ?? DEFAULT_POINT_TYPE;
      const jobId = uuidv7();
      const scheduledAt = body.scheduledAt === undefined ? undefined : new Date(body.scheduledAt);
      await acceptJob(ctx, {
        id: jobId, partnerId: request.principal.partnerId, type: 'POINT_ACCRUAL', staged: true, scheduledAt,
        params: { pointType } satisfies AccrualParams as unknown as Record<string, unknown>,
      }, async (tx) => ({ chunkCount: await stageAccrualItems(tx, jobId, pointType, body.items), total: body.items.length }));
      return reply.code(202).send({ jobId });
    });
  };
}
