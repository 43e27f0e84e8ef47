// Pure rules of a change to a running claim event (PATCH /v1/coupon-templates/{id}): which
// changes are allowed against the settings in force, the settings that follow, and the diff the
// audit and the event.changed webhook carry. The stock check against the count in force is made
// again atomically by the gate (claim-settings.ts); this one refuses what PostgreSQL already shows.
import type { ErrorCode } from '../errors.ts';
import type { CouponTemplate } from './template-repository.ts';

export type ValidityInput =
  | { type: 'ABSOLUTE'; validFrom: string; validUntil: string }
  | { type: 'RELATIVE'; days: number };

export interface TemplatePatch {
  name?: string | undefined;
  paused?: boolean | undefined;
  /** null: unlimited. */
  totalQuantity?: number | null | undefined;
  /** An RFC 3339 instant, or "now" (the server's clock: ends the event at once). */
  claimEndsAt?: string | undefined;
  perUserLimit?: number | undefined;
  validity?: ValidityInput | undefined;
  /** Each field given replaces the one in force; null removes that throttle. */
  claimThrottle?: { perUserPerSecond?: number | null | undefined; perClientAddressPerSecond?: number | null | undefined } | undefined;
}

/** The changeable fields, as the API shows them (the audit's before and after). */
export const CHANGEABLE_FIELDS = ['name', 'paused', 'totalQuantity', 'claimEndsAt', 'perUserLimit', 'validity', 'claimThrottle'] as const;
export type ChangeableField = (typeof CHANGEABLE_FIELDS)[number];
export type FieldValues = Partial<Record<ChangeableField, unknown>>;

export interface ChangeRefusal {
  readonly code: Extract<ErrorCode, 'TOTAL_QUANTITY_BELOW_ISSUED' | 'PER_USER_LIMIT_LOWERED' | 'CLAIM_END_BEFORE_START' | 'VALIDATION_FAILED'>;
  readonly message: string;
  readonly details?: unknown;
}

export type ChangeDecision =
  | { readonly refusal: ChangeRefusal }
  | { readonly next: CouponTemplate; readonly before: FieldValues; readonly after: FieldValues };

export function apiValueOf(template: CouponTemplate, field: ChangeableField): unknown {
  switch (field) {
    case 'claimEndsAt': return template.claimEndsAt.toISOString();
    case 'validity': {
      const { validity } = template;
      return validity.type === 'ABSOLUTE'
        ? { type: 'ABSOLUTE', validFrom: validity.validFrom.toISOString(), validUntil: validity.validUntil.toISOString() }
        : { type: 'RELATIVE', days: validity.days };
    }
    default: return template[field];
  }
}

/** True when lowering the stock to `totalQuantity` would leave fewer than `issued` coupons. */
export const belowIssued = (totalQuantity: number | null, issued: number): boolean => totalQuantity !== null && totalQuantity < issued;

/**
 * Decides a change against the template as it stands (locked) and PostgreSQL's issued count.
 * Fields sent with their current value are no change; the settings version rises only when the
 * caller writes (claim-settings.ts).
 */
export function decideTemplateChange(current: CouponTemplate, patch: TemplatePatch, issuedCount: number, now: Date): ChangeDecision {
  const next: CouponTemplate = { ...current };
  if (patch.name !== undefined) next.name = patch.name;
  if (patch.paused !== undefined) next.paused = patch.paused;
  if (patch.totalQuantity !== undefined) {
    if (belowIssued(patch.totalQuantity, issuedCount)) {
      return { refusal: { code: 'TOTAL_QUANTITY_BELOW_ISSUED', message: `totalQuantity cannot be lowered below the ${issuedCount} coupons already issued.`, details: { issuedCount } } };
    }
    next.totalQuantity = patch.totalQuantity;
  }
  if (patch.perUserLimit !== undefined) {
    if (patch.perUserLimit < current.perUserLimit) {
      return { refusal: { code: 'PER_USER_LIMIT_LOWERED', message: `perUserLimit can only be raised (it is ${current.perUserLimit}).` } };
    }
    next.perUserLimit = patch.perUserLimit;
  }
  if (patch.claimEndsAt !== undefined) {
    const endsAt = patch.claimEndsAt === 'now' ? now : new Date(patch.claimEndsAt);
    if (endsAt.getTime() <= current.claimStartsAt.getTime()) {
      return { refusal: { code: 'CLAIM_END_BEFORE_START', message: `claimEndsAt must be after claimStartsAt (${current.claimStartsAt.toISOString()}).` } };
    }
    next.claimEndsAt = endsAt;
  }
  if (patch.validity !== undefined) {
    const validity = patch.validity;
    if (validity.type === 'ABSOLUTE') {
      const validFrom = new Date(validity.validFrom);
      const validUntil = new Date(validity.validUntil);
      if (validUntil.getTime() <= validFrom.getTime()) return { refusal: invalid('body.validity.validUntil', 'must be after validFrom') };
      if (validUntil.getTime() <= current.claimStartsAt.getTime()) {
        return { refusal: invalid('body.validity.validUntil', 'must be after claimStartsAt, or every coupon is born expired') };
      }
      next.validity = { type: 'ABSOLUTE', validFrom, validUntil };
    } else {
      next.validity = { type: 'RELATIVE', days: validity.days };
    }
  }
  if (patch.claimThrottle !== undefined) {
    const { perUserPerSecond, perClientAddressPerSecond } = patch.claimThrottle;
    next.claimThrottle = {
      perUserPerSecond: perUserPerSecond === undefined ? current.claimThrottle.perUserPerSecond : perUserPerSecond,
      perClientAddressPerSecond: perClientAddressPerSecond === undefined ? current.claimThrottle.perClientAddressPerSecond : perClientAddressPerSecond,
    };
  }
  const before: FieldValues = {};
  const after: FieldValues = {};
  for (const field of CHANGEABLE_FIELDS) {
    const was = apiValueOf(current, field);
    const is = apiValueOf(next, field);
    if (JSON.stringify(was) !== JSON.stringify(is)) {
      before[field] = was;
      after[field] = is;
    }
  }
  return { next, before, after };
}

function invalid(field: string, message: string): ChangeRefusal {
  return { code: 'VALIDATION_FAILED', message: `${field}: ${message}`, details: [{ field, message }] };
}

/**
 * The settings a gate must obey while a change is being committed: whichever of the two is
 * stricter on every field, so that neither the old nor the new settings are exceeded whether the
 * change commits or not.
 */
export function stricterSettings(a: CouponTemplate, b: CouponTemplate): CouponTemplate {
  const total = a.totalQuantity === null ? b.totalQuantity : b.totalQuantity === null ? a.totalQuantity : Math.min(a.totalQuantity, b.totalQuantity);
  return {
    ...b,
    totalQuantity: total,
    perUserLimit: Math.min(a.perUserLimit, b.perUserLimit),
    paused: a.paused || b.paused,
    claimEndsAt: a.claimEndsAt.getTime() <= b.claimEndsAt.getTime() ? a.claimEndsAt : b.claimEndsAt,
  };
}
