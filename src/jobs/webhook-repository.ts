// SQL for webhooks and their outbox of deliveries.
import type { Queryable, Tx } from '../infra/db.ts';
import type { Job } from './job-repository.ts';
import { DELIVER_WEBHOOK_TASK, WEBHOOK_MAX_ATTEMPTS } from './queue.ts';
import { jobEventPayload, type JobEvent, type JobEventPayload, type WebhookKind } from './webhook-messages.ts';
import type { TemplateEvent, TemplateEventPayload } from './webhook-template-events.ts';

export interface Webhook {
  id: string;
  url: string;
  kind: WebhookKind;
  events: Array<JobEvent | TemplateEvent>;
  createdAt: Date;
}

interface WebhookRow {
  id: string;
  url: string;
  kind: WebhookKind;
  events: Array<JobEvent | TemplateEvent>;
  created_at: Date;
  secret: string;
}

const toWebhook = (row: WebhookRow): Webhook => ({ id: row.id, url: row.url, kind: row.kind, events: row.events, createdAt: row.created_at });

/**
 * Registers a webhook unless the partner has `limit` already (undefined then), in the caller's
 * transaction. The partner row is locked first (FOR NO KEY UPDATE: foreign-key checks on it are not
 * blocked), so the count, read by the next statement, sees every registration committed before.
 */
export async function insertWebhook(
  tx: Tx, id: string, partnerId: string, hook: Pick<Webhook, 'url' | 'kind' | 'events'> & { secret: string }, limit: number,
): Promise<Webhook | undefined> {
  await tx.query('SELECT 1 FROM partners WHERE id = $1 FOR NO KEY UPDATE', [partnerId]);
  const { rows } = await tx.query<WebhookRow>(
    `INSERT INTO webhooks (id, partner_id, url, kind, events, secret)
     SELECT $1, $2, $3, $4, $5, $7 WHERE (SELECT count(*) FROM webhooks WHERE partner_id = $2) < $6
     RETURNING *`,
    [id, partnerId, hook.url, hook.kind, hook.events, limit, hook.secret],
  );
  return rows[0] && toWebhook(rows[0]);
}

export async function listWebhooks(db: Queryable, partnerId: string, limit: number, after?: string): Promise<Webhook[]> {
  const { rows } = await db.query<WebhookRow>(
    `SELECT * FROM webhooks WHERE partner_id = $1 AND ($2::uuid IS NULL OR id > $2::uuid) ORDER BY id LIMIT $3`,
    [partnerId, after ?? null, limit],
  );
  return rows.map(toWebhook);
}

export async function deleteWebhook(db: Queryable, partnerId: string, id: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM webhooks WHERE id = $1 AND partner_id = $2', [id, partnerId]);
  return rowCount === 1;
}

/**
 * Writes one delivery per subscribed webhook into the outbox and queues each, in the caller's
 * transaction: the announcement exists exactly when the state change it announces does.
 */
export async function announceJobEvent(tx: Queryable, job: Job, event: JobEvent, now: Date): Promise<void> {
  await tx.query(
    `WITH deliveries AS (
       INSERT INTO webhook_deliveries (id, webhook_id, job_id, event, payload)
       SELECT gen_random_uuid(), w.id, $2, $3, $4::jsonb FROM webhooks w WHERE w.partner_id = $1 AND $3 = ANY (w.events)
       RETURNING id)
     SELECT graphile_worker.add_job($5, json_build_object('deliveryId', d.id), max_attempts := $6) FROM deliveries d`,
    [job.partnerId, job.id, event, JSON.stringify(jobEventPayload(event, job, now)), DELIVER_WEBHOOK_TASK, WEBHOOK_MAX_ATTEMPTS],
  );
}

export interface PendingDelivery {
  id: string;
  url: string;
  /** The webhook's signing secret. */
  secret: string;
  kind: WebhookKind;
  event: JobEvent | TemplateEvent;
  payload: JobEventPayload | TemplateEventPayload;
}

/** A delivery still to be sent (undefined once delivered, failed for good, or its webhook deleted). */
export async function findPendingDelivery(db: Queryable, id: string): Promise<PendingDelivery | undefined> {
  const { rows } = await db.query<PendingDelivery>(
    `SELECT d.id, w.url, w.secret, w.kind, d.event, d.payload FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
      WHERE d.id = $1 AND d.status = 'PENDING'`,
    [id],
  );
  return rows[0];
}

export async function recordDeliveryAttempt(
  db: Queryable,
  id: string,
  outcome: { status: 'PENDING' | 'DELIVERED' | 'FAILED'; responseStatus: number | null; error: string | null; now: Date },
): Promise<void> {
  await db.query(
    `UPDATE webhook_deliveries SET attempts = attempts + 1, status = $2, response_status = $3, last_error = $4,
            delivered_at = CASE WHEN $2 = 'DELIVERED' THEN $5::timestamptz END
      WHERE id = $1`,
    [id, outcome.status, outcome.responseStatus, outcome.error, outcome.now],
  );
}

export interface DeliveryRecord {
  id: string;
  event: JobEvent;
  status: 'PENDING' | 'DELIVERED' | 'FAILED';
  attempts: number;
  responseStatus: number | null;
  lastError: string | null;
}

export async function listJobDeliveries(db: Queryable, jobId: string, limit: number, after?: string): Promise<DeliveryRecord[]> {
  const { rows } = await db.query<DeliveryRecord>(
    `SELECT id, event, status, attempts, response_status AS "responseStatus", last_error AS "lastError"
       FROM webhook_deliveries WHERE job_id = $1 AND ($2::uuid IS NULL OR id > $2::uuid) ORDER BY id LIMIT $3`,
    [jobId, after ?? null, limit],
  );
  return rows;
}
