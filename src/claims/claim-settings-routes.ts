// PATCH /v1/coupon-templates/{id}: a live event's settings changed while claims flow. Here, beside
// the gates it drives (claim-settings.ts), so coupons/ never imports claims/ (imports point down).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AppContext } from '../context.ts';
import { PatchTemplateBody, TemplateResponse, templateResponse, withLiveIssuedCount } from '../coupons/template-routes.ts';
import { ErrorResponse, IdParams } from '../http/schemas.ts';
import { changeTemplate } from './claim-settings.ts';

export function claimSettingsRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.patch('/v1/coupon-templates/:id', {
      schema: {
        operationId: 'updateCouponTemplate', summary: 'Change a live event: pause or resume, resize the stock, move its end, raise the per-user limit, change validity or claim throttles', tags: ['coupons'],
        params: IdParams, body: PatchTemplateBody, response: { 200: TemplateResponse, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    }, async (request) => {
      const { template } = await changeTemplate(ctx, request.principal, request.params.id, request.body);
      return templateResponse(await withLiveIssuedCount(ctx, template));
    });
  };
}
