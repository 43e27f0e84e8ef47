-- Owner: claims (src/claims/claim-event.ts), for bulk distribution (issue 6).
-- When a claim gate first loaded the template's state (its first claim, in either mode). A
-- distribution must not write into a template whose claim event is live: the gate would sell
-- (user, seq) pairs and stock it does not know were taken. The gate sets this, under the
-- template's distribution lock, in the transaction that reads its snapshot; every distribution
-- chunk takes that lock shared and reads this first (claim-event.ts has the argument).
ALTER TABLE coupon_templates ADD COLUMN gate_opened_at timestamptz;

-- Templates a gate served before this column: their claimed coupons carry a slot.
UPDATE coupon_templates t SET gate_opened_at = now()
 WHERE EXISTS (SELECT 1 FROM coupons c WHERE c.template_id = t.id AND c.slot IS NOT NULL);
