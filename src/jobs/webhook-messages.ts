// Pure rendering of job announcements into the message shapes the receivers expect: Slack
// incoming webhooks ({text, blocks}), Discord webhooks ({content, embeds}) or the plain event.
import type { Job } from './job-repository.ts';
import { jobView, type JobView } from './job-view.ts';
import { isTemplateEventPayload, templateEventSummary, type TemplateEventPayload } from './webhook-template-events.ts';

export type WebhookKind = 'slack' | 'discord' | 'json';
export const JOB_EVENTS = ['job.started', 'job.succeeded', 'job.failed', 'job.cancelled'] as const;
export type JobEvent = (typeof JOB_EVENTS)[number];

/** What is stored in the outbox and sent as-is to `json` webhooks. */
export interface JobEventPayload {
  event: JobEvent;
  occurredAt: string;
  job: JobView & {
    /** started → finished (or → now while running), in milliseconds */
    durationMs: number | null;
  };
}

export function jobEventPayload(event: JobEvent, job: Job, now: Date): JobEventPayload {
  const end = job.finishedAt ?? now;
  return {
    event,
    occurredAt: now.toISOString(),
    job: { ...jobView(job), durationMs: job.startedAt ? Math.max(0, end.getTime() - job.startedAt.getTime()) : null },
  };
}

const TYPE_NAMES: Record<Job['type'], string> = { COUPON_DISTRIBUTION: 'Coupon distribution', POINT_ACCRUAL: 'Point accrual', COUPON_REVOCATION: 'Coupon revocation' };
const VERBS: Record<JobEvent, string> = { 'job.started': 'started', 'job.succeeded': 'succeeded', 'job.failed': 'failed', 'job.cancelled': 'cancelled' };
// Discord embed colours: blue, green, red, grey.
const COLOURS: Record<JobEvent, number> = { 'job.started': 0x3b82f6, 'job.succeeded': 0x22c55e, 'job.failed': 0xef4444, 'job.cancelled': 0x6b7280 };

const formatCount = (n: number) => n.toLocaleString('en-US');
const formatDuration = (ms: number) => (ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`);

function summary(payload: JobEventPayload): { title: string; text: string; fields: Array<[string, string]> } {
  const { job } = payload;
  const title = `${TYPE_NAMES[job.type]} ${VERBS[payload.event]}`;
  const fields: Array<[string, string]> = [
    ['Job', job.id],
    ['Total', formatCount(job.total)],
    ['Succeeded', formatCount(job.succeeded)],
    ['Skipped', formatCount(job.skipped)],
    ['Failed', formatCount(job.failed)],
  ];
  if (job.notServed > 0) fields.push(['Not served', formatCount(job.notServed)]);
  if (job.durationMs !== null && payload.event !== 'job.started') fields.push(['Duration', formatDuration(job.durationMs)]);
  if (job.error) fields.push(['Error', job.error]);
  const counts = payload.event === 'job.started'
    ? `${formatCount(job.total)} items`
    : `${formatCount(job.succeeded)} succeeded, ${formatCount(job.skipped)} skipped, ${formatCount(job.failed)} failed` +
      (job.notServed > 0 ? `, ${formatCount(job.notServed)} not served` : '') +
      (job.durationMs !== null ? ` in ${formatDuration(job.durationMs)}` : '');
  return { title, text: `${title}: job ${job.id}, ${counts}${job.error ? ` (${job.error})` : ''}`, fields };
}

// Discord colour of template events: amber.
const TEMPLATE_COLOUR = 0xf59e0b;

export function renderWebhookMessage(kind: WebhookKind, payload: JobEventPayload | TemplateEventPayload): unknown {
  if (kind === 'json') return payload;
  const { title, text, fields } = isTemplateEventPayload(payload) ? templateEventSummary(payload) : summary(payload);
  if (kind === 'slack') {
    return {
      text,
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: title } },
        { type: 'section', fields: fields.map(([name, value]) => ({ type: 'mrkdwn', text: `*${name}*\n${value}` })) },
      ],
    };
  }
  return {
    content: text,
    embeds: [{
      title,
      color: isTemplateEventPayload(payload) ? TEMPLATE_COLOUR : COLOURS[payload.event],
      fields: fields.map(([name, value]) => ({ name, value, inline: name !== 'Job' && name !== 'Error' && name !== 'Template' })),
      timestamp: payload.occurredAt,
    }],
  };
}
