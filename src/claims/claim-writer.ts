// Writing claimed coupons to PostgreSQL, shared by the claim persister and read-your-writes.
// Idempotent: a coupon already present is skipped and issued_count rises only by rows really
// inserted, so a claim written twice (redelivery, or a reader got there first) changes nothing.
import type { CouponTemplate } from '../coupons/template-repository.ts';
import { withRetry, type Db } from '../infra/db.ts';
import type { Logger } from '../infra/logger.ts';
import type { Metrics } from '../infra/metrics.ts';
import { existingCouponIds, insertClaimedCoupons, type ClaimedCoupon } from './claim-repository.ts';

export interface PersistOutcome {
  readonly inserted: number;
  /** Already in PostgreSQL before this call. */
  readonly alreadyPresent: number;
  /** Refused by PostgreSQL's constraints: acknowledged by a gate that lost or drifted from its state. */
  readonly refused: readonly ClaimedCoupon[];
}

const CHECK_VIOLATION = '23514';

export async function persistClaims(
  deps: { db: Db; logger: Logger; metrics: Metrics },
  template: CouponTemplate,
  coupons: readonly ClaimedCoupon[],
): Promise<PersistOutcome> {
  // One statement, so atomic on its own: no BEGIN/COMMIT round trips.
  const insertAll = (batch: readonly ClaimedCoupon[]) => withRetry(() => insertClaimedCoupons(deps.db, template, batch));
  let inserted: Set<string>;
  try {
    inserted = await insertAll(coupons);
  } catch (error) {
    if ((error as { code?: string }).code !== CHECK_VIOLATION) throw error;
    // The batch would over-issue the template: keep what fits, one coupon at a time, so the rest
    // of the batch is not held hostage by the coupons the arbiter refuses.
    inserted = new Set();
    for (const coupon of coupons) {
      try {
        for (const id of await insertAll([coupon])) inserted.add(id);
      } catch (single) {
        if ((single as { code?: string }).code !== CHECK_VIOLATION) throw single;
      }
    }
  }
  const notInserted = coupons.filter((coupon) => !inserted.has(coupon.id));
  const present = await existingCouponIds(deps.db, notInserted.map((coupon) => coupon.id));
  const refused = notInserted.filter((coupon) => !present.has(coupon.id));
  if (refused.length > 0) {
    deps.metrics.claimsRefusedByDatabase.inc({ template: deps.metrics.templateLabel(template.id) }, refused.length);
    deps.logger.error({ templateId: template.id, couponIds: refused.map((coupon) => coupon.id) },
      'PostgreSQL refused acknowledged claims (slot, user sequence or quantity already taken): the claim gate drifted; run stampede reconcile');
  }
  return { inserted: inserted.size, alreadyPresent: present.size, refused };
}
