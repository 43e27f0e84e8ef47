// The schema itself refuses what the invariants forbid, whoever writes (API or bulk SQL).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppContext } from '../context.ts';
import { closeContext, testContext } from '../../test/harness/test-app.ts';

let ctx: AppContext;
let partnerId: string;

beforeAll(async () => {
  ctx = await testContext();
  partnerId = randomUUID();
  await ctx.db.query('INSERT INTO partners (id, name) VALUES ($1, $2)', [partnerId, `schema-${partnerId}`]);
});
afterAll(async () => closeContext(ctx));

const violation = (promise: Promise<unknown>) => expect(promise).rejects.toMatchObject({ code: '23514' });

describe('points schema', () => {
  it('refuses a negative balance, a negative lot and a wrongly signed transaction', async () => {
    const { rows } = await ctx.db.query<{ id: number }>(
      'INSERT INTO point_wallets (partner_id, user_id) VALUES ($1, $2) RETURNING id', [partnerId, 'u1']);
    const walletId = rows[0]!.id;
    await violation(ctx.db.query('UPDATE point_wallets SET balance = -1 WHERE id = $1', [walletId]));
    const txId = randomUUID();
    await violation(ctx.db.query(
      `INSERT INTO point_transactions (id, partner_id, wallet_id, type, amount) VALUES ($1, $2, $3, 'USE', 5)`, [txId, partnerId, walletId]));
    await ctx.db.query(
      `INSERT INTO point_transactions (id, partner_id, wallet_id, type, amount) VALUES ($1, $2, $3, 'EARN', 5)`, [txId, partnerId, walletId]);
    await violation(ctx.db.query(
      `INSERT INTO point_lots (wallet_id, source_transaction_id, amount, remaining, expires_at) VALUES ($1, $2, 5, -1, now())`, [walletId, txId]));
    await violation(ctx.db.query(
      `INSERT INTO point_lots (wallet_id, source_transaction_id, amount, remaining, expires_at) VALUES ($1, $2, 5, 6, now())`, [walletId, txId]));
  });

  it('accepts printable idempotency keys of 1 to 255 characters only', async () => {
    const insert = (key: string) => ctx.db.query(
      `INSERT INTO point_idempotency (partner_id, idempotency_key, request_hash, status_code, response)
       VALUES ($1, $2, sha256('x'), 201, '{}')`, [partnerId, key]);
    await insert('order-1:~!');
    await insert('k'.repeat(255));
    await violation(insert('k'.repeat(256)));
    await violation(insert('has space'));
    await violation(insert(''));
  });
});
