// When an issued coupon may be used. ABSOLUTE templates give every coupon the same window;
// RELATIVE templates give `days` from the instant of issue (claim or distribution).
import type { CouponTemplate } from './template-repository.ts';

const DAY_MS = 86_400_000;

export function couponValidity(validity: CouponTemplate['validity'], issuedAt: Date): { validFrom: Date; validUntil: Date } {
  if (validity.type === 'ABSOLUTE') return { validFrom: validity.validFrom, validUntil: validity.validUntil };
  return { validFrom: issuedAt, validUntil: new Date(issuedAt.getTime() + validity.days * DAY_MS) };
}
