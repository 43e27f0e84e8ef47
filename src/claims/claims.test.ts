// The claim route against both gates (the ClaimGate contract suite): exactness under a stampede,
// the per-user limit, the window, tenancy, and what the answer and the row say.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { claimOnce, couponRows, drainClaims, issuedCountInDb, stampede } from '../../test/harness/claims.ts';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { ERROR_CATALOG } from '../errors.ts';
import { templateClaimKeys } from './redis-keys.ts';

// 6,000 claims through inject() took 4-6 s at load average 8 and 12.7 s at 17
// beside three other forks: vitest's 60 s default is within reach at 30-45. A deadline for
// failure, not a speed claim (claim throughput is bench:claim's).
const STAMPEDE_TIMEOUT_MS = 180_000;

describe.each([
  ['embedded (in-process gate)', false],
  ['distributed (Redis gate)', true],
])('claims, %s', (_mode, distributed) => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp({ distributed }); });
  afterAll(async () => { await t.close(); });

  it('2,000 users × 3 concurrent claims on 100 coupons: exactly 100 coupons, to 100 distinct users', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 100, perUserLimit: 1 });
    const answers = await stampede(t.app, partner.headers, templateId, 2_000, 3);

    const issued = answers.filter((a) => a.status === 201);
    expect(issued).toHaveLength(100);
    expect(new Set(issued.map((a) => a.userId)).size).toBe(100);
    expect(new Set(issued.map((a) => a.couponId)).size).toBe(100);
    const refused = answers.filter((a) => a.status !== 201);
    expect(refused.every((a) => a.status === 409 && (a.code === 'SOLD_OUT' || a.code === 'CLAIM_LIMIT_REACHED'))).toBe(true);

    await drainClaims(t.ctx, templateId);
    const rows = await couponRows(t.ctx.db, templateId);
    expect(rows).toHaveLength(100);
    expect(rows.map((row) => row.slot)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(new Set(rows.map((row) => row.id))).toEqual(new Set(issued.map((a) => a.couponId)));
    for (const row of rows) expect(issued.find((a) => a.couponId === row.id)!.userId).toBe(row.user_id);
    expect(await issuedCountInDb(t.ctx.db, templateId)).toBe(100);

    const template = (await t.app.inject({ url: `/v1/coupon-templates/${templateId}`, headers: partner.headers })).json();
    expect(template).toMatchObject({ issuedCount: 100, remaining: 0 });
  }, STAMPEDE_TIMEOUT_MS);

  it('with perUserLimit 3: exactly 100 coupons, nobody above 3, each user’s seqs 1..n', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 100, perUserLimit: 3 });
    const answers = await stampede(t.app, partner.headers, templateId, 2_000, 3);

    const issued = answers.filter((a) => a.status === 201);
    expect(issued).toHaveLength(100);
    expect(answers.filter((a) => a.status !== 201).every((a) => a.code === 'SOLD_OUT' || a.code === 'CLAIM_LIMIT_REACHED')).toBe(true);

    await drainClaims(t.ctx, templateId);
    const rows = await couponRows(t.ctx.db, templateId);
    expect(rows.map((row) => row.slot)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    const seqsByUser = new Map<string, number[]>();
    for (const row of rows) seqsByUser.set(row.user_id, [...(seqsByUser.get(row.user_id) ?? []), row.seq]);
    for (const seqs of seqsByUser.values()) {
      expect(seqs.length).toBeLessThanOrEqual(3);
      expect(seqs.sort()).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    }
  }, STAMPEDE_TIMEOUT_MS);

  it('a refusal answers its catalog code and message as JSON, with the request id', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 2, perUserLimit: 1 });
    const claim = (userId: string, requestId: string) => t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${templateId}/claims`, headers: { ...partner.headers, 'x-request-id': requestId }, payload: { userId },
    });
    const expectRefusal = async (userId: string, requestId: string, code: 'CLAIM_LIMIT_REACHED' | 'SOLD_OUT') => {
      const refused = await claim(userId, requestId);
      expect(refused.statusCode).toBe(409);
      expect(refused.headers['x-request-id']).toBe(requestId);
      expect(refused.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(refused.json()).toEqual({ error: { code, message: ERROR_CATALOG[code].message } });
    };
    expect((await claim('first', 'claim-1')).statusCode).toBe(201);
    await expectRefusal('first', 'limited-1', 'CLAIM_LIMIT_REACHED');
    expect((await claim('second', 'claim-2')).statusCode).toBe(201);
    await expectRefusal('third', 'sold-out-1', 'SOLD_OUT');
    await expectRefusal('fourth', 'sold-out-2', 'SOLD_OUT');
  });

  it('a user of a perUserLimit 3 event gets exactly 3 of 5 clicks, then CLAIM_LIMIT_REACHED', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 100, perUserLimit: 3 });
    const answers = await stampede(t.app, partner.headers, templateId, 1, 5, 'greedy');
    expect(answers.filter((a) => a.status === 201)).toHaveLength(3);
    expect(answers.filter((a) => a.code === 'CLAIM_LIMIT_REACHED')).toHaveLength(2);
  });

  it('Idempotency-Key: concurrent and later retries get the first coupon; another user with the key gets 422; a bad key 400', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 2, perUserLimit: 3 });
    const claim = (userId: string, key?: string) => t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${templateId}/claims`,
      headers: { ...partner.headers, ...(key ? { 'idempotency-key': key } : {}) }, payload: { userId },
    });
    const first = await Promise.all(Array.from({ length: 5 }, () => claim('alice', 'retry-1')));
    expect(first.map((response) => response.statusCode)).toEqual([201, 201, 201, 201, 201]);
    const couponIds = new Set(first.map((response) => response.json().couponId));
    expect(couponIds.size).toBe(1);
    expect((await claim('alice', 'retry-1')).json().couponId).toBe([...couponIds][0]);
    const reused = await claim('bob', 'retry-1');
    expect(reused.statusCode).toBe(422);
    expect(reused.json().error.code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect((await claim('alice', 'bad key')).statusCode).toBe(400);
    expect((await claim('alice')).statusCode).toBe(201); // no key: a new decision, the second coupon
    const soldOut = await claim('carol', 'retry-2');
    expect(soldOut.json().error.code).toBe('SOLD_OUT');
    expect((await claim('carol', 'retry-2')).json().error.code).toBe('SOLD_OUT');
    await drainClaims(t.ctx, templateId);
    expect((await couponRows(t.ctx.db, templateId)).map((row) => row.user_id)).toEqual(['alice', 'alice']);
    expect(await issuedCountInDb(t.ctx.db, templateId)).toBe(2);
  });

  it('refuses before the window with CLAIM_NOT_OPEN and after it with CLAIM_CLOSED', async () => {
    const partner = await createPartner(t.app);
    const now = Date.now();
    const future = await createTemplate(t.app, partner.headers, {
      claimStartsAt: new Date(now + 3_600_000).toISOString(), claimEndsAt: new Date(now + 7_200_000).toISOString(),
    });
    const past = await createTemplate(t.app, partner.headers, {
      claimStartsAt: new Date(now - 7_200_000).toISOString(), claimEndsAt: new Date(now - 3_600_000).toISOString(),
    });
    expect(await claimOnce(t.app, partner.headers, future, 'u1')).toMatchObject({ status: 409, code: 'CLAIM_NOT_OPEN' });
    expect(await claimOnce(t.app, partner.headers, past, 'u1')).toMatchObject({ status: 409, code: 'CLAIM_CLOSED' });
    // Closed seconds ago: decided by the gate's own clock (Redis TIME in distributed mode).
    const justClosed = await createTemplate(t.app, partner.headers, {
      claimStartsAt: new Date(now - 7_200_000).toISOString(), claimEndsAt: new Date(now - 5_000).toISOString(),
    });
    expect(await claimOnce(t.app, partner.headers, justClosed, 'u1')).toMatchObject({ status: 409, code: 'CLAIM_CLOSED' });
    await drainClaims(t.ctx, future);
    expect(await couponRows(t.ctx.db, future)).toEqual([]);
    expect(await couponRows(t.ctx.db, past)).toEqual([]);
  });

  it('a claim outside the window opens nothing: the event stays distributable and no gate state exists', async () => {
    const partner = await createPartner(t.app);
    const now = Date.now();
    const early = await createTemplate(t.app, partner.headers, {
      claimStartsAt: new Date(now + 3_600_000).toISOString(), claimEndsAt: new Date(now + 7_200_000).toISOString(),
    });
    const late = await createTemplate(t.app, partner.headers, {
      claimStartsAt: new Date(now - 7_200_000).toISOString(), claimEndsAt: new Date(now - 5_000).toISOString(),
    });
    expect(await claimOnce(t.app, partner.headers, early, 'u1')).toMatchObject({ status: 409, code: 'CLAIM_NOT_OPEN' });
    expect(await claimOnce(t.app, partner.headers, late, 'u1')).toMatchObject({ status: 409, code: 'CLAIM_CLOSED' });
    const { rows } = await t.ctx.db.query<{ opened: number }>(
      'SELECT count(*)::int AS opened FROM coupon_templates WHERE id = ANY($1::uuid[]) AND gate_opened_at IS NOT NULL', [[early, late]]);
    expect(rows[0]!.opened).toBe(0);
    const distribution = await t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${early}/distributions`, headers: partner.headers, payload: { userIds: ['bulk-1'] },
    });
    expect(distribution.statusCode).toBe(202);
    if (t.ctx.redis) {
      for (const templateId of [early, late]) {
        const keys = templateClaimKeys(templateId);
        expect(await t.ctx.redis.exists([keys.state, keys.users, keys.claims, keys.stream])).toBe(0);
      }
    }
    expect(await t.ctx.claimGate.issuedCount((await t.ctx.claimTemplates.get(early))!)).toBeUndefined();
  });

  it('answers 404 TEMPLATE_NOT_FOUND for another partner’s template and an unknown id, and issues nothing', async () => {
    const owner = await createPartner(t.app);
    const other = await createPartner(t.app);
    const templateId = await createTemplate(t.app, owner.headers);
    expect(await claimOnce(t.app, other.headers, templateId, 'u1')).toMatchObject({ status: 404, code: 'TEMPLATE_NOT_FOUND' });
    expect(await claimOnce(t.app, owner.headers, '0190a000-0000-7000-8000-000000000000', 'u1')).toMatchObject({ status: 404, code: 'TEMPLATE_NOT_FOUND' });
    const template = (await t.app.inject({ url: `/v1/coupon-templates/${templateId}`, headers: owner.headers })).json();
    expect(template).toMatchObject({ issuedCount: 0, remaining: 100 });
  });

  it('refuses a bad body with 400 naming the field', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers);
    for (const payload of [{}, { userId: '' }, { userId: 'has space' }, { userId: 'x'.repeat(129) }, { userId: 'u', extra: 1 }]) {
      const response = await t.app.inject({ method: 'POST', url: `/v1/coupon-templates/${templateId}/claims`, headers: partner.headers, payload });
      expect(response.statusCode).toBe(400);
      expect(response.json().error.code).toBe('VALIDATION_FAILED');
    }
  });

  it('answers the coupon the row will hold: RELATIVE validity counted from the instant of issue', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { validity: { type: 'RELATIVE', days: 7 }, totalQuantity: null });
    const response = await t.app.inject({ method: 'POST', url: `/v1/coupon-templates/${templateId}/claims`, headers: partner.headers, payload: { userId: 'alice' } });
    expect(response.statusCode).toBe(201);
    const coupon = response.json();
    expect(coupon).toMatchObject({ templateId, userId: 'alice', status: 'ISSUED' });
    expect(Date.parse(coupon.validUntil) - Date.parse(coupon.validFrom)).toBe(7 * 86_400_000);
    expect(Math.abs(Date.parse(coupon.validFrom) - Date.now())).toBeLessThan(10_000);

    await drainClaims(t.ctx, templateId);
    const [row] = await couponRows(t.ctx.db, templateId);
    expect(row).toMatchObject({ id: coupon.couponId, user_id: 'alice', slot: 1, seq: 1 });
    expect(row!.valid_from.toISOString()).toBe(coupon.validFrom);
    expect(row!.valid_until.toISOString()).toBe(coupon.validUntil);
    expect(row!.issued_at.toISOString()).toBe(coupon.validFrom);
  });

  it('counts outcomes in the claim metrics', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 1 });
    await claimOnce(t.app, partner.headers, templateId, 'first');
    await claimOnce(t.app, partner.headers, templateId, 'second');
    const text = await t.ctx.metrics.registry.metrics();
    expect(text).toContain(`stampede_claims_total{template="${templateId}",outcome="issued"} 1`);
    expect(text).toContain(`stampede_claims_total{template="${templateId}",outcome="sold_out"} 1`);
    expect(text).toContain(`stampede_claim_remaining{template="${templateId}"} 0`);
  });
});
