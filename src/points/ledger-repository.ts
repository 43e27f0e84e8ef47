// SQL for the points ledger (migration 030): wallets, lots, transactions, allocations and
// idempotency records. Every read is scoped by partner. Lock discipline: a wallet row is locked
// before its lots are read or written; several wallets are locked in ascending id order.
//
// Mutating calls run in batches on a pipelined connection (node-postgres `pipeline`, see
// infra/db.ts): the statements a batch issues without awaiting each other are written back to back
// and answered in order, so a batch is two round trips: BEGIN + claim + lock + lots, then write +
// COMMIT (group-commit.ts).
// PostgreSQL still runs them one after another, each with its own snapshot (READ COMMITTED): the
// lots are read by a statement that starts after the wallet lock was granted, so they are current.
import { sendTogether, type Queryable, type Tx } from '../infra/db.ts';
import type { LedgerWrite, TransactionType } from './ledger-write.ts';
import type { Allocation, Lot } from './lots.ts';

/**
 * A named statement: node-postgres prepares it once per connection, so PostgreSQL parses and plans
 * the ledger's statements once instead of on every call (the write statement is large).
 */
const prepared = (name: string, text: string, values: unknown[]) => ({ name: `points-${name}`, text, values });

/** A wallet under this transaction's lock, with the lots its decision needs (spending order). */
export interface LockedWallet {
  readonly id: number;
  readonly userId: string;
  readonly balance: number;
  /** The partner's default lifetime of earned points. */
  readonly expiryDays: number;
  /** Every due lot (past expiry, still holding points) and the unexpired lots covering the need. */
  readonly lots: Lot[];
}

/**
 * The wallets a call locks: each user's unexpired lots are read until they cover `need` points.
 * `create`: the wallet is made, if missing, before the lock (an earn's, a transfer's receiver).
 */
export interface WalletRequest {
  readonly pointType: string;
  readonly users: ReadonlyArray<{ readonly userId: string; readonly need: number; readonly create?: boolean }>;
}

/** A claimed idempotency key: taken by this transaction (`acquired`), and its stored record, if any. */
export interface KeyClaim {
  readonly acquired: boolean;
  readonly stored: IdempotencyRecord | undefined;
}

/** One call of a batch: its key and the wallets it locks when the key is ours and new. */
export interface CallToClaim {
  readonly partnerId: string;
  readonly key: string;
  readonly wallets: WalletRequest;
}

/** A call's wallets as rows (partner, type, user, need): what `createWallets`, the lock and `neededLots` take. */
const walletRows = (partnerId: string, request: WalletRequest) => request.users.map((user) => ({ partnerId, pointType: request.pointType, ...user }));
type WalletRow = ReturnType<typeof walletRows>[number];

/**
 * The lots each wallet's decision needs, read by a statement of its own that starts after the
 * locks were granted: every due lot (past expiry, still holding points: the operation expires
 * them) and the unexpired lots that cover the user's `need`, in spending order (all of them when
 * they do not cover it). Issued right behind the lock on the pipelined connection.
 */
function neededLots(tx: Tx, wallets: readonly WalletRow[], now: Date) {
  return tx.query<Lot & { walletId: number }>(prepared('needed-lots',
    `SELECT l.wallet_id AS "walletId", l.id, l.amount, l.remaining, l.expires_at AS "expiresAt"
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[]) AS u (partner_id, point_type, user_id, need)
       JOIN point_wallets w ON w.partner_id = u.partner_id AND w.point_type = u.point_type AND w.user_id = u.user_id
       CROSS JOIN LATERAL (
         SELECT lot.*, sum(lot.remaining) FILTER (WHERE lot.expires_at > $5) OVER (ORDER BY lot.expires_at, lot.id) AS running
           FROM point_lots lot
          WHERE lot.wallet_id = w.id AND lot.remaining > 0
       ) l
      WHERE l.expires_at <= $5 OR l.running - l.remaining < u.need
      ORDER BY l.expires_at, l.id`,
    [wallets.map((w) => w.partnerId), wallets.map((w) => w.pointType), wallets.map((w) => w.userId), wallets.map((w) => w.need), now],
  ));
}

/** A wallet's identity as one string: (partner, point type, user). */
export const walletKey = (partnerId: string, pointType: string, userId: string): string => `${partnerId}\0${pointType}\0${userId}`;

