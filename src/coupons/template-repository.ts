// SQL for coupon templates. Every read is scoped by partner: another partner's id finds nothing.
import type { Queryable } from '../infra/db.ts';
import type { Discount, TemplateDraft, Validity } from './template-rules.ts';

export interface CouponTemplate {
  id: string;
  partnerId: string;
  name: string;
  discount: Discount;
  minOrderAmount: number;
  totalQuantity: number | null;
  perUserLimit: number;
  issuedCount: number;
  claimStartsAt: Date;
  claimEndsAt: Date;
  validity: { type: 'ABSOLUTE'; validFrom: Date; validUntil: Date } | { type: 'RELATIVE'; days: number };
  /** Claims answer CLAIM_PAUSED while true. */
  paused: boolean;
  /** Raised by every change (PATCH), so a gate never replaces newer settings with older ones. */
  settingsVersion: number;
  /** Claim attempts admitted per user, and per client address, per second; null: not throttled. */
  claimThrottle: ClaimThrottle;
  createdAt: Date;
}

export interface ClaimThrottle {
  perUserPerSecond: number | null;
  perClientAddressPerSecond: number | null;
}

export interface TemplateRow {
  id: string;
  partner_id: string;
  name: string;
  discount_type: 'FIXED' | 'PERCENT';
  discount_value: number;
  discount_max_amount: number | null;
  min_order_amount: number;
  total_quantity: number | null;
  per_user_limit: number;
  issued_count: number;
  claim_starts_at: Date;
  claim_ends_at: Date;
  validity_type: 'ABSOLUTE' | 'RELATIVE';
  valid_from: Date | null;
  valid_until: Date | null;
  validity_days: number | null;
  paused: boolean;
  settings_version: number;
  claim_throttle_per_user: number | null;
  claim_throttle_per_address: number | null;
  created_at: Date;
}

export function toTemplate(row: TemplateRow): CouponTemplate {
  return {
    id: row.id,
    partnerId: row.partner_id,
    name: row.name,
    discount: row.discount_type === 'FIXED'
      ? { type: 'FIXED', value: row.discount_value }
      : { type: 'PERCENT', value: row.discount_value, ...(row.discount_max_amount === null ? {} : { maxAmount: row.discount_max_amount }) },
    minOrderAmount: row.min_order_amount,
    totalQuantity: row.total_quantity,
    perUserLimit: row.per_user_limit,
    issuedCount: row.issued_count,
    claimStartsAt: row.claim_starts_at,
    claimEndsAt: row.claim_ends_at,
    validity: row.validity_type === 'ABSOLUTE'
      ? { type: 'ABSOLUTE', validFrom: row.valid_from!, validUntil: row.valid_until! }
      : { type: 'RELATIVE', days: row.validity_days! },
    paused: row.paused,
    settingsVersion: row.settings_version,
    claimThrottle: { perUserPerSecond: row.claim_throttle_per_user, perClientAddressPerSecond: row.claim_throttle_per_address },
    createdAt: row.created_at,
  };
}

export async function insertTemplate(db: Queryable, id: string, partnerId: string, draft: TemplateDraft): Promise<CouponTemplate> {
  const validity: Validity = draft.validity;
  const { rows } = await db.query<TemplateRow>(
    `INSERT INTO coupon_templates (id, partner_id, name, discount_type, discount_value, discount_max_amount,
       min_order_amount, total_quantity, per_user_limit, claim_starts_at, claim_ends_at,
       validity_type, valid_from, valid_until, validity_days, claim_throttle_per_user, claim_throttle_per_address)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
     RETURNING *`,
    [
      id, partnerId, draft.name, draft.discount.type, draft.discount.value,
      draft.discount.type === 'PERCENT' ? (draft.discount.maxAmount ?? null) : null,
      draft.minOrderAmount, draft.totalQuantity, draft.perUserLimit, draft.claimStartsAt, draft.claimEndsAt,
      validity.type,
      validity.type === 'ABSOLUTE' ? validity.validFrom : null,
      validity.type === 'ABSOLUTE' ? validity.validUntil : null,
      validity.type === 'RELATIVE' ? validity.days : null,
      draft.claimThrottle?.perUserPerSecond ?? null, draft.claimThrottle?.perClientAddressPerSecond ?? null,
    ],
  );
  return toTemplate(rows[0]!);
}

export async function findTemplate(db: Queryable, partnerId: string, id: string): Promise<CouponTemplate | undefined> {
  const { rows } = await db.query<TemplateRow>('SELECT * FROM coupon_templates WHERE id = $1 AND partner_id = $2', [id, partnerId]);
  return rows[0] && toTemplate(rows[0]);
}

/** Unscoped lookup for the claim path's template cache, which checks the partner itself. */
export async function findTemplateById(db: Queryable, id: string): Promise<CouponTemplate | undefined> {
  const { rows } = await db.query<TemplateRow>('SELECT * FROM coupon_templates WHERE id = $1', [id]);
  return rows[0] && toTemplate(rows[0]);
}

/** Newest first; `before` is the id of the last template of the previous page. */
export async function listTemplates(db: Queryable, partnerId: string, limit: number, before?: string): Promise<CouponTemplate[]> {
  const { rows } = await db.query<TemplateRow>(
    `SELECT * FROM coupon_templates
      WHERE partner_id = $1 AND ($2::uuid IS NULL OR id < $2::uuid)
      ORDER BY id DESC LIMIT $3`,
    [partnerId, before ?? null, limit],
  );
  return rows.map(toTemplate);
}

/** The template row locked for a change (FOR UPDATE), in the caller's transaction; scoped by partner. */
export async function lockTemplateForChange(db: Queryable, partnerId: string, id: string): Promise<CouponTemplate | undefined> {
  const { rows } = await db.query<TemplateRow>('SELECT * FROM coupon_templates WHERE id = $1 AND partner_id = $2 FOR UPDATE', [id, partnerId]);
  return rows[0] && toTemplate(rows[0]);
}

/** Writes the changeable settings of a template (the row locked by lockTemplateForChange). */
export async function updateTemplateSettings(db: Queryable, template: CouponTemplate): Promise<CouponTemplate> {
  const { validity } = template;
  const { rows } = await db.query<TemplateRow>(
    `UPDATE coupon_templates SET name = $2, paused = $3, total_quantity = $4, claim_ends_at = $5, per_user_limit = $6,
            validity_type = $7, valid_from = $8, valid_until = $9, validity_days = $10, settings_version = $11,
            claim_throttle_per_user = $12, claim_throttle_per_address = $13
      WHERE id = $1 RETURNING *`,
    [
      template.id, template.name, template.paused, template.totalQuantity, template.claimEndsAt, template.perUserLimit,
      validity.type,
      validity.type === 'ABSOLUTE' ? validity.validFrom : null,
      validity.type === 'ABSOLUTE' ? validity.validUntil : null,
      validity.type === 'RELATIVE' ? validity.days : null,
      template.settingsVersion,
      template.claimThrottle.perUserPerSecond, template.claimThrottle.perClientAddressPerSecond,
    ],
  );
  return toTemplate(rows[0]!);
}
