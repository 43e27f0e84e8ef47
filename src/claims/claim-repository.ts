// SQL of the claim path: persisting claimed coupons (the gates' group commit, the persister and
// read-your-writes all use insertClaimedCoupons) and the snapshots that gates load and reconcile
// compares. PostgreSQL is the arbiter: UNIQUE (template_id, slot), UNIQUE (template_id, user_id,
// seq) and CHECK (issued_count <= total_quantity), with issued_count raised by the rows really
// inserted in the same statement.
import { toTemplate, type CouponTemplate, type TemplateRow } from '../coupons/template-repository.ts';
import { couponValidity } from '../coupons/validity.ts';
import type { Db, Queryable } from '../infra/db.ts';
import { withTransaction } from '../infra/db.ts';
import { markGateOpenedStatements } from '../coupons/gate-lock.ts';

/** A coupon as the gate issued it; everything else about the row follows from its template. */
export interface ClaimedCoupon {
  readonly id: string;
  readonly userId: string;
  readonly slot: number;
  readonly seq: number;
  readonly issuedAt: Date;
  /** The coupon's window as the gate gave it (the validity in force then); absent: from the template. */
  readonly validFrom?: Date | undefined;
  readonly validUntil?: Date | undefined;
}

/**
 * Inserts the coupons that are not there yet and adds exactly that many to the template's
 * issued_count, in one statement. Returns the ids really inserted: a coupon already present
 * (redelivery, or read-your-writes got there first) is skipped, and so is one whose slot or
 * (user, seq) is taken by another coupon (the arbiter refusing a gate that lost its state).
 * Throws 23514 (check_violation) when the batch would over-issue the template. The statement that
 * reaches the total also writes event.sold_out to the webhook outbox (trigger, migrations/090).
 */
export async function insertClaimedCoupons(db: Queryable, template: CouponTemplate, coupons: readonly ClaimedCoupon[]): Promise<Set<string>> {
  if (coupons.length === 0) return new Set();
  const ids: string[] = [];
  const users: string[] = [];
  const slots: number[] = [];
  const seqs: number[] = [];
  const validFrom: string[] = [];
  const validUntil: string[] = [];
  const issuedAt: string[] = [];
  // Same order in every transaction, so two overlapping batches wait on each other instead of
  // deadlocking.
  for (const coupon of [...coupons].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    const validity = coupon.validFrom && coupon.validUntil
      ? { validFrom: coupon.validFrom, validUntil: coupon.validUntil }
      : couponValidity(template.validity, coupon.issuedAt);
    ids.push(coupon.id);
    users.push(coupon.userId);
    slots.push(coupon.slot);
    seqs.push(coupon.seq);
    validFrom.push(validity.validFrom.toISOString());
    validUntil.push(validity.validUntil.toISOString());
    issuedAt.push(coupon.issuedAt.toISOString());
  }
  const { rows } = await db.query<{ id: string }>(
    `WITH inserted AS (
       INSERT INTO coupons (id, partner_id, template_id, user_id, slot, seq, status, valid_from, valid_until, issued_at)
       SELECT c.id, $1, $2, c.user_id, c.slot, c.seq, 'ISSUED', c.valid_from, c.valid_until, c.issued_at
         FROM unnest($3::uuid[], $4::text[], $5::int[], $6::int[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[])
              AS c (id, user_id, slot, seq, valid_from, valid_until, issued_at)
       ON CONFLICT DO NOTHING
       RETURNING id
     ), counted AS (
       UPDATE coupon_templates SET issued_count = issued_count + (SELECT count(*) FROM inserted)
        WHERE id = $2 AND EXISTS (SELECT 1 FROM inserted)
     )
     SELECT id FROM inserted`,
    [template.partnerId, template.id, ids, users, slots, seqs, validFrom, validUntil, issuedAt],
  );
  return new Set(rows.map((row) => row.id));
}

/** Which of these coupon ids exist (to tell a redelivered coupon from one the arbiter refused). */
export async function existingCouponIds(db: Queryable, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>('SELECT id FROM coupons WHERE id = ANY($1::uuid[])', [ids]);
  return new Set(rows.map((row) => row.id));
}

/** What a gate needs to open an event: PostgreSQL's issued count and highest slot (no holder). */
export interface EventCounters {
  readonly issuedCount: number;
  readonly maxSlot: number;
}

/** The counters, and the coupon ids of the user whose claim opens the event (in seq order). */
export interface OpenedEvent extends EventCounters {
  readonly userCouponIds: string[];
  /**
   * No coupon of the template existed (read under the gate lock, after which only the gate writes
   * into it): every user holds none but what the gate issues, so no holdings need reading.
   */
  readonly fresh: boolean;
  /** The template's settings read in the same transaction (a change waits for the gate lock). */
  readonly template: CouponTemplate;
}

const EVENT_COUNTERS = `SELECT t.issued_count,
         coalesce((SELECT max(slot) FROM coupons c WHERE c.template_id = t.id AND c.slot IS NOT NULL), 0) AS max_slot
    FROM coupon_templates t WHERE t.id = $1`;

/**
 * Marks the template opened to claims (coupons/gate-lock.ts: after every distribution chunk of it has
 * committed, and before any other starts) and reads its counters and the opening user's coupons:
 * indexed reads whatever the number of holders (other users are read on their first claim), in
 * one transaction sent as one simple query, so the first claim of an event pays one round trip.
 */