/** One row per wallet, needing what all its rows need together (several calls of a batch may share a wallet). */
function perWallet(rows: readonly WalletRow[]): WalletRow[] {
  const merged = new Map<string, WalletRow>();
  for (const row of rows) {
    const key = walletKey(row.partnerId, row.pointType, row.userId);
    const seen = merged.get(key);
    merged.set(key, seen ? { ...seen, need: seen.need + row.need } : row);
  }
  return [...merged.values()];
}

/**
 * Creates the wallets that do not exist (race-free: a concurrent creator makes a row a no-op), in
 * one order, so two batches creating the same wallets wait for each other instead of deadlocking.
 * Issued ahead of the lock on the pipelined connection: the lock's statement starts after this one
 * and sees the new rows.
 */
function createWallets(tx: Tx, rows: readonly WalletRow[]) {
  return tx.query(prepared('create-wallets',
    `INSERT INTO point_wallets (partner_id, point_type, user_id)
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]) ORDER BY 1, 2, 3
         ON CONFLICT DO NOTHING`,
    [rows.map((w) => w.partnerId), rows.map((w) => w.pointType), rows.map((w) => w.userId)],
  ));
}

/** Each wallet's lots, from rows in spending order. */
function lotsByWallet(rows: ReadonlyArray<Lot & { walletId: number }>): Map<number, Lot[]> {
  const byWallet = new Map<number, Lot[]>();
  for (const { walletId, ...lot } of rows) {
    const lots = byWallet.get(walletId);
    if (lots) lots.push(lot);
    else byWallet.set(walletId, [lot]);
  }
  return byWallet;
}

const withLots = (wallets: ReadonlyArray<Omit<LockedWallet, 'lots'>>, lots: ReadonlyMap<number, Lot[]>): LockedWallet[] =>
  wallets.map((wallet) => ({ ...wallet, lots: lots.get(wallet.id) ?? [] }));

/**
 * Claims the idempotency keys of a batch of calls and, for each call that took its key and finds
 * no stored record, locks its wallets: all of the batch's wallets in ONE ascending id order (two
 * batches never deadlock), none of a replay's or of a duplicate in flight (they never wait in a
 * wallet's lock queue). The advisory lock on hash(partner, key) is transaction-scoped (a 64-bit
 * hash: a collision only makes an unrelated key wait its turn, 409 then retry, never share a
 * record). The keys must be distinct within the batch: a session re-takes its own advisory lock.
 * Issue right after BEGIN; the lots follow in the same round trip. Answers in the calls' order.
 */
