// Redeeming and cancelling: the conditional UPDATE decides; when it matches nothing, one read of
// the coupon explains why (redemption-rules.ts). A coupon acknowledged by a claim but not yet in
// PostgreSQL (distributed mode) is persisted from its claim record first (read-your-writes).
import type { AppContext } from '../context.ts';
import { AppError, type ErrorCode } from '../errors.ts';
import {
  cancelRedemption, findCoupon, findCouponForCancel, redeemCoupon, type Coupon, type RedeemRequest, type Redemption,
} from './coupon-repository.ts';
import { diagnoseCancel, diagnoseRedemption } from './redemption-rules.ts';

// A "retry" diagnosis needs a redeem and a cancel to interleave with this call; a few rounds
// settle any realistic interleaving, and the caller gets a retryable 503 past that.
const MAX_ATTEMPTS = 3;

const OUTCOME_BY_CODE: Partial<Record<ErrorCode, string>> = {
  COUPON_ALREADY_USED: 'already_used',
  COUPON_EXPIRED: 'expired',
  COUPON_NOT_YET_VALID: 'not_yet_valid',
  MIN_ORDER_AMOUNT_NOT_MET: 'min_order',
  COUPON_NOT_FOUND: 'not_found',
  ORDER_MISMATCH: 'order_mismatch',
  COUPON_REVOKED: 'revoked',
};

export async function redeem(ctx: AppContext, request: Omit<RedeemRequest, 'now'>): Promise<Redemption> {
  const now = ctx.clock();
  const { partnerId, couponId } = request;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const redeemed = await redeemCoupon(ctx.db, { ...request, now });
    if (redeemed) {
      ctx.metrics.couponRedemptions.inc({ outcome: 'used' });
      return redeemed;
    }
    // A coupon claimed a moment ago comes back ISSUED from here: "retry" runs the UPDATE again.
    const coupon = await findOrPersist(ctx, partnerId, couponId, () => findCoupon(ctx.db, partnerId, couponId));
    const diagnosis = diagnoseRedemption(coupon, request, now);
    if (diagnosis.kind === 'replay') {
      ctx.metrics.couponRedemptions.inc({ outcome: 'replayed' });
      return storedRedemption(coupon!);
    }
    if (diagnosis.kind === 'refuse') throw refusal(ctx, diagnosis.code);
  }
  throw new AppError('SERVICE_UNAVAILABLE', 'The coupon changed during the redemption; retry.');
}

export async function cancel(ctx: AppContext, partnerId: string, couponId: string, orderId: string): Promise<Coupon> {
  const now = ctx.clock();
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const cancelled = await cancelRedemption(ctx.db, partnerId, couponId, orderId, now);
    if (cancelled) {
      ctx.metrics.couponRedemptions.inc({ outcome: 'cancelled' });
      return cancelled;
    }
    // A coupon still pending was never redeemed, but it exists: ORDER_MISMATCH, not 404.
    const found = await findOrPersist(ctx, partnerId, couponId, () => findCouponForCancel(ctx.db, partnerId, couponId, orderId));
    const diagnosis = diagnoseCancel(found?.coupon, orderId, found?.orderWasCancelled ?? false);
    if (diagnosis.kind === 'replay') {
      ctx.metrics.couponRedemptions.inc({ outcome: 'cancel_replayed' });
      return found!.coupon;
    }
    if (diagnosis.kind === 'refuse') throw refusal(ctx, diagnosis.code);
  }
  throw new AppError('SERVICE_UNAVAILABLE', 'The coupon changed during the cancellation; retry.');
}

export async function readCoupon(ctx: AppContext, partnerId: string, couponId: string): Promise<Coupon> {
  const coupon = await findOrPersist(ctx, partnerId, couponId, () => findCoupon(ctx.db, partnerId, couponId));
  if (!coupon) throw new AppError('COUPON_NOT_FOUND');
  return coupon;
}

/**
 * Runs `find`; when it finds nothing, persists the coupon in case it was claimed but is not in
 * PostgreSQL yet (a no-op in embedded mode) and runs `find` once more.
 */
async function findOrPersist<T>(ctx: AppContext, partnerId: string, couponId: string, find: () => Promise<T | undefined>): Promise<T | undefined> {
  const found = await find();
  if (found) return found;
  await ctx.pendingCoupons.persistCoupon(partnerId, couponId);
  return find();
}

function storedRedemption(coupon: Coupon): Redemption {
  return {
    couponId: coupon.id,
    orderId: coupon.orderId!,
    orderAmount: coupon.orderAmount!,
    discountAmount: coupon.discountAmount!,
    redeemedAt: coupon.usedAt!,
  };
}

function refusal(ctx: AppContext, code: ErrorCode): AppError {
  ctx.metrics.couponRedemptions.inc({ outcome: OUTCOME_BY_CODE[code] ?? code.toLowerCase() });
  return new AppError(code);
}
