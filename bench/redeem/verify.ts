// Exact checks after a strategy's run: every coupon answered 200 exactly once, every other answer
// is 409 COUPON_ALREADY_USED on a contended coupon, and PostgreSQL agrees with the answers: used
// coupons = successful answers, each used once on the answered order with the answered discount,
// and exactly one redemption in force per used coupon in the history.
import { discountFor } from '../../src/coupons/discount-rules.ts';
import type { Db } from '../../src/infra/db.ts';
import type { Answer, PlannedRedeem } from './load-generator.ts';
import { BENCH_DISCOUNT } from './seed.ts';

export interface Verification {
  readonly successes: number;
  readonly alreadyUsed: number;
  /** Coupons answered 200 on two orders, or with two redemptions in force in the history. */
  readonly doubleUses: number;
  readonly problems: string[];
}

export async function verifyRedemptions(db: Db, templateId: string, requests: readonly PlannedRedeem[], answers: readonly Answer[]): Promise<Verification> {
  const problems: string[] = [];
  const note = (problem: string) => { if (problems.length < 20) problems.push(problem); };
  const winners = new Map<string, { orderId: string; discountAmount: number }>();
  let alreadyUsed = 0;
  let doubleUses = 0;
  requests.forEach(([couponId, , orderId, orderAmount], i) => {
    const [status, body] = answers[i] ?? [0, 'no answer'];
    if (status === 200) {
      const answer = JSON.parse(body) as { couponId: string; orderId: string; discountAmount: number; status: string };
      const expected = discountFor(BENCH_DISCOUNT, orderAmount);
      if (answer.couponId !== couponId || answer.orderId !== orderId || answer.status !== 'USED' || answer.discountAmount !== expected) {
        note(`request ${i}: 200 with a wrong body ${body}`);
      }
      if (winners.has(couponId)) {
        doubleUses++;
        note(`coupon ${couponId}: a second 200 (double use)`);
      }
      winners.set(couponId, { orderId, discountAmount: answer.discountAmount });
    } else if (status === 409 && body.includes('"COUPON_ALREADY_USED"')) {
      alreadyUsed++;
    } else {
      note(`request ${i}: unexpected answer ${status} ${body.slice(0, 200)}`);
    }
  });
  const planned = new Set(requests.map(([couponId]) => couponId));
  if (winners.size !== planned.size) note(`${planned.size} coupons planned but ${winners.size} answered 200 once`);
  if (alreadyUsed !== requests.length - planned.size) note(`${alreadyUsed} COUPON_ALREADY_USED, expected ${requests.length - planned.size}`);

  const { rows: coupons } = await db.query<{ id: string; status: string; order_id: string | null; discount_amount: number | null }>(
    'SELECT id, status, order_id, discount_amount FROM coupons WHERE template_id = $1', [templateId]);
  const used = coupons.filter((row) => row.status === 'USED');
  if (used.length !== winners.size) note(`${used.length} coupons USED in PostgreSQL, ${winners.size} successful answers`);
  for (const row of used) {
    const winner = winners.get(row.id);
    if (!winner || winner.orderId !== row.order_id || winner.discountAmount !== row.discount_amount) {
      note(`coupon ${row.id}: stored ${row.order_id}/${row.discount_amount}, answered ${winner?.orderId}/${winner?.discountAmount}`);
    }
  }

  const { rows: history } = await db.query<{ coupon_id: string; rows: number; in_force: number; order_id: string; discount_amount: number }>(
    `SELECT r.coupon_id, count(*)::int AS rows, count(*) FILTER (WHERE r.cancelled_at IS NULL)::int AS in_force,
            min(r.order_id) AS order_id, min(r.discount_amount) AS discount_amount
       FROM coupon_redemptions r JOIN coupons c ON c.id = r.coupon_id
      WHERE c.template_id = $1 GROUP BY r.coupon_id`,
    [templateId],
  );
  if (history.length !== winners.size) note(`${history.length} coupons in the history, ${winners.size} successful answers`);
  for (const row of history) {
    if (row.in_force > 1) doubleUses++;
    const winner = winners.get(row.coupon_id);
    if (row.rows !== 1 || row.in_force !== 1 || !winner || winner.orderId !== row.order_id || winner.discountAmount !== row.discount_amount) {
      note(`coupon ${row.coupon_id}: history ${row.rows} rows (${row.in_force} in force) ${row.order_id}/${row.discount_amount}`);
    }
  }
  return { successes: winners.size, alreadyUsed, doubleUses, problems };
}
