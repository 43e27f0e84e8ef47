// POST /v1/coupon-templates/{id}/distributions: give a template to many users as a bulk job.
// JSON {userIds} (up to 10,000), JSON {source: {type: 'sql', query}}, or a text/csv body of any
// size streamed straight into PostgreSQL (never buffered whole): one user id per line, an
// optional header line, blank lines ignored. Answers 202 {jobId} once the input is committed.
import type { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type, type Static } from 'typebox';
import { v7 as uuidv7 } from 'uuid';
import { claimEventIsLive } from '../claims/claim-event.ts';
import type { AppContext } from '../context.ts';
import { AppError } from '../errors.ts';
import { ErrorResponse, IdParams, UserId, Uuid } from '../http/schemas.ts';
import { acceptJob } from '../jobs/accept-job.ts';
import { ChunkCopyWriter, stageLines } from '../jobs/chunk-staging.ts';
import { stageUserIdList, type DistributionParams } from './distribution.ts';
import { normaliseSourceQuery, probeSourceQuery } from './distribution-source.ts';
import { findTemplate } from './template-repository.ts';

const MAX_LIST_USER_IDS = 10_000;
/** JSON bodies: 10,000 ids of up to 128 characters, quoted, fit in 1.4 MB. */
const JSON_BODY_LIMIT_BYTES = 2 * 1_048_576;
/** Uploads are streamed to PostgreSQL, so this bounds disk use, not memory (≈ 300M short ids). */
const MAX_UPLOAD_BYTES = 4 * 1024 ** 3;

const DistributionBody = Type.Union([
  Type.Object({ userIds: Type.Array(UserId, { minItems: 1, maxItems: MAX_LIST_USER_IDS }) }, { additionalProperties: false }),
  Type.Object({
    source: Type.Object({ type: Type.Literal('sql'), query: Type.String({ minLength: 1, maxLength: 10_000 }) }, { additionalProperties: false }),
  }, { additionalProperties: false }),
]);
type DistributionBody = Static<typeof DistributionBody>;

const DistributionQuery = Type.Object(
  { header: Type.Optional(Type.Boolean({ description: 'text/csv: whether the first line is a header (default: detected from its name)' })) },
  { additionalProperties: false },
);

export function distributionRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    // The upload reaches the handler as the raw request stream (this plugin's routes only).
    app.addContentTypeParser(['text/csv', 'text/plain'], (_request, payload, done) => done(null, payload));

    app.post('/v1/coupon-templates/:id/distributions', {
      bodyLimit: JSON_BODY_LIMIT_BYTES,
      schema: {
        tags: ['jobs'],
        params: IdParams,
        querystring: DistributionQuery,
        body: { content: { 'application/json': { schema: DistributionBody } } },
        response: { 202: Type.Object({ jobId: Uuid }), 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse, 413: ErrorResponse },
      },
    }, async (request, reply) => {
      const partnerId = request.principal.partnerId;
      const template = await findTemplate(ctx.db, partnerId, request.params.id);
      if (!template) throw new AppError('TEMPLATE_NOT_FOUND');
      if (await claimEventIsLive(ctx, template)) throw new AppError('CLAIM_EVENT_LIVE');
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
        const upload = request.body as Readable;
        await acceptJob(ctx, job({ kind: 'csv' }, true), async (tx) => {
          const writer = new ChunkCopyWriter(tx, jobId);
          try {
            const stats = await stageLines(upload, writer, {
              header: request.query.header,
              maxBytes: MAX_UPLOAD_BYTES,
              onTooLarge: () => new AppError('PAYLOAD_TOO_LARGE', `An upload may hold at most ${MAX_UPLOAD_BYTES} bytes.`),
            });
            await writer.finish();
            if (stats.items === 0) throw new AppError('VALIDATION_FAILED', 'body: the upload holds no user ids', [{ field: 'body', message: 'holds no user ids' }]);
            return { chunkCount: stats.chunks, total: stats.items };
          } catch (error) {
            writer.abort(error as Error);
            throw error;
          }
        });
      }
      return reply.code(202).send({ jobId });
    });
  };
}
