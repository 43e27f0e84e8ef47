// Whether a template's claim event is live: a claim gate has opened it (coupon_templates.
// gate_opened_at: by a claim inside the window; one outside it opens nothing) and its window closed less than CLAIM_EVENT_SETTLE_MS ago (or not at all). Bulk
// distribution must not write into such a template: it would raise issued_count and take (user,
// seq) pairs behind the gate's back, so the gate could acknowledge claims that PostgreSQL then
// refuses; and while the scheduled reconcile still watches the event (reconcile.ts), its rows would
// count as drift. A template that only ever received distributions is never live.
//
// Gate and distribution exclude each other through an advisory lock per template. A distribution
// chunk holds it shared for its transaction (chunks still run side by side) and checks the mark
// first; a gate opening the template holds it exclusively while it sets the mark and reads its
// counters, in one transaction. So a chunk either committed before the counters were read (and is
// in them), or takes the lock after the mark was committed (and sees it, and writes nothing); and
// every user's holdings, read later on the user's first claim, include every chunk.
import type { AppContext } from '../context.ts';
import type { Queryable, Tx } from '../infra/db.ts';

/** How long after its window closes an event is still live: reconciled on schedule, closed to distribution. */
export const CLAIM_EVENT_SETTLE_MS = 3_600_000;

// Two-int4 advisory keys (the job locks use one int8 key: a separate key space).
const LOCK_SPACE = 1_398_033_744;
const TEMPLATE_LOCK = `${LOCK_SPACE}, hashtext($1::text)`;

export async function claimEventIsLive(
  ctx: AppContext, template: { readonly id: string; readonly claimEndsAt: Date }, db: Queryable = ctx.db,
): Promise<boolean> {
  if (ctx.clock().getTime() >= template.claimEndsAt.getTime() + CLAIM_EVENT_SETTLE_MS) return false;
  const { rows } = await db.query<{ opened: boolean }>('SELECT gate_opened_at IS NOT NULL AS opened FROM coupon_templates WHERE id = $1', [template.id]);
  return rows[0]?.opened ?? false;
}

/** A distribution chunk: no gate opens the template until the caller's transaction ends. */
export async function holdOffGateOpening(tx: Tx, templateId: string): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock_shared(${TEMPLATE_LOCK})`, [templateId]);
}

/**
 * A change to the template's claim settings (claim-settings.ts): takes the gate's lock alone for
 * the caller's transaction, so no gate opens the event and no distribution chunk writes meanwhile.
 */
export async function holdGateLock(tx: Tx, templateId: string): Promise<void> {
  await tx.query(`SELECT pg_advisory_xact_lock(${TEMPLATE_LOCK})`, [templateId]);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A gate opening the template, as statements of one simple query (one round trip) inside the
 * caller's transaction: waits for running chunks, then marks the template opened. Each statement
 * of a simple query takes its own snapshot (READ COMMITTED), so the statements after these see
 * every chunk that committed before the lock was granted.
 */
export function markGateOpenedStatements(templateId: string): string {
  if (!UUID.test(templateId)) throw new Error(`not a template id: ${JSON.stringify(templateId)}`);
  return `SELECT pg_advisory_xact_lock(${LOCK_SPACE}, hashtext('${templateId}'));
    UPDATE coupon_templates SET gate_opened_at = coalesce(gate_opened_at, now()) WHERE id = '${templateId}';`;
}
