// The discount is computed twice by design: discountFor() for quotes in TypeScript and
// coupon_discount() inside the redeem UPDATE. This runs both on the same cases so they agree.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeContext, testContext } from '../../test/harness/test-app.ts';
import type { AppContext } from '../context.ts';
import { discountFor } from './discount-rules.ts';
import type { Discount } from './template-rules.ts';

describe('coupon_discount() in SQL agrees with discountFor()', () => {
  let ctx: AppContext;
  beforeAll(async () => { ctx = await testContext(); });
  afterAll(async () => { await closeContext(ctx); });

  it('on edge cases and a random sweep', async () => {
    const cases: Array<[Discount, number]> = [];
    const orders = [0, 1, 9, 99, 100, 101, 999, 10_000, 49_999, 50_000, 1_000_000_000_000];
    for (const order of orders) {
      for (const value of [1, 7, 10, 15, 33, 99, 100]) {
        cases.push([{ type: 'PERCENT', value }, order], [{ type: 'PERCENT', value, maxAmount: 5_000 }, order]);
      }
      for (const value of [1, 500, 10_000, 1_000_000_000_000]) cases.push([{ type: 'FIXED', value }, order]);
    }
    for (let i = 0; i < 500; i++) {
      const order = Math.floor(Math.random() * 10_000_000);
      cases.push(Math.random() < 0.5
        ? [{ type: 'FIXED', value: 1 + Math.floor(Math.random() * 100_000) }, order]
        : [{ type: 'PERCENT', value: 1 + Math.floor(Math.random() * 100), maxAmount: 1 + Math.floor(Math.random() * 100_000) }, order]);
    }
    const { rows } = await ctx.db.query<{ discount: number }>(
      `SELECT coupon_discount(c.type, c.value, c.max_amount, c.order_amount) AS discount
         FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS c(type, value, max_amount, order_amount, n)
        ORDER BY n`,
      [
        cases.map(([d]) => d.type),
        cases.map(([d]) => d.value),
        cases.map(([d]) => (d.type === 'PERCENT' ? d.maxAmount ?? null : null)),
        cases.map(([, order]) => order),
      ],
    );
    expect(rows.map((r) => r.discount)).toEqual(cases.map(([d, order]) => discountFor(d, order)));
  });
});
