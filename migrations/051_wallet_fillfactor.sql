-- Owner: bulk jobs (src/jobs/, issue 6). Room on each point_wallets page for the next version of
-- its rows. Every earn, use, transfer, expiry and bulk accrual item updates a wallet's balance;
-- on full pages (fillfactor 100) PostgreSQL cannot keep the new version on the same page, so
-- the update is not HOT and inserts into both of the table's indexes (the primary key and the
-- (partner_id, user_id, point_type) unique index, with its uniqueness check). Measured with bulk
-- accrual, 200,000 items for 40,000 wallets: 2 % of the updates HOT at fillfactor 100, 75 % at
-- 70, and 135 against 148–167 µs of backend CPU per item. Applies to pages written from now on
-- (a VACUUM FULL or CLUSTER would apply it to existing ones).
ALTER TABLE point_wallets SET (fillfactor = 70);
