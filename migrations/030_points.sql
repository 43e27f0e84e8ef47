-- Points ledger: wallets, lots, an append-only ledger, allocations and idempotency keys.
-- Owner: src/points/ (README.md there). Other writers (bulk accrual) must follow the rules below.
--
-- INVARIANTS (checked by src/points/invariants.ts after every concurrent test and benchmark):
--   for every wallet:  balance = Σ remaining of its lots = Σ amount of its transactions
--   * An expired lot holds remaining = 0: expiry moves its remaining into an EXPIRE transaction,
--     so "Σ remaining of its lots" is also "Σ remaining of its unexpired lots". A lot past
--     expires_at that still holds points is due: the expiry job (or the next use / transfer /
--     cancel / earn on that wallet) expires it; reads never count it.
--   * No negatives: balance >= 0, 0 <= remaining <= amount, allocation amounts > 0 (CHECKs).
--   * point_transactions.amount is SIGNED: EARN, CANCEL_USE, TRANSFER_IN > 0;
--     USE, CANCEL_EARN, EXPIRE, TRANSFER_OUT < 0. Rows are never updated or deleted.
--   * A lot is created by exactly one EARN or TRANSFER_IN (source_transaction_id). Every other
--     transaction lists the lots it took points from (or gave back to, for CANCEL_USE) in
--     point_allocations, Σ allocation amounts = |transaction amount|; a cancel of a USE restores
--     exactly those lots.
--   * Point types never mix: a wallet is per (partner, user, point_type); lots and transactions
--     belong to one wallet.
--
-- LOCKING: every change to a wallet's balance or to its lots happens in a transaction that holds
-- the wallet row lock (SELECT … FOR UPDATE, or the UPDATE of its balance) before it reads or
-- writes its lots. Several wallets are locked in ascending id order (SELECT … WHERE id = ANY(…)
-- ORDER BY id FOR UPDATE), so two writers never deadlock.
--
-- HOW TO WRITE AN EARN (API and bulk accrual alike), all in ONE transaction:
--   1. INSERT INTO point_wallets (partner_id, user_id, point_type) … ON CONFLICT DO NOTHING
--      (race-free wallet creation), then lock the wallets in ascending id order.
--   2. INSERT INTO point_idempotency (partner_id, idempotency_key, request_hash, status_code,
--      response, transaction_id) … ON CONFLICT DO NOTHING: an item whose key is already there
--      was applied before (by either path) and must be skipped.
--   3. INSERT INTO point_transactions (id, partner_id, wallet_id, type 'EARN', amount > 0, …).
--   4. INSERT INTO point_lots (wallet_id, source_transaction_id, amount, remaining = amount,
--      expires_at > now) — one lot per EARN.
--   5. UPDATE point_wallets SET balance = balance + Σ amounts of the wallet's new EARNs.
--
-- IDEMPOTENCY (Stripe semantics, docs/architecture.md): ONE key space per partner, shared by the
-- Idempotency-Key header of every mutating points call and the idempotencyKey of bulk accrual
-- items. The row is written in the same transaction as the effect, so a visible row always means
-- "applied" (or "refused", for a stored 409), never "half done". request_hash is the SHA-256 of
-- the canonical request (src/points/idempotency.ts): for an earn it is earnFingerprint({userId,
-- amount, pointType, expiresAt, expiresInDays, reason, orderId}) whichever path sends it, so the
-- same earn sent as a bulk item and as POST /v1/points/earn with the same key is applied once and
-- replayed to the other; a different request under the same key is refused (422
-- IDEMPOTENCY_KEY_REUSED, or an item failure in a bulk job). response is the JSON body answered
-- the first time (bulk items store the EARN response {transactionId, type, amount, balance,
-- expiresAt}, balance as of the commit of their chunk). Rows are kept at least 24 hours; the
-- expiry job prunes older ones.
ALTER TABLE partners ADD COLUMN points_expiry_days integer NOT NULL DEFAULT 365
  CHECK (points_expiry_days BETWEEN 1 AND 36500);

