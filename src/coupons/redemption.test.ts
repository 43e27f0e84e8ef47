// Redemption, cancel, reads and expiry through the HTTP API against the harness PostgreSQL.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createTemplate, issueCoupon } from '../../test/harness/issue-coupons.ts';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { couponExpiryWorker, expireDueCoupons } from './coupon-expiry.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('coupon redemption', () => {
  let t: TestApp;
  // The app's clock; each test starts at the real time and moves it when it needs to.
  let now = new Date();
  beforeAll(async () => { t = await createTestApp({ clock: () => now }); });
  afterAll(async () => { await t.close(); });
  beforeEach(() => { now = new Date(); });

  type Partner = Awaited<ReturnType<typeof createPartner>>;

  /** A partner, a template (10% capped at 5,000, minimum 10,000 unless overridden) and one coupon. */
  async function setup(options: { template?: Record<string, unknown>; validFrom?: Date; validUntil?: Date; partner?: Partner } = {}) {
    const partner = options.partner ?? await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, options.template);
    const userId = `user-${randomUUID()}`;
    const couponId = await issueCoupon(t.ctx.db, {
      partnerId: partner.id, templateId, userId,
      validFrom: options.validFrom ?? new Date(now.getTime() - HOUR),
      validUntil: options.validUntil ?? new Date(now.getTime() + DAY),
    });
    return { partner, templateId, userId, couponId };
  }

  const redeem = (headers: Record<string, string>, couponId: string, payload: Record<string, unknown>) =>
    t.app.inject({ method: 'POST', url: `/v1/coupons/${couponId}/redeem`, headers, payload });
  const cancel = (headers: Record<string, string>, couponId: string, orderId: string) =>
    t.app.inject({ method: 'POST', url: `/v1/coupons/${couponId}/cancel-redemption`, headers, payload: { orderId } });

  async function history(couponId: string) {
    const { rows } = await t.ctx.db.query<{ order_id: string; order_amount: number; discount_amount: number; cancelled_at: Date | null }>(
      'SELECT order_id, order_amount, discount_amount, cancelled_at FROM coupon_redemptions WHERE coupon_id = $1 ORDER BY id', [couponId]);
    return rows;
  }
  async function storedStatus(couponId: string) {
    const { rows } = await t.ctx.db.query<{ status: string }>('SELECT status FROM coupons WHERE id = $1', [couponId]);
    return rows[0]?.status;
  }
  async function redemptionCount(outcome: string) {
    const metric = await t.ctx.metrics.couponRedemptions.get();
    return metric.values.find((value) => value.labels.outcome === outcome)?.value ?? 0;
  }

  it('redeems with the discount of the template, records it, and reads back as USED', async () => {
    const { partner, userId, couponId } = await setup();
    const usedBefore = await redemptionCount('used');
    const response = await redeem(partner.headers, couponId, { userId, orderId: 'order-1', orderAmount: 23_459 });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      couponId, orderId: 'order-1', orderAmount: 23_459, discountAmount: 2_345, status: 'USED', redeemedAt: now.toISOString(),
    });
    expect(await history(couponId)).toEqual([{ order_id: 'order-1', order_amount: 23_459, discount_amount: 2_345, cancelled_at: null }]);
    const read = (await t.app.inject({ url: `/v1/coupons/${couponId}`, headers: partner.headers })).json();
    expect(read).toMatchObject({ id: couponId, status: 'USED', orderId: 'order-1', discountAmount: 2_345, usedAt: now.toISOString() });
    expect(await redemptionCount('used')).toBe(usedBefore + 1);
  });

  it('caps PERCENT at maxAmount and never gives a FIXED discount above the order', async () => {
    const capped = await setup();
    const big = await redeem(capped.partner.headers, capped.couponId, { userId: capped.userId, orderId: 'o', orderAmount: 1_000_000 });
    expect(big.json().discountAmount).toBe(5_000);
    const fixed = await setup({ template: { discount: { type: 'FIXED', value: 8_000 }, minOrderAmount: 0 } });
    const small = await redeem(fixed.partner.headers, fixed.couponId, { userId: fixed.userId, orderId: 'o', orderAmount: 3_000 });
    expect(small.json().discountAmount).toBe(3_000);
  });

  it('lets exactly one of 50 concurrent redemptions on different orders win', async () => {
    const { partner, userId, couponId } = await setup();
    const responses = await Promise.all(Array.from({ length: 50 }, (_, i) =>
      redeem(partner.headers, couponId, { userId, orderId: `order-${i}`, orderAmount: 20_000 })));
    const won = responses.filter((r) => r.statusCode === 200);
    expect(won).toHaveLength(1);
    const lost = responses.filter((r) => r.statusCode !== 200);
    expect(lost.map((r) => [r.statusCode, r.json().error.code])).toEqual(Array.from({ length: 49 }, () => [409, 'COUPON_ALREADY_USED']));
    const rows = await history(couponId);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.order_id).toBe(won[0]!.json().orderId);
  });

  it('answers 50 concurrent redemptions on the same order with the same success', async () => {
    const { partner, userId, couponId } = await setup();
    const responses = await Promise.all(Array.from({ length: 50 }, () =>
      redeem(partner.headers, couponId, { userId, orderId: 'order-same', orderAmount: 20_000 })));
    expect(responses.map((r) => r.statusCode)).toEqual(Array.from({ length: 50 }, () => 200));
    const bodies = new Set(responses.map((r) => r.body));
    expect(bodies.size).toBe(1);
    expect(JSON.parse([...bodies][0]!)).toMatchObject({ couponId, orderId: 'order-same', discountAmount: 2_000, status: 'USED' });
    expect(await history(couponId)).toHaveLength(1);
  });

  it('redeems, cancels, and redeems again on another order, keeping both in the history', async () => {
    const { partner, userId, couponId } = await setup();
    expect((await redeem(partner.headers, couponId, { userId, orderId: 'order-a', orderAmount: 20_000 })).statusCode).toBe(200);
    const cancelled = await cancel(partner.headers, couponId, 'order-a');
    expect(cancelled.statusCode).toBe(200);
    expect(cancelled.json()).toMatchObject({ id: couponId, status: 'ISSUED', orderId: null, discountAmount: null, usedAt: null });
    const again = await cancel(partner.headers, couponId, 'order-a');
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(cancelled.json());

    const second = await redeem(partner.headers, couponId, { userId, orderId: 'order-b', orderAmount: 30_000 });
    expect(second.statusCode).toBe(200);
    expect(second.json()).toMatchObject({ orderId: 'order-b', discountAmount: 3_000 });
    // order-a is cancelled, but the coupon now belongs to order-b: no longer order-a's to cancel
    const stale = await cancel(partner.headers, couponId, 'order-a');
    expect([stale.statusCode, stale.json().error.code]).toEqual([409, 'ORDER_MISMATCH']);

    const rows = await history(couponId);
    expect(rows.map((r) => [r.order_id, r.cancelled_at !== null])).toEqual([['order-a', true], ['order-b', false]]);
    expect(await storedStatus(couponId)).toBe('USED');
  });

  it('refuses to cancel on a different order, or a coupon never redeemed, with ORDER_MISMATCH', async () => {
    const { partner, userId, couponId } = await setup();
    const never = await cancel(partner.headers, couponId, 'order-x');
    expect([never.statusCode, never.json().error.code]).toEqual([409, 'ORDER_MISMATCH']);
    await redeem(partner.headers, couponId, { userId, orderId: 'order-a', orderAmount: 20_000 });
    const wrong = await cancel(partner.headers, couponId, 'order-x');
    expect([wrong.statusCode, wrong.json().error.code]).toEqual([409, 'ORDER_MISMATCH']);
    expect(await storedStatus(couponId)).toBe('USED');
    expect(await history(couponId)).toHaveLength(1);
  });

  it('cancels a redemption after the coupon’s window into EXPIRED, not ISSUED', async () => {
    const validUntil = new Date(now.getTime() + HOUR);
    const { partner, userId, couponId } = await setup({ validUntil });
    expect((await redeem(partner.headers, couponId, { userId, orderId: 'order-a', orderAmount: 20_000 })).statusCode).toBe(200);
    now = validUntil; // the exact instant validUntil is already past the window
    const cancelled = await cancel(partner.headers, couponId, 'order-a');
    expect(cancelled.statusCode).toBe(200);
    expect(cancelled.json()).toMatchObject({ status: 'EXPIRED', orderId: null });
    expect(await storedStatus(couponId)).toBe('EXPIRED');
    const retry = await redeem(partner.headers, couponId, { userId, orderId: 'order-b', orderAmount: 20_000 });
    expect([retry.statusCode, retry.json().error.code]).toEqual([409, 'COUPON_EXPIRED']);
    expect((await history(couponId))[0]!.cancelled_at).toEqual(validUntil);
  });

  it('replays a redemption on the same order even after the window closed', async () => {
    const validUntil = new Date(now.getTime() + HOUR);
    const { partner, userId, couponId } = await setup({ validUntil });
    const first = await redeem(partner.headers, couponId, { userId, orderId: 'order-a', orderAmount: 20_000 });
    now = new Date(validUntil.getTime() + DAY);
    const replay = await redeem(partner.headers, couponId, { userId, orderId: 'order-a', orderAmount: 20_000 });
    expect(replay.statusCode).toBe(200);
    expect(replay.body).toBe(first.body);
  });

  it.each([
    ['expired at the exact instant validUntil', (at: number) => ({ validFrom: new Date(at - DAY), validUntil: new Date(at) }), 20_000, 409, 'COUPON_EXPIRED'],
    ['not yet valid a millisecond before validFrom', (at: number) => ({ validFrom: new Date(at + 1), validUntil: new Date(at + DAY) }), 20_000, 409, 'COUPON_NOT_YET_VALID'],
    ['below the minimum order amount', () => ({}), 9_999, 422, 'MIN_ORDER_AMOUNT_NOT_MET'],
  ])('refuses a coupon %s and writes nothing', async (_label, window, orderAmount, status, code) => {
    const { partner, userId, couponId } = await setup(window(now.getTime()));
    const response = await redeem(partner.headers, couponId, { userId, orderId: 'order-a', orderAmount });
    expect([response.statusCode, response.json().error.code]).toEqual([status, code]);
    expect(await history(couponId)).toEqual([]);
    expect(await storedStatus(couponId)).toBe('ISSUED');
  });

  it('accepts an order of exactly the minimum amount at exactly validFrom', async () => {
    const { partner, userId, couponId } = await setup({ validFrom: new Date(now.getTime()) });
    const response = await redeem(partner.headers, couponId, { userId, orderId: 'order-a', orderAmount: 10_000 });
    expect(response.statusCode).toBe(200);
    expect(response.json().discountAmount).toBe(1_000);
  });

  it('answers 404 to another partner’s key and another user’s id, and changes nothing', async () => {
    const { partner, userId, couponId } = await setup();
    const other = await createPartner(t.app);
    const probes = [
      await redeem(other.headers, couponId, { userId, orderId: 'order-a', orderAmount: 20_000 }),
      await redeem(partner.headers, couponId, { userId: 'someone-else', orderId: 'order-a', orderAmount: 20_000 }),
      await redeem(partner.headers, randomUUID(), { userId, orderId: 'order-a', orderAmount: 20_000 }),
      await t.app.inject({ url: `/v1/coupons/${couponId}`, headers: other.headers }),
      await cancel(other.headers, couponId, 'order-a'),
    ];
    expect(probes.map((r) => [r.statusCode, r.json().error.code])).toEqual(Array.from({ length: 5 }, () => [404, 'COUPON_NOT_FOUND']));
    const list = (await t.app.inject({ url: `/v1/users/${userId}/coupons`, headers: other.headers })).json();
    expect(list.items).toEqual([]);
    expect(await storedStatus(couponId)).toBe('ISSUED');
    // the owner can still use it, and another partner cannot cancel that either
    expect((await redeem(partner.headers, couponId, { userId, orderId: 'order-a', orderAmount: 20_000 })).statusCode).toBe(200);
    expect((await cancel(other.headers, couponId, 'order-a')).statusCode).toBe(404);
    expect(await storedStatus(couponId)).toBe('USED');
  });

  it.each([
    ['a coupon id that is not a UUID', 'not-a-uuid', {}, 'params.couponId'],
    ['a missing orderId', undefined, { orderId: undefined }, 'body.orderId'],
    ['an empty orderId', undefined, { orderId: '' }, 'body.orderId'],
    ['a too long orderId', undefined, { orderId: 'o'.repeat(129) }, 'body.orderId'],
    ['a zero orderAmount', undefined, { orderAmount: 0 }, 'body.orderAmount'],
    ['a fractional orderAmount', undefined, { orderAmount: 10.5 }, 'body.orderAmount'],
    ['a missing userId', undefined, { userId: undefined }, 'body.userId'],
    ['an unknown field', undefined, { coupon: 'x' }, 'body.coupon'],
  ])('refuses %s with 400 naming the field', async (_label, id, change, field) => {
    const { partner, userId, couponId } = await setup();
    const response = await redeem(partner.headers, id ?? couponId, { userId, orderId: 'order-a', orderAmount: 20_000, ...change });
    expect(response.statusCode).toBe(400);
    const { error } = response.json();
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.details.map((d: { field: string }) => d.field)).toContain(field);
    expect(await storedStatus(couponId)).toBe('ISSUED');
  });

  it('refuses bad list and read queries with 400', async () => {
    const { partner, userId, couponId } = await setup();
    for (const url of [
      `/v1/users/${userId}/coupons?status=SPENT`,
      `/v1/users/${userId}/coupons?limit=101`,
      `/v1/users/${userId}/coupons?cursor=garbage`,
      `/v1/coupons/${couponId}?orderAmount=-1`,
      `/v1/coupons/${couponId}?extra=1`,
    ]) {
      const response = await t.app.inject({ url, headers: partner.headers });
      expect([url, response.statusCode, response.json().error.code]).toEqual([url, 400, 'VALIDATION_FAILED']);
    }
    const cancelBad = await t.app.inject({ method: 'POST', url: `/v1/coupons/${couponId}/cancel-redemption`, headers: partner.headers, payload: {} });
    expect(cancelBad.statusCode).toBe(400);
  });

  it('shows template details and quotes the discount a redemption would give now', async () => {
    const validUntil = new Date(now.getTime() + HOUR);
    const { partner, couponId, templateId } = await setup({ validUntil });
    const plain = (await t.app.inject({ url: `/v1/coupons/${couponId}`, headers: partner.headers })).json();
    expect(plain).toMatchObject({
      id: couponId, templateId, status: 'ISSUED', quote: null, maxDiscountAmount: 5_000,
      template: { name: 'Black Friday 10%', discount: { type: 'PERCENT', value: 10, maxAmount: 5_000 }, minOrderAmount: 10_000 },
    });
    const quoted = (await t.app.inject({ url: `/v1/coupons/${couponId}?orderAmount=34567`, headers: partner.headers })).json();
    expect(quoted.quote).toEqual({ orderAmount: 34_567, discountAmount: 3_456, redeemable: true, refusal: null });
    const small = (await t.app.inject({ url: `/v1/coupons/${couponId}?orderAmount=500`, headers: partner.headers })).json();
    expect(small.quote).toEqual({ orderAmount: 500, discountAmount: 50, redeemable: false, refusal: 'MIN_ORDER_AMOUNT_NOT_MET' });
    now = validUntil;
    const expired = (await t.app.inject({ url: `/v1/coupons/${couponId}?orderAmount=20000`, headers: partner.headers })).json();
    expect(expired).toMatchObject({ status: 'EXPIRED', quote: { redeemable: false, refusal: 'COUPON_EXPIRED' } });
    expect(await storedStatus(couponId)).toBe('ISSUED'); // read as EXPIRED before the job marks it
  });

  it('lists a user’s coupons newest first, filtered by the status readers see, page by page', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { perUserLimit: 10 });
    const userId = `user-${randomUUID()}`;
    const issue = (validUntil: Date) => issueCoupon(t.ctx.db, { partnerId: partner.id, templateId, userId, validFrom: new Date(now.getTime() - DAY), validUntil });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await issue(new Date(now.getTime() + DAY)));
    const pastDue = await issue(new Date(now.getTime() - HOUR)); // not yet marked by the job
    await redeem(partner.headers, ids[1]!, { userId, orderId: 'order-a', orderAmount: 20_000 });
    const list = async (query: string) => (await t.app.inject({ url: `/v1/users/${userId}/coupons?${query}`, headers: partner.headers })).json();

    const all = await list('');
    expect(all.items.map((c: { id: string }) => c.id)).toEqual([pastDue, ids[4], ids[3], ids[2], ids[1], ids[0]]);
    expect((await list('status=USED')).items.map((c: { id: string }) => c.id)).toEqual([ids[1]]);
    expect((await list('status=EXPIRED')).items.map((c: { id: string; status: string }) => [c.id, c.status])).toEqual([[pastDue, 'EXPIRED']]);
    const issuedIds = [ids[4], ids[3], ids[2], ids[0]];
    const first = await list('status=ISSUED&limit=3');
    expect(first.items.map((c: { id: string }) => c.id)).toEqual(issuedIds.slice(0, 3));
    const second = await list(`status=ISSUED&limit=3&cursor=${first.nextCursor}`);
    expect(second.items.map((c: { id: string }) => c.id)).toEqual(issuedIds.slice(3));
    expect(second.nextCursor).toBeNull();
  });

  it('expires past-due coupons in bounded batches, safely re-run and run concurrently', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { perUserLimit: 100 });
    const userId = `user-${randomUUID()}`;
    // Real past windows: the job is global, and must only ever expire what is really due.
    const due: string[] = [];
    for (let i = 0; i < 35; i++) {
      due.push(await issueCoupon(t.ctx.db, { partnerId: partner.id, templateId, userId, validFrom: new Date(now.getTime() - DAY), validUntil: new Date(now.getTime() - 1) }));
    }
    const valid = await issueCoupon(t.ctx.db, { partnerId: partner.id, templateId, userId, validFrom: new Date(now.getTime() - DAY), validUntil: new Date(now.getTime() + DAY) });
    const used = await issueCoupon(t.ctx.db, { partnerId: partner.id, templateId, userId, validFrom: new Date(now.getTime() - DAY), validUntil: new Date(now.getTime() + HOUR) });
    await redeem(partner.headers, used, { userId, orderId: 'order-a', orderAmount: 20_000 });
    // its window has closed since: it stays USED
    await t.ctx.db.query('UPDATE coupons SET valid_until = $2 WHERE id = $1', [used, new Date(now.getTime() - 1)]);

    const options = { intervalMs: 60_000, batchSize: 10, maxBatchesPerRun: 100 };
    const [a, b] = await Promise.all([expireDueCoupons(t.ctx, options), expireDueCoupons(t.ctx, options)]);
    expect(a + b).toBeGreaterThanOrEqual(35);
    const { rows } = await t.ctx.db.query<{ id: string; status: string }>(
      'SELECT id, status FROM coupons WHERE template_id = $1', [templateId]);
    const statusOf = new Map(rows.map((r) => [r.id, r.status]));
    expect(due.every((id) => statusOf.get(id) === 'EXPIRED')).toBe(true);
    expect([statusOf.get(valid), statusOf.get(used)]).toEqual(['ISSUED', 'USED']);
    const { rows: left } = await t.ctx.db.query(
      "SELECT 1 FROM coupons WHERE template_id = $1 AND status = 'ISSUED' AND valid_until <= $2", [templateId, now]);
    expect(left).toEqual([]);
  });

  it('stops a run after maxBatchesPerRun batches', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { perUserLimit: 100 });
    for (let i = 0; i < 12; i++) {
      await issueCoupon(t.ctx.db, { partnerId: partner.id, templateId, userId: `u${i}`, validFrom: new Date(now.getTime() - DAY), validUntil: new Date(now.getTime() - 1) });
    }
    // At least 12 are due (other files' due coupons may share the batches): the bound decides.
    expect(await expireDueCoupons(t.ctx, { intervalMs: 60_000, batchSize: 2, maxBatchesPerRun: 3 })).toBe(6);
  });

  it('runs as a scheduled worker that stops cleanly', async () => {
    const { couponId } = await setup({ validFrom: new Date(now.getTime() - DAY), validUntil: new Date(now.getTime() - 1) });
    const stop = await couponExpiryWorker({ intervalMs: 20, batchSize: 100, maxBatchesPerRun: 10 })(t.ctx);
    try {
      await vi.waitFor(async () => { expect(await storedStatus(couponId)).toBe('EXPIRED'); }, { timeout: 10_000, interval: 20 });
    } finally {
      await stop();
    }
  });
});
