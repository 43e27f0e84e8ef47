import { describe, expect, it } from 'vitest';
import { discountFor, maxDiscountFor, meetsMinimum } from './discount-rules.ts';
import { diagnoseCancel, diagnoseRedemption, effectiveStatus, redemptionRefusal, type CouponState } from './redemption-rules.ts';
import { validityPhase } from './validity.ts';

describe('discountFor', () => {
  it.each([
    ['FIXED below the order', { type: 'FIXED', value: 3_000 } as const, 10_000, 3_000],
    ['FIXED equal to the order', { type: 'FIXED', value: 10_000 } as const, 10_000, 10_000],
    ['FIXED above the order: never more than the order', { type: 'FIXED', value: 15_000 } as const, 10_000, 10_000],
    ['FIXED on a zero order', { type: 'FIXED', value: 500 } as const, 0, 0],
    ['PERCENT exact', { type: 'PERCENT', value: 10 } as const, 10_000, 1_000],
    ['PERCENT rounds down', { type: 'PERCENT', value: 15 } as const, 999, 149],
    ['PERCENT below one minor unit rounds to 0', { type: 'PERCENT', value: 10 } as const, 9, 0],
    ['PERCENT on a zero order', { type: 'PERCENT', value: 50 } as const, 0, 0],
    ['PERCENT 100 gives the whole order', { type: 'PERCENT', value: 100 } as const, 12_345, 12_345],
    ['PERCENT under the cap', { type: 'PERCENT', value: 10, maxAmount: 5_000 } as const, 49_999, 4_999],
    ['PERCENT exactly at the cap', { type: 'PERCENT', value: 10, maxAmount: 5_000 } as const, 50_000, 5_000],
    ['PERCENT above the cap is capped', { type: 'PERCENT', value: 10, maxAmount: 5_000 } as const, 1_000_000, 5_000],
    ['PERCENT on the largest order stays exact', { type: 'PERCENT', value: 99 } as const, 1_000_000_000_000, 990_000_000_000],
  ])('%s', (_label, discount, orderAmount, expected) => {
    expect(discountFor(discount, orderAmount)).toBe(expected);
  });

  it('knows the most a coupon can take off', () => {
    expect(maxDiscountFor({ type: 'FIXED', value: 700 })).toBe(700);
    expect(maxDiscountFor({ type: 'PERCENT', value: 10, maxAmount: 5_000 })).toBe(5_000);
    expect(maxDiscountFor({ type: 'PERCENT', value: 10 })).toBeNull();
  });
});

describe('meetsMinimum', () => {
  it('is inclusive at the minimum', () => {
    expect(meetsMinimum(10_000, 9_999)).toBe(false);
    expect(meetsMinimum(10_000, 10_000)).toBe(true);
    expect(meetsMinimum(0, 0)).toBe(true);
  });
});

describe('validityPhase', () => {
  const window = { validFrom: new Date('2026-12-01T00:00:00.000Z'), validUntil: new Date('2026-12-31T00:00:00.000Z') };
  it.each([
    ['one millisecond before validFrom', '2026-11-30T23:59:59.999Z', 'NOT_YET_VALID'],
    ['exactly validFrom (inclusive)', '2026-12-01T00:00:00.000Z', 'VALID'],
    ['one millisecond before validUntil', '2026-12-30T23:59:59.999Z', 'VALID'],
    ['exactly validUntil (exclusive)', '2026-12-31T00:00:00.000Z', 'EXPIRED'],
  ])('%s', (_label, at, phase) => {
    expect(validityPhase(window, new Date(at))).toBe(phase);
  });
});

const issued: CouponState = {
  userId: 'u1',
  status: 'ISSUED',
  orderId: null,
  validFrom: new Date('2026-12-01T00:00:00Z'),
  validUntil: new Date('2026-12-31T00:00:00Z'),
  minOrderAmount: 10_000,
};
const inWindow = new Date('2026-12-15T00:00:00Z');
const atExpiry = new Date('2026-12-31T00:00:00Z');

describe('effectiveStatus', () => {
  it('reads an ISSUED coupon as EXPIRED from the instant validUntil, before the job marks it', () => {
    expect(effectiveStatus(issued, inWindow)).toBe('ISSUED');
    expect(effectiveStatus(issued, atExpiry)).toBe('EXPIRED');
  });
  it('keeps USED coupons USED after their window', () => {
    expect(effectiveStatus({ ...issued, status: 'USED' }, atExpiry)).toBe('USED');
  });
});

