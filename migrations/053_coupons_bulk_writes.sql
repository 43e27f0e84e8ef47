-- Owner: coupons (src/coupons/), for bulk distribution (issue 6). Three per-row costs of every coupon
-- insert that a distributed coupon never needed, with the same guarantees kept.
--
-- WHY: distributing one template to 10,000,000 users writes 10,000,000 coupon rows. Measured on
-- scratch copies of this schema (embedded PostgreSQL 17, 500,000 rows per run, backend CPU per row,
-- one connection; COPY / the distribution's INSERT … SELECT … ON CONFLICT):
--   as in 002                                         21.1 / 31.6 µs
--   without the per-row template_id foreign key       12.8 / 21.0 µs
--   and slot index partial (below)                     9.4 / 20.8 µs
--   and the statement-level check (below) in place     9.5 / 19.1 µs
--
-- 1. coupons_slot_once: UNIQUE (template_id, slot) indexed every row, including the NULL slot of
--    every coupon not claimed through the gate (distribution, and every coupon of an unlimited
--    event): millions of equal (template, NULL) entries in a unique index, where NULLs never
--    conflict anyway. As a partial unique index over the rows that have a slot, it refuses exactly
--    what the constraint refused (two coupons of one template with the same slot), and the claim
--    path's `ON CONFLICT DO NOTHING` (no target: every unique index) still has it as an arbiter.
ALTER TABLE coupons DROP CONSTRAINT coupons_slot_once;
CREATE UNIQUE INDEX coupons_slot_once ON coupons (template_id, slot) WHERE slot IS NOT NULL;

-- 2. coupons.template_id -> coupon_templates (id): checked once per statement instead of by one SPI
--    query per row (`SELECT 1 … FOR KEY SHARE` from the after-trigger queue). The argument is the
--    one migration 052 makes for the points ledger's keys:
--    (a) every inserted coupon names a template that exists when the statement ends -> an AFTER
--        INSERT … FOR EACH STATEMENT trigger over the rows the statement inserted (COPY and
--        ON CONFLICT included); same SQLSTATE 23503 and constraint name as the key it replaces;
--    (b)/(c) a referenced template can never go away or be re-keyed -> templates are permanent
--        (no DELETE, TRUNCATE or id change; no code ever removed one: issued coupons, claim
--        records and the gate's state all name it), so no lock is needed to keep it there;
--    (d) a coupon's template_id can never change (stronger than the key, which allowed re-pointing).
-- Existing rows were checked by the key being dropped.
ALTER FUNCTION points_refuse_change() RENAME TO refuse_change;

CREATE FUNCTION coupon_templates_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  missing uuid;
BEGIN
  SELECT n.template_id INTO missing FROM (SELECT DISTINCT template_id FROM new_rows) n
   WHERE NOT EXISTS (SELECT FROM coupon_templates t WHERE t.id = n.template_id)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'insert or update on table "%" violates foreign key constraint "%"', TG_TABLE_NAME, TG_ARGV[0]
      USING ERRCODE = 'foreign_key_violation', CONSTRAINT = TG_ARGV[0], TABLE = TG_TABLE_NAME,
            DETAIL = format('Key (template_id)=(%s) is not present in table "coupon_templates".', missing);
  END IF;
  RETURN NULL;
END $$;

ALTER TABLE coupons DROP CONSTRAINT coupons_template_id_fkey;
CREATE TRIGGER coupons_template_id_fkey AFTER INSERT ON coupons
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION coupon_templates_exist('coupons_template_id_fkey');
CREATE TRIGGER coupons_keep_template BEFORE UPDATE OF template_id ON coupons
  FOR EACH ROW WHEN (OLD.template_id IS DISTINCT FROM NEW.template_id)
  EXECUTE FUNCTION refuse_change('a coupon belongs to one template', 'template_id');

CREATE TRIGGER coupon_templates_permanent BEFORE DELETE ON coupon_templates
  FOR EACH ROW EXECUTE FUNCTION refuse_change('templates are permanent');
CREATE TRIGGER coupon_templates_permanent_truncate BEFORE TRUNCATE ON coupon_templates
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change('templates are permanent');
CREATE TRIGGER coupon_templates_keep_id BEFORE UPDATE OF id ON coupon_templates
  FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION refuse_change('a template id never changes', 'id');

-- 3. coupons.user_id compares byte by byte (COLLATE "C"). A database created under a libc locale,
--    even C.UTF-8 (the embedded default here), compares text through strcoll: in `perf` of the
--    distribution's backends, strcoll and its callers were ~10 % of the CPU, spent in the two
--    user_id indexes (1,000,000 rows on 2 connections: 27.5 -> 22.6 µs of backend CPU per row).
--    User ids are 1..128 characters in 0x21..0x7E (the API's UserId schema, the distribution's
--    line check), where byte order is the only order that means anything; equality is unchanged,
--    so every lookup finds what it found. The column's indexes are rebuilt, the table is not.
ALTER TABLE coupons ALTER COLUMN user_id TYPE text COLLATE "C";