export async function openClaimEvent(db: Db, templateId: string, userId: string): Promise<OpenedEvent> {
  const client = await db.connect();
  try {
    const id = client.escapeLiteral(templateId);
    const results = await client.query(`BEGIN;
      ${markGateOpenedStatements(templateId)}
      SELECT t.*,
             coalesce((SELECT max(slot) FROM coupons c WHERE c.template_id = t.id AND c.slot IS NOT NULL), 0) AS max_slot,
             ARRAY(SELECT c.id::text FROM coupons c WHERE c.template_id = t.id AND c.user_id = ${client.escapeLiteral(userId)} ORDER BY c.seq) AS user_coupon_ids,
             NOT EXISTS (SELECT 1 FROM coupons c WHERE c.template_id = t.id) AS fresh
        FROM coupon_templates t WHERE t.id = ${id};
      COMMIT`) as unknown as Array<{ rows: Array<TemplateRow & { max_slot: number; user_coupon_ids: string[]; fresh: boolean }> }>;
    const row = results[results.length - 2]!.rows[0];
    if (!row) throw new Error(`template ${templateId} not found`);
    return { issuedCount: row.issued_count, maxSlot: row.max_slot, userCouponIds: row.user_coupon_ids, fresh: row.fresh, template: toTemplate(row) };
  } catch (error) {
    // A failed statement leaves the transaction open and aborted on this connection.
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** The counters alone, for a gate that already opened the event and resynchronises. */
export async function eventCounters(db: Queryable, templateId: string): Promise<EventCounters> {
  const { rows } = await db.query<{ issued_count: number; max_slot: number }>(EVENT_COUNTERS, [templateId]);
  return { issuedCount: rows[0]?.issued_count ?? 0, maxSlot: rows[0]?.max_slot ?? 0 };
}

/**
 * These users' coupon ids of a template, in seq order (the unique (template_id, user_id, seq)
 * index); a user holding none is absent. Exact for a gate once the event is opened: nothing but the
 * gate's own claims writes into it then.
 */
export async function usersCouponIds(db: Queryable, templateId: string, userIds: readonly string[]): Promise<Map<string, string[]>> {
  if (userIds.length === 0) return new Map();
  const { rows } = await db.query<{ user_id: string; ids: string[] }>(
    `SELECT user_id, array_agg(id::text ORDER BY seq) AS ids FROM coupons
      WHERE template_id = $1 AND user_id = ANY($2::text[]) GROUP BY user_id`, [templateId, userIds]);
  return new Map(rows.map((row) => [row.user_id, row.ids]));
}

/** How many coupons of a template each of these users holds (absent: none). */
export async function heldCounts(db: Queryable, templateId: string, userIds: readonly string[]): Promise<Map<string, number>> {
  if (userIds.length === 0) return new Map();
  const { rows } = await db.query<{ user_id: string; held: number }>(
    'SELECT user_id, count(*)::int AS held FROM coupons WHERE template_id = $1 AND user_id = ANY($2::text[]) GROUP BY user_id',
    [templateId, userIds]);
  return new Map(rows.map((row) => [row.user_id, row.held]));
}

/** PostgreSQL's side of reconcile. */
export interface TemplateCounts {
  readonly issuedCount: number;
  readonly rows: number;
  readonly maxSlot: number;
}

export async function templateCounts(db: Queryable, templateId: string): Promise<TemplateCounts | undefined> {
  const { rows } = await db.query<{ issued_count: number; rows: number; max_slot: number | null }>(
    `SELECT t.issued_count, (SELECT count(*) FROM coupons c WHERE c.template_id = t.id) AS rows,
            (SELECT max(slot) FROM coupons c WHERE c.template_id = t.id) AS max_slot
       FROM coupon_templates t WHERE t.id = $1`,
    [templateId],
  );
  const row = rows[0];
  return row && { issuedCount: row.issued_count, rows: row.rows, maxSlot: row.max_slot ?? 0 };
}

/** Templates whose claim window is open or closed less than `settleMs` ago, newest first. */
export async function recentClaimEvents(db: Queryable, now: Date, settleMs: number, limit: number): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT id FROM coupon_templates
      WHERE claim_starts_at <= $1 AND claim_ends_at > $1 - make_interval(secs => $2 / 1000.0)
      ORDER BY claim_starts_at DESC
      LIMIT $3`,
    [now, settleMs, limit],
  );
  return rows.map((row) => row.id);
}

/**
 * PostgreSQL's side of reconcile, in one snapshot: the template's counters, the rows a gate at
 * slot `upToSlot` accounts for (slotless rows, e.g. distributions, included), and which of the
 * given coupon ids are already rows.
 */
export async function reconcileSnapshot(db: Db, templateId: string, upToSlot: number, couponIds: readonly string[]) {
  return withTransaction(db, async (tx) => {
    const counts = await templateCounts(tx, templateId);
    const upTo = await tx.query<{ rows: number }>(
      'SELECT count(*) AS rows FROM coupons WHERE template_id = $1 AND (slot IS NULL OR slot <= $2)', [templateId, upToSlot]);
    const present = await existingCouponIds(tx, couponIds);
    return { counts, rowsUpToSlot: upTo.rows[0]!.rows, present };
  }, 'REPEATABLE READ');
}
