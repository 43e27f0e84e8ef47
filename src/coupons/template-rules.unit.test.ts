import { describe, expect, it } from 'vitest';
import { templateDraftProblems, type TemplateDraft } from './template-rules.ts';

const draft: TemplateDraft = {
  name: 'Flash',
  discount: { type: 'PERCENT', value: 10, maxAmount: 5_000 },
  minOrderAmount: 0,
  totalQuantity: 100,
  perUserLimit: 1,
  claimStartsAt: '2026-12-01T10:00:00.000Z',
  claimEndsAt: '2026-12-01T11:00:00.000Z',
  validity: { type: 'ABSOLUTE', validFrom: '2026-12-01T00:00:00.000Z', validUntil: '2026-12-31T00:00:00.000Z' },
};

describe('templateDraftProblems', () => {
  it('finds nothing wrong with a consistent draft, ABSOLUTE or RELATIVE', () => {
    expect(templateDraftProblems(draft)).toEqual([]);
    expect(templateDraftProblems({ ...draft, validity: { type: 'RELATIVE', days: 30 } })).toEqual([]);
  });

  it('wants the claim window to end after it starts: an empty window is refused, one millisecond is enough', () => {
    const problem = { field: 'body.claimEndsAt', message: 'must be after claimStartsAt' };
    expect(templateDraftProblems({ ...draft, claimEndsAt: draft.claimStartsAt })).toEqual([problem]);
    expect(templateDraftProblems({ ...draft, claimEndsAt: '2026-12-01T09:00:00.000Z' })).toEqual([problem]);
    expect(templateDraftProblems({ ...draft, claimEndsAt: '2026-12-01T10:00:00.001Z' })).toEqual([]);
  });

  it('caps a PERCENT discount at 100, and only a PERCENT one', () => {
    const problem = { field: 'body.discount.value', message: 'a PERCENT discount must be between 1 and 100' };
    expect(templateDraftProblems({ ...draft, discount: { type: 'PERCENT', value: 100 } })).toEqual([]);
    expect(templateDraftProblems({ ...draft, discount: { type: 'PERCENT', value: 101 } })).toEqual([problem]);
    expect(templateDraftProblems({ ...draft, discount: { type: 'FIXED', value: 10_000 } })).toEqual([]);
  });

  it('wants an ABSOLUTE validity to end after it starts', () => {
    const validity = { type: 'ABSOLUTE', validFrom: '2026-12-31T00:00:00.000Z', validUntil: '2026-12-31T00:00:00.000Z' } as const;
    expect(templateDraftProblems({ ...draft, validity })).toEqual([{ field: 'body.validity.validUntil', message: 'must be after validFrom' }]);
    expect(templateDraftProblems({ ...draft, validity: { ...validity, validUntil: '2026-12-31T00:00:00.001Z' } })).toEqual([]);
  });

  it('refuses an ABSOLUTE validity that ends by the claim start: every coupon would be born expired', () => {
    const problem = { field: 'body.validity.validUntil', message: 'must be after claimStartsAt, or every coupon is born expired' };
    const endsAtStart = { type: 'ABSOLUTE', validFrom: '2026-11-01T00:00:00.000Z', validUntil: draft.claimStartsAt } as const;
    expect(templateDraftProblems({ ...draft, validity: endsAtStart })).toEqual([problem]);
    expect(templateDraftProblems({ ...draft, validity: { ...endsAtStart, validUntil: '2026-12-01T10:00:00.001Z' } })).toEqual([]);
  });

  it('lists every problem at once, in field order', () => {
    expect(
      templateDraftProblems({
        ...draft,
        claimEndsAt: draft.claimStartsAt,
        discount: { type: 'PERCENT', value: 150 },
        validity: { type: 'ABSOLUTE', validFrom: '2026-12-01T00:00:00.000Z', validUntil: '2026-11-01T00:00:00.000Z' },
      }).map((problem) => problem.message),
    ).toEqual([
      'must be after claimStartsAt',
      'a PERCENT discount must be between 1 and 100',
      'must be after validFrom',
      'must be after claimStartsAt, or every coupon is born expired',
    ]);
  });
});
