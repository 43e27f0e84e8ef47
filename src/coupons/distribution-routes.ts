// POST /v1/coupon-templates/{id}/distributions: give a template to many users as a bulk job.
// JSON {userIds} (up to 10,000), JSON {source: {type: 'sql', query}}, or a text/csv body of any
// size: received to a spool file (no database connection is held while a client sends), then read
// as CSV (distribution-csv.ts) and staged in one short transaction. Answers 202 {jobId} once the
// input is committed.
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { v7 as uuidv7 } from 'uuid';
import { claimEventIsLive } from './gate-lock.ts';
import type { AppContext } from '../context.ts';
import { AppError } from '../errors.ts';
import { ErrorResponse, IdParams, Text, UserId, Uuid } from '../http/schemas.ts';
import { acceptJob } from '../jobs/accept-job.ts';
import { ChunkCopyWriter } from '../jobs/chunk-staging.ts';
import { UploadSlots, UploadSpool } from '../http/upload-spool.ts';
import { stageCsv } from './distribution-csv.ts';
import { stageUserIdList, type DistributionParams } from './distribution.ts';
import { normaliseSourceQuery, probeSourceQuery } from '../partners/sql-source.ts';
import { findTemplate } from './template-repository.ts';

const MAX_LIST_USER_IDS = 10_000;
/** JSON bodies: 10,000 ids of up to 128 characters, quoted, fit in 1.4 MB. */
const JSON_BODY_LIMIT_BYTES = 2 * 1_048_576;
/** Uploads are spooled to disk, so this bounds disk use, not memory (≈ 300M short ids). */
const MAX_UPLOAD_BYTES = 4 * 1024 ** 3;

const DistributionBody = Type.Union([
  Type.Object({ userIds: Type.Array(UserId, { minItems: 1, maxItems: MAX_LIST_USER_IDS }) }, { additionalProperties: false }),
  Type.Object({
    source: Type.Object({ type: Type.Literal('sql'), query: Text(10_000, { multiLine: true }) }, { additionalProperties: false }),
  }, { additionalProperties: false }),
]);
type DistributionBody = Static<typeof DistributionBody>;

const CsvUpload = {
  type: 'string',
  description: `A CSV file (RFC 4180) of any size up to ${MAX_UPLOAD_BYTES} bytes, streamed: one user id per row, in the column named by \`column\` when the file has several.`,
};

const DistributionQuery = Type.Object({
  header: Type.Optional(Type.Boolean({ description: 'text/csv: whether the first row is a header (default: yes for several columns; for one, detected from its name)' })),
  column: Type.Optional(Type.String({
    minLength: 1, maxLength: 200,
    description: 'text/csv: the column of user ids, by header name or 1-based index; required when the file has several columns',
  })),
}, { additionalProperties: false });

export function distributionRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  const spool = new UploadSpool(ctx.config.uploadDir);
  const slots = new UploadSlots({ perPartner: ctx.config.uploadsPerPartner, total: ctx.config.uploadsTotal });
  return async (app) => {
    const leftovers = await spool.removeLeftovers();
    if (leftovers > 0) ctx.logger.info({ leftovers, dir: ctx.config.uploadDir }, 'deleted upload spool files of stopped processes');
    // The upload reaches the handler as the raw request stream (this plugin's routes only).
    app.addContentTypeParser(['text/csv', 'text/plain'], (_request, payload, done) => done(null, payload));

    app.post('/v1/coupon-templates/:id/distributions', {
      bodyLimit: JSON_BODY_LIMIT_BYTES,
      // Read as a stream by the handler, so no schema validates it: declared for the document only.
      config: { documentedBodies: { 'text/csv': { schema: CsvUpload }, 'text/plain': { schema: CsvUpload } } },
      schema: {
        operationId: 'createDistribution', summary: 'Give a template to many users as a bulk job', tags: ['jobs'],
        params: IdParams,
        querystring: DistributionQuery,
        body: { content: { 'application/json': { schema: DistributionBody } } },
        response: {
          202: Type.Object({ jobId: Uuid }), 400: ErrorResponse, 404: ErrorResponse, 408: ErrorResponse, 409: ErrorResponse, 413: ErrorResponse,
          429: ErrorResponse, 503: ErrorResponse,
        },
      },
    }, async (request, reply) => {
      const partnerId = request.principal.partnerId;
      const template = await findTemplate(ctx.db, partnerId, request.params.id);
      if (!template) throw new AppError('TEMPLATE_NOT_FOUND');
      if (await claimEventIsLive(ctx.db, ctx.clock(), template)) throw new AppError('CLAIM_EVENT_LIVE');
      const jobId = uuidv7();
      const job = (input: DistributionParams['input'], staged: boolean) => ({
        id: jobId, partnerId, type: 'COUPON_DISTRIBUTION' as const, staged,
        params: { templateId: template.id, input } satisfies DistributionParams as unknown as Record<string, unknown>,
      });

      if (request.mediaType === 'application/json') {
        const body = request.body as DistributionBody;
        if ('userIds' in body) {
          const userIds = body.userIds;
          await acceptJob(ctx, job({ kind: 'list' }, true), async (tx) => ({ chunkCount: await stageUserIdList(tx, jobId, userIds), total: userIds.length }));
        } else {
          const query = normaliseSourceQuery(body.source.query);
          await probeSourceQuery(ctx, partnerId, query);
          await acceptJob(ctx, job({ kind: 'sql', query }, false));
        }
      } else {
        // A refused or failed upload's body is not read on: answer, then close the connection.
        const unread = (error: unknown): never => {
          void reply.header('Connection', 'close');
          throw error;
        };
        let leave: () => void;
        try {
          leave = slots.enter(partnerId);
        } catch (error) {
          return unread(error);
        }
        try {
          let quoted = false; // no quote at all: the fast reader (distribution-csv.ts)
          const upload = await spool.receive(request.body as Readable, {
            maxBytes: MAX_UPLOAD_BYTES, deadlineMs: ctx.config.uploadDeadlineMs, observe: (chunk) => { quoted ||= chunk.includes(0x22); },
          }).catch(unread);
          try {
            await acceptJob(ctx, job({ kind: 'csv' }, true), async (tx) => {
              const writer = new ChunkCopyWriter(tx, jobId);
              try {
                const stats = await stageCsv(createReadStream(upload.file, { highWaterMark: 1_048_576 }), writer, {
                  column: request.query.column, header: request.query.header, quoted,
                });
                await writer.finish();
                if (stats.items === 0) throw new AppError('VALIDATION_FAILED', 'body: the upload holds no user ids', [{ field: 'body', message: 'holds no user ids' }]);
                return { chunkCount: stats.chunks, total: stats.items };
              } catch (error) {
                writer.abort(error as Error);
                throw error;
              }
            });
          } finally {
            await upload.remove();
          }
        } finally {
          leave();
        }
      }
      return reply.code(202).send({ jobId });
    });
  };
}
