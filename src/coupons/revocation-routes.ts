// POST /v1/coupon-templates/{id}/revocations: revoke the template's unused coupons (all, or the
// listed users') as a bulk job (revocation.ts). Answers 202 {jobId} once the coupons to revoke are
// staged; progress, failures and webhooks as for every job (GET /v1/jobs/{id}).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { v7 as uuidv7 } from 'uuid';
import type { AppContext } from '../context.ts';
import { AppError } from '../errors.ts';
import { ErrorResponse, IdParams, UserId, Uuid } from '../http/schemas.ts';
import { acceptJob } from '../jobs/accept-job.ts';
import { stageRevocationInput, type RevocationParams } from './revocation.ts';
import { findTemplate } from './template-repository.ts';

const MAX_USER_IDS = 10_000;

const RevocationBody = Type.Object({
  userIds: Type.Optional(Type.Array(UserId, {
    minItems: 1, maxItems: MAX_USER_IDS, uniqueItems: true,
    description: 'revoke only these users\' unused coupons; absent: every unused coupon of the template',
  })),
}, { additionalProperties: false });

export function revocationRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post('/v1/coupon-templates/:id/revocations', {
      bodyLimit: 2 * 1_048_576,
      schema: {
        operationId: 'createRevocation', summary: 'Revoke a template\'s unused coupons (all, or some users\') as a bulk job', tags: ['jobs'],
        params: IdParams, body: RevocationBody,
        response: { 202: Type.Object({ jobId: Uuid }), 400: ErrorResponse, 404: ErrorResponse, 429: ErrorResponse },
      },
    }, async (request, reply) => {
      const { partnerId } = request.principal;
      const template = await findTemplate(ctx.db, partnerId, request.params.id);
      if (!template) throw new AppError('TEMPLATE_NOT_FOUND');
      const jobId = uuidv7();
      const params: RevocationParams = { templateId: template.id, ...(request.body.userIds ? { userIds: request.body.userIds } : {}) };
      await acceptJob(ctx, { id: jobId, partnerId, type: 'COUPON_REVOCATION', staged: true, params: params as unknown as Record<string, unknown> },
        (tx) => stageRevocationInput(ctx, tx, jobId, partnerId, params));
      return reply.code(202).send({ jobId });
    });
  };
}
