// SQL of coupon distribution: one set-based statement per staged chunk. It classifies the chunk's
// lines (malformed → job_failures), gives each valid line the next seq of its user (the n-th line
// of a user in the chunk gets held + n), skips lines beyond perUserLimit, serves lines in input
// order up to the stock left, and inserts the coupons ON CONFLICT DO NOTHING (a concurrent claim
// that took the same seq wins; the line counts as skipped). slot stays NULL: slots belong to the
// claim gate. The caller raises issued_count by the rows really inserted, in the same transaction.
import type { Queryable } from '../infra/db.ts';

export interface ChunkParams {
  jobId: string;
  chunkNo: number;
  templateId: string;
  partnerId: string;
  validFrom: Date;
  validUntil: Date;
  /** The chunk's coupon ids without their last 8 hex digits (couponIdPrefix in distribution.ts). */
  idPrefix: string;
  perUserLimit: number;
  /** Coupons left in a limited template; null: unlimited. */
  remaining: number | null;
}

export interface ChunkCounts {
  lines: number;
  malformed: number;
  /** valid lines within the per-user limit */
  eligible: number;
  /** eligible lines within the stock left */
  attempted: number;
  inserted: number;
}

const LINES = `
lines AS (
  SELECT c.first_position + t.n - 1 AS position, t.line
    FROM job_chunks c, unnest(string_to_array(c.payload, E'\\n')) WITH ORDINALITY AS t(line, n)
   WHERE c.job_id = $1 AND c.chunk_no = $2 AND t.line <> ''
),
-- a user id is 1..128 printable ASCII characters (no space); not written as ^[…]{1,128}$, which
-- PostgreSQL's regex engine runs at ~10 µs a line (a state per count): ~1 µs this way
classified AS MATERIALIZED (
  SELECT position, line, char_length(line) <= 128 AND line !~ '[^\\x21-\\x7E]' AS valid FROM lines
),
failures AS (
  INSERT INTO job_failures (job_id, position, item, reason)
  SELECT $1, position, line, 'MALFORMED_USER_ID' FROM classified WHERE NOT valid
  ON CONFLICT DO NOTHING
)`;
// A chunk's coupon ids are its prefix ($7) and a counter in the order the rows are inserted, so the
// primary key is appended to at its right edge (PostgreSQL caches that leaf page: no descent per
// row). Random ids cost ~5 µs more per row (500,000 rows: 19.1 against 14.3 µs of backend CPU).
const newCoupon = (insertOrder: string) =>
  `($7 || lpad(to_hex(row_number() OVER (ORDER BY ${insertOrder})), 8, '0'))::uuid, $4, $3`;

// Only (template, user, seq) can conflict: the ids are fresh and slot stays NULL. Naming it as the
// arbiter spares the pre-insert probe of the two other unique indexes for every row.
const ON_USER_SEQ_CONFLICT = 'ON CONFLICT (template_id, user_id, seq) DO NOTHING';

// perUserLimit 1 and no stock to share (the 10M case): every valid line asks for seq 1, and the
// unique (template, user, seq) index itself refuses holders and repeated lines, even within this
// statement, so there is nothing to look up or rank. Rows go in sorted by user id so the two
// user_id indexes are written page after page rather than all over (input order is arbitrary).
const FIRST_COUPON_ONLY = `
WITH ${LINES},
inserted AS (
  INSERT INTO coupons (id, partner_id, template_id, user_id, seq, valid_from, valid_until)
  SELECT ${newCoupon('line COLLATE "C"')}, line, 1, $5, $6 FROM classified WHERE valid ORDER BY line COLLATE "C"
  ${ON_USER_SEQ_CONFLICT}
  RETURNING 1
)
SELECT (SELECT count(*) FROM classified)::int AS lines,
       (SELECT count(*) FROM classified WHERE NOT valid)::int AS malformed,
       (SELECT count(*) FROM classified WHERE valid)::int AS eligible,
       (SELECT count(*) FROM classified WHERE valid)::int AS attempted,
       (SELECT count(*) FROM inserted)::int AS inserted`;

// Otherwise: the n-th line of a user in the chunk asks for seq held + n; lines beyond the limit
// are skipped, and the rest are served in input order up to the stock left ($9, NULL: no limit).
const NEXT_COUPONS = `
WITH ${LINES},
valid AS (
  SELECT position, line AS user_id, row_number() OVER (PARTITION BY line ORDER BY position) AS nth
    FROM classified WHERE valid
),
wanted AS MATERIALIZED (
  SELECT v.position, v.user_id, v.nth + coalesce(h.held, 0) AS seq
    FROM valid v
    LEFT JOIN LATERAL (SELECT max(c.seq) AS held FROM coupons c WHERE c.template_id = $3 AND c.user_id = v.user_id) h ON true
),
candidates AS MATERIALIZED (
  SELECT position, user_id, seq FROM wanted WHERE seq <= $8 ORDER BY position LIMIT $9
),
inserted AS (
  INSERT INTO coupons (id, partner_id, template_id, user_id, seq, valid_from, valid_until)
  SELECT ${newCoupon('position')}, user_id, seq, $5, $6 FROM candidates ORDER BY position
  ${ON_USER_SEQ_CONFLICT}
  RETURNING 1
)
SELECT (SELECT count(*) FROM classified)::int AS lines,
       (SELECT count(*) FROM classified WHERE NOT valid)::int AS malformed,
       (SELECT count(*) FROM wanted WHERE seq <= $8)::int AS eligible,
       (SELECT count(*) FROM candidates)::int AS attempted,
       (SELECT count(*) FROM inserted)::int AS inserted`;

export async function distributeChunk(tx: Queryable, p: ChunkParams): Promise<ChunkCounts> {
  const firstOnly = p.perUserLimit === 1 && p.remaining === null;
  const params: unknown[] = [p.jobId, p.chunkNo, p.templateId, p.partnerId, p.validFrom, p.validUntil, p.idPrefix];
  const { rows } = await tx.query<ChunkCounts>(firstOnly ? FIRST_COUPON_ONLY : NEXT_COUPONS, firstOnly ? params : [...params, p.perUserLimit, p.remaining]);
  return rows[0]!;
}

/** Locks the template row (serialising with claims and other chunks) and returns the stock left. */
export async function lockRemainingStock(tx: Queryable, templateId: string): Promise<number | null> {
  const { rows } = await tx.query<{ remaining: number | null }>(
    'SELECT total_quantity - issued_count AS remaining FROM coupon_templates WHERE id = $1 FOR UPDATE', [templateId]);
  return rows[0]?.remaining ?? null;
}

export async function addIssued(tx: Queryable, templateId: string, inserted: number): Promise<void> {
  if (inserted > 0) await tx.query('UPDATE coupon_templates SET issued_count = issued_count + $2 WHERE id = $1', [templateId, inserted]);
}
