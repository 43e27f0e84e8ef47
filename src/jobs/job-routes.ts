// Partner routes for bulk jobs: progress, item failures, cancellation, and webhooks.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { v7 as uuidv7 } from 'uuid';
import type { AppContext } from '../context.ts';
import { AppError } from '../errors.ts';
import { withTransaction } from '../infra/db.ts';
import { DEFAULT_PAGE_SIZE, decodeCursor, isUuidString, toPage } from '../http/pagination.ts';
import { ErrorResponse, IdParams, Page, PageQuery, Timestamp, Uuid } from '../http/schemas.ts';
import { cancelJob, findJob, listFailures } from './job-repository.ts';
import { jobView } from './job-view.ts';
import { ensureQueueSchema, interruptJobRun, removeJobRun } from './queue.ts';
import { assertAllowedReceiver } from './webhook-address.ts';
import { JOB_EVENTS, WEBHOOK_EVENTS } from './webhook-messages.ts';
import { announceJobEvent, deleteWebhook, insertWebhook, listJobDeliveries, listWebhooks, type Webhook } from './webhook-repository.ts';
import { newWebhookSecret, SIGNATURE_HEADER } from './webhook-signature.ts';

const JobResponse = Type.Object({
  id: Uuid,
  type: Type.Union([Type.Literal('COUPON_DISTRIBUTION'), Type.Literal('POINT_ACCRUAL'), Type.Literal('COUPON_REVOCATION')]),
  status: Type.Union([Type.Literal('QUEUED'), Type.Literal('RUNNING'), Type.Literal('SUCCEEDED'), Type.Literal('FAILED'), Type.Literal('CANCELLED')]),
  total: Type.Integer(),
  processed: Type.Integer(),
  succeeded: Type.Integer(),
  skipped: Type.Integer(),
  failed: Type.Integer(),
  notServed: Type.Integer({ description: 'distribution into a limited template: items left when the stock ran out' }),
  error: Type.Union([Type.String(), Type.Null()]),
  scheduledAt: Type.Union([Timestamp, Type.Null()]),
  createdAt: Timestamp,
  startedAt: Type.Union([Timestamp, Type.Null()]),
  finishedAt: Type.Union([Timestamp, Type.Null()]),
});

const FailureResponse = Type.Object({
  position: Type.Integer({ description: 'CSV line number (1-based), or index in the JSON list (0-based)' }),
  item: Type.String(),
  reason: Type.String(),
});

const DeliveryResponse = Type.Object({
  id: Uuid,
  event: Type.String(),
  status: Type.Union([Type.Literal('PENDING'), Type.Literal('DELIVERED'), Type.Literal('FAILED')]),
  attempts: Type.Integer(),
  responseStatus: Type.Union([Type.Integer(), Type.Null()]),
  lastError: Type.Union([Type.String(), Type.Null()]),
});

const EventName = Type.Union(WEBHOOK_EVENTS.map((event) => Type.Literal(event)));
const CreateWebhookBody = Type.Object({
  url: Type.String({ format: 'uri', pattern: '^https?://', minLength: 8, maxLength: 2048 }),
  kind: Type.Union([Type.Literal('slack'), Type.Literal('discord'), Type.Literal('json')], { description: 'The message shape: Slack {text, blocks}, Discord {content, embeds}, or the event as JSON.' }),
  events: Type.Optional(Type.Array(EventName, {
    minItems: 1, maxItems: WEBHOOK_EVENTS.length, uniqueItems: true,
    description: `The events to announce, by name; without it, the job events (${JOB_EVENTS.join(', ')}).`,
  })),
}, { additionalProperties: false });

const WebhookResponse = Type.Object({ id: Uuid, url: Type.String(), kind: Type.String(), events: Type.Array(Type.String()), createdAt: Timestamp });
const webhookResponse = (hook: Webhook) => ({ id: hook.id, url: hook.url, kind: hook.kind, events: hook.events, createdAt: hook.createdAt.toISOString() });
const WebhookCreated = Type.Intersect([WebhookResponse, Type.Object({
  secret: Type.String({ description: `Signs every delivery (${SIGNATURE_HEADER} header, see docs/bulk-jobs.md). Shown once; store it now.` }),
})]);

const isPosition = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value);

/** Every job event is written once per subscribed webhook, in the transaction of the step it announces. */
const MAX_WEBHOOKS_PER_PARTNER = 20;
/** A cancel waits this long for the job row before interrupting the run that holds it. */
const CANCEL_LOCK_WAIT_MS = 250;
const CANCEL_ATTEMPTS = 8;