CREATE TABLE point_wallets (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  partner_id  uuid NOT NULL REFERENCES partners (id),
  user_id     text NOT NULL CHECK (char_length(user_id) BETWEEN 1 AND 128),
  point_type  text NOT NULL DEFAULT 'default' CHECK (point_type ~ '^[A-Za-z0-9_.-]{1,64}$'),
  balance     bigint NOT NULL DEFAULT 0 CHECK (balance >= 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT point_wallets_one_per_user UNIQUE (partner_id, user_id, point_type)
);

CREATE TABLE point_transactions (
  id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- insertion order: the newest-first cursor of the transaction list
  seq                    bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  partner_id             uuid NOT NULL REFERENCES partners (id),
  wallet_id              bigint NOT NULL REFERENCES point_wallets (id),
  type                   text NOT NULL CHECK (type IN
                           ('EARN', 'USE', 'CANCEL_EARN', 'CANCEL_USE', 'EXPIRE', 'TRANSFER_OUT', 'TRANSFER_IN')),
  amount                 bigint NOT NULL,
  -- CANCEL_EARN / CANCEL_USE: the cancelled transaction; TRANSFER_IN: its TRANSFER_OUT
  related_transaction_id uuid REFERENCES point_transactions (id),
  order_id               text CHECK (char_length(order_id) BETWEEN 1 AND 128),
  reason                 text CHECK (char_length(reason) BETWEEN 1 AND 500),
  created_at             timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT point_transactions_signed CHECK (
    (type IN ('EARN', 'CANCEL_USE', 'TRANSFER_IN') AND amount > 0)
    OR (type IN ('USE', 'CANCEL_EARN', 'EXPIRE', 'TRANSFER_OUT') AND amount < 0)),
  CONSTRAINT point_transactions_related CHECK (
    (type IN ('CANCEL_EARN', 'CANCEL_USE', 'TRANSFER_IN')) = (related_transaction_id IS NOT NULL))
);
CREATE INDEX point_transactions_wallet ON point_transactions (wallet_id, seq);
-- a transaction is cancelled at most once, whatever the race
CREATE UNIQUE INDEX point_transactions_cancelled_once ON point_transactions (related_transaction_id)
  WHERE type IN ('CANCEL_EARN', 'CANCEL_USE');

CREATE TABLE point_lots (
  id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  wallet_id             bigint NOT NULL REFERENCES point_wallets (id),
  -- the EARN or TRANSFER_IN that created the lot
  source_transaction_id uuid NOT NULL REFERENCES point_transactions (id),
  amount                bigint NOT NULL CHECK (amount > 0),
  remaining             bigint NOT NULL,
  expires_at            timestamptz NOT NULL,
  created_at            timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT point_lots_remaining CHECK (remaining >= 0 AND remaining <= amount)
);
-- spending order within a wallet: earliest expiry first, ties by creation (id)
CREATE INDEX point_lots_spendable ON point_lots (wallet_id, expires_at, id) WHERE remaining > 0;
CREATE INDEX point_lots_due ON point_lots (expires_at) WHERE remaining > 0;
CREATE INDEX point_lots_source ON point_lots (source_transaction_id);

CREATE TABLE point_allocations (
  transaction_id uuid NOT NULL REFERENCES point_transactions (id),
  lot_id         bigint NOT NULL REFERENCES point_lots (id),
  amount         bigint NOT NULL CHECK (amount > 0),
  PRIMARY KEY (transaction_id, lot_id)
);

CREATE TABLE point_idempotency (
  partner_id      uuid NOT NULL REFERENCES partners (id),
  idempotency_key text NOT NULL CHECK (idempotency_key ~ '^[\x21-\x7E]{1,255}$'),
  request_hash    bytea NOT NULL CHECK (octet_length(request_hash) = 32),
  status_code     smallint NOT NULL CHECK (status_code BETWEEN 200 AND 499),
  response        jsonb NOT NULL,
  -- the transaction the request created; NULL when it was refused (a stored 409)
  transaction_id  uuid REFERENCES point_transactions (id),
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (partner_id, idempotency_key)
);
CREATE INDEX point_idempotency_age ON point_idempotency (created_at);