describe('redemptionRefusal', () => {
  it('accepts a valid coupon on an order at the minimum', () => {
    expect(redemptionRefusal(issued, 10_000, inWindow)).toBeUndefined();
  });
  it.each([
    ['used', { status: 'USED' as const, orderId: 'o1' }, 10_000, inWindow, 'COUPON_ALREADY_USED'],
    ['marked expired', { status: 'EXPIRED' as const }, 10_000, inWindow, 'COUPON_EXPIRED'],
    ['past validUntil', {}, 10_000, atExpiry, 'COUPON_EXPIRED'],
    ['before validFrom', {}, 10_000, new Date('2026-11-30T00:00:00Z'), 'COUPON_NOT_YET_VALID'],
    ['below the minimum', {}, 9_999, inWindow, 'MIN_ORDER_AMOUNT_NOT_MET'],
    ['expired and below the minimum: expiry wins', {}, 1, atExpiry, 'COUPON_EXPIRED'],
  ])('refuses a coupon %s', (_label, change, orderAmount, now, code) => {
    expect(redemptionRefusal({ ...issued, ...change }, orderAmount, now)).toBe(code);
  });
});

describe('redemptionRefusal of a revoked coupon', () => {
  it('refuses it as COUPON_REVOKED, inside its window and on an order above the minimum', () => {
    expect(redemptionRefusal({ ...issued, status: 'REVOKED' }, 20_000, inWindow)).toBe('COUPON_REVOKED');
    expect(effectiveStatus({ ...issued, status: 'REVOKED' }, atExpiry)).toBe('REVOKED');
  });
});

describe('diagnoseRedemption', () => {
  const request = { userId: 'u1', orderId: 'o1', orderAmount: 20_000 };
  it('answers not found for a missing coupon and for another user’s', () => {
    expect(diagnoseRedemption(undefined, request, inWindow)).toEqual({ kind: 'refuse', code: 'COUPON_NOT_FOUND' });
    expect(diagnoseRedemption({ ...issued, userId: 'u2' }, request, inWindow)).toEqual({ kind: 'refuse', code: 'COUPON_NOT_FOUND' });
  });
  it('replays a redemption on the same order, even after the window closed', () => {
    expect(diagnoseRedemption({ ...issued, status: 'USED', orderId: 'o1' }, request, atExpiry)).toEqual({ kind: 'replay' });
  });
  it('refuses a coupon used on another order', () => {
    expect(diagnoseRedemption({ ...issued, status: 'USED', orderId: 'o2' }, request, inWindow)).toEqual({ kind: 'refuse', code: 'COUPON_ALREADY_USED' });
  });
  it('asks for a retry when the row is redeemable (it changed after the UPDATE)', () => {
    expect(diagnoseRedemption(issued, request, inWindow)).toEqual({ kind: 'retry' });
  });
  it('replays only a USED coupon, whatever order id the row carries otherwise', () => {
    expect(diagnoseRedemption({ ...issued, orderId: 'o1' }, request, inWindow)).toEqual({ kind: 'retry' });
    expect(diagnoseRedemption({ ...issued, status: 'EXPIRED', orderId: 'o1' }, request, inWindow)).toEqual({ kind: 'refuse', code: 'COUPON_EXPIRED' });
  });
});

describe('diagnoseCancel', () => {
  it('replays a cancellation already done while the coupon is not used again', () => {
    expect(diagnoseCancel({ status: 'ISSUED', orderId: null }, 'o1', true)).toEqual({ kind: 'replay' });
    expect(diagnoseCancel({ status: 'EXPIRED', orderId: null }, 'o1', true)).toEqual({ kind: 'replay' });
  });
  it('refuses another order, a never-redeemed coupon, and an old order once the coupon is used again', () => {
    expect(diagnoseCancel({ status: 'USED', orderId: 'o2' }, 'o1', false)).toEqual({ kind: 'refuse', code: 'ORDER_MISMATCH' });
    expect(diagnoseCancel({ status: 'ISSUED', orderId: null }, 'o1', false)).toEqual({ kind: 'refuse', code: 'ORDER_MISMATCH' });
    expect(diagnoseCancel({ status: 'USED', orderId: 'o2' }, 'o1', true)).toEqual({ kind: 'refuse', code: 'ORDER_MISMATCH' });
  });
  it('answers not found for a missing coupon and retries one used on this very order', () => {
    expect(diagnoseCancel(undefined, 'o1', false)).toEqual({ kind: 'refuse', code: 'COUPON_NOT_FOUND' });
    expect(diagnoseCancel({ status: 'USED', orderId: 'o1' }, 'o1', false)).toEqual({ kind: 'retry' });
  });
  it('retries only a coupon USED on this order, whatever order id the row carries otherwise', () => {
    expect(diagnoseCancel({ status: 'ISSUED', orderId: 'o1' }, 'o1', true)).toEqual({ kind: 'replay' });
    expect(diagnoseCancel({ status: 'EXPIRED', orderId: 'o1' }, 'o1', false)).toEqual({ kind: 'refuse', code: 'ORDER_MISMATCH' });
  });
});