export function jobRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    const mustFind = async (partnerId: string, id: string) => {
      const job = await findJob(ctx.db, partnerId, id);
      if (!job) throw new AppError('JOB_NOT_FOUND');
      return job;
    };

    app.get('/v1/jobs/:id', {
      schema: { operationId: 'getJob', summary: 'Read a bulk job\'s progress', tags: ['jobs'], params: IdParams, response: { 200: JobResponse, 404: ErrorResponse } },
    }, async (request) => jobView(await mustFind(request.principal.partnerId, request.params.id)));

    app.get('/v1/jobs/:id/failures', {
      schema: { operationId: 'listJobFailures', summary: 'List a job\'s item failures', tags: ['jobs'], params: IdParams, querystring: PageQuery, response: { 200: Page(FailureResponse), 400: ErrorResponse, 404: ErrorResponse } },
    }, async (request) => {
      const job = await mustFind(request.principal.partnerId, request.params.id);
      const limit = request.query.limit ?? DEFAULT_PAGE_SIZE;
      const after = decodeCursor(request.query.cursor, isPosition);
      const rows = await listFailures(ctx.db, job.id, limit + 1, after);
      return toPage(rows, limit, (row) => row, (row) => row.position);
    });

    app.get('/v1/jobs/:id/webhook-deliveries', {
      schema: { operationId: 'listJobWebhookDeliveries', summary: 'List the webhook deliveries of a job', tags: ['jobs'], params: IdParams, querystring: PageQuery, response: { 200: Page(DeliveryResponse), 400: ErrorResponse, 404: ErrorResponse } },
    }, async (request) => {
      const job = await mustFind(request.principal.partnerId, request.params.id);
      const limit = request.query.limit ?? DEFAULT_PAGE_SIZE;
      const after = decodeCursor(request.query.cursor, isUuidString);
      return toPage(await listJobDeliveries(ctx.db, job.id, limit + 1, after), limit, (row) => row, (row) => row.id);
    });

    app.post('/v1/jobs/:id/cancel', {
      schema: { operationId: 'cancelJob', summary: 'Cancel a queued or running job', tags: ['jobs'], params: IdParams, response: { 200: JobResponse, 404: ErrorResponse, 409: ErrorResponse } },
    }, async (request) => {
      const partnerId = request.principal.partnerId;
      await ensureQueueSchema(ctx.db, ctx.logger);
      // Answers at once whatever the run is doing: a chunk holding the job row longer than a moment
      // (waiting on a lock) is interrupted (interruptJobRun), rolls back and hands over; the next
      // run finds the job CANCELLED. A source being staged holds no row lock and stops by itself.
      let cancelled;
      for (let attempt = 1; ; attempt++) {
        try {
          cancelled = await withTransaction(ctx.db, async (tx) => {
            await tx.query(`SET LOCAL lock_timeout = ${CANCEL_LOCK_WAIT_MS}`);
            const job = await cancelJob(tx, partnerId, request.params.id, ctx.clock());
            if (job) await removeJobRun(tx, job.id);
            if (job) await announceJobEvent(tx, job, 'job.cancelled', ctx.clock());
            return job;
          });
          break;
        } catch (error) {
          if ((error as { code?: string }).code !== '55P03' || attempt >= CANCEL_ATTEMPTS) throw error;
          if (await findJob(ctx.db, partnerId, request.params.id)) await interruptJobRun(ctx.db, request.params.id);
        }
      }
      if (cancelled) {
        ctx.metrics.jobs.inc({ type: cancelled.type, status: 'CANCELLED' });
        return jobView(cancelled);
      }
      const job = await mustFind(partnerId, request.params.id);
      if (job.status === 'CANCELLED') return jobView(job);
      throw new AppError('JOB_NOT_CANCELLABLE', `The job has already ${job.status === 'SUCCEEDED' ? 'succeeded' : 'failed'}.`);
    });

    app.post('/v1/webhooks', {
      schema: { operationId: 'createWebhook', summary: 'Register a webhook for job and domain events', tags: ['jobs'], body: CreateWebhookBody, response: { 201: WebhookCreated, 400: ErrorResponse, 409: ErrorResponse } },
    }, async (request, reply) => {
      await assertAllowedReceiver(ctx.config, request.body.url);
      // Domain events are queued by database triggers inside claims and redemptions: the queue's
      // schema must exist before any webhook can ask for them.
      await ensureQueueSchema(ctx.db, ctx.logger);
      const secret = newWebhookSecret();
      const events = request.body.events ?? [...JOB_EVENTS];
      const hook = await withTransaction(ctx.db, (tx) =>
        insertWebhook(tx, uuidv7(), request.principal.partnerId, { ...request.body, events, secret }, MAX_WEBHOOKS_PER_PARTNER));
      if (!hook) throw new AppError('WEBHOOK_LIMIT_REACHED', `A partner has at most ${MAX_WEBHOOKS_PER_PARTNER} webhooks.`);
      return reply.code(201).send({ ...webhookResponse(hook), secret });
    });

    app.get('/v1/webhooks', {
      schema: { operationId: 'listWebhooks', summary: 'List the partner\'s webhooks', tags: ['jobs'], querystring: PageQuery, response: { 200: Page(WebhookResponse), 400: ErrorResponse } },
    }, async (request) => {
      const limit = request.query.limit ?? DEFAULT_PAGE_SIZE;
      const after = decodeCursor(request.query.cursor, isUuidString);
      return toPage(await listWebhooks(ctx.db, request.principal.partnerId, limit + 1, after), limit, webhookResponse, (hook) => hook.id);
    });

    app.delete('/v1/webhooks/:id', {
      schema: { operationId: 'deleteWebhook', summary: 'Delete a webhook', tags: ['jobs'], params: IdParams, response: { 204: Type.Null(), 404: ErrorResponse } },
    }, async (request, reply) => {
      if (!(await deleteWebhook(ctx.db, request.principal.partnerId, request.params.id))) throw new AppError('WEBHOOK_NOT_FOUND');
      return reply.code(204).send(null);
    });
  };
}
