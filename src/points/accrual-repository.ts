// SQL of bulk point accrual (owner: bulk jobs, src/jobs/). It writes into the points ledger by the
// rules in the header of migrations/030_points.sql, set-based, one staged chunk per transaction:
// the chunk is parsed into a session-local table, then one statement locks the chunk's wallets in
// ascending id order and, for items whose idempotency key is not recorded yet (same request:
// skipped; different request: an IDEMPOTENCY_KEY_REUSED failure), writes the EARN transactions,
// one lot each, the wallet balances and the idempotency records together. When some wallets do not
// exist yet or some hold due lots, that statement writes nothing and says so: the caller creates
// them (sorted, ON CONFLICT DO NOTHING, with no wallet locked) or expires the due lots (as every
// earn does), and runs it again.
// A key recorded by a concurrent writer after the statement's snapshot makes its plain INSERT fail
// on the primary key (no ON CONFLICT: speculative insertion costs a WAL record and a second index
// visit per item); the caller then rolls the chunk back and runs it again (it will see that record).
import type { Queryable, Tx } from '../infra/db.ts';
import { MAX_BALANCE } from './ledger-rules.ts';

export interface AccrualChunkParams {
  jobId: string;
  chunkNo: number;
  partnerId: string;
  pointType: string;
  now: Date;
}

/**
 * Parses the staged chunk once into a session-local table (emptied at commit), so the statements
 * below join it like any table instead of re-reading the JSON per row. Not analyzed: their plans
 * look the chunk's wallets and keys up by index whatever the estimates (EXPLAIN ANALYZE of a chunk
 * gave the same plans without statistics), and an ANALYZE per chunk cost ~2 µs per item and
 * rewrote the table's pg_statistic rows (WAL, catalog bloat) 500 times per million items.
 * User ids and keys are "C" like the columns they are matched with (migration 055), so the sort of
 * the keys before their insert is a memcmp sort in the primary key's order.
 */
export async function loadChunkItems(tx: Tx, p: AccrualChunkParams): Promise<void> {
  await tx.query(`CREATE TEMP TABLE IF NOT EXISTS accrual_chunk_items (
    position bigint, user_id text COLLATE "C", amount bigint, expires_at timestamptz, expires_iso text, key text COLLATE "C", hash bytea,
    transaction_id uuid)
    ON COMMIT DELETE ROWS`);
  // Chunks staged before items carried their transaction id (t) get a random one. An item's
  // expiry (e) is staged as Date#toISOString, the text the EARN answer shows: 24 characters for the
  // years 0000-9999. Any other length (a six-digit year, +010000-…, staged before timestamps were
  // bounded) is not read as a time: the item fails alone (MALFORMED_EXPIRY) instead of its chunk.
  await tx.query(
    `INSERT INTO accrual_chunk_items
     SELECT i.p, i.u, i.a, CASE WHEN length(i.e) = 24 THEN i.e::timestamptz END, i.e, i.k, decode(i.h, 'hex'), coalesce(i.t, gen_random_uuid())
       FROM job_chunks c CROSS JOIN json_to_recordset(c.payload::json) AS i (p bigint, u text, a bigint, e text, k text, h text, t uuid)
      WHERE c.job_id = $1 AND c.chunk_no = $2`,
    [p.jobId, p.chunkNo],
  );
}

// The chunk's wallets are looked up with `user_id = ANY (ARRAY(…))`: an index scan of the chunk's
// users whatever the statistics say. A plain join against point_wallets was planned as a scan of
// all the partner's wallets (≈ 45 ms per chunk at 60,000 wallets, growing with the partner).
const chunkWallets = (partnerId: string, pointType: string) => `
  SELECT w.id, w.user_id FROM point_wallets w
   WHERE w.partner_id = ${partnerId} AND w.point_type = ${pointType}
     AND w.user_id = ANY (ARRAY(SELECT DISTINCT user_id FROM accrual_chunk_items))`;

/**
 * Creates the wallets the chunk's users lack; existing ones are not touched (no conflict probe).
 * Run only when applyAccrualChunk found some missing, and then with no wallet locked.
 */
export async function createMissingWallets(tx: Tx, p: AccrualChunkParams): Promise<void> {
  await tx.query(
    `INSERT INTO point_wallets (partner_id, user_id, point_type)
     SELECT $1::uuid, missing.user_id, $2
       FROM (SELECT user_id FROM accrual_chunk_items EXCEPT SELECT user_id FROM (${chunkWallets('$1', '$2')}) w) missing
      ORDER BY 2
     ON CONFLICT DO NOTHING`,
    [p.partnerId, p.pointType],
  );
}

