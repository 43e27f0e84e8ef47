-- Owner: jobs (src/jobs/webhook-delivery.ts), signed webhooks (issue 16).
-- Each webhook's signing secret, shown once at registration. Kept as is, not hashed: signing needs
-- the secret itself (docs/decisions/041-signed-webhooks.md says why it is not encrypted).
-- The default (random, per row) gives webhooks registered before this migration a secret nobody
-- has seen: their deliveries are signed from now on, and the partner registers the webhook again
-- to learn a secret. The API always writes its own.
ALTER TABLE webhooks ADD COLUMN secret text NOT NULL
  DEFAULT ('whsec_' || encode(sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')), 'hex'));

-- job.cancelled is announced too.
ALTER TABLE webhooks DROP CONSTRAINT webhooks_events_check;
ALTER TABLE webhooks ADD CONSTRAINT webhooks_events_check
  CHECK (cardinality(events) > 0 AND events <@ ARRAY['job.started', 'job.succeeded', 'job.failed', 'job.cancelled']);