export async function claimKeysAndLockWallets(
  tx: Tx, calls: readonly CallToClaim[], now: Date,
): Promise<Array<{ claim: KeyClaim; wallets: LockedWallet[] }>> {
  type Row = { i: number; acquired: boolean; fingerprint: Buffer | null; status: number | null; body: unknown; id: number | null } & Omit<LockedWallet, 'lots' | 'id'>;
  const wanted = calls.flatMap((call, i) => walletRows(call.partnerId, call.wallets).map((row) => ({ i, ...row })));
  const toCreate = wanted.filter((row) => row.create);
  const [, locked, lots] = await Promise.all([
    toCreate.length > 0 && createWallets(tx, toCreate),
    tx.query<Row>(prepared('claim-and-lock',
      `WITH claim AS MATERIALIZED (
         SELECT c.i, pg_try_advisory_xact_lock(hashtextextended(c.partner_id::text || ':' || c.idempotency_key, 0)) AS acquired,
                ${RECORD_COLUMNS}
           FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS c (partner_id, idempotency_key, i)
           -- LATERAL with LIMIT (not flattened into a join): one primary-key probe per key. A join
           -- let the plan, made once per connection while the table was small, read all of it.
           LEFT JOIN LATERAL (
             SELECT * FROM point_idempotency r WHERE r.partner_id = c.partner_id AND r.idempotency_key = c.idempotency_key LIMIT 1
           ) r ON true
       ), wanted AS (
         SELECT * FROM unnest($3::int[], $4::uuid[], $5::text[], $6::text[]) AS u (i, partner_id, point_type, user_id)
       ), locked AS MATERIALIZED (
         SELECT w.id, w.partner_id, w.point_type, w.user_id, w.balance, p.points_expiry_days
           FROM point_wallets w JOIN partners p ON p.id = w.partner_id
          WHERE (w.partner_id, w.point_type, w.user_id) IN (
                  SELECT u.partner_id, u.point_type, u.user_id FROM wanted u JOIN claim USING (i)
                   WHERE claim.acquired AND claim.fingerprint IS NULL)
          ORDER BY w.id
            FOR UPDATE OF w
       )
       SELECT claim.i, claim.acquired, claim.fingerprint, claim.status, claim.body,
              l.id, l.user_id AS "userId", l.balance, l.points_expiry_days AS "expiryDays"
         FROM claim
         LEFT JOIN (wanted u JOIN locked l USING (partner_id, point_type, user_id)) ON u.i = claim.i
        ORDER BY claim.i, l.id`,
      [calls.map((call) => call.partnerId), calls.map((call) => call.key),
        wanted.map((w) => w.i + 1), wanted.map((w) => w.partnerId), wanted.map((w) => w.pointType), wanted.map((w) => w.userId)],
    )),
    neededLots(tx, perWallet(wanted), now),
  ]);
  const answers = calls.map(() => ({ claim: { acquired: false, stored: undefined } as KeyClaim, wallets: [] as Array<Omit<LockedWallet, 'lots'>> }));
  for (const row of locked.rows) {
    const answer = answers[row.i - 1]!;
    answer.claim = {
      acquired: row.acquired,
      stored: row.fingerprint === null ? undefined : { fingerprint: row.fingerprint, status: row.status!, body: row.body },
    };
    if (row.id !== null) answer.wallets.push({ id: row.id, userId: row.userId, balance: row.balance, expiryDays: row.expiryDays });
  }
  const byWallet = lotsByWallet(lots.rows);
  return answers.map((answer) => ({ claim: answer.claim, wallets: withLots(answer.wallets, byWallet) }));
}

export async function lockWalletById(tx: Tx, walletId: number): Promise<{ id: number; balance: number }> {
  const { rows } = await tx.query<{ id: number; balance: number }>(prepared('lock-wallet-by-id',
    'SELECT id, balance FROM point_wallets WHERE id = $1 FOR UPDATE', [walletId]));
  return rows[0]!;
}

/** The wallet's lots that hold points, plus the named ones whatever they hold (read under the lock). */
export async function walletLots(tx: Tx, walletId: number, alsoLotIds: readonly number[] = []): Promise<Lot[]> {
  const { rows } = await tx.query<Lot>(prepared('wallet-lots',
    `SELECT id, amount, remaining, expires_at AS "expiresAt"
       FROM point_lots
      WHERE wallet_id = $1 AND (remaining > 0 OR id = ANY($2::bigint[]))
      ORDER BY expires_at, id`,
    [walletId, alsoLotIds],
  ));
  return rows;
}

export interface StoredTransaction {
  readonly id: string;
  readonly walletId: number;
  readonly pointType: string;
  readonly type: TransactionType;
  readonly amount: number;
}

export async function findTransaction(db: Queryable, partnerId: string, transactionId: string): Promise<StoredTransaction | undefined> {
  const { rows } = await db.query<StoredTransaction>(prepared('find-transaction',
    `SELECT t.id, t.wallet_id AS "walletId", w.point_type AS "pointType", t.type, t.amount
       FROM point_transactions t JOIN point_wallets w ON w.id = t.wallet_id
      WHERE t.id = $1 AND t.partner_id = $2`,
    [transactionId, partnerId],
  ));
  return rows[0];
}

/**
 * What a cancel decides on (ledger-rules.ts decideCancel), read under its wallet's lock: whether
 * the transaction was cancelled already, and the EARN's lot with the wallet's lots, or the USE's
 * allocations with the lots they took.
 */
export type CancelState = {
  readonly target: StoredTransaction;
  readonly wallet: { readonly id: number; readonly balance: number };
  readonly cancelled: boolean;
  readonly lots: Lot[];
} & (
  | { readonly kind: 'EARN'; readonly lot: Lot | undefined }
  | { readonly kind: 'USE'; readonly allocations: Allocation[] }
);