export interface AccrualChunkResult {
  /** Some of the chunk's users have no wallet yet: nothing was locked or written. */
  missingWallets: boolean;
  /** Locked wallets holding lots past their expiry (usually none): nothing was written. */
  dueWallets: number[];
  counts: AccrualChunkCounts;
}

export interface AccrualChunkCounts {
  items: number;
  /** items whose key was not recorded yet */
  fresh: number;
  /** idempotency records written (fresh unless a concurrent writer took a key) */
  recorded: number;
  reused: number;
  expired: number;
  /** items that would take their wallet past MAX_BALANCE */
  overLimit: number;
  /** items whose staged expiry PostgreSQL cannot read */
  malformed: number;
}

/**
 * Locks the chunk's wallets and, if every user has one and none holds a due lot, applies the chunk:
 * one statement instead of create-missing, lock and apply, so the chunk's users are looked up once.
 *   - `found`: the wallets, without locking. If some are missing, `locked` locks nothing (one-time
 *     filter) and nothing is written; the caller creates them (no wallet locked then, the rule of
 *     030) and runs this again.
 *   - `locked`: FOR UPDATE in ascending id order (030's lock order), with each wallet's latest
 *     balance (a row a concurrent writer updated is re-read once its lock is granted). Found by id,
 *     which never changes: the row's address (ctid) would save that lookup, but a concurrent update
 *     moves the row and the re-check of `ctid = …` after the lock wait would drop it.
 *   - `items` reads its gate, which counts all of `locked`, before its first row, so every lock is
 *     taken before any write. The gate is closed when a wallet is due: the caller expires its lots
 *     (every earn does) and runs this again, its locks already held.
 *   - Then, for items whose idempotency key is not recorded yet: the EARN transactions, one lot
 *     each, the balances and the idempotency records. A key already recorded is skipped (same
 *     request) or reported (IDEMPOTENCY_KEY_REUSED).
 * The stored answer's expiresAt is the staged ISO text of an item's own expiry, or the chunk's
 * default expiry formatted once, not a to_char per item.
 */
