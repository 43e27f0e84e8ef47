// SQL for issued coupons and their redemption history. Every statement is scoped by partner, so
// another partner's coupon id finds nothing. "now" is a parameter (the caller's clock) so the
// same instant decides the UPDATE and explains its refusal.
import type { Queryable } from '../infra/db.ts';
import type { StoredStatus } from './redemption-rules.ts';
import type { Discount } from './template-rules.ts';

export interface Coupon {
  id: string;
  partnerId: string;
  templateId: string;
  userId: string;
  /** As stored; readers apply effectiveStatus() for coupons the expiry job has not reached. */
  status: StoredStatus;
  validFrom: Date;
  validUntil: Date;
  issuedAt: Date;
  usedAt: Date | null;
  orderId: string | null;
  orderAmount: number | null;
  discountAmount: number | null;
  minOrderAmount: number;
  template: { name: string; discount: Discount };
}

export interface Redemption {
  couponId: string;
  orderId: string;
  orderAmount: number;
  discountAmount: number;
  redeemedAt: Date;
}

interface CouponRow {
  id: string;
  partner_id: string;
  template_id: string;
  user_id: string;
  status: StoredStatus;
  valid_from: Date;
  valid_until: Date;
  issued_at: Date;
  used_at: Date | null;
  order_id: string | null;
  order_amount: number | null;
  discount_amount: number | null;
  template_name: string;
  discount_type: 'FIXED' | 'PERCENT';
  discount_value: number;
  discount_max_amount: number | null;
  min_order_amount: number;
}

// A coupon with the template terms that decide its discount, joined as `c` and `t`.
const COUPON_COLUMNS = `c.id, c.partner_id, c.template_id, c.user_id, c.status, c.valid_from, c.valid_until,
  c.issued_at, c.used_at, c.order_id, c.order_amount, c.discount_amount, t.name AS template_name,
  t.discount_type, t.discount_value, t.discount_max_amount, t.min_order_amount`;

function toCoupon(row: CouponRow): Coupon {
  return {
    id: row.id,
    partnerId: row.partner_id,
    templateId: row.template_id,
    userId: row.user_id,
    status: row.status,
    validFrom: row.valid_from,
    validUntil: row.valid_until,
    issuedAt: row.issued_at,
    usedAt: row.used_at,
    orderId: row.order_id,
    orderAmount: row.order_amount,
    discountAmount: row.discount_amount,
    minOrderAmount: row.min_order_amount,
    template: {
      name: row.template_name,
      discount: row.discount_type === 'FIXED'
        ? { type: 'FIXED', value: row.discount_value }
        : { type: 'PERCENT', value: row.discount_value, ...(row.discount_max_amount === null ? {} : { maxAmount: row.discount_max_amount }) },
    },
  };
}

export interface RedeemRequest {
  partnerId: string;
  couponId: string;
  userId: string;
  orderId: string;
  orderAmount: number;
  now: Date;
}

/**
 * The redemption itself: one statement that marks the coupon USED only if it belongs to this
 * partner and user, is ISSUED, is inside its window at `now` and the order meets the minimum;
 * computes the discount from the template in the same statement and appends the history row.
 * Concurrent calls on one coupon queue on its row lock; after the first commits, the others
 * re-check `status = 'ISSUED'` on the new row version and match nothing. Undefined: nothing
 * matched (the caller explains why with findCoupon). The history row's trigger (migrations/090)
 * writes coupon.redeemed to the webhook outbox in this same statement (cancel: its cancellation).
 */
export async function redeemCoupon(db: Queryable, r: RedeemRequest): Promise<Redemption | undefined> {
  const { rows } = await db.query<{ id: string; order_id: string; order_amount: number; discount_amount: number; used_at: Date }>(
    `WITH redeemed AS (
       UPDATE coupons c
          SET status = 'USED', used_at = $6, order_id = $4, order_amount = $5,
              discount_amount = coupon_discount(t.discount_type, t.discount_value, t.discount_max_amount, $5)
         FROM coupon_templates t
        WHERE c.id = $1 AND c.partner_id = $2 AND c.user_id = $3 AND c.status = 'ISSUED'
          AND c.valid_from <= $6 AND c.valid_until > $6
          AND t.id = c.template_id AND t.min_order_amount <= $5
       RETURNING c.id, c.partner_id, c.order_id, c.order_amount, c.discount_amount, c.used_at
     ), history AS (
       INSERT INTO coupon_redemptions (coupon_id, partner_id, order_id, order_amount, discount_amount, redeemed_at)
       SELECT id, partner_id, order_id, order_amount, discount_amount, used_at FROM redeemed
     )
     SELECT id, order_id, order_amount, discount_amount, used_at FROM redeemed`,
    [r.couponId, r.partnerId, r.userId, r.orderId, r.orderAmount, r.now],
  );
  const row = rows[0];
  return row && { couponId: row.id, orderId: row.order_id, orderAmount: row.order_amount, discountAmount: row.discount_amount, redeemedAt: row.used_at };
}