/** Locks the cancelled transaction's wallet, then reads what its cancel decides on. */
export async function loadCancelState(tx: Tx, target: StoredTransaction): Promise<CancelState> {
  const wallet = await lockWalletById(tx, target.walletId);
  const cancelled = await isCancelled(tx, target.id);
  if (target.type === 'EARN') {
    const lot = await lotCreatedBy(tx, target.id);
    return { kind: 'EARN', target, wallet, cancelled, lot, lots: await walletLots(tx, wallet.id) };
  }
  const allocations = await allocationsOf(tx, target.id);
  return { kind: 'USE', target, wallet, cancelled, allocations, lots: await walletLots(tx, wallet.id, allocations.map((allocation) => allocation.lotId)) };
}

export async function isCancelled(tx: Tx, transactionId: string): Promise<boolean> {
  const { rows } = await tx.query(prepared('is-cancelled',
    `SELECT 1 FROM point_transactions WHERE related_transaction_id = $1 AND type IN ('CANCEL_EARN', 'CANCEL_USE')`,
    [transactionId],
  ));
  return rows.length > 0;
}

/** The lot an EARN (or TRANSFER_IN) created. */
export async function lotCreatedBy(tx: Tx, transactionId: string): Promise<Lot | undefined> {
  const { rows } = await tx.query<Lot>(prepared('lot-created-by',
    'SELECT id, amount, remaining, expires_at AS "expiresAt" FROM point_lots WHERE source_transaction_id = $1',
    [transactionId],
  ));
  return rows[0];
}

export async function allocationsOf(tx: Tx, transactionId: string): Promise<Allocation[]> {
  const { rows } = await tx.query<Allocation>(prepared('allocations-of',
    'SELECT lot_id AS "lotId", amount FROM point_allocations WHERE transaction_id = $1 ORDER BY lot_id',
    [transactionId],
  ));
  return rows;
}

export interface IdempotencyRecord {
  readonly fingerprint: Buffer;
  readonly status: number;
  readonly body: unknown;
}

export interface IdempotencyRecordToStore {
  readonly partnerId: string;
  readonly key: string;
  readonly fingerprint: Buffer;
  readonly status: number;
  readonly body: Record<string, unknown>;
  /** NULL for a stored refusal. */
  readonly transactionId: string | null;
  readonly createdAt: Date;
}

const RECORD_COLUMNS = 'request_hash AS fingerprint, status_code AS status, response AS body';

export async function findIdempotencyRecord(db: Queryable, partnerId: string, key: string): Promise<IdempotencyRecord | undefined> {
  const { rows } = await db.query<IdempotencyRecord>(prepared('find-record',
    `SELECT ${RECORD_COLUMNS} FROM point_idempotency WHERE partner_id = $1 AND idempotency_key = $2`,
    [partnerId, key],
  ));
  return rows[0];
}

/**
 * Writes a batch's decisions in ONE statement: transactions, new lots, lot changes, allocations,
 * wallet balances and the idempotency records (applied answers and stored refusals), and commits
 * (pipelined: one round trip). Foreign keys between rows of this statement are checked at its end.
 * The writes may come from several calls: changes to the same lot or wallet are summed, so each
 * row is updated once whatever the batch holds. The CHECK constraints are the last guard: a wrong
 * plan fails, it never leaves a negative lot or balance; the COMMIT behind a failed statement then
 * ends the transaction as a rollback, and the failure rejects this call.
 */
