-- Owner: bulk jobs (src/jobs/, issue 6). The same rules as 030_points.sql, cheaper to check.
--
-- PostgreSQL's regex engine turns a bounded repetition such as `^[\x21-\x7E]{1,255}$` into one
-- automaton state per count and its DFA cache misses on nearly every character: measured here at
-- 36 µs per idempotency key ({1,255}) and 5.6 µs per point type ({1,64}), against about 1 µs for a
-- length test plus a negated character class. The key check runs on every idempotency record (every
-- points write, every bulk accrual item); the point type check on every wallet INSERT and, because
-- PostgreSQL re-evaluates a table's CHECKs on UPDATE, on every balance change.
-- Same accepted set: 1..255 (1..64) characters, each within the class.
ALTER TABLE point_idempotency
  DROP CONSTRAINT point_idempotency_idempotency_key_check,
  ADD CONSTRAINT point_idempotency_idempotency_key_check
    CHECK (char_length(idempotency_key) BETWEEN 1 AND 255 AND idempotency_key !~ '[^\x21-\x7E]');

ALTER TABLE point_wallets
  DROP CONSTRAINT point_wallets_point_type_check,
  ADD CONSTRAINT point_wallets_point_type_check
    CHECK (char_length(point_type) BETWEEN 1 AND 64 AND point_type !~ '[^A-Za-z0-9_.-]');
