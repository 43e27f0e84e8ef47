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
};

export async function redeem(ctx: AppContext, request: Omit<RedeemRequest, 'now'>): Promise<Redemption> {
  const now = ctx.clock();
  let persistedPending = false;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const redeemed = await redeemCoupon(ctx.db, { ...request, now });
    if (redeemed) {
      ctx.metrics.couponRedemptions.inc({ outcome: 'used' });
      return redeemed;
    }
    const coupon = await findCoupon(ctx.db, request.partnerId, request.couponId);
    if (!coupon && !persistedPending) {
      // Maybe claimed a moment ago and still on its way to PostgreSQL: persist it, try again.
      persistedPending = true;
      await ctx.pendingCoupons.persistCoupon(request.partnerId, request.couponId);
      continue;
    }
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
  let persistedPending = false;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const cancelled = await cancelRedemption(ctx.db, partnerId, couponId, orderId, now);
    if (cancelled) {
      ctx.metrics.couponRedemptions.inc({ outcome: 'cancelled' });
      return cancelled;
    }
    const found = await findCouponForCancel(ctx.db, partnerId, couponId, orderId);
    if (!found && !persistedPending) {
      // A coupon still pending was never redeemed, but it exists: answer ORDER_MISMATCH, not 404.
      persistedPending = true;
      await ctx.pendingCoupons.persistCoupon(partnerId, couponId);
      continue;
    }
    const diagnosis = diagnoseCancel(found?.coupon, orderId, found?.orderWasCancelled ?? false);
    if (diagnosis.kind === 'replay') {
      ctx.metrics.couponRedemptions.inc({ outcome: 'cancel_replayed' });
      return found!.coupon;
    }
    if (diagnosis.kind === 'refuse') throw refusal(ctx, diagnosis.code);
  }
  throw new AppError('SERVICE_UNAVAILABLE', 'The coupon changed during the cancellation; retry.');
}

/** Reads a coupon, persisting it first if it was claimed but is not in PostgreSQL yet. */
export async function readCoupon(ctx: AppContext, partnerId: string, couponId: string): Promise<Coupon> {
  let coupon = await findCoupon(ctx.db, partnerId, couponId);
  if (!coupon) {
    await ctx.pendingCoupons.persistCoupon(partnerId, couponId);
    coupon = await findCoupon(ctx.db, partnerId, couponId);
  }
  if (!coupon) throw new AppError('COUPON_NOT_FOUND');
  return coupon;
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
