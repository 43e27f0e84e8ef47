// The points.expiring digest: once per partner and UTC day however many processes run the
// schedule at once, the users whose points expire within the partner's notice, on the outbox of
// the webhooks that chose points.expiring only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import type { PointsExpiringPayload } from '../jobs/domain-event-messages.ts';
import { renderWebhookMessage } from '../jobs/webhook-messages.ts';
import { sendExpiringDigests } from './expiring-digest.ts';

const DAY_MS = 86_400_000;

describe('points.expiring digest', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp({ env: { STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'true' } }); });
  afterAll(async () => { await t.close(); });

  const earn = async (headers: Record<string, string>, userId: string, amount: number, expiresAt: Date, pointType?: string) => {
    const response = await t.app.inject({
      method: 'POST', url: '/v1/points/earn', headers: { ...headers, 'idempotency-key': `${userId}-${amount}-${expiresAt.getTime()}` },
      payload: { userId, amount, expiresAt: expiresAt.toISOString(), reason: 'test', ...(pointType ? { pointType } : {}) },
    });
    expect(response.statusCode, response.body).toBe(201);
  };
  const digests = async (partnerId: string) => {
    const { rows } = await t.ctx.db.query<{ payload: PointsExpiringPayload }>(
      `SELECT d.payload FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
        WHERE w.partner_id = $1 AND d.event = 'points.expiring' ORDER BY d.created_at`, [partnerId]);
    return rows.map((row) => row.payload);
  };

  it('announces once a day per partner the users whose points expire within its notice', async () => {
    const partner = await createPartner(t.app);
    const patched = await t.app.inject({ method: 'PATCH', url: `/v1/partners/${partner.id}`, headers: adminHeaders, payload: { pointsExpiringNoticeDays: 3 } });
    expect(patched.json()).toMatchObject({ id: partner.id, pointsExpiringNoticeDays: 3, rateLimitPerSecond: null });
    for (const events of [['points.expiring'], ['job.failed']]) {
      const hook = await t.app.inject({ method: 'POST', url: '/v1/webhooks', headers: partner.headers, payload: { url: 'http://127.0.0.1:9/digest', kind: 'json', events } });
      expect(hook.statusCode, hook.body).toBe(201);
    }
    const quiet = await createPartner(t.app); // wants no digest
    const now = new Date();
    await earn(partner.headers, 'ann', 100, new Date(now.getTime() + 1 * DAY_MS));
    await earn(partner.headers, 'bob', 50, new Date(now.getTime() + 2 * DAY_MS));
    await earn(partner.headers, 'bob', 30, new Date(now.getTime() + 10 * DAY_MS)); // beyond the notice
    await earn(partner.headers, 'bob', 5, new Date(now.getTime() + 2.5 * DAY_MS), 'staff');
    await earn(partner.headers, 'cy', 70, new Date(now.getTime() + 3.5 * DAY_MS)); // beyond the notice today, not tomorrow
    await earn(quiet.headers, 'dee', 10, new Date(now.getTime() + DAY_MS));

    // Three processes' schedules fire at once: one digest.
    await Promise.all([sendExpiringDigests(t.ctx, now), sendExpiringDigests(t.ctx, now), sendExpiringDigests(t.ctx, now)]);
    await sendExpiringDigests(t.ctx, new Date(now.getTime() + 60_000)); // later the same day
    const [digest, ...more] = await digests(partner.id);
    expect(more).toEqual([]);
    expect(digest).toMatchObject({
      event: 'points.expiring', withinDays: 3, userCount: 2, points: 155, truncated: false,
      users: [
        { userId: 'ann', pointType: 'default', points: 100 },
        { userId: 'bob', pointType: 'default', points: 50 },
        { userId: 'bob', pointType: 'staff', points: 5 },
      ],
    });
    expect(Date.parse(digest!.until) - now.getTime()).toBe(3 * DAY_MS);
    const { rows } = await t.ctx.db.query('SELECT partner_id FROM points_expiring_digests WHERE partner_id = $1', [quiet.id]);
    expect(rows).toEqual([]);

    // The next day brings the next digest.
    const tomorrow = new Date(now.getTime() + DAY_MS);
    await sendExpiringDigests(t.ctx, tomorrow);
    const next = (await digests(partner.id))[1];
    expect(next).toMatchObject({ userCount: 2, points: 125, users: [{ userId: 'bob', points: 50 }, { userId: 'bob', pointType: 'staff', points: 5 }, { userId: 'cy', points: 70 }] });

    const slack = renderWebhookMessage('slack', digest!) as { text: string; blocks: Array<{ type: string; text?: { text: string } }> };
    expect(slack.text).toBe(`2 users have 155 points expiring by ${digest!.until.slice(0, 10)}`);
    expect(slack.blocks[2]!.text!.text.split('\n')[0]).toMatch(/^• ann: 100 points from \d{4}-\d\d-\d\d$/);
    const discord = renderWebhookMessage('discord', digest!) as { embeds: Array<{ title: string; description: string }> };
    expect(discord.embeds[0]!.title).toBe('Points expiring within 3 days');
    expect(discord.embeds[0]!.description).toContain('• bob: 5 staff points from');
  });

  it('lists at most 100 users and escapes them for Slack and Discord', () => {
    const users = Array.from({ length: 100 }, (_, i) => ({ userId: i === 0 ? '<@here> *bold*' : `u${i}`, pointType: 'default', points: 1, firstExpiresAt: '2026-12-08T00:00:00.000Z' }));
    const payload: PointsExpiringPayload = {
      event: 'points.expiring', occurredAt: '2026-12-07T08:00:00.000Z', withinDays: 7, until: '2026-12-14T08:00:00.000Z', userCount: 250, points: 250, users, truncated: true,
    };
    const slack = renderWebhookMessage('slack', payload) as { blocks: Array<{ text?: { text: string } }> };
    const lines = slack.blocks[2]!.text!.text.split('\n');
    expect(lines[0]).toBe('• &lt;@here&gt; *bold*: 1 points from 2026-12-08');
    expect(lines).toHaveLength(11);
    expect(lines.at(-1)).toBe('• … 250 users in all');
    const discord = renderWebhookMessage('discord', payload) as { allowed_mentions: unknown; embeds: Array<{ description: string }> };
    expect(discord.embeds[0]!.description.split('\n')[0]).toBe('• <@here\\> \\*bold\\*: 1 points from 2026-12-08');
    expect(discord).toMatchObject({ allowed_mentions: { parse: [] } });
  });
});
