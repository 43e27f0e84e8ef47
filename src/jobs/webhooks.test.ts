import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appWithJobQueue } from '../../test/harness/job-app.ts';
import { createPartner, templateBody } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from '../../test/harness/webhook-receiver.ts';
import { jobEventPayload, renderWebhookMessage } from './webhook-messages.ts';
import type { Job } from './job-repository.ts';
import { signatureHeader, verifySignature } from './webhook-signature.ts';

describe('job webhooks', () => {
  let receiver: WebhookReceiver;
  let base: string;
  let received: ReceivedWebhook[];
  beforeAll(async () => {
    receiver = await startWebhookReceiver((path) => (path === '/broken' ? 500 : 200));
    ({ base, received } = receiver);
  });
  afterAll(() => receiver?.close());
  // The receivers listen on 127.0.0.1: allowed here, refused by default (webhook-address.test.ts).
  const t = appWithJobQueue({ env: { STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'true' } });

  it('announces start and success in Slack, Discord and JSON shapes; a failing receiver does not fail the job', async () => {
    const partner = await createPartner(t.app);
    const hook = (path: string, kind: string) => t.app.inject({
      method: 'POST', url: '/v1/webhooks', headers: partner.headers,
      payload: { url: `${base}${path}`, kind, events: ['job.started', 'job.succeeded', 'job.failed'] },
    });
    const secrets = new Map<string, string>();
    for (const [path, kind] of [['/slack', 'slack'], ['/discord', 'discord'], ['/json', 'json'], ['/broken', 'json']] as const) {
      const created = await hook(path, kind);
      expect(created.statusCode).toBe(201);
      secrets.set(path, created.json().secret);
    }
    const template = (await t.app.inject({ method: 'POST', url: '/v1/coupon-templates', headers: partner.headers, payload: templateBody({ totalQuantity: null }) })).json();
    const accepted = await t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${template.id}/distributions`, headers: partner.headers,
      payload: { userIds: ['ann', 'bob', 'ann', 'cy'] },
    });
    const { jobId } = accepted.json();

    const got = (path: string, event: string) => received.find((r) => r.path === path && r.event === event && JSON.stringify(r.body).includes(jobId));
    await waitFor(() => ['/slack', '/discord', '/json', '/broken'].every((path) => got(path, 'job.started') && got(path, 'job.succeeded')),
      { what: 'job.started and job.succeeded at every receiver', intervalMs: 100 });
    const job = (await t.app.inject({ url: `/v1/jobs/${jobId}`, headers: partner.headers })).json();
    expect(job).toMatchObject({ status: 'SUCCEEDED', succeeded: 3, skipped: 1 });

    // Every delivery is signed with its own webhook's secret, over the exact body sent.
    const mine = received.filter((r) => r.raw.includes(jobId));
    const nowSeconds = Math.floor(Date.now() / 1000);
    for (const delivery of mine) {
      expect(delivery.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
      expect(verifySignature(secrets.get(delivery.path)!, delivery.raw, delivery.signature!, nowSeconds), delivery.path).toBe(true);
      expect(verifySignature(secrets.get(delivery.path === '/json' ? '/slack' : '/json')!, delivery.raw, delivery.signature!, nowSeconds)).toBe(false);
      expect(verifySignature(secrets.get(delivery.path)!, `${delivery.raw} `, delivery.signature!, nowSeconds)).toBe(false);
    }

    const slack = got('/slack', 'job.succeeded')!.body as { text: string; blocks: Array<{ type: string }> };
    expect(slack.text).toContain('Coupon distribution succeeded');
    expect(slack.text).toContain('3 succeeded, 1 skipped, 0 failed in');
    expect(slack.blocks.map((b) => b.type)).toEqual(['header', 'section']);
    const discord = got('/discord', 'job.succeeded')!.body as { content: string; embeds: Array<{ title: string; color: number; fields: Array<{ name: string; value: string }> }> };
    expect(discord.content).toContain(jobId);
    expect(discord.embeds[0]!.title).toBe('Coupon distribution succeeded');
    expect(discord.embeds[0]!.fields).toEqual(expect.arrayContaining([{ name: 'Succeeded', value: '3', inline: true }, expect.objectContaining({ name: 'Duration' })]));
    expect((got('/discord', 'job.started')!.body as { embeds: Array<{ title: string }> }).embeds[0]!.title).toBe('Coupon distribution started');
    const json = got('/json', 'job.succeeded')!.body as unknown as ReturnType<typeof jobEventPayload>;
    expect(json).toMatchObject({ event: 'job.succeeded', job: { id: jobId, status: 'SUCCEEDED', total: 4, succeeded: 3, skipped: 1, failed: 0 } });
    expect(json.job.durationMs).toEqual(expect.any(Number));

    const deliveriesPage = (query: string) => t.app.inject({ url: `/v1/jobs/${jobId}/webhook-deliveries${query}`, headers: partner.headers }).then((r) => r.json());
    const firstPage = await deliveriesPage('?limit=5');
    expect(firstPage.items).toHaveLength(5);
    const secondPage = await deliveriesPage(`?limit=5&cursor=${firstPage.nextCursor}`);
    expect(secondPage).toMatchObject({ nextCursor: null });
    const deliveries = [...firstPage.items, ...secondPage.items];
    expect(new Set(deliveries.map((d: { id: string }) => d.id)).size).toBe(8);
    const broken = deliveries.filter((d: { status: string }) => d.status !== 'DELIVERED');
    expect(broken).toHaveLength(2);
    for (const delivery of broken) expect(delivery).toMatchObject({ status: 'PENDING', responseStatus: 500, lastError: 'receiver answered HTTP 500' });
  });

  it('validates, lists and deletes webhooks', async () => {
    const partner = await createPartner(t.app);
    const post = (payload: Record<string, unknown>) => t.app.inject({ method: 'POST', url: '/v1/webhooks', headers: partner.headers, payload });
    expect((await post({ url: 'ftp://example.com/x', kind: 'json', events: ['job.failed'] })).statusCode).toBe(400);
    expect((await post({ url: 'https://example.com/x', kind: 'teams', events: ['job.failed'] })).statusCode).toBe(400);
    expect((await post({ url: 'https://example.com/x', kind: 'json', events: [] })).statusCode).toBe(400);
    expect((await post({ url: 'https://example.com/x', kind: 'json', events: ['job.exploded'] })).statusCode).toBe(400);
    const { secret, ...created } = (await post({ url: 'https://example.com/x', kind: 'slack', events: ['job.failed'] })).json();
    expect(secret).toMatch(/^whsec_[\w-]{43}$/);
    // The secret is shown once: never listed.
    expect((await t.app.inject({ url: '/v1/webhooks', headers: partner.headers })).json().items).toEqual([created]);
    const more = await Promise.all(Array.from({ length: 21 }, (_, i) => post({ url: `https://example.com/${i}`, kind: 'json', events: ['job.failed'] })));
    expect(more.filter((r) => r.statusCode === 201)).toHaveLength(19); // 20 per partner, even when registered at once
    expect(more.filter((r) => r.statusCode === 409).map((r) => r.json().error.code)).toEqual(['WEBHOOK_LIMIT_REACHED', 'WEBHOOK_LIMIT_REACHED']);
    for (const hook of more.filter((r) => r.statusCode === 201)) {
      expect((await t.app.inject({ method: 'DELETE', url: `/v1/webhooks/${hook.json().id}`, headers: partner.headers })).statusCode).toBe(204);
    }
    const other = await createPartner(t.app);
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/webhooks/${created.id}`, headers: other.headers })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/webhooks/${created.id}`, headers: partner.headers })).statusCode).toBe(204);
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/webhooks/${created.id}`, headers: partner.headers })).json().error.code).toBe('WEBHOOK_NOT_FOUND');
  });

  it('announces a cancelled job', async () => {
    const partner = await createPartner(t.app);
    const registered = await t.app.inject({
      method: 'POST', url: '/v1/webhooks', headers: partner.headers, payload: { url: `${base}/cancelled`, kind: 'json', events: ['job.cancelled'] },
    });
    expect(registered.statusCode).toBe(201);
    const accepted = await t.app.inject({
      method: 'POST', url: '/v1/points/accruals', headers: partner.headers,
      payload: { scheduledAt: new Date(Date.now() + 3_600_000).toISOString(), pointType: 'staff', items: [{ userId: 'u1', amount: 100, idempotencyKey: 'k1' }] },
    });
    const { jobId } = accepted.json();
    expect((await t.app.inject({ method: 'POST', url: `/v1/jobs/${jobId}/cancel`, headers: partner.headers })).json().status).toBe('CANCELLED');
    const announcement = await waitFor(() => received.find((r) => r.path === '/cancelled' && r.raw.includes(jobId)), { what: 'job.cancelled to be delivered' });
    expect(announcement.event).toBe('job.cancelled');
    expect(announcement.body).toMatchObject({ event: 'job.cancelled', job: { id: jobId, status: 'CANCELLED' } });
    expect(verifySignature(registered.json().secret, announcement.raw, announcement.signature!, Math.floor(Date.now() / 1000))).toBe(true);
  });

  it('signs Stripe-style: t=<unix>,v1=HMAC-SHA256(secret, "t.body"), refusing stale timestamps', () => {
    // A vector computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
    expect(signatureHeader('whsec_test', '{"a":1}', 1_700_000_000)).toBe('t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789');
    expect(verifySignature('whsec_test', '{"a":1}', 't=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789', 1_700_000_100)).toBe(true);
    expect(verifySignature('whsec_test', '{"a":1}', 't=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789', 1_700_000_400)).toBe(false);
  });

  it('renders a failure with its error', () => {
    const job: Job = {
      id: 'j1', partnerId: 'p', type: 'POINT_ACCRUAL', status: 'FAILED', params: {}, staged: true, chunkCount: 1, nextChunk: 0,
      total: 10, processed: 4, succeeded: 4, skipped: 0, failed: 0, notServed: 0, error: 'source vanished', scheduledAt: null,
      createdAt: new Date('2026-11-22T10:00:00Z'), startedAt: new Date('2026-11-22T10:00:01Z'), finishedAt: new Date('2026-11-22T10:00:03.5Z'),
    };
    const payload = jobEventPayload('job.failed', job, new Date('2026-11-22T10:00:04Z'));
    expect(payload.job.durationMs).toBe(2_500);
    expect(renderWebhookMessage('slack', payload)).toMatchObject({ text: 'Point accrual failed: job j1, 4 succeeded, 0 skipped, 0 failed in 2.5 s (source vanished)' });
    const discord = renderWebhookMessage('discord', payload) as { embeds: Array<{ color: number; fields: Array<{ name: string }> }> };
    expect(discord.embeds[0]!.color).toBe(0xef4444);
    expect(discord.embeds[0]!.fields.map((f) => f.name)).toEqual(['Job', 'Total', 'Succeeded', 'Skipped', 'Failed', 'Duration', 'Error']);
  });
});