export async function commitBatch(tx: Tx, writes: readonly LedgerWrite[], records: readonly IdempotencyRecordToStore[]): Promise<void> {
  // New rows travel as JSON (one parameter per table, named fields): serialised natively, where
  // node-postgres would escape every element of some twenty array parameters in JavaScript. The
  // updates keep arrays of ids: their generic plan then probes the primary key per id, where a
  // JSON row source (estimated at 100 rows) was planned as a merge join over every lot.
  const json = (rows: unknown[]) => JSON.stringify(rows);
  const lotDeltas = [...sumDeltas(writes.map((write) => write.lotDeltas))].filter(([, delta]) => delta !== 0);
  const walletDeltas = [...sumDeltas(writes.map((write) => write.walletDeltas))];
  await Promise.all(sendTogether(tx, () => [tx.query(prepared('commit-batch',
    `WITH new_transactions AS (
       INSERT INTO point_transactions (id, partner_id, wallet_id, type, amount, related_transaction_id, order_id, reason, created_at)
       SELECT * FROM json_to_recordset($1::json) AS t ("id" uuid, "partnerId" uuid, "walletId" bigint, "type" text, "amount" bigint,
                                                    "relatedTransactionId" uuid, "orderId" text, "reason" text, "createdAt" timestamptz)
     ), new_lots AS (
       INSERT INTO point_lots (wallet_id, source_transaction_id, amount, remaining, expires_at, created_at)
       SELECT l."walletId", l."sourceTransactionId", l.amount, l.amount, l."expiresAt", l."createdAt"
         FROM json_to_recordset($2::json) AS l ("walletId" bigint, "sourceTransactionId" uuid, "amount" bigint, "expiresAt" timestamptz, "createdAt" timestamptz)
     ), lot_changes AS (
       UPDATE point_lots l SET remaining = l.remaining + d.delta
         FROM unnest($3::bigint[], $4::bigint[]) AS d (id, delta)
        WHERE l.id = d.id
     ), new_allocations AS (
       INSERT INTO point_allocations (transaction_id, lot_id, amount)
       SELECT * FROM json_to_recordset($5::json) AS a ("transactionId" uuid, "lotId" bigint, "amount" bigint)
     ), balances AS (
       UPDATE point_wallets w SET balance = w.balance + d.delta
         FROM unnest($6::bigint[], $7::bigint[]) AS d (id, delta)
        WHERE w.id = d.id
     )
     INSERT INTO point_idempotency (partner_id, idempotency_key, request_hash, status_code, response, transaction_id, created_at)
     SELECT r."partnerId", r.key, decode(r.fingerprint, 'hex'), r.status, r.body, r."transactionId", r."createdAt"
       FROM json_to_recordset($8::json) AS r ("partnerId" uuid, "key" text, "fingerprint" text, "status" int, "body" jsonb,
                                              "transactionId" uuid, "createdAt" timestamptz)`,
    [
      json(writes.flatMap((write) => write.transactions.map((row) => ({ ...row, partnerId: write.partnerId, createdAt: write.now })))),
      json(writes.flatMap((write) => write.lots.map((row) => ({ ...row, createdAt: write.now })))),
      lotDeltas.map(([id]) => id), lotDeltas.map(([, delta]) => delta),
      json(writes.flatMap((write) => write.allocations)),
      walletDeltas.map(([id]) => id), walletDeltas.map(([, delta]) => delta),
      json(records.map((record) => ({ ...record, fingerprint: record.fingerprint.toString('hex') }))),
    ],
  )), tx.query('COMMIT')]));
}

function sumDeltas(maps: ReadonlyArray<ReadonlyMap<number, number>>): Map<number, number> {
  const sums = new Map<number, number>();
  for (const map of maps) for (const [id, delta] of map) sums.set(id, (sums.get(id) ?? 0) + delta);
  return sums;
}

// ---- reads

export interface WalletBalance {
  readonly balance: number;
  readonly expiring: Array<{ expiresAt: Date; amount: number }>;
}

/** Spendable balance at `now` (lots past expiry never count, swept or not) and the next expiries. */
export async function readBalance(db: Queryable, partnerId: string, userId: string, pointType: string, now: Date, expiringLimit: number): Promise<WalletBalance> {
  const { rows } = await db.query<{ expiresAt: Date; amount: number; balance: number }>(prepared('read-balance',
    `SELECT l.expires_at AS "expiresAt", sum(l.remaining)::bigint AS amount,
            sum(sum(l.remaining)) OVER ()::bigint AS balance
       FROM point_wallets w JOIN point_lots l ON l.wallet_id = w.id
      WHERE w.partner_id = $1 AND w.user_id = $2 AND w.point_type = $3 AND l.remaining > 0 AND l.expires_at > $4
      GROUP BY l.expires_at
      ORDER BY l.expires_at`,
    [partnerId, userId, pointType, now],
  ));
  return {
    balance: rows[0]?.balance ?? 0,
    expiring: rows.slice(0, expiringLimit).map((row) => ({ expiresAt: row.expiresAt, amount: row.amount })),
  };
}

