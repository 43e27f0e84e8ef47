import { describe, expect, it } from 'vitest';
import { belowIssued, decideTemplateChange, stricterSettings } from './template-change-rules.ts';
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

describe('decideTemplateChange: what a change becomes', () => {
  const changed = (patch: Parameters<typeof decideTemplateChange>[1], issued = 40) => {
    const decision = decideTemplateChange(template, patch, issued, now);
    if ('refusal' in decision) throw new Error(`refused: ${decision.refusal.message}`);
    return decision;
  };
  const refusal = (patch: Parameters<typeof decideTemplateChange>[1], issued = 40) => {
    const decision = decideTemplateChange(template, patch, issued, now);
    if (!('refusal' in decision)) throw new Error(`accepted: ${JSON.stringify(decision.after)}`);
    return decision.refusal;
  };

  it('records each changed field alone, before and after as the API shows them, and the settings that follow', () => {
    expect(changed({ name: 'Flash sale' })).toEqual({ next: { ...template, name: 'Flash sale' }, before: { name: 'Event' }, after: { name: 'Flash sale' } });
    expect(changed({ paused: true })).toEqual({ next: { ...template, paused: true }, before: { paused: false }, after: { paused: true } });
    expect(changed({ totalQuantity: 500 })).toEqual({ next: { ...template, totalQuantity: 500 }, before: { totalQuantity: 100 }, after: { totalQuantity: 500 } });
    expect(changed({ perUserLimit: 3 })).toEqual({ next: { ...template, perUserLimit: 3 }, before: { perUserLimit: 2 }, after: { perUserLimit: 3 } });
    const later = new Date('2030-01-05T00:00:00Z');
    expect(changed({ claimEndsAt: later.toISOString() })).toEqual({
      next: { ...template, claimEndsAt: later }, before: { claimEndsAt: '2030-01-02T00:00:00.000Z' }, after: { claimEndsAt: '2030-01-05T00:00:00.000Z' },
    });
  });

  it('changes several fields at once and leaves the template it was given as it was', () => {
    const copy = structuredClone(template);
    expect(changed({ name: 'Flash sale', paused: true, perUserLimit: 2, totalQuantity: 100 })).toEqual({
      next: { ...template, name: 'Flash sale', paused: true }, before: { name: 'Event', paused: false }, after: { name: 'Flash sale', paused: true },
    });
    expect(template).toEqual(copy);
  });

  it('makes stock unlimited (null) whatever was issued, and lowering exactly to the issued count sells out', () => {
    expect(changed({ totalQuantity: null }, 1_000)).toEqual({ next: { ...template, totalQuantity: null }, before: { totalQuantity: 100 }, after: { totalQuantity: null } });
    expect(changed({ totalQuantity: 0 }, 0).after).toEqual({ totalQuantity: 0 });
    expect(refusal({ totalQuantity: 0 }, 1)).toEqual({
      code: 'TOTAL_QUANTITY_BELOW_ISSUED', message: 'totalQuantity cannot be lowered below the 1 coupons already issued.', details: { issuedCount: 1 },
    });
  });

  it('refuses a lower per-user limit with the limit in force; the same limit is no change', () => {
    expect(refusal({ perUserLimit: 1 })).toEqual({ code: 'PER_USER_LIMIT_LOWERED', message: 'perUserLimit can only be raised (it is 2).' });
    expect(changed({ perUserLimit: 2 })).toEqual({ next: template, before: {}, after: {} });
  });

  it('ends the event one millisecond after its start at the earliest, and "now" means the clock it is given', () => {
    const end = { code: 'CLAIM_END_BEFORE_START', message: 'claimEndsAt must be after claimStartsAt (2030-01-01T00:00:00.000Z).' };
    expect(refusal({ claimEndsAt: '2029-12-31T23:59:59.999Z' })).toEqual(end);
    expect(refusal({ claimEndsAt: '2030-01-01T00:00:00.000Z' })).toEqual(end);
    expect(changed({ claimEndsAt: '2030-01-01T00:00:00.001Z' }).next.claimEndsAt).toEqual(new Date('2030-01-01T00:00:00.001Z'));
    expect(changed({ claimEndsAt: 'now' }).next.claimEndsAt).toEqual(now);
    // "now" before the window opens is a refusal like any instant there.
    expect(decideTemplateChange(template, { claimEndsAt: 'now' }, 40, new Date('2029-12-31T00:00:00Z'))).toEqual({ refusal: end });
  });

  it('sets an ABSOLUTE validity that ends after it starts and after the window opens', () => {
    const validity = { type: 'ABSOLUTE' as const, validFrom: '2030-01-01T00:00:00.000Z', validUntil: '2030-02-01T00:00:00.000Z' };
    expect(changed({ validity })).toEqual({
      next: { ...template, validity: { type: 'ABSOLUTE', validFrom: new Date(validity.validFrom), validUntil: new Date(validity.validUntil) } },
      before: { validity: { type: 'RELATIVE', days: 7 } },
      after: { validity },
    });
  });

  it('refuses an ABSOLUTE validity that is empty, or that ends by the time the window opens, naming the field', () => {
    const refused = (message: string) => ({ code: 'VALIDATION_FAILED', message: `body.validity.validUntil: ${message}`, details: [{ field: 'body.validity.validUntil', message }] });
    const empty = refused('must be after validFrom');
    const at = (validFrom: string, validUntil: string) => ({ validity: { type: 'ABSOLUTE' as const, validFrom, validUntil } });
    expect(refusal(at('2030-03-01T00:00:00.000Z', '2030-03-01T00:00:00.000Z'))).toEqual(empty);
    expect(refusal(at('2030-03-01T00:00:00.000Z', '2030-02-01T00:00:00.000Z'))).toEqual(empty);
    const bornExpired = refused('must be after claimStartsAt, or every coupon is born expired');
    expect(refusal(at('2029-01-01T00:00:00.000Z', '2030-01-01T00:00:00.000Z'))).toEqual(bornExpired);
    expect(changed(at('2029-01-01T00:00:00.000Z', '2030-01-01T00:00:00.001Z')).after).toEqual({ validity: at('2029-01-01T00:00:00.000Z', '2030-01-01T00:00:00.001Z').validity });
  });

  it('sets a RELATIVE validity in place of an ABSOLUTE one, and the same validity is no change', () => {
    const absolute = { type: 'ABSOLUTE' as const, validFrom: new Date('2030-01-01T00:00:00Z'), validUntil: new Date('2030-02-01T00:00:00Z') };
    const current = { ...template, validity: absolute };
    expect(decideTemplateChange(current, { validity: { type: 'RELATIVE', days: 14 } }, 40, now)).toEqual({
      next: { ...template, validity: { type: 'RELATIVE', days: 14 } },
      before: { validity: { type: 'ABSOLUTE', validFrom: '2030-01-01T00:00:00.000Z', validUntil: '2030-02-01T00:00:00.000Z' } },
      after: { validity: { type: 'RELATIVE', days: 14 } },
    });
    const same = decideTemplateChange(current, { validity: { type: 'ABSOLUTE', validFrom: '2030-01-01T00:00:00Z', validUntil: '2030-02-01T00:00:00Z' } }, 40, now);
    expect(same).toEqual({ next: current, before: {}, after: {} });
    expect(changed({ validity: { type: 'RELATIVE', days: 7 } })).toEqual({ next: template, before: {}, after: {} });
  });
});

