// Read-your-writes for redemption in distributed mode: a coupon acknowledged by the Redis claim
// gate is redeemable (and readable) at once, before the claim persister has written its row,
// and the persister's later insert neither duplicates nor resets it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimOnce, couponRows, drainClaims, issuedCountInDb } from '../../test/harness/claims.ts';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';

describe('redemption right after a claim in distributed mode', () => {
  // createTestApp starts no workers: the claim persister stays paused until drainClaims runs it.
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp({ distributed: true }); });
  afterAll(async () => { await t.close(); });

  async function statusRows(templateId: string) {
    const { rows } = await t.ctx.db.query<{ id: string; status: string; order_id: string | null }>(
      'SELECT id, status, order_id FROM coupons WHERE template_id = $1', [templateId]);
    return rows;
  }

  it('redeems a coupon whose claim is not persisted yet; after the persister runs there is one row, USED', async () => {
    const partner = await createPartner(t.app);
    const stranger = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers);
    const claim = await claimOnce(t.app, partner.headers, templateId, 'alice');
    expect(claim.status).toBe(201);
    expect(await couponRows(t.ctx.db, templateId)).toEqual([]);

    // Another partner's key and another user cannot reach it, and do not make it appear.
    const foreign = await t.app.inject({ method: 'POST', url: `/v1/coupons/${claim.couponId}/redeem`, headers: stranger.headers, payload: { userId: 'alice', orderId: 'o-1', orderAmount: 20_000 } });
    expect([foreign.statusCode, foreign.json().error.code]).toEqual([404, 'COUPON_NOT_FOUND']);
    expect(await couponRows(t.ctx.db, templateId)).toEqual([]);
    const otherUser = await t.app.inject({ method: 'POST', url: `/v1/coupons/${claim.couponId}/redeem`, headers: partner.headers, payload: { userId: 'mallory', orderId: 'o-1', orderAmount: 20_000 } });
    expect([otherUser.statusCode, otherUser.json().error.code]).toEqual([404, 'COUPON_NOT_FOUND']);

    const redeemed = await t.app.inject({ method: 'POST', url: `/v1/coupons/${claim.couponId}/redeem`, headers: partner.headers, payload: { userId: 'alice', orderId: 'o-1', orderAmount: 20_000 } });
    expect(redeemed.statusCode).toBe(200);
    expect(redeemed.json()).toMatchObject({ couponId: claim.couponId, orderId: 'o-1', discountAmount: 2_000, status: 'USED' });

    await drainClaims(t.ctx, templateId);
    expect(await statusRows(templateId)).toEqual([{ id: claim.couponId, status: 'USED', order_id: 'o-1' }]);
    expect(await issuedCountInDb(t.ctx.db, templateId)).toBe(1);
    const { rows: history } = await t.ctx.db.query('SELECT order_id FROM coupon_redemptions WHERE coupon_id = $1', [claim.couponId]);
    expect(history).toEqual([{ order_id: 'o-1' }]);
  });

  it('lets exactly one of 20 concurrent redemptions of a just-claimed coupon win', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers);
    const claim = await claimOnce(t.app, partner.headers, templateId, 'bob');
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => t.app.inject({
      method: 'POST', url: `/v1/coupons/${claim.couponId}/redeem`, headers: partner.headers, payload: { userId: 'bob', orderId: `o-${i}`, orderAmount: 20_000 },
    })));
    expect(answers.filter((r) => r.statusCode === 200)).toHaveLength(1);
    expect(answers.filter((r) => r.statusCode === 409 && r.json().error.code === 'COUPON_ALREADY_USED')).toHaveLength(19);
    await drainClaims(t.ctx, templateId);
    const rows = await statusRows(templateId);
    expect(rows.map((row) => [row.id, row.status])).toEqual([[claim.couponId, 'USED']]);
    expect(await issuedCountInDb(t.ctx.db, templateId)).toBe(1);
  });

  it('reads a just-claimed coupon by id and in the user’s list, and refuses to cancel one never redeemed, before the persister runs', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { perUserLimit: 2 });
    const first = await claimOnce(t.app, partner.headers, templateId, 'carol');
    const second = await claimOnce(t.app, partner.headers, templateId, 'carol');
    const read = await t.app.inject({ url: `/v1/coupons/${first.couponId}?orderAmount=20000`, headers: partner.headers });
    expect(read.statusCode).toBe(200);
    expect(read.json()).toMatchObject({ id: first.couponId, templateId, userId: 'carol', status: 'ISSUED', quote: { discountAmount: 2_000, redeemable: true } });
    const list = (await t.app.inject({ url: '/v1/users/carol/coupons', headers: partner.headers })).json();
    expect(list.items.map((c: { id: string }) => c.id).sort()).toEqual([first.couponId, second.couponId].sort());
    const third = await claimOnce(t.app, partner.headers, await createTemplate(t.app, partner.headers), 'carol');
    const cancel = await t.app.inject({ method: 'POST', url: `/v1/coupons/${third.couponId}/cancel-redemption`, headers: partner.headers, payload: { orderId: 'o-1' } });
    expect([cancel.statusCode, cancel.json().error.code]).toEqual([409, 'ORDER_MISMATCH']);
    await drainClaims(t.ctx, templateId);
    expect(await couponRows(t.ctx.db, templateId)).toHaveLength(2);
  });
});
