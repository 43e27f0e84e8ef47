// The baseline of bench:points: the usual first design of a points balance, measured only here.
// One row per user with `balance` and a `version` column (optimistic concurrency): read the row
// without a lock, write it back with `WHERE version = <read version>`, start over on a lost race
// (bounded). No lots, so no expiry dates and no exact restore on cancel; an idempotency key is a
// bare unique row (a repeat answers 200 {"duplicate": true}, not the first answer). A transfer
// writes the payer first, then the payee: two opposite transfers lock the two rows in opposite
// order, and PostgreSQL breaks the deadlock by failing one of them — which this design passes on
// to the client (500), as the designs this benchmark is compared with did.
import { AppError } from '../../src/errors.ts';
import { withTransaction, type Db, type Tx } from '../../src/infra/db.ts';

export const BASELINE_SCHEMA = `
  CREATE TABLE IF NOT EXISTS naive_point_wallets (
    partner_id uuid NOT NULL, user_id text NOT NULL,
    balance bigint NOT NULL CHECK (balance >= 0), version integer NOT NULL DEFAULT 0,
    PRIMARY KEY (partner_id, user_id));
  CREATE TABLE IF NOT EXISTS naive_point_transactions (
    id bigserial PRIMARY KEY, partner_id uuid NOT NULL, user_id text NOT NULL, amount bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE IF NOT EXISTS naive_point_idempotency (
    partner_id uuid NOT NULL, idempotency_key text NOT NULL, PRIMARY KEY (partner_id, idempotency_key));`;

const OPTIMISTIC_ATTEMPTS = 10;

class LostRace extends Error {}

export interface BaselineAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

async function optimistic(db: Db, partnerId: string, key: string, work: (tx: Tx) => Promise<Record<string, unknown>>): Promise<BaselineAnswer> {
  for (let attempt = 1; attempt <= OPTIMISTIC_ATTEMPTS; attempt++) {
    try {
      return await withTransaction(db, async (tx) => {
        const claimed = await tx.query(
          'INSERT INTO naive_point_idempotency (partner_id, idempotency_key) VALUES ($1, $2) ON CONFLICT DO NOTHING', [partnerId, key]);
        if (claimed.rowCount === 0) return { status: 200, body: { duplicate: true } };
        return { status: 201, body: await work(tx) };
      });
    } catch (error) {
      if (!(error instanceof LostRace)) throw error;
    }
  }
  throw new AppError('SERVICE_UNAVAILABLE', `lost the optimistic race ${OPTIMISTIC_ATTEMPTS} times`);
}

async function readWallet(tx: Tx, partnerId: string, userId: string): Promise<{ balance: number; version: number }> {
  const { rows } = await tx.query<{ balance: number; version: number }>(
    'SELECT balance, version FROM naive_point_wallets WHERE partner_id = $1 AND user_id = $2', [partnerId, userId]);
  return rows[0] ?? { balance: 0, version: -1 };
}

async function writeWallet(tx: Tx, partnerId: string, userId: string, read: { version: number }, balance: number, amount: number): Promise<void> {
  const written = read.version < 0
    ? await tx.query('INSERT INTO naive_point_wallets (partner_id, user_id, balance) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [partnerId, userId, balance])
    : await tx.query('UPDATE naive_point_wallets SET balance = $3, version = version + 1 WHERE partner_id = $1 AND user_id = $2 AND version = $4',
      [partnerId, userId, balance, read.version]);
  if (written.rowCount === 0) throw new LostRace();
  await tx.query('INSERT INTO naive_point_transactions (partner_id, user_id, amount) VALUES ($1, $2, $3)', [partnerId, userId, amount]);
}

export const naiveEarn = (db: Db, partnerId: string, key: string, userId: string, amount: number) =>
  optimistic(db, partnerId, key, async (tx) => {
    const wallet = await readWallet(tx, partnerId, userId);
    await writeWallet(tx, partnerId, userId, wallet, wallet.balance + amount, amount);
    return { balance: wallet.balance + amount };
  });

export const naiveUse = (db: Db, partnerId: string, key: string, userId: string, amount: number) =>
  optimistic(db, partnerId, key, async (tx) => {
    const wallet = await readWallet(tx, partnerId, userId);
    if (wallet.balance < amount) throw new AppError('INSUFFICIENT_POINTS');
    await writeWallet(tx, partnerId, userId, wallet, wallet.balance - amount, -amount);
    return { balance: wallet.balance - amount };
  });

export const naiveTransfer = (db: Db, partnerId: string, key: string, fromUserId: string, toUserId: string, amount: number) =>
  optimistic(db, partnerId, key, async (tx) => {
    const from = await readWallet(tx, partnerId, fromUserId);
    const to = await readWallet(tx, partnerId, toUserId);
    if (from.balance < amount) throw new AppError('INSUFFICIENT_POINTS');
    await writeWallet(tx, partnerId, fromUserId, from, from.balance - amount, -amount);
    await writeWallet(tx, partnerId, toUserId, to, to.balance + amount, amount);
    return { fromBalance: from.balance - amount, toBalance: to.balance + amount };
  });
