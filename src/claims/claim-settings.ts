// Changing a running claim event (PATCH /v1/coupon-templates/{id}), exact while claims flow.
//
// One PostgreSQL transaction holds the template's gate lock (coupons/gate-lock.ts: no gate opens the
// event and no distribution chunk writes meanwhile) and its row lock (the persister's and the
// group commit's issued_count updates wait for it). Inside it, the gate is given the stricter of
// the old and new settings on every field (a lower stock, a pause, an earlier end take effect at
// once; its stock check is atomic with claims and refuses a stock below the coupons it issued),
// then the row, the audit record and the event.changed outbox row are written. After COMMIT the
// gate is given the new settings (a raise, a resume, a later end). So the gate never admits a
// claim that either the old or the committed settings forbid, and PostgreSQL's
// CHECK (issued_count <= total_quantity) holds at every instant. If the transaction fails, the
// gate is given the old settings back.
import { v7 as uuidv7 } from 'uuid';
import type { AppContext } from '../context.ts';
import { decideTemplateChange, stricterSettings, type FieldValues, type TemplatePatch } from '../coupons/template-change-rules.ts';
import { insertTemplateChange } from '../coupons/template-change-repository.ts';
import { lockTemplateForChange, updateTemplateSettings, type CouponTemplate } from '../coupons/template-repository.ts';
import { AppError } from '../errors.ts';
import { withTransaction } from '../infra/db.ts';
import { ensureQueueSchema } from '../jobs/queue.ts';
import { announceTemplateEvent } from '../jobs/webhook-template-events.ts';
import { holdGateLock } from '../coupons/gate-lock.ts';

export interface ChangeResult {
  readonly template: CouponTemplate;
  /** Empty when every field sent already had its value (nothing recorded, nothing announced). */
  readonly before: FieldValues;
  readonly after: FieldValues;
}

export async function changeTemplate(
  ctx: AppContext, principal: { partnerId: string; keyId: string }, templateId: string, patch: TemplatePatch,
): Promise<ChangeResult> {
  let previous: CouponTemplate | undefined;
  let gateTouched = false;
  let result: ChangeResult;
  // The outbox queues its deliveries on the job queue (created once per process).
  await ensureQueueSchema(ctx.db, ctx.logger);
  try {
    result = await withTransaction(ctx.db, async (tx) => {
      await holdGateLock(tx, templateId);
      const current = await lockTemplateForChange(tx, principal.partnerId, templateId);
      if (!current) throw new AppError('TEMPLATE_NOT_FOUND');
      const now = ctx.clock();
      const decision = decideTemplateChange(current, patch, current.issuedCount, now);
      if ('refusal' in decision) throw new AppError(decision.refusal.code, decision.refusal.message, decision.refusal.details);
      const changed = Object.keys(decision.after).length > 0;
      const version = changed ? current.settingsVersion + 1 : current.settingsVersion;
      const next: CouponTemplate = { ...decision.next, settingsVersion: version };
      previous = { ...current, settingsVersion: version };
      gateTouched = true;
      const applied = await ctx.claimGate.applySettings({ ...stricterSettings(current, next), settingsVersion: version });
      if (applied.refusedIssuedCount !== undefined) {
        const issuedCount = applied.refusedIssuedCount;
        throw new AppError('TOTAL_QUANTITY_BELOW_ISSUED', `totalQuantity cannot be lowered below the ${issuedCount} coupons already issued.`, { issuedCount });
      }
      if (!changed) return { template: current, before: {}, after: {} };
      const written = await updateTemplateSettings(tx, next);
      const change = await insertTemplateChange(tx, {
        id: uuidv7(), templateId, partnerId: principal.partnerId, apiKeyId: principal.keyId, changedAt: now,
        before: decision.before, after: decision.after,
      });
      await announceTemplateEvent(tx, principal.partnerId, templateId, {
        event: 'event.changed',
        occurredAt: now.toISOString(),
        template: { id: templateId, name: written.name },
        change: { id: change.id, apiKeyId: change.apiKeyId, before: change.before, after: change.after },
      });
      return { template: written, before: decision.before, after: decision.after };
    });
  } catch (error) {
    // The gate may hold the stricter settings of a change that did not commit: give it the old ones.
    if (gateTouched && previous) {
      await ctx.claimGate.applySettings(previous).catch((restoreError: unknown) =>
        ctx.logger.error({ err: restoreError, templateId }, 'claim settings could not be restored after a failed change; PATCH the template again'));
    }
    throw error;
  } finally {
    ctx.claimTemplates.forget(templateId);
  }
  try {
    await ctx.claimGate.applySettings(result.template);
  } catch (error) {
    // Committed, but the gate still holds the stricter settings (safe, not yet the new ones).
    ctx.logger.error({ err: error, templateId }, 'a committed template change could not be given to the claim gate');
    throw new AppError('SERVICE_UNAVAILABLE', 'The change is recorded but the claim gate could not be reached; send the same change again to put it in force.');
  }
  return result;
}
