-- Owner: claims and coupons (issue 19: live event operations). A claim event can be changed while
-- it runs (PATCH /v1/coupon-templates/{id}), every change is kept, and unused coupons can be revoked.
--
-- paused: claims answer 409 CLAIM_PAUSED while true (the gate reads it from its own state).
-- settings_version: raised by every change, under the template's gate lock (claims/claim-event.ts).
-- The Redis state carries the version it was written with, so an opening that read PostgreSQL
-- before a change never overwrites the newer settings the change wrote (load-template-2.lua).
ALTER TABLE coupon_templates
  ADD COLUMN paused boolean NOT NULL DEFAULT false,
  ADD COLUMN settings_version integer NOT NULL DEFAULT 0 CHECK (settings_version >= 0);

-- Every change: which API key, when, the changed fields before and after (JSON, API names).
-- ids are UUIDv7, so (template_id, id) serves the newest-first cursor pages.
CREATE TABLE template_changes (
  id          uuid PRIMARY KEY,
  template_id uuid NOT NULL REFERENCES coupon_templates (id),
  partner_id  uuid NOT NULL,
  api_key_id  uuid,
  changed_at  timestamptz NOT NULL DEFAULT now(),
  before      jsonb NOT NULL,
  after       jsonb NOT NULL
);
CREATE INDEX template_changes_template ON template_changes (template_id, id);

-- REVOKED: an unused coupon taken back by a revocation job; never redeemable, stock not returned.
ALTER TABLE coupons DROP CONSTRAINT coupons_status_check;
ALTER TABLE coupons ADD CONSTRAINT coupons_status_check CHECK (status IN ('ISSUED', 'USED', 'EXPIRED', 'REVOKED'));
ALTER TABLE coupons ADD COLUMN revoked_at timestamptz;

ALTER TABLE jobs DROP CONSTRAINT jobs_type_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_type_check CHECK (type IN ('COUPON_DISTRIBUTION', 'POINT_ACCRUAL', 'COUPON_REVOCATION'));

-- Domain events on the webhook outbox: a delivery announces a job or a template. The list of
-- event names is the whole of issue 19's, so this migration and the other domain events' agree
-- whichever runs last.
ALTER TABLE webhook_deliveries ALTER COLUMN job_id DROP NOT NULL;
ALTER TABLE webhook_deliveries ADD COLUMN template_id uuid;
CREATE INDEX webhook_deliveries_template ON webhook_deliveries (template_id) WHERE template_id IS NOT NULL;
ALTER TABLE webhooks DROP CONSTRAINT webhooks_events_check;
ALTER TABLE webhooks ADD CONSTRAINT webhooks_events_check
  CHECK (cardinality(events) > 0 AND events <@ ARRAY['job.started', 'job.succeeded', 'job.failed', 'job.cancelled',
    'event.sold_out', 'event.changed', 'coupon.redeemed', 'coupon.redemption_cancelled', 'points.expiring']);
