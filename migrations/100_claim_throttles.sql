-- Owner: claims (issue 21: per-user and per-address throttles at the claim). Optional limits on
-- how many claim attempts one user, and one client address, may make per second on an event
-- (claims/claim-routes.ts; enforced from per-process buckets settled with Redis, docs/decisions/190).
-- NULL: no throttle. Changed by PATCH /v1/coupon-templates/{id} and recorded in template_changes.
ALTER TABLE coupon_templates
  ADD COLUMN claim_throttle_per_user integer CHECK (claim_throttle_per_user BETWEEN 1 AND 1000),
  ADD COLUMN claim_throttle_per_address integer CHECK (claim_throttle_per_address BETWEEN 1 AND 100000);