describe('belowIssued', () => {
  it('is true only for a finite stock under the issued count', () => {
    expect(belowIssued(39, 40)).toBe(true);
    expect(belowIssued(40, 40)).toBe(false);
    expect(belowIssued(41, 40)).toBe(false);
    expect(belowIssued(null, 40)).toBe(false);
  });
});

describe('stricterSettings', () => {
  it('takes the stricter of two settings on every field', () => {
    const next = { ...template, totalQuantity: 200, perUserLimit: 5, paused: true, claimEndsAt: new Date('2030-01-03T00:00:00Z') };
    expect(stricterSettings(template, next)).toMatchObject({ totalQuantity: 100, perUserLimit: 2, paused: true, claimEndsAt: template.claimEndsAt });
    expect(stricterSettings({ ...template, totalQuantity: null }, { ...template, totalQuantity: 50 }).totalQuantity).toBe(50);
  });

  it('is as strict whichever side is stricter, and unlimited only when both are', () => {
    const strict = { ...template, totalQuantity: 10, perUserLimit: 1, paused: true, claimEndsAt: new Date('2030-01-01T06:00:00Z') };
    const loose = { ...template, totalQuantity: 20, perUserLimit: 4, paused: false, claimEndsAt: new Date('2030-01-03T00:00:00Z') };
    const strictest = { totalQuantity: 10, perUserLimit: 1, paused: true, claimEndsAt: strict.claimEndsAt };
    expect(stricterSettings(strict, loose)).toMatchObject(strictest);
    expect(stricterSettings(loose, strict)).toMatchObject(strictest);
    expect(stricterSettings({ ...template, totalQuantity: 50 }, { ...template, totalQuantity: null }).totalQuantity).toBe(50);
    expect(stricterSettings({ ...template, totalQuantity: null }, { ...template, totalQuantity: null }).totalQuantity).toBeNull();
    expect(stricterSettings(template, template).paused).toBe(false);
  });

  it('takes every other field from the second (the settings being put in force)', () => {
    const next = { ...template, name: 'Renamed', settingsVersion: 4, validity: { type: 'RELATIVE' as const, days: 30 } };
    expect(stricterSettings(template, next)).toEqual(next);
  });
});
