// Template (claim event) announcements on the webhook outbox: `event.changed` with the diff of a
// change (PATCH /v1/coupon-templates/{id}). Written in the transaction of the change it announces,
// delivered, retried and signed like job events (webhook-delivery.ts).
import type { Queryable } from '../infra/db.ts';
import { DELIVER_WEBHOOK_TASK, WEBHOOK_MAX_ATTEMPTS } from './queue.ts';

export const TEMPLATE_EVENTS = ['event.changed'] as const;
export type TemplateEvent = (typeof TEMPLATE_EVENTS)[number];

/** What is stored in the outbox and sent as-is to `json` webhooks. */
export interface TemplateEventPayload {
  event: TemplateEvent;
  occurredAt: string;
  template: { id: string; name: string };
  change: { id: string; apiKeyId: string | null; before: Record<string, unknown>; after: Record<string, unknown> };
}

export const isTemplateEventPayload = (payload: { event: string }): payload is TemplateEventPayload =>
  (TEMPLATE_EVENTS as readonly string[]).includes(payload.event);

/** One delivery per webhook of the partner subscribed to the event, queued, in the caller's transaction. */
export async function announceTemplateEvent(tx: Queryable, partnerId: string, templateId: string, payload: TemplateEventPayload): Promise<void> {
  await tx.query(
    `WITH deliveries AS (
       INSERT INTO webhook_deliveries (id, webhook_id, template_id, event, payload)
       SELECT gen_random_uuid(), w.id, $2, $3, $4::jsonb FROM webhooks w WHERE w.partner_id = $1 AND $3 = ANY (w.events)
       RETURNING id)
     SELECT graphile_worker.add_job($5, json_build_object('deliveryId', d.id), max_attempts := $6) FROM deliveries d`,
    [partnerId, templateId, payload.event, JSON.stringify(payload), DELIVER_WEBHOOK_TASK, WEBHOOK_MAX_ATTEMPTS],
  );
}

const show = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));

/** Title, one-line text and fields for Slack and Discord. */
export function templateEventSummary(payload: TemplateEventPayload): { title: string; text: string; fields: Array<[string, string]> } {
  const title = `Event "${payload.template.name}" changed`;
  const fields: Array<[string, string]> = Object.keys(payload.change.after)
    .map((field) => [field, `${show(payload.change.before[field])} → ${show(payload.change.after[field])}`]);
  const text = `${title}: ${fields.map(([field, diff]) => `${field} ${diff}`).join(', ')} (template ${payload.template.id})`;
  return { title, text, fields: [['Template', payload.template.id], ...fields] };
}
