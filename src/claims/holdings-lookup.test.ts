// Users' holdings are read in batches (a stampede of first claims costs a few queries, not one per
// user), answer exactly what PostgreSQL holds, and the waiting queue is bounded.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTemplate, issueCoupon } from '../../test/harness/issue-coupons.ts';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { AppError } from '../errors.ts';
import { heldCounts } from './claim-repository.ts';
import { HoldingsLookup } from './holdings-lookup.ts';

describe('holdings look-up', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp(); });
  afterAll(async () => { await t.close(); });

  it('answers 1,000 concurrent first claims with a handful of queries, each user exactly', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { perUserLimit: 3 });
    const validity = { validFrom: new Date(), validUntil: new Date(Date.now() + 86_400_000) };
    for (const [userId, coupons] of [['one', 1], ['three', 3]] as const) {
      for (let i = 0; i < coupons; i += 1) await issueCoupon(t.ctx.db, { partnerId: partner.id, templateId, userId, ...validity });
    }
    const queries: number[] = [];
    const lookup = new HoldingsLookup((id, userIds) => {
      queries.push(userIds.length);
      return heldCounts(t.ctx.db, id, userIds);
    });
    const users = ['one', 'three', ...Array.from({ length: 998 }, (_, i) => `nobody-${i}`)];
    const held = await Promise.all(users.map((userId) => lookup.get(templateId, userId)));
    expect(held.slice(0, 2)).toEqual([1, 3]);
    expect(held.slice(2).every((value) => value === undefined)).toBe(true);
    expect(queries.reduce((sum, size) => sum + size, 0)).toBe(1_000);
    expect(queries.length).toBeLessThanOrEqual(4); // two at once, then the rest gathered
  });

  it('refuses with 503 beyond its queue bound', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers);
    const lookup = new HoldingsLookup((id, userIds) => heldCounts(t.ctx.db, id, userIds), { maxBatch: 10, concurrency: 1, maxQueued: 5 });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => lookup.get(templateId, `u-${i}`).then(
      () => 'read', (error: unknown) => (error instanceof AppError ? error.code : String(error)))));
    // One batch left the queue at once; five waited; the rest were refused.
    expect(answers.filter((answer) => answer === 'read')).toHaveLength(6);
    expect(answers.filter((answer) => answer === 'SERVICE_UNAVAILABLE')).toHaveLength(14);
  });
});
