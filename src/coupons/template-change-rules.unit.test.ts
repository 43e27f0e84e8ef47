import { describe, expect, it } from 'vitest';
import { decideTemplateChange, stricterSettings } from './template-change-rules.ts';
import type { CouponTemplate } from './template-repository.ts';

const template: CouponTemplate = {
  id: 't', partnerId: 'p', name: 'Event', discount: { type: 'FIXED', value: 100 }, minOrderAmount: 0,
  totalQuantity: 100, perUserLimit: 2, issuedCount: 40,
  claimStartsAt: new Date('2030-01-01T00:00:00Z'), claimEndsAt: new Date('2030-01-02T00:00:00Z'),
  validity: { type: 'RELATIVE', days: 7 }, paused: false, settingsVersion: 3, claimThrottle: { perUserPerSecond: null, perClientAddressPerSecond: null }, createdAt: new Date('2029-12-01T00:00:00Z'),
};
const now = new Date('2030-01-01T12:00:00Z');

describe('decideTemplateChange', () => {
  it('lowers the stock down to the issued count, not below', () => {
    expect(decideTemplateChange(template, { totalQuantity: 40 }, 40, now)).toMatchObject({ after: { totalQuantity: 40 }, before: { totalQuantity: 100 } });
    expect(decideTemplateChange(template, { totalQuantity: 39 }, 40, now)).toMatchObject({ refusal: { code: 'TOTAL_QUANTITY_BELOW_ISSUED', details: { issuedCount: 40 } } });
  });
  it('raises the per-user limit only', () => {
    expect(decideTemplateChange(template, { perUserLimit: 1 }, 40, now)).toMatchObject({ refusal: { code: 'PER_USER_LIMIT_LOWERED' } });
    expect(decideTemplateChange(template, { perUserLimit: 3 }, 40, now)).toMatchObject({ after: { perUserLimit: 3 } });
  });
  it('ends now or later, never at or before the start', () => {
    expect(decideTemplateChange(template, { claimEndsAt: 'now' }, 40, now)).toMatchObject({ after: { claimEndsAt: now.toISOString() } });
    expect(decideTemplateChange(template, { claimEndsAt: '2030-01-01T00:00:00Z' }, 40, now)).toMatchObject({ refusal: { code: 'CLAIM_END_BEFORE_START' } });
  });
  it('refuses an absolute validity ending before the window opens', () => {
    const validity = { type: 'ABSOLUTE' as const, validFrom: '2029-01-01T00:00:00Z', validUntil: '2029-06-01T00:00:00Z' };
    expect(decideTemplateChange(template, { validity }, 40, now)).toMatchObject({ refusal: { code: 'VALIDATION_FAILED' } });
  });
  it('changes each claim throttle field given, keeps the other, null removes one', () => {
    const set = decideTemplateChange(template, { claimThrottle: { perUserPerSecond: 5 } }, 40, now);
    expect(set).toMatchObject({
      before: { claimThrottle: { perUserPerSecond: null, perClientAddressPerSecond: null } },
      after: { claimThrottle: { perUserPerSecond: 5, perClientAddressPerSecond: null } },
    });
    const throttled = { ...template, claimThrottle: { perUserPerSecond: 5, perClientAddressPerSecond: 50 } };
    expect(decideTemplateChange(throttled, { claimThrottle: { perClientAddressPerSecond: null } }, 40, now))
      .toMatchObject({ after: { claimThrottle: { perUserPerSecond: 5, perClientAddressPerSecond: null } } });
    expect(decideTemplateChange(throttled, { claimThrottle: { perUserPerSecond: 5 } }, 40, now)).toMatchObject({ before: {}, after: {} });
  });
  it('records only the fields that change', () => {
    expect(decideTemplateChange(template, { paused: false, name: 'Event', totalQuantity: 100 }, 40, now)).toMatchObject({ before: {}, after: {} });
  });
});

describe('stricterSettings', () => {
  it('takes the stricter of two settings on every field', () => {
    const next = { ...template, totalQuantity: 200, perUserLimit: 5, paused: true, claimEndsAt: new Date('2030-01-03T00:00:00Z') };
    expect(stricterSettings(template, next)).toMatchObject({ totalQuantity: 100, perUserLimit: 2, paused: true, claimEndsAt: template.claimEndsAt });
    expect(stricterSettings({ ...template, totalQuantity: null }, { ...template, totalQuantity: 50 }).totalQuantity).toBe(50);
  });
});
