// Migration 052: the ledger's references to wallets and transactions are checked per statement
// (transition tables) and the referenced rows are permanent; whoever writes gets the guarantees
// of the foreign keys it replaced.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppContext } from '../context.ts';
import { closeContext, inRolledBackTransaction, testContext } from '../../test/harness/test-app.ts';

let ctx: AppContext;
let partnerId: string;

beforeAll(async () => {
  ctx = await testContext();
  partnerId = randomUUID();
  await ctx.db.query('INSERT INTO partners (id, name) VALUES ($1, $2)', [partnerId, `references-${partnerId}`]);
});
afterAll(async () => closeContext(ctx));

const missingReference = (constraint: string) => ({ code: '23503', constraint });
const refused = { code: '23001' }; // restrict_violation

async function newWallet(userId: string): Promise<number> {
  const { rows } = await ctx.db.query<{ id: number }>(
    'INSERT INTO point_wallets (partner_id, user_id) VALUES ($1, $2) RETURNING id', [partnerId, userId]);
  return rows[0]!.id;
}

async function earn(walletId: number, amount = 5): Promise<string> {
  const id = randomUUID();
  await ctx.db.query(
    `WITH t AS (INSERT INTO point_transactions (id, partner_id, wallet_id, type, amount) VALUES ($1, $2, $3, 'EARN', $4))
     INSERT INTO point_lots (wallet_id, source_transaction_id, amount, remaining, expires_at) VALUES ($3, $1, $4, $4, now() + interval '1 day')`,
    [id, partnerId, walletId, amount]);
  return id;
}

const NO_WALLET = 9_000_000_000;

