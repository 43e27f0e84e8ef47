// Whether a template's claim event is live: its window closed less than CLAIM_EVENT_SETTLE_MS ago
// (or not at all) and the gate has served it (it holds gate state in Redis, or gate-issued
// coupons, which always carry a slot, exist). Bulk distribution must not write into such a
// template: it would raise issued_count and take (user, seq) pairs behind the gate's back, so the
// gate could acknowledge claims that PostgreSQL then refuses; and while the scheduled reconcile
// still watches the event (reconcile.ts), its rows would count as drift. A template that only
// ever received distributions is never live.
import type { AppContext } from '../context.ts';
import type { Queryable } from '../infra/db.ts';
import { templateClaimKeys } from './redis-keys.ts';

/** How long after its window closes an event is still live: reconciled on schedule, closed to distribution. */
export const CLAIM_EVENT_SETTLE_MS = 3_600_000;

export async function claimEventIsLive(ctx: AppContext, template: { readonly id: string; readonly claimEndsAt: Date }): Promise<boolean> {
  if (ctx.clock().getTime() >= template.claimEndsAt.getTime() + CLAIM_EVENT_SETTLE_MS) return false;
  if (ctx.redis && await ctx.redis.exists(templateClaimKeys(template.id).state) === 1) return true;
  return hasGateIssuedCoupons(ctx.db, template.id);
}

async function hasGateIssuedCoupons(db: Queryable, templateId: string): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM coupons WHERE template_id = $1 AND slot IS NOT NULL LIMIT 1', [templateId]);
  return rows.length > 0;
}
