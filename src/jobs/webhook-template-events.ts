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

/**
 * One delivery per webhook of the partner subscribed to the event, queued, in the caller's
 * transaction: the same SQL function as the other domain events (announce_domain_event, migration 090).
 */
export async function announceTemplateEvent(tx: Queryable, partnerId: string, templateId: string, payload: TemplateEventPayload): Promise<void> {
  await tx.query('SELECT announce_domain_event($1, $2, $3::jsonb, $4, $5, $6)',
    [partnerId, payload.event, JSON.stringify(payload), templateId, DELIVER_WEBHOOK_TASK, WEBHOOK_MAX_ATTEMPTS]);
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