describe('ledger references (migration 052)', () => {
  it('accepts rows that name a wallet and a transaction written earlier or by the same statement', async () => {
    const walletId = await newWallet('ref-ok');
    const txId = await earn(walletId);
    await ctx.db.query(
      `INSERT INTO point_idempotency (partner_id, idempotency_key, request_hash, status_code, response, transaction_id)
       VALUES ($1, 'ref-ok:1', sha256('a'), 201, '{}', $2), ($1, 'ref-ok:2', sha256('b'), 409, '{}', NULL)`, [partnerId, txId]);
    const { rows: [counts] } = await ctx.db.query<{ lots: number }>('SELECT count(*)::int AS lots FROM point_lots WHERE wallet_id = $1', [walletId]);
    expect(counts!.lots).toBe(1);
  });

  it('refuses a transaction, a lot or an idempotency record naming a row that does not exist, with the old key names', async () => {
    const walletId = await newWallet('ref-missing');
    const txId = await earn(walletId);
    await expect(ctx.db.query(
      `INSERT INTO point_transactions (id, partner_id, wallet_id, type, amount) VALUES ($1, $2, $3, 'EARN', 5)`, [randomUUID(), partnerId, NO_WALLET],
    )).rejects.toMatchObject(missingReference('point_transactions_wallet_id_fkey'));
    await expect(ctx.db.query(
      `INSERT INTO point_lots (wallet_id, source_transaction_id, amount, remaining, expires_at) VALUES ($1, $2, 5, 5, now())`, [NO_WALLET, txId],
    )).rejects.toMatchObject(missingReference('point_lots_wallet_id_fkey'));
    await expect(ctx.db.query(
      `INSERT INTO point_lots (wallet_id, source_transaction_id, amount, remaining, expires_at) VALUES ($1, $2, 5, 5, now())`, [walletId, randomUUID()],
    )).rejects.toMatchObject(missingReference('point_lots_source_transaction_id_fkey'));
    await expect(ctx.db.query(
      `INSERT INTO point_idempotency (partner_id, idempotency_key, request_hash, status_code, response, transaction_id)
       VALUES ($1, 'ref-missing:1', sha256('a'), 201, '{}', $2)`, [partnerId, randomUUID()],
    )).rejects.toMatchObject(missingReference('point_idempotency_transaction_id_fkey'));
  });

  it('refuses the whole statement when one row of many is bad', async () => {
    const walletId = await newWallet('ref-many');
    await expect(ctx.db.query(
      `INSERT INTO point_transactions (id, partner_id, wallet_id, type, amount)
       SELECT gen_random_uuid(), $1, CASE WHEN g = 500 THEN $3::bigint ELSE $2::bigint END, 'EARN', 1 FROM generate_series(1, 1000) g`,
      [partnerId, walletId, NO_WALLET],
    )).rejects.toMatchObject(missingReference('point_transactions_wallet_id_fkey'));
    const { rows: [counts] } = await ctx.db.query<{ n: number }>('SELECT count(*)::int AS n FROM point_transactions WHERE wallet_id = $1', [walletId]);
    expect(counts!.n).toBe(0);
  });

  it('does not count a wallet another transaction has inserted but not committed', async () => {
    const other = await ctx.db.connect();
    try {
      await other.query('BEGIN');
      const { rows } = await other.query<{ id: number }>(
        'INSERT INTO point_wallets (partner_id, user_id) VALUES ($1, $2) RETURNING id', [partnerId, 'ref-uncommitted']);
      await expect(ctx.db.query(
        `INSERT INTO point_transactions (id, partner_id, wallet_id, type, amount) VALUES ($1, $2, $3, 'EARN', 5)`, [randomUUID(), partnerId, rows[0]!.id],
      )).rejects.toMatchObject(missingReference('point_transactions_wallet_id_fkey'));
      await other.query('COMMIT');
      await earn(rows[0]!.id);
    } finally {
      other.release();
    }
  });

  it('keeps referenced rows permanent: no delete, truncate or new id; references never change', async () => {
    const walletId = await newWallet('ref-permanent');
    const txId = await earn(walletId);
    const unreferenced = await newWallet('ref-unreferenced');
    await expect(ctx.db.query('DELETE FROM point_wallets WHERE id = $1', [unreferenced])).rejects.toMatchObject(refused);
    await expect(ctx.db.query('DELETE FROM point_transactions WHERE id = $1', [txId])).rejects.toMatchObject(refused);
    await expect(ctx.db.query('UPDATE point_transactions SET id = $2 WHERE id = $1', [txId, randomUUID()])).rejects.toMatchObject(refused);
    await expect(ctx.db.query('UPDATE point_wallets SET id = DEFAULT WHERE id = $1', [walletId])).rejects.toMatchObject(refused);
    await expect(ctx.db.query('UPDATE point_transactions SET wallet_id = $2 WHERE id = $1', [txId, unreferenced])).rejects.toMatchObject(refused);
    await expect(ctx.db.query('UPDATE point_lots SET wallet_id = $2 WHERE wallet_id = $1', [walletId, unreferenced])).rejects.toMatchObject(refused);
    await expect(ctx.db.query('UPDATE point_lots SET source_transaction_id = $2 WHERE wallet_id = $1', [walletId, randomUUID()])).rejects.toMatchObject(refused);
    await expect(ctx.db.query('UPDATE point_idempotency SET transaction_id = $1 WHERE partner_id = $2', [randomUUID(), partnerId])).rejects.toMatchObject(refused);
    for (const table of ['point_wallets', 'point_transactions']) {
      await inRolledBackTransaction(ctx.db, async (tx) => {
        await expect(tx.query(`TRUNCATE ${table} CASCADE`)).rejects.toMatchObject(refused);
      });
    }
    // What the ledger does update still works: balances, remaining amounts, the same reference.
    await ctx.db.query('UPDATE point_wallets SET balance = balance + 5 WHERE id = $1', [walletId]);
    await ctx.db.query('UPDATE point_lots SET remaining = 0, wallet_id = wallet_id WHERE wallet_id = $1', [walletId]);
    const { rows: [wallet] } = await ctx.db.query<{ balance: string }>('SELECT balance FROM point_wallets WHERE id = $1', [walletId]);
    expect(Number(wallet!.balance)).toBe(5);
  });
});
