// event.sold_out in distributed mode: written by the persister's statement that brings
// issued_count to the total, exactly once across a persister that committed and died before
// acknowledging (its entries redelivered to the next one), a persister restart, and stock raised
// and sold out again.
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { couponRows, drainClaims, issuedCountInDb, stampede } from '../../test/harness/claims.ts';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { startClaimPersister } from './claim-persister.ts';
import { claimFromStreamEntry } from './claim-record.ts';
import { persistClaims } from './claim-writer.ts';
import { PERSISTER_GROUP, templateClaimKeys } from './redis-keys.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

describe('event.sold_out in distributed mode', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp({ distributed: true, env: { STAMPEDE_CLAIM_RECLAIM_IDLE_MS: '300', STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'true' } }); });
  afterAll(async () => { await t.close(); });

  const soldOutDeliveries = async (templateId: string) => {
    const { rows } = await t.ctx.db.query<{ webhook_id: string; payload: { issuedCount: number; persistedCount: number; secondsToSellOut: number | null } }>(
      "SELECT webhook_id, payload FROM webhook_deliveries WHERE template_id = $1 AND event = 'event.sold_out'", [templateId]);
    return rows;
  };
  const subscribe = async (headers: Record<string, string>) => {
    const response = await t.app.inject({
      method: 'POST', url: '/v1/webhooks', headers, payload: { url: 'http://127.0.0.1:9/stampede', kind: 'json', events: ['event.sold_out'] },
    });
    expect(response.statusCode, response.body).toBe(201);
  };

  it('is written once across a persister that died after committing, its redelivery and a restart', async () => {
    const partner = await createPartner(t.app);
    await subscribe(partner.headers);
    await subscribe(partner.headers);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 30 });
    const answers = await stampede(t.app, partner.headers, templateId, 45, 1, 'sold');
    expect(answers.filter((answer) => answer.status === 201)).toHaveLength(30);
    expect(await soldOutDeliveries(templateId)).toEqual([]); // sold out at the gate, not yet in PostgreSQL

    // A persister takes every entry, commits them (the sold-out statement included) and dies
    // before XACK: the entries stay pending under its name.
    const keys = templateClaimKeys(templateId);
    const redis = t.ctx.redis!;
    await redis.xGroupCreate(keys.stream, PERSISTER_GROUP, '0', { MKSTREAM: true });
    const taken = await redis.xReadGroup(PERSISTER_GROUP, 'dies-after-commit', { key: keys.stream, id: '>' }, { COUNT: 100 }) as
      Array<{ messages: Array<{ message: Record<string, string> }> }>;
    expect(taken[0]!.messages).toHaveLength(30);
    const template = (await t.ctx.claimTemplates.get(templateId))!;
    expect(await persistClaims(t.ctx, template, taken[0]!.messages.map((entry) => claimFromStreamEntry(entry.message)))).toMatchObject({ inserted: 30 });
    expect(await soldOutDeliveries(templateId)).toHaveLength(2);

    // The next persister takes the dead one's entries over and writes them again (nothing new);
    // then it is stopped and another starts.
    const first = await startClaimPersister(t.ctx);
    try {
      await waitFor(async () => (await redis.xLen(keys.stream)) === 0, { timeoutMs: 20_000, what: 'the redelivered entries to be acknowledged' });
    } finally {
      await first();
    }
    await drainClaims(t.ctx, templateId);

    expect(await issuedCountInDb(t.ctx.db, templateId)).toBe(30);
    expect(await couponRows(t.ctx.db, templateId)).toHaveLength(30);
    const deliveries = await soldOutDeliveries(templateId);
    expect(deliveries).toHaveLength(2);
    expect(new Set(deliveries.map((d) => d.webhook_id)).size).toBe(2);
    expect(deliveries[0]!.payload).toMatchObject({ issuedCount: 30, persistedCount: 30 });
    expect(deliveries[0]!.payload.secondsToSellOut).toBeGreaterThanOrEqual(0);
  });

  it('is written by the ordinary persister when it brings the event to its total, and only once per event', async () => {
    const partner = await createPartner(t.app);
    await subscribe(partner.headers);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 12 });
    await stampede(t.app, partner.headers, templateId, 20, 1, 'plain');
    await drainClaims(t.ctx, templateId);
    expect(await soldOutDeliveries(templateId)).toHaveLength(1);

    // Stock raised after the sell-out (as PATCH does) and taken again: the event already sold out once.
    await t.ctx.db.query('UPDATE coupon_templates SET total_quantity = 13 WHERE id = $1', [templateId]);
    const template = { ...(await t.ctx.claimTemplates.get(templateId))!, totalQuantity: 13 };
    const extra = { id: uuidv7(), userId: 'late-buyer', slot: 13, seq: 1, issuedAt: new Date() };
    expect(await persistClaims(t.ctx, template, [extra])).toMatchObject({ inserted: 1 });
    expect(await issuedCountInDb(t.ctx.db, templateId)).toBe(13);
    expect(await soldOutDeliveries(templateId)).toHaveLength(1);
  });
});
