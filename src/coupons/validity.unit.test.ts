import { describe, expect, it } from 'vitest';
import { couponValidity } from './validity.ts';

describe('couponValidity', () => {
  const issuedAt = new Date('2026-11-27T10:00:00.000Z');

  it('gives ABSOLUTE templates their fixed window whatever the issue time', () => {
    const validFrom = new Date('2026-11-01T00:00:00Z');
    const validUntil = new Date('2026-12-01T00:00:00Z');
    expect(couponValidity({ type: 'ABSOLUTE', validFrom, validUntil }, issuedAt)).toEqual({ validFrom, validUntil });
  });

  it('gives RELATIVE templates exactly `days` × 24 h from the instant of issue', () => {
    expect(couponValidity({ type: 'RELATIVE', days: 7 }, issuedAt)).toEqual({
      validFrom: issuedAt,
      validUntil: new Date('2026-12-04T10:00:00.000Z'),
    });
  });
});
