// Pure rendering of job announcements into the message shapes the receivers expect: Slack
// incoming webhooks ({text, blocks}), Discord webhooks ({content, embeds}) or the plain event.
// Domain events (domain-event-messages.ts) render through the same function.
import { DOMAIN_EVENTS, domainEventSummary, isDomainEventPayload, type DomainEventPayload } from './domain-event-messages.ts';
import type { Job } from './job-repository.ts';
import { jobView, type JobView } from './job-view.ts';
import { isTemplateEventPayload, TEMPLATE_EVENTS, templateEventSummary, type TemplateEventPayload } from './webhook-template-events.ts';

export type WebhookKind = 'slack' | 'discord' | 'json';
export const JOB_EVENTS = ['job.started', 'job.succeeded', 'job.failed', 'job.cancelled'] as const;
export type JobEvent = (typeof JOB_EVENTS)[number];
/** Every event a webhook can choose by name; a registration without a list gets JOB_EVENTS. */
export const WEBHOOK_EVENTS = [...JOB_EVENTS, ...DOMAIN_EVENTS, ...TEMPLATE_EVENTS] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];
/** What an outbox row holds and a `json` webhook receives as is. */
export type WebhookPayload = JobEventPayload | DomainEventPayload | TemplateEventPayload;

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

// Slack's mrkdwn needs &, < and > escaped; Discord's markdown its emphasis and quote characters.
const slackText = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const discordText = (text: string) => text.replace(/[\\*_~`|>]/g, (c) => `\\${c}`);
const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

export function renderWebhookMessage(kind: WebhookKind, payload: WebhookPayload): unknown {
  if (kind === 'json') return payload;
  const { title, text, fields, colour, lines } = isTemplateEventPayload(payload)
    ? { ...templateEventSummary(payload), colour: TEMPLATE_COLOUR, lines: undefined }
    : isDomainEventPayload(payload)
      ? domainEventSummary(payload)
      : { ...summary(payload), colour: COLOURS[payload.event], lines: undefined };
  // Long values (ids, errors) take a whole line; counts sit side by side.
  const wide = (name: string, value: string) => name === 'Job' || name === 'Error' || value.length > 24;
  if (kind === 'slack') {
    return {
      text: slackText(text),
      blocks: [
        // Slack's limits: a header's text ≤ 150 characters, a section's text ≤ 3,000.
        { type: 'header', text: { type: 'plain_text', text: clip(title, 150) } },
        { type: 'section', fields: fields.map(([name, value]) => ({ type: 'mrkdwn', text: `*${name}*\n${slackText(value)}` })) },
        ...(lines?.length ? [{ type: 'section', text: { type: 'mrkdwn', text: clip(lines.map((line) => `• ${slackText(line)}`).join('\n'), 3_000) } }] : []),
      ],
    };
  }
  return {
    content: text,
    // User ids are the partner's data: never let one ping @everyone or a role.
    allowed_mentions: { parse: [] },
    embeds: [{
      // Discord's limits: a title ≤ 256 characters, a description ≤ 4,096.
      title: clip(title, 256),
      ...(lines?.length ? { description: clip(lines.map((line) => `• ${discordText(line)}`).join('\n'), 4_096) } : {}),
      color: colour,
      fields: fields.map(([name, value]) => ({ name, value, inline: !wide(name, value) })),
      timestamp: payload.occurredAt,
    }],
  };
}
