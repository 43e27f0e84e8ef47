// Pure decisions about a coupon's life: the status a reader sees, and why a redemption that the
// conditional UPDATE refused was refused. The UPDATE is the decision; these rules only explain
// its "no" from one read of the row (and compute quotes for GET), with the same instants:
// validFrom inclusive, validUntil exclusive.
import type { ErrorCode } from '../errors.ts';
import { meetsMinimum } from './discount-rules.ts';
import { validityPhase } from './validity.ts';

export type StoredStatus = 'ISSUED' | 'USED' | 'EXPIRED' | 'REVOKED';

export interface CouponState {
  userId: string;
  status: StoredStatus;
  orderId: string | null;
  validFrom: Date;
  validUntil: Date;
  minOrderAmount: number;
}

/**
 * What readers see: an ISSUED coupon past validUntil is EXPIRED at once, whether or not the
 * expiry job has marked the row yet. A USED coupon stays USED after its window.
 */
export function effectiveStatus(coupon: Pick<CouponState, 'status' | 'validFrom' | 'validUntil'>, now: Date): StoredStatus {
  if (coupon.status === 'ISSUED' && validityPhase(coupon, now) === 'EXPIRED') return 'EXPIRED';
  return coupon.status;
}

/** Why this coupon cannot be redeemed on an order of this amount now, or undefined if it can. */
export function redemptionRefusal(coupon: CouponState, orderAmount: number, now: Date): ErrorCode | undefined {
  if (coupon.status === 'USED') return 'COUPON_ALREADY_USED';
  if (coupon.status === 'EXPIRED') return 'COUPON_EXPIRED';
  if (coupon.status === 'REVOKED') return 'COUPON_REVOKED';
  const phase = validityPhase(coupon, now);
  if (phase === 'EXPIRED') return 'COUPON_EXPIRED';
  if (phase === 'NOT_YET_VALID') return 'COUPON_NOT_YET_VALID';
  if (!meetsMinimum(coupon.minOrderAmount, orderAmount)) return 'MIN_ORDER_AMOUNT_NOT_MET';
  return undefined;
}

export type RedemptionDiagnosis =
  /** Already used on this very order: answer the stored redemption again (idempotent). */
  | { kind: 'replay' }
  | { kind: 'refuse'; code: ErrorCode }
  /** The row is redeemable now: it changed between the UPDATE and the read (e.g. a cancel). */
  | { kind: 'retry' };

/** Explains why the conditional redeem UPDATE matched no row, from one read of the coupon. */
export function diagnoseRedemption(
  coupon: CouponState | undefined,
  request: { userId: string; orderId: string; orderAmount: number },
  now: Date,
): RedemptionDiagnosis {
  // Another user's coupon is indistinguishable from a missing one, like another partner's.
  if (!coupon || coupon.userId !== request.userId) return { kind: 'refuse', code: 'COUPON_NOT_FOUND' };
  if (coupon.status === 'USED' && coupon.orderId === request.orderId) return { kind: 'replay' };
  const refusal = redemptionRefusal(coupon, request.orderAmount, now);
  return refusal ? { kind: 'refuse', code: refusal } : { kind: 'retry' };
}

export type CancelDiagnosis = { kind: 'replay' } | { kind: 'refuse'; code: ErrorCode } | { kind: 'retry' };

/**
 * Explains why the conditional cancel UPDATE matched no row. Cancelling an order whose redemption
 * was already cancelled answers the coupon as it is now (idempotent), unless the coupon has since
 * been used on another order: that order's redemption is not this caller's to see as cancelled.
 */
export function diagnoseCancel(
  coupon: Pick<CouponState, 'status' | 'orderId'> | undefined,
  orderId: string,
  orderWasCancelled: boolean,
): CancelDiagnosis {
  if (!coupon) return { kind: 'refuse', code: 'COUPON_NOT_FOUND' };
  // Redeemed again on this order between the UPDATE and the read: cancellable now.
  if (coupon.status === 'USED' && coupon.orderId === orderId) return { kind: 'retry' };
  if (coupon.status !== 'USED' && orderWasCancelled) return { kind: 'replay' };
  return { kind: 'refuse', code: 'ORDER_MISMATCH' };
}
