-- Owner: bulk jobs (src/jobs/, issue 6); the points ledger's owner was told (src/points/README.md).
-- The four foreign keys that every earn pays for row by row, checked once per statement instead,
-- with the same guarantee for every writer (API, group commit, bulk accrual, psql):
--   point_transactions.wallet_id           -> point_wallets (id)
--   point_lots.wallet_id                   -> point_wallets (id)
--   point_lots.source_transaction_id       -> point_transactions (id)
--   point_idempotency.transaction_id       -> point_transactions (id)   (NULL allowed, as before)
--
-- WHY: a foreign key is checked by one SPI query per inserted row (`SELECT 1 … FOR KEY SHARE`), run
-- from the after-trigger queue. Bulk accrual writes 2,000 items per statement, each one transaction
-- row, one lot and one idempotency record, so 8,000 such queries per chunk. Measured with
-- bench/bulk/accrual-cost.ts (200,000 items on 2 connections, same code, alternating runs on a
-- shared machine, load average 4.3): 100 and 101 µs of backend CPU per item with the keys, 93 and
-- 87 µs with the checks below; EXPLAIN ANALYZE of one 2,000-item chunk: the four statement
-- triggers take 14.6 ms together (≈ 7 µs per item); pg_stat_statements (track = all, which adds
-- its own overhead) had counted 3.8 s in the per-row check queries for 100,000 items (38 µs each).
--
-- WHAT A FOREIGN KEY GUARANTEES, and how each part is kept:
--   (a) a row inserted (or a key column updated) names a row that exists at the end of the
--       statement: committed, or written earlier by the same transaction. A row another
--       transaction has inserted but not committed does not count.
--       -> one AFTER INSERT … FOR EACH STATEMENT trigger per key below, over the statement's
--          transition table (exactly the rows it inserted, COPY and ON CONFLICT included): one
--          anti-join against the referenced primary key, run when the statement ends like the
--          foreign-key triggers, with the same snapshot rules (READ COMMITTED: the latest committed
--          rows and the transaction's own; REPEATABLE READ / SERIALIZABLE: the transaction
--          snapshot and its own rows). Same error: SQLSTATE 23503 and the constraint name of the
--          key it replaces.
--   (b) until that transaction ends, nobody can delete the referenced row or change its key (the
--       KEY SHARE lock), and (c) afterwards a referenced row cannot be deleted or re-keyed, and the
--       referenced table cannot be truncated alone.
--       -> unconditional here: wallets and ledger transactions can never be deleted, truncated or
--          given another id (triggers below). 030_points.sql already says ledger rows are never
--          updated or deleted, and no code deletes a wallet (the ledger would lose its history).
--          A referenced row that can never go away needs no lock to stay there, so (a) at the end
--          of the statement is enough. This is stronger than the keys were: an unreferenced
--          wallet cannot be deleted either.
--   (d) updating a referencing column must keep it valid -> the referencing columns can no longer
--       change at all (BEFORE UPDATE OF … WHEN changed): a transaction and a lot belong to one
--       wallet, a lot to the earn that created it, a stored answer to the transaction it created
--       (030's invariants). Stronger than the keys, which allowed re-pointing to another row.
--       The trigger fires only for UPDATEs that name the column, so balance and lot updates pay
--       nothing.
-- Not kept (and not relied on): the keys' rows in pg_constraint, so schema introspection no
-- longer shows these four references; this file and 030 document them. As with foreign keys,
-- `session_replication_role = replica` or `ALTER TABLE … DISABLE TRIGGER` (a superuser's act)
-- switches the checks off. The functions run with the caller's rights (the product connects as
-- the tables' owner), where a foreign key check runs as the owner.
--
-- The other keys stay as they were: point_wallets.partner_id (once per wallet),
-- point_transactions.related_transaction_id (NULL for every earn), point_allocations (not on the
-- earn path). Existing rows were checked by the keys being dropped, so nothing is left unchecked.
CREATE FUNCTION points_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% of % on table "%" is not allowed: %', TG_OP, coalesce(TG_ARGV[1], 'rows'), TG_TABLE_NAME, TG_ARGV[0]
    USING ERRCODE = 'restrict_violation', TABLE = TG_TABLE_NAME;
END $$;

CREATE FUNCTION point_wallet_references_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  missing bigint;
BEGIN
  SELECT n.wallet_id INTO missing FROM new_rows n
   WHERE NOT EXISTS (SELECT FROM point_wallets w WHERE w.id = n.wallet_id)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "%"', TG_TABLE_NAME, TG_ARGV[0]
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[0], TABLE = TG_TABLE_NAME,
            DETAIL = format('Key (wallet_id)=(%s) is not present in table "point_wallets".', missing);
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION point_lot_sources_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  missing uuid;
BEGIN
  SELECT n.source_transaction_id INTO missing FROM new_rows n
   WHERE NOT EXISTS (SELECT FROM point_transactions t WHERE t.id = n.source_transaction_id)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "%"', TG_TABLE_NAME, TG_ARGV[0]
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[0], TABLE = TG_TABLE_NAME,
            DETAIL = format('Key (source_transaction_id)=(%s) is not present in table "point_transactions".', missing);
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION point_idempotency_transactions_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  missing uuid;
BEGIN
  SELECT n.transaction_id INTO missing FROM new_rows n
   WHERE n.transaction_id IS NOT NULL AND NOT EXISTS (SELECT FROM point_transactions t WHERE t.id = n.transaction_id)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "%"', TG_TABLE_NAME, TG_ARGV[0]
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[0], TABLE = TG_TABLE_NAME,
            DETAIL = format('Key (transaction_id)=(%s) is not present in table "point_transactions".', missing);
  END IF;
  RETURN NULL;
END $$;

ALTER TABLE point_transactions DROP CONSTRAINT point_transactions_wallet_id_fkey;
ALTER TABLE point_lots DROP CONSTRAINT point_lots_wallet_id_fkey;
ALTER TABLE point_lots DROP CONSTRAINT point_lots_source_transaction_id_fkey;
ALTER TABLE point_idempotency DROP CONSTRAINT point_idempotency_transaction_id_fkey;

CREATE TRIGGER point_transactions_wallet_id_fkey AFTER INSERT ON point_transactions
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION point_wallet_references_exist('point_transactions_wallet_id_fkey');
CREATE TRIGGER point_lots_wallet_id_fkey AFTER INSERT ON point_lots
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION point_wallet_references_exist('point_lots_wallet_id_fkey');
CREATE TRIGGER point_lots_source_transaction_id_fkey AFTER INSERT ON point_lots
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION point_lot_sources_exist('point_lots_source_transaction_id_fkey');
CREATE TRIGGER point_idempotency_transaction_id_fkey AFTER INSERT ON point_idempotency
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION point_idempotency_transactions_exist('point_idempotency_transaction_id_fkey');

CREATE TRIGGER point_transactions_keep_wallet BEFORE UPDATE OF wallet_id ON point_transactions
  FOR EACH ROW WHEN (OLD.wallet_id IS DISTINCT FROM NEW.wallet_id) EXECUTE FUNCTION points_refuse_change('a transaction belongs to one wallet', 'wallet_id');
CREATE TRIGGER point_lots_keep_references BEFORE UPDATE OF wallet_id, source_transaction_id ON point_lots
  FOR EACH ROW WHEN (OLD.wallet_id IS DISTINCT FROM NEW.wallet_id OR OLD.source_transaction_id IS DISTINCT FROM NEW.source_transaction_id)
  EXECUTE FUNCTION points_refuse_change('a lot belongs to one wallet and one source transaction', 'wallet_id, source_transaction_id');
CREATE TRIGGER point_idempotency_keep_transaction BEFORE UPDATE OF transaction_id ON point_idempotency
  FOR EACH ROW WHEN (OLD.transaction_id IS DISTINCT FROM NEW.transaction_id)
  EXECUTE FUNCTION points_refuse_change('a stored answer names the transaction it created', 'transaction_id');

CREATE TRIGGER point_wallets_permanent BEFORE DELETE ON point_wallets
  FOR EACH ROW EXECUTE FUNCTION points_refuse_change('wallets are permanent');
CREATE TRIGGER point_wallets_permanent_truncate BEFORE TRUNCATE ON point_wallets
  FOR EACH STATEMENT EXECUTE FUNCTION points_refuse_change('wallets are permanent');
CREATE TRIGGER point_wallets_keep_id BEFORE UPDATE OF id ON point_wallets
  FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION points_refuse_change('a wallet id never changes', 'id');
CREATE TRIGGER point_transactions_permanent BEFORE DELETE ON point_transactions
  FOR EACH ROW EXECUTE FUNCTION points_refuse_change('the ledger is append-only');
CREATE TRIGGER point_transactions_permanent_truncate BEFORE TRUNCATE ON point_transactions
  FOR EACH STATEMENT EXECUTE FUNCTION points_refuse_change('the ledger is append-only');
CREATE TRIGGER point_transactions_keep_id BEFORE UPDATE OF id ON point_transactions
  FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION points_refuse_change('a transaction id never changes', 'id');