export interface TransactionRow {
  readonly seq: number;
  readonly id: string;
  readonly type: TransactionType;
  readonly amount: number;
  readonly relatedTransactionId: string | null;
  readonly orderId: string | null;
  readonly reason: string | null;
  readonly createdAt: Date;
}

/** Newest first; `beforeSeq` is the cursor of the previous page. */
export async function listTransactions(
  db: Queryable, partnerId: string, userId: string, pointType: string, limit: number, beforeSeq: number | undefined,
): Promise<TransactionRow[]> {
  const { rows } = await db.query<TransactionRow>(prepared('list-transactions',
    `SELECT t.seq, t.id, t.type, t.amount, t.related_transaction_id AS "relatedTransactionId",
            t.order_id AS "orderId", t.reason, t.created_at AS "createdAt"
       FROM point_wallets w JOIN point_transactions t ON t.wallet_id = w.id
      WHERE w.partner_id = $1 AND w.user_id = $2 AND w.point_type = $3 AND ($4::bigint IS NULL OR t.seq < $4)
      ORDER BY t.seq DESC
      LIMIT $5`,
    [partnerId, userId, pointType, beforeSeq ?? null, limit],
  ));
  return rows;
}

// ---- expiry

/** Up to `limit` wallets holding lots past expiry at `now`, any partner. */
export async function walletsWithDueLots(db: Queryable, now: Date, limit: number): Promise<number[]> {
  const { rows } = await db.query<{ walletId: number }>(
    `SELECT DISTINCT wallet_id AS "walletId" FROM (
       SELECT wallet_id FROM point_lots WHERE remaining > 0 AND expires_at <= $1 ORDER BY expires_at LIMIT $2
     ) due`,
    [now, limit],
  );
  return rows.map((row) => row.walletId);
}

/**
 * Expires every due lot of these wallets in one statement, after locking them in ascending id
 * order: one EXPIRE per wallet with an allocation per lot, lot remaining to 0, balance down by the
 * same sum. Lots another process expired meanwhile are no longer due, so re-running is a no-op.
 */
export async function expireDueLots(tx: Tx, walletIds: readonly number[], now: Date): Promise<{ lots: number; points: number }> {
  await tx.query('SELECT id FROM point_wallets WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE', [walletIds]);
  // The self-join reads each lot's remaining before the update: safe because the wallets are
  // locked (by the statement above, so this statement's snapshot already sees their last writer).
  const { rows } = await tx.query<{ lots: number; points: number }>(
    `WITH due AS (
       UPDATE point_lots l SET remaining = 0
         FROM point_lots before
        WHERE before.id = l.id AND l.wallet_id = ANY($1::bigint[]) AND l.remaining > 0 AND l.expires_at <= $2
       RETURNING l.id AS lot_id, l.wallet_id, before.remaining AS amount
     ), per_wallet AS MATERIALIZED (
       SELECT wallet_id, sum(amount) AS total, gen_random_uuid() AS transaction_id FROM due GROUP BY wallet_id
     ), expire_transactions AS (
       INSERT INTO point_transactions (id, partner_id, wallet_id, type, amount, created_at)
       SELECT pw.transaction_id, w.partner_id, pw.wallet_id, 'EXPIRE', -pw.total, $2
         FROM per_wallet pw JOIN point_wallets w ON w.id = pw.wallet_id
     ), expire_allocations AS (
       INSERT INTO point_allocations (transaction_id, lot_id, amount)
       SELECT pw.transaction_id, due.lot_id, due.amount FROM due JOIN per_wallet pw USING (wallet_id)
     ), balances AS (
       UPDATE point_wallets w SET balance = w.balance - pw.total FROM per_wallet pw WHERE w.id = pw.wallet_id
     )
     SELECT count(*)::int AS lots, coalesce(sum(amount), 0)::bigint AS points FROM due`,
    [walletIds, now],
  );
  return rows[0]!;
}

/** Deletes idempotency records created before `before`, at most `limit`; returns how many. */
export async function pruneIdempotencyRecords(db: Queryable, before: Date, limit: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM point_idempotency WHERE (partner_id, idempotency_key) IN (
       SELECT partner_id, idempotency_key FROM point_idempotency WHERE created_at < $1 ORDER BY created_at LIMIT $2)`,
    [before, limit],
  );
  return rowCount ?? 0;
}