export async function applyAccrualChunk(tx: Queryable, p: AccrualChunkParams): Promise<AccrualChunkResult> {
  const { rows } = await tx.query<AccrualChunkCounts & { missing: boolean; due: string[] }>(
    `WITH chunk_users AS MATERIALIZED (
       SELECT DISTINCT user_id FROM accrual_chunk_items
     ), found AS MATERIALIZED (
       SELECT w.id FROM point_wallets w
        WHERE w.partner_id = $2 AND w.point_type = $3 AND w.user_id = ANY (ARRAY(SELECT user_id FROM chunk_users))
     ), locked AS MATERIALIZED (
       SELECT w.id, w.user_id, w.balance,
              EXISTS (SELECT 1 FROM point_lots l WHERE l.wallet_id = w.id AND l.remaining > 0 AND l.expires_at <= $4) AS has_due
         FROM point_wallets w
        WHERE w.id = ANY (ARRAY(SELECT id FROM found)) AND (SELECT count(*) FROM found) = (SELECT count(*) FROM chunk_users)
        ORDER BY w.id
          FOR UPDATE OF w
     ), gate AS MATERIALIZED (
       SELECT (SELECT count(*) FROM found) < (SELECT count(*) FROM chunk_users) AS missing,
              coalesce((SELECT array_agg(id ORDER BY id) FROM locked WHERE has_due), '{}') AS due
     ), items AS MATERIALIZED (
       SELECT items.*, w.id AS wallet_id, w.balance AS old_balance, r.request_hash AS stored_hash
         FROM accrual_chunk_items items
         JOIN locked w ON w.user_id = items.user_id
         LEFT JOIN point_idempotency r ON r.partner_id = $2 AND r.idempotency_key = items.key
        WHERE (SELECT NOT missing AND due = '{}' FROM gate)
     ), default_expiry AS MATERIALIZED (
       SELECT e.at, to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS iso
         FROM (SELECT $4::timestamptz + make_interval(secs => p.points_expiry_days * 86400) AS at FROM partners p WHERE p.id = $2) e
     ), applicable AS MATERIALIZED (
       -- running_balance: the wallet's balance up to this item, in request order; from the first item
       -- that takes it past $5 (MAX_BALANCE) on, the wallet's items fail
       SELECT items.*, items.old_balance + sum(items.amount) OVER (PARTITION BY items.wallet_id ORDER BY items.position) AS running_balance
         FROM items
        WHERE items.stored_hash IS NULL AND (items.expires_at > $4 OR (items.expires_at IS NULL AND items.expires_iso IS NULL))
     ), fresh AS MATERIALIZED (
       -- new_balance: the wallet's balance once the chunk is applied (what each item's record answers)
       SELECT a.*,
              a.old_balance + sum(a.amount) OVER (PARTITION BY a.wallet_id) AS new_balance,
              coalesce(a.expires_at, (SELECT at FROM default_expiry)) AS lot_expires_at,
              coalesce(a.expires_iso, (SELECT iso FROM default_expiry)) AS lot_expires_iso
         FROM applicable a
        WHERE a.running_balance <= $5
     ), balances AS (
       UPDATE point_wallets w SET balance = w.balance + t.total
         FROM (SELECT wallet_id, sum(amount) AS total FROM fresh GROUP BY wallet_id) t
        WHERE w.id = t.wallet_id
     ), new_transactions AS (
       INSERT INTO point_transactions (id, partner_id, wallet_id, type, amount, created_at)
       SELECT transaction_id, $2, wallet_id, 'EARN', amount, $4 FROM fresh ORDER BY position
     ), new_lots AS (
       INSERT INTO point_lots (wallet_id, source_transaction_id, amount, remaining, expires_at, created_at)
       SELECT wallet_id, transaction_id, amount, amount, lot_expires_at, $4 FROM fresh ORDER BY position
     ), records AS (
       -- the EARN answer {transactionId, type, amount, balance, expiresAt} (same jsonb as jsonb_build_object:
       -- every value is a uuid, a number or an ISO timestamp, none needs escaping)
       INSERT INTO point_idempotency (partner_id, idempotency_key, request_hash, status_code, response, transaction_id, created_at)
       SELECT $2, f.key, f.hash, 201,
              ('{"transactionId":"' || f.transaction_id || '","type":"EARN","amount":' || f.amount || ',"balance":' || f.new_balance
                || ',"expiresAt":"' || f.lot_expires_iso || '"}')::jsonb,
              f.transaction_id, $4
         FROM fresh f
        ORDER BY f.key
       RETURNING 1
     ), failures AS (
       INSERT INTO job_failures (job_id, position, item, reason)
       SELECT $1::uuid, position, key, CASE WHEN stored_hash IS NOT NULL THEN 'IDEMPOTENCY_KEY_REUSED' ELSE 'EXPIRED_BEFORE_APPLIED' END
         FROM items
        WHERE (stored_hash IS NOT NULL AND stored_hash <> hash) OR (stored_hash IS NULL AND expires_at <= $4)
       UNION ALL
       SELECT $1::uuid, position, key, 'BALANCE_LIMIT_REACHED' FROM applicable WHERE running_balance > $5
       UNION ALL
       SELECT $1::uuid, position, key, 'MALFORMED_EXPIRY' FROM items WHERE stored_hash IS NULL AND expires_iso IS NOT NULL AND expires_at IS NULL
       ON CONFLICT DO NOTHING
     )
     SELECT (SELECT missing FROM gate) AS missing,
            (SELECT due FROM gate) AS due,
            (SELECT count(*) FROM items)::int AS items,
            (SELECT count(*) FROM fresh)::int AS fresh,
            (SELECT count(*) FROM records)::int AS recorded,
            (SELECT count(*) FROM items WHERE stored_hash IS NOT NULL AND stored_hash <> hash)::int AS reused,
            (SELECT count(*) FROM items WHERE stored_hash IS NULL AND expires_at <= $4)::int AS expired,
            (SELECT count(*) FROM applicable WHERE running_balance > $5)::int AS "overLimit",
            (SELECT count(*) FROM items WHERE stored_hash IS NULL AND expires_iso IS NOT NULL AND expires_at IS NULL)::int AS malformed`,
    [p.jobId, p.partnerId, p.pointType, p.now, MAX_BALANCE],
  );
  const { missing, due, ...counts } = rows[0]!;
  return { missingWallets: missing, dueWallets: due.map(Number), counts }; // int8[] arrives as strings
}
