// Domain events on the webhook outbox (issue 19), embedded mode: event.sold_out from the group
// commit, coupon.redeemed and coupon.redemption_cancelled from the redeem and cancel statements,
// each written with the change it announces, delivered signed in the webhook's format, and only to
// webhooks that chose the event by name.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stampede } from '../../test/harness/claims.ts';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { appWithJobQueue } from '../../test/harness/job-app.ts';
import { createPartner, inRolledBackTransaction } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';
import { startWebhookReceiver, type ReceivedWebhook, type WebhookReceiver } from '../../test/harness/webhook-receiver.ts';
import type { RedemptionPayload, SoldOutPayload } from './domain-event-messages.ts';
import { DELIVER_WEBHOOK_TASK, WEBHOOK_MAX_ATTEMPTS } from './queue.ts';
import { verifySignature } from './webhook-signature.ts';

describe('domain events on the webhook outbox', () => {
  let receiver: WebhookReceiver;
  let base: string;
  let received: ReceivedWebhook[];
  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    ({ base, received } = receiver);
  });
  afterAll(() => receiver?.close());
  const t = appWithJobQueue({ env: { STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'true' } });

  /** Registers a webhook at `${base}/${path}`; returns its secret. */
  const register = async (headers: Record<string, string>, path: string, kind: string, events?: string[]) => {
    const response = await t.app.inject({ method: 'POST', url: '/v1/webhooks', headers, payload: { url: `${base}/${path}`, kind, ...(events ? { events } : {}) } });
    expect(response.statusCode, response.body).toBe(201);
    return response.json<{ secret: string; events: string[] }>();
  };
  const deliveriesOf = async (templateId: string, event: string) => {
    const { rows } = await t.ctx.db.query<{ webhook_id: string; payload: Record<string, unknown> }>(
      'SELECT webhook_id, payload FROM webhook_deliveries WHERE template_id = $1 AND event = $2', [templateId, event]);
    return rows;
  };
  const arrived = (path: string, event: string, marker: string) => received.filter((r) => r.path === `/${path}` && r.event === event && r.raw.includes(marker));

  it('announces event.sold_out once, with its sell-out time and counts, in JSON, Slack and Discord shapes', async () => {
    const partner = await createPartner(t.app);
    const tag = partner.id.slice(-12);
    const json = await register(partner.headers, `sold-json-${tag}`, 'json', ['event.sold_out']);
    await register(partner.headers, `sold-slack-${tag}`, 'slack', ['event.sold_out', 'job.failed']);
    await register(partner.headers, `sold-discord-${tag}`, 'discord', ['event.sold_out']);
    const jobsOnly = await register(partner.headers, `sold-default-${tag}`, 'json');
    expect(jobsOnly.events).toEqual(['job.started', 'job.succeeded', 'job.failed', 'job.cancelled']);
    const templateId = await createTemplate(t.app, partner.headers, { name: 'Flash <50%> & more', totalQuantity: 5 });

    const answers = await stampede(t.app, partner.headers, templateId, 8, 2, 'sold');
    expect(answers.filter((a) => a.status === 201)).toHaveLength(5);

    await waitFor(async () => ['json', 'slack', 'discord'].every((kind) => arrived(`sold-${kind}-${tag}`, 'event.sold_out', templateId).length > 0),
      { timeoutMs: 30_000, what: 'event.sold_out at every subscribed webhook' });
    const rows = await deliveriesOf(templateId, 'event.sold_out');
    expect(rows).toHaveLength(3);
    for (const kind of ['json', 'slack', 'discord']) expect(arrived(`sold-${kind}-${tag}`, 'event.sold_out', templateId)).toHaveLength(1);
    expect(received.filter((r) => r.path === `/sold-default-${tag}`)).toEqual([]);

    const delivered = arrived(`sold-json-${tag}`, 'event.sold_out', templateId)[0]!;
    expect(verifySignature(json.secret, delivered.raw, delivered.signature!, Math.floor(Date.now() / 1000))).toBe(true);
    const payload = delivered.body as unknown as SoldOutPayload;
    expect(payload).toMatchObject({
      event: 'event.sold_out', template: { id: templateId, name: 'Flash <50%> & more', totalQuantity: 5 }, issuedCount: 5, persistedCount: 5,
    });
    expect(payload.secondsToSellOut).toBeGreaterThanOrEqual(0);
    expect(Date.parse(payload.soldOutAt) - Date.parse(payload.firstClaimAt!)).toBe(Math.round(payload.secondsToSellOut! * 1000));
    expect(Date.parse(payload.persistedAt)).toBeGreaterThanOrEqual(Date.parse(payload.soldOutAt));
    expect(payload.occurredAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const slack = arrived(`sold-slack-${tag}`, 'event.sold_out', templateId)[0]!.body as { text: string; blocks: Array<{ type: string; text?: { text: string }; fields?: Array<{ text: string }> }> };
    expect(slack.text).toMatch(/^Flash &lt;50%&gt; &amp; more sold out: 5 coupons in [\d.]+ m?s; 5 in PostgreSQL$/);
    expect(slack.blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: 'Sold out: Flash <50%> & more' } });
    expect(slack.blocks[1]!.fields!.map((field) => field.text)).toEqual(expect.arrayContaining([`*Event*\n${templateId}`, '*Persisted*\n5']));
    const discord = arrived(`sold-discord-${tag}`, 'event.sold_out', templateId)[0]!.body as { embeds: Array<{ title: string; color: number; fields: Array<{ name: string; value: string; inline: boolean }> }> };
    expect(discord.embeds[0]).toMatchObject({ title: 'Sold out: Flash <50%> & more', color: 0xf59e0b });
    expect(discord.embeds[0]!.fields).toEqual(expect.arrayContaining([{ name: 'Event', value: templateId, inline: false }, { name: 'Total', value: '5', inline: true }]));

    // More claims after the sell-out are refused and announce nothing more.
    expect((await stampede(t.app, partner.headers, templateId, 3, 1, 'late')).every((a) => a.code === 'SOLD_OUT')).toBe(true);
    expect(await deliveriesOf(templateId, 'event.sold_out')).toHaveLength(3);
  });

  it('announces coupon.redeemed and coupon.redemption_cancelled once each, never for a replay or a refusal', async () => {
    const partner = await createPartner(t.app);
    const tag = partner.id.slice(-12);
    await register(partner.headers, `redeem-${tag}`, 'json', ['coupon.redeemed', 'coupon.redemption_cancelled']);
    await register(partner.headers, `redeem-slack-${tag}`, 'slack', ['coupon.redeemed']);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 10 });
    const claimed = await t.app.inject({ method: 'POST', url: `/v1/coupon-templates/${templateId}/claims`, headers: partner.headers, payload: { userId: 'ann' } });
    const couponId = claimed.json<{ couponId: string }>().couponId;
    const redeem = (orderId: string, orderAmount: number) => t.app.inject({
      method: 'POST', url: `/v1/coupons/${couponId}/redeem`, headers: partner.headers, payload: { userId: 'ann', orderId, orderAmount },
    });

    expect((await redeem('o-small', 9_999)).json().error.code).toBe('MIN_ORDER_AMOUNT_NOT_MET');
    expect((await redeem('o-1', 20_000)).statusCode).toBe(200);
    expect((await redeem('o-1', 20_000)).statusCode).toBe(200); // the replay
    const cancelled = await t.app.inject({ method: 'POST', url: `/v1/coupons/${couponId}/cancel-redemption`, headers: partner.headers, payload: { orderId: 'o-1' } });
    expect(cancelled.statusCode).toBe(200);

    await waitFor(async () => arrived(`redeem-${tag}`, 'coupon.redemption_cancelled', couponId).length > 0 && arrived(`redeem-slack-${tag}`, 'coupon.redeemed', couponId).length > 0,
      { timeoutMs: 30_000, what: 'the redemption announcements' });
    const { rows } = await t.ctx.db.query<{ event: string; n: number }>(
      `SELECT d.event, count(*)::int AS n FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
        WHERE w.partner_id = $1 GROUP BY d.event ORDER BY d.event`, [partner.id]);
    expect(rows).toEqual([{ event: 'coupon.redeemed', n: 2 }, { event: 'coupon.redemption_cancelled', n: 1 }]);

    const redeemed = arrived(`redeem-${tag}`, 'coupon.redeemed', couponId)[0]!.body as unknown as RedemptionPayload;
    expect(redeemed).toMatchObject({
      event: 'coupon.redeemed',
      coupon: { id: couponId, templateId, userId: 'ann', status: 'USED' },
      redemption: { orderId: 'o-1', orderAmount: 20_000, discountAmount: 2_000, cancelledAt: null },
    });
    const undone = arrived(`redeem-${tag}`, 'coupon.redemption_cancelled', couponId)[0]!.body as unknown as RedemptionPayload;
    expect(undone).toMatchObject({ coupon: { id: couponId, status: 'ISSUED' }, redemption: { orderId: 'o-1', discountAmount: 2_000 } });
    expect(Date.parse(undone.redemption.cancelledAt!)).toBeGreaterThanOrEqual(Date.parse(undone.redemption.redeemedAt));
    const slack = arrived(`redeem-slack-${tag}`, 'coupon.redeemed', couponId)[0]!.body as { text: string };
    expect(slack.text).toBe(`Coupon ${couponId} redeemed by ann on order o-1: 2,000 off 20,000 (minor units)`);
  });

  it('writes the announcement in the transaction of the change: rolled back with it, queued for the delivery task', async () => {
    const partner = await createPartner(t.app);
    await register(partner.headers, `tx-${partner.id.slice(-12)}`, 'json', ['event.sold_out']);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 1 });
    await inRolledBackTransaction(t.ctx.db, async (tx) => {
      await tx.query(`INSERT INTO coupons (id, partner_id, template_id, user_id, slot, seq, valid_from, valid_until)
                      VALUES (gen_random_uuid(), $1, $2, 'u1', 1, 1, now(), now() + interval '1 day')`, [partner.id, templateId]);
      await tx.query('UPDATE coupon_templates SET issued_count = 1 WHERE id = $1', [templateId]);
      const { rows } = await tx.query<{ task_identifier: string; max_attempts: number }>(
        `SELECT task.identifier AS task_identifier, j.max_attempts FROM webhook_deliveries d
           JOIN graphile_worker._private_jobs j ON j.payload->>'deliveryId' = d.id::text
           JOIN graphile_worker._private_tasks task ON task.id = j.task_id
          WHERE d.template_id = $1`, [templateId]);
      expect(rows).toEqual([{ task_identifier: DELIVER_WEBHOOK_TASK, max_attempts: WEBHOOK_MAX_ATTEMPTS }]);
    });
    expect(await deliveriesOf(templateId, 'event.sold_out')).toEqual([]);
    const { rows } = await t.ctx.db.query('SELECT 1 FROM claim_event_sold_out WHERE template_id = $1', [templateId]);
    expect(rows).toEqual([]);
  });

  it('chooses events by name at registration; unknown names are refused', async () => {
    const partner = await createPartner(t.app);
    const post = (payload: Record<string, unknown>) => t.app.inject({ method: 'POST', url: '/v1/webhooks', headers: partner.headers, payload });
    expect((await post({ url: `${base}/by-name`, kind: 'json', events: ['event.exploded'] })).statusCode).toBe(400);
    expect((await post({ url: `${base}/by-name`, kind: 'json', events: ['points.expiring', 'points.expiring'] })).statusCode).toBe(400);
    const all = ['job.started', 'job.succeeded', 'job.failed', 'job.cancelled', 'event.sold_out', 'coupon.redeemed', 'coupon.redemption_cancelled', 'points.expiring'];
    const created = await post({ url: `${base}/by-name`, kind: 'discord', events: all });
    expect(created.statusCode).toBe(201);
    expect(created.json().events).toEqual(all);
  });
});
