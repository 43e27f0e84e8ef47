// Pure rules about coupon templates: cross-field checks that a JSON schema cannot express.
export type Discount =
  | { type: 'FIXED'; value: number }
  | { type: 'PERCENT'; value: number; maxAmount?: number | undefined };

export type Validity =
  | { type: 'ABSOLUTE'; validFrom: string; validUntil: string }
  | { type: 'RELATIVE'; days: number };

export interface TemplateDraft {
  name: string;
  discount: Discount;
  minOrderAmount: number;
  totalQuantity: number | null;
  perUserLimit: number;
  claimStartsAt: string;
  claimEndsAt: string;
  validity: Validity;
  claimThrottle?: { perUserPerSecond?: number | null | undefined; perClientAddressPerSecond?: number | null | undefined } | undefined;
}

export interface FieldProblem {
  field: string;
  message: string;
}

export function templateDraftProblems(draft: TemplateDraft): FieldProblem[] {
  const problems: FieldProblem[] = [];
  if (Date.parse(draft.claimEndsAt) <= Date.parse(draft.claimStartsAt)) {
    problems.push({ field: 'body.claimEndsAt', message: 'must be after claimStartsAt' });
  }
  if (draft.discount.type === 'PERCENT' && draft.discount.value > 100) {
    problems.push({ field: 'body.discount.value', message: 'a PERCENT discount must be between 1 and 100' });
  }
  if (draft.validity.type === 'ABSOLUTE') {
    if (Date.parse(draft.validity.validUntil) <= Date.parse(draft.validity.validFrom)) {
      problems.push({ field: 'body.validity.validUntil', message: 'must be after validFrom' });
    }
    if (Date.parse(draft.validity.validUntil) <= Date.parse(draft.claimStartsAt)) {
      problems.push({ field: 'body.validity.validUntil', message: 'must be after claimStartsAt, or every coupon is born expired' });
    }
  }
  return problems;
}
