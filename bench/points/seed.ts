// Set-up of bench:points: a partner with an API key, and for each design WALLETS users holding
// SEED_BALANCE points. The product's wallets are seeded set-based the way migration 030 says an
// EARN must be written (wallet, EARN transaction, one lot), so the invariant checker holds from
// the start.
import { v7 as uuidv7 } from 'uuid';
import type { Db } from '../../src/infra/db.ts';
import { generateApiKey } from '../../src/partners/api-key.ts';
import { insertApiKey, insertPartner } from '../../src/partners/partner-repository.ts';
import { BASELINE_SCHEMA } from './baseline-points.ts';

export async function createBenchPartner(db: Db): Promise<{ partnerId: string; apiKey: string }> {
  const partner = await insertPartner(db, { id: uuidv7(), name: 'bench points', rateLimitPerSecond: null });
  const key = generateApiKey();
  await insertApiKey(db, { id: uuidv7(), partnerId: partner.id, prefix: key.prefix, hash: key.hash });
  return { partnerId: partner.id, apiKey: key.apiKey };
}

/** Users `u0` … `u<wallets-1>`, each with one EARN of `balance` points expiring in 365 days. */
export async function seedLedgerWallets(db: Db, partnerId: string, wallets: number, balance: number): Promise<void> {
  await db.query(
    `WITH new_wallets AS (
       INSERT INTO point_wallets (partner_id, user_id, balance)
       SELECT $1, 'u' || n, $3 FROM generate_series(0, $2 - 1) AS n
       RETURNING id
     ), earns AS (
       INSERT INTO point_transactions (partner_id, wallet_id, type, amount, reason)
       SELECT $1, id, 'EARN', $3, 'bench seed' FROM new_wallets
       RETURNING id, wallet_id
     )
     INSERT INTO point_lots (wallet_id, source_transaction_id, amount, remaining, expires_at)
     SELECT wallet_id, id, $3, $3, now() + interval '365 days' FROM earns`,
    [partnerId, wallets, balance],
  );
}

export async function seedBaselineWallets(db: Db, partnerId: string, wallets: number, balance: number): Promise<void> {
  await db.query(BASELINE_SCHEMA);
  await db.query(
    `INSERT INTO naive_point_wallets (partner_id, user_id, balance) SELECT $1, 'u' || n, $3 FROM generate_series(0, $2 - 1) AS n`,
    [partnerId, wallets, balance],
  );
}
