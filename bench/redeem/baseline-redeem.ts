// The baseline the redeem benchmark compares against: the usual first design. Lock the coupon
// row with SELECT … FOR UPDATE, decide in TypeScript, then UPDATE it and insert the history row,
// in one transaction. It is correct (the row lock serialises concurrent redeems) and applies the
// product's own rules, so the benchmark measures only the strategy: a locked read, a decision in
// the application and three more round trips while the lock is held, versus one statement.
import type { Db } from '../../src/infra/db.ts';
import { withTransaction } from '../../src/infra/db.ts';
import { AppError } from '../../src/errors.ts';
import { discountFor } from '../../src/coupons/discount-rules.ts';
import { diagnoseRedemption } from '../../src/coupons/redemption-rules.ts';

export interface RedeemAnswer {
  couponId: string;
  orderId: string;
  orderAmount: number;
  discountAmount: number;
  status: 'USED';
  redeemedAt: string;
}

interface LockedRow {
  user_id: string;
  status: 'ISSUED' | 'USED' | 'EXPIRED';
  order_id: string | null;
  order_amount: number | null;
  discount_amount: number | null;
  used_at: Date | null;
  valid_from: Date;
  valid_until: Date;
  min_order_amount: number;
  discount_type: 'FIXED' | 'PERCENT';
  discount_value: number;
  discount_max_amount: number | null;
}

export async function redeemWithRowLock(
  db: Db,
  r: { partnerId: string; couponId: string; userId: string; orderId: string; orderAmount: number },
): Promise<RedeemAnswer> {
  return withTransaction(db, async (tx) => {
    const now = new Date();
    const { rows } = await tx.query<LockedRow>(
      `SELECT c.user_id, c.status, c.order_id, c.order_amount, c.discount_amount, c.used_at, c.valid_from, c.valid_until,
              t.min_order_amount, t.discount_type, t.discount_value, t.discount_max_amount
         FROM coupons c JOIN coupon_templates t ON t.id = c.template_id
        WHERE c.id = $1 AND c.partner_id = $2
          FOR UPDATE OF c`,
      [r.couponId, r.partnerId],
    );
    const row = rows[0];
    const coupon = row && {
      userId: row.user_id, status: row.status, orderId: row.order_id,
      validFrom: row.valid_from, validUntil: row.valid_until, minOrderAmount: row.min_order_amount,
    };
    const diagnosis = diagnoseRedemption(coupon, r, now);
    if (diagnosis.kind === 'replay') {
      return { couponId: r.couponId, orderId: row!.order_id!, orderAmount: row!.order_amount!, discountAmount: row!.discount_amount!, status: 'USED', redeemedAt: row!.used_at!.toISOString() };
    }
    if (diagnosis.kind === 'refuse') throw new AppError(diagnosis.code);
    const discount = row!.discount_type === 'FIXED'
      ? { type: 'FIXED' as const, value: row!.discount_value }
      : { type: 'PERCENT' as const, value: row!.discount_value, maxAmount: row!.discount_max_amount ?? undefined };
    const discountAmount = discountFor(discount, r.orderAmount);
    await tx.query(
      `UPDATE coupons SET status = 'USED', used_at = $2, order_id = $3, order_amount = $4, discount_amount = $5 WHERE id = $1`,
      [r.couponId, now, r.orderId, r.orderAmount, discountAmount],
    );
    await tx.query(
      `INSERT INTO coupon_redemptions (coupon_id, partner_id, order_id, order_amount, discount_amount, redeemed_at)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [r.couponId, r.partnerId, r.orderId, r.orderAmount, discountAmount, now],
    );
    return { couponId: r.couponId, orderId: r.orderId, orderAmount: r.orderAmount, discountAmount, status: 'USED', redeemedAt: now.toISOString() };
  });
}
