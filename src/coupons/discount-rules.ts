// How much a coupon takes off an order. Amounts are integers in minor units. The same rule runs
// inside the redeem UPDATE as the SQL function coupon_discount() (migrations/020), so the amount
// written with the redemption is decided in the same statement that marks the coupon used;
// discount-rules-sql.test.ts runs both on the same cases so they cannot drift apart.
import type { Discount } from './template-rules.ts';

/**
 * FIXED: the value, never more than the order. PERCENT: value% of the order rounded down (the
 * shop never gives away a fraction of a minor unit), capped by maxAmount when set.
 */
export function discountFor(discount: Discount, orderAmount: number): number {
  if (discount.type === 'FIXED') return Math.min(discount.value, orderAmount);
  const percent = Math.floor((orderAmount * discount.value) / 100);
  return discount.maxAmount === undefined ? percent : Math.min(percent, discount.maxAmount);
}

/** The most a coupon can ever take off: known for FIXED and capped PERCENT, unbounded otherwise. */
export function maxDiscountFor(discount: Discount): number | null {
  if (discount.type === 'FIXED') return discount.value;
  return discount.maxAmount ?? null;
}

/** The minimum is inclusive: an order of exactly minOrderAmount qualifies. */
export const meetsMinimum = (minOrderAmount: number, orderAmount: number): boolean => orderAmount >= minOrderAmount;