/**
 * Undoes the redemption on `orderId`: back to ISSUED if still valid at `now`, EXPIRED otherwise,
 * and the history row marked cancelled, in one statement. Undefined: the coupon is not USED on
 * that order.
 */
export async function cancelRedemption(db: Queryable, partnerId: string, couponId: string, orderId: string, now: Date): Promise<Coupon | undefined> {
  const { rows } = await db.query<CouponRow>(
    `WITH cancelled AS (
       UPDATE coupons
          SET status = CASE WHEN valid_until > $4 THEN 'ISSUED' ELSE 'EXPIRED' END,
              used_at = NULL, order_id = NULL, order_amount = NULL, discount_amount = NULL
        WHERE id = $1 AND partner_id = $2 AND status = 'USED' AND order_id = $3
       RETURNING *
     ), history AS (
       UPDATE coupon_redemptions r SET cancelled_at = $4
         FROM cancelled
        WHERE r.coupon_id = cancelled.id AND r.cancelled_at IS NULL
     )
     SELECT ${COUPON_COLUMNS} FROM cancelled c JOIN coupon_templates t ON t.id = c.template_id`,
    [couponId, partnerId, orderId, now],
  );
  return rows[0] && toCoupon(rows[0]);
}

export async function findCoupon(db: Queryable, partnerId: string, couponId: string): Promise<Coupon | undefined> {
  const { rows } = await db.query<CouponRow>(
    `SELECT ${COUPON_COLUMNS} FROM coupons c JOIN coupon_templates t ON t.id = c.template_id
      WHERE c.id = $1 AND c.partner_id = $2`,
    [couponId, partnerId],
  );
  return rows[0] && toCoupon(rows[0]);
}

/** The coupon, and whether a redemption of it on `orderId` has been cancelled. */
export async function findCouponForCancel(db: Queryable, partnerId: string, couponId: string, orderId: string) {
  const { rows } = await db.query<CouponRow & { order_was_cancelled: boolean }>(
    `SELECT ${COUPON_COLUMNS},
            EXISTS (SELECT 1 FROM coupon_redemptions r
                     WHERE r.coupon_id = c.id AND r.order_id = $3 AND r.cancelled_at IS NOT NULL) AS order_was_cancelled
       FROM coupons c JOIN coupon_templates t ON t.id = c.template_id
      WHERE c.id = $1 AND c.partner_id = $2`,
    [couponId, partnerId, orderId],
  );
  const row = rows[0];
  return row && { coupon: toCoupon(row), orderWasCancelled: row.order_was_cancelled };
}

/**
 * A user's coupons, newest first (ids are UUIDv7, so id order is issue order), filtered by the
 * status readers see at `now`: an ISSUED row past its window counts as EXPIRED.
 */
export async function listUserCoupons(
  db: Queryable,
  q: { partnerId: string; userId: string; status: StoredStatus | undefined; now: Date; limit: number; before: string | undefined },
): Promise<Coupon[]> {
  const { rows } = await db.query<CouponRow>(
    `SELECT ${COUPON_COLUMNS} FROM coupons c JOIN coupon_templates t ON t.id = c.template_id
      WHERE c.partner_id = $1 AND c.user_id = $2 AND ($3::uuid IS NULL OR c.id < $3::uuid)
        AND CASE $4::text
              WHEN 'ISSUED' THEN c.status = 'ISSUED' AND c.valid_until > $5
              WHEN 'EXPIRED' THEN c.status = 'EXPIRED' OR (c.status = 'ISSUED' AND c.valid_until <= $5)
              WHEN 'USED' THEN c.status = 'USED'
              WHEN 'REVOKED' THEN c.status = 'REVOKED'
              ELSE true
            END
      ORDER BY c.id DESC LIMIT $6`,
    [q.partnerId, q.userId, q.before ?? null, q.status ?? null, q.now, q.limit],
  );
  return rows.map(toCoupon);
}

/**
 * Marks at most `batchSize` coupons past their window EXPIRED, as one statement (its own
 * transaction). SKIP LOCKED lets several processes run it at once on disjoint rows, and skips
 * rows a redeem or cancel holds; re-running is harmless because only ISSUED rows match.
 */
export async function expireCouponBatch(db: Queryable, now: Date, batchSize: number): Promise<number> {
  const { rowCount } = await db.query(
    `UPDATE coupons c SET status = 'EXPIRED'
       FROM (SELECT id FROM coupons
              WHERE status = 'ISSUED' AND valid_until <= $1
              ORDER BY valid_until LIMIT $2
              FOR UPDATE SKIP LOCKED) due
      WHERE c.id = due.id`,
    [now, batchSize],
  );
  return rowCount ?? 0;
}
