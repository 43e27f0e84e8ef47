// Set-up of the redeem benchmark: a partner with an API key, and per strategy one template with
// its coupons, all ISSUED, created in one set-based INSERT … SELECT generate_series.
import { v7 as uuidv7 } from 'uuid';
import { insertTemplate } from '../../src/coupons/template-repository.ts';
import type { Discount } from '../../src/coupons/template-rules.ts';
import type { Db } from '../../src/infra/db.ts';
import { generateApiKey } from '../../src/partners/api-key.ts';
import { insertApiKey, insertPartner } from '../../src/partners/partner-repository.ts';
import type { PlannedRedeem } from './load-generator.ts';

export const BENCH_DISCOUNT: Discount = { type: 'PERCENT', value: 10, maxAmount: 5_000 };
export const BENCH_MIN_ORDER = 10_000;

export async function createBenchPartner(db: Db): Promise<{ partnerId: string; apiKey: string }> {
  const partner = await insertPartner(db, { id: uuidv7(), name: 'bench redeem', rateLimitPerSecond: null });
  const key = generateApiKey();
  await insertApiKey(db, { id: uuidv7(), partnerId: partner.id, prefix: key.prefix, hash: key.hash });
  return { partnerId: partner.id, apiKey: key.apiKey };
}

/** Coupons [id, userId] in issue order, one per user, valid for the next 30 days. */
export async function issueBenchCoupons(db: Db, partnerId: string, label: string, count: number) {
  const now = Date.now();
  const template = await insertTemplate(db, uuidv7(), partnerId, {
    name: `bench redeem ${label}`,
    discount: BENCH_DISCOUNT,
    minOrderAmount: BENCH_MIN_ORDER,
    totalQuantity: count,
    perUserLimit: 1,
    claimStartsAt: new Date(now - 3_600_000).toISOString(),
    claimEndsAt: new Date(now + 3_600_000).toISOString(),
    validity: { type: 'ABSOLUTE', validFrom: new Date(now - 3_600_000).toISOString(), validUntil: new Date(now + 30 * 86_400_000).toISOString() },
  });
  const { rows } = await db.query<{ id: string; user_id: string }>(
    `WITH issued AS (
       INSERT INTO coupons (id, partner_id, template_id, user_id, slot, seq, valid_from, valid_until)
       SELECT gen_random_uuid(), $1, $2, $3 || n, n, 1, $4, $5 FROM generate_series(1, $6) AS n
       RETURNING id, user_id, slot
     ), counted AS (
       UPDATE coupon_templates SET issued_count = $6 WHERE id = $2
     )
     SELECT id, user_id FROM issued ORDER BY slot`,
    [partnerId, template.id, `bench-${label}-user-`, template.validity.type === 'ABSOLUTE' ? template.validity.validFrom : null,
      template.validity.type === 'ABSOLUTE' ? template.validity.validUntil : null, count],
  );
  return { templateId: template.id, coupons: rows.map((row): [string, string] => [row.id, row.user_id]) };
}

/**
 * One redemption per coupon, and after every `contendedEvery`-th one a second redemption of the
 * same coupon on another order placed right behind it, so both are in flight at once: with
 * contendedEvery = 9, 1 request in 10 targets a coupon another request is redeeming.
 */
export function redeemPlan(coupons: ReadonlyArray<readonly [string, string]>, label: string, contendedEvery: number): PlannedRedeem[] {
  const plan: PlannedRedeem[] = [];
  coupons.forEach(([couponId, userId], i) => {
    // Amounts from the minimum up to well past the cap, so rounding and the cap are both exercised.
    const amount = BENCH_MIN_ORDER + ((i * 7_919) % 90_000);
    plan.push([couponId, userId, `${label}-${i}-a`, amount]);
    if (i % contendedEvery === contendedEvery - 1) plan.push([couponId, userId, `${label}-${i}-b`, amount + 1]);
  });
  return plan;
}
