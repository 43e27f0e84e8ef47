// When an issued coupon may be used. ABSOLUTE templates give every coupon the same window;
// RELATIVE templates give `days` from the instant of issue (claim or distribution).
import type { CouponTemplate } from './template-repository.ts';

const DAY_MS = 86_400_000;

export function couponValidity(validity: CouponTemplate['validity'], issuedAt: Date): { validFrom: Date; validUntil: Date } {
  if (validity.type === 'ABSOLUTE') return { validFrom: validity.validFrom, validUntil: validity.validUntil };
  return { validFrom: issuedAt, validUntil: new Date(issuedAt.getTime() + validity.days * DAY_MS) };
}

export type ValidityPhase = 'NOT_YET_VALID' | 'VALID' | 'EXPIRED';

/**
 * Where `now` falls in a coupon's window. validFrom is inclusive and validUntil exclusive, so at
 * the exact instant validUntil the coupon is already expired and windows [a, b) and [b, c) never
 * overlap. The redeem UPDATE uses the same comparisons (valid_from <= now AND valid_until > now).
 */
export function validityPhase(window: { validFrom: Date; validUntil: Date }, now: Date): ValidityPhase {
  if (now.getTime() < window.validFrom.getTime()) return 'NOT_YET_VALID';
  if (now.getTime() >= window.validUntil.getTime()) return 'EXPIRED';
  return 'VALID';
}
