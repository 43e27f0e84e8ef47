-- Every points write inserts a transaction and an idempotency record; with a foreign key to
-- partners, each insert takes a FOR KEY SHARE lock on the partner's one row, so all concurrent
-- writes of a partner share-lock the same tuple: PostgreSQL then builds a new MultiXact for every
-- additional locker and rewrites that tuple's lock bits (WAL-logged) — a single hot row under
-- every wallet. The partner is already pinned by the wallet (point_wallets.partner_id keeps its
-- foreign key, checked once per wallet), and partners are never deleted, so these two keys only
-- cost. Writers still set partner_id from the wallet's partner (the ledger and bulk accrual do).
ALTER TABLE point_transactions DROP CONSTRAINT point_transactions_partner_id_fkey;
ALTER TABLE point_idempotency DROP CONSTRAINT point_idempotency_partner_id_fkey;
