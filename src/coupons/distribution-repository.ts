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
  /** First 7 bytes of the chunk's coupon ids: UUIDv7 millisecond timestamp + version nibble. */
  idPrefix: Buffer;
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

// With perUserLimit 1 and no stock to share, a holder is refused by the unique (template, user,
// seq = 1) index itself, so the per-line lookup of the user's coupons is skipped (the 10M case).
const HELD_LOOKUP = `LEFT JOIN LATERAL (SELECT max(c.seq) AS held FROM coupons c WHERE c.template_id = $3 AND c.user_id = v.user_id) h ON true`;
const NO_HELD_LOOKUP = `LEFT JOIN (SELECT NULL::integer AS held) h ON true`;

const chunkSql = (lookup: string) => `
WITH lines AS (
  SELECT c.first_position + t.n - 1 AS position, t.line
    FROM job_chunks c, unnest(string_to_array(c.payload, E'\\n')) WITH ORDINALITY AS t(line, n)
   WHERE c.job_id = $1 AND c.chunk_no = $2 AND t.line <> ''
),
classified AS MATERIALIZED (
  SELECT position, line, line ~ '^[\\x21-\\x7E]{1,128}$' AS valid FROM lines
),
valid AS (
  SELECT position, line AS user_id, row_number() OVER (PARTITION BY line ORDER BY position) AS nth
    FROM classified WHERE valid
),
wanted AS MATERIALIZED (
  SELECT v.position, v.user_id, v.nth + coalesce(h.held, 0) AS seq FROM valid v ${lookup}
),
candidates AS MATERIALIZED (
  SELECT position, user_id, seq FROM wanted WHERE seq <= $8 ORDER BY position LIMIT $9
),
inserted AS (
  INSERT INTO coupons (id, partner_id, template_id, user_id, seq, valid_from, valid_until)
  SELECT encode(overlay(uuid_send(gen_random_uuid()) PLACING $7 FROM 1 FOR 7), 'hex')::uuid, $4, $3, user_id, seq, $5, $6
    FROM candidates ORDER BY position
  ON CONFLICT DO NOTHING
  RETURNING 1
),
failures AS (
  INSERT INTO job_failures (job_id, position, item, reason)
  SELECT $1, position, line, 'MALFORMED_USER_ID' FROM classified WHERE NOT valid
  ON CONFLICT DO NOTHING
)
SELECT (SELECT count(*) FROM classified)::int AS lines,
       (SELECT count(*) FROM classified WHERE NOT valid)::int AS malformed,
       (SELECT count(*) FROM wanted WHERE seq <= $8)::int AS eligible,
       (SELECT count(*) FROM candidates)::int AS attempted,
       (SELECT count(*) FROM inserted)::int AS inserted`;
const CHUNK_WITH_LOOKUP = chunkSql(HELD_LOOKUP);
const CHUNK_WITHOUT_LOOKUP = chunkSql(NO_HELD_LOOKUP);

export async function distributeChunk(tx: Queryable, p: ChunkParams): Promise<ChunkCounts> {
  const sql = p.perUserLimit === 1 && p.remaining === null ? CHUNK_WITHOUT_LOOKUP : CHUNK_WITH_LOOKUP;
  const { rows } = await tx.query<ChunkCounts>(sql, [
    p.jobId, p.chunkNo, p.templateId, p.partnerId, p.validFrom, p.validUntil, p.idPrefix, p.perUserLimit, p.remaining,
  ]);
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
