-- Owner: the webhook outbox (src/jobs/domain-events.ts), domain events of issue 19.
-- Domain events ride the job webhooks' outbox: a webhook_deliveries row plus its queue entry,
-- written in the transaction of the change they announce, delivered (signed, retried) by the
-- same task as job events. docs/decisions/121-domain-events-on-the-outbox.md says why triggers.
--
-- The outbox changes below are the same as migration 070's (live event operations) where they
-- overlap, written so that either migration may run first.
ALTER TABLE webhook_deliveries ALTER COLUMN job_id DROP NOT NULL;
ALTER TABLE webhook_deliveries ADD COLUMN IF NOT EXISTS template_id uuid;
CREATE INDEX IF NOT EXISTS webhook_deliveries_template ON webhook_deliveries (template_id) WHERE template_id IS NOT NULL;
ALTER TABLE webhooks DROP CONSTRAINT IF EXISTS webhooks_events_check;
ALTER TABLE webhooks ADD CONSTRAINT webhooks_events_check
  CHECK (cardinality(events) > 0 AND events <@ ARRAY['job.started', 'job.succeeded', 'job.failed', 'job.cancelled',
    'event.sold_out', 'event.changed', 'coupon.redeemed', 'coupon.redemption_cancelled', 'points.expiring']);

-- points.expiring: how many days ahead a partner's daily digest looks.
ALTER TABLE partners ADD COLUMN points_expiring_notice_days integer NOT NULL DEFAULT 7
  CHECK (points_expiring_notice_days BETWEEN 1 AND 365);

-- One row per event that sold out: the guard that makes event.sold_out exactly once, whoever
-- raised issued_count (claim persister, group commit, read-your-writes, distribution) and however
-- often (a redelivered batch, stock raised and sold out again).
CREATE TABLE claim_event_sold_out (
  template_id  uuid PRIMARY KEY REFERENCES coupon_templates (id),
  sold_out_at  timestamptz NOT NULL,
  announced_at timestamptz NOT NULL
);

-- One row per partner and UTC day: the guard that makes the points.expiring digest daily, with
-- every worker process running the schedule.
CREATE TABLE points_expiring_digests (
  partner_id  uuid NOT NULL REFERENCES partners (id),
  digest_date date NOT NULL,
  users       integer NOT NULL,
  points      bigint NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (partner_id, digest_date)
);

-- An instant as JavaScript's toISOString() writes it (millisecond precision, UTC, "Z").
CREATE FUNCTION stampede_iso_utc(at timestamptz) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- Writes one delivery per webhook of the partner subscribed to p_event and queues each, in the
-- caller's transaction; returns how many. Task and attempts are queue.ts's DELIVER_WEBHOOK_TASK
-- and WEBHOOK_MAX_ATTEMPTS (callers in TypeScript pass them; triggers use these defaults).
CREATE FUNCTION announce_domain_event(p_partner uuid, p_event text, p_payload jsonb, p_template uuid,
                                      p_task text DEFAULT 'stampede.deliver-webhook', p_max_attempts integer DEFAULT 8)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  delivery uuid;
  queued integer := 0;
BEGIN
  FOR delivery IN
    INSERT INTO webhook_deliveries (id, webhook_id, job_id, template_id, event, payload)
    SELECT gen_random_uuid(), w.id, NULL, p_template, p_event, p_payload
      FROM webhooks w WHERE w.partner_id = p_partner AND p_event = ANY (w.events)
    RETURNING id
  LOOP
    PERFORM graphile_worker.add_job(p_task, json_build_object('deliveryId', delivery), max_attempts := p_max_attempts);
    queued := queued + 1;
  END LOOP;
  RETURN queued;
END
$$;

-- event.sold_out: fired by the statement whose issued_count reaches total_quantity (or whose
-- total_quantity comes down to issued_count), so it commits or rolls back with it.
-- firstClaimAt / soldOutAt are the issue instants of the first and last claimed slots (the gate's
-- clock); persistedCount counts the event's rows, once per event.
CREATE FUNCTION announce_event_sold_out() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  first_claim timestamptz;
  last_claim  timestamptz;
  persisted   bigint;
  now_at      timestamptz := clock_timestamp();
BEGIN
  INSERT INTO claim_event_sold_out (template_id, sold_out_at, announced_at) VALUES (NEW.id, now_at, now_at)
    ON CONFLICT (template_id) DO NOTHING;
  IF NOT FOUND THEN RETURN NULL; END IF;
  SELECT issued_at INTO first_claim FROM coupons WHERE template_id = NEW.id AND slot IS NOT NULL ORDER BY slot LIMIT 1;
  SELECT issued_at INTO last_claim FROM coupons WHERE template_id = NEW.id AND slot IS NOT NULL ORDER BY slot DESC LIMIT 1;
  first_claim := coalesce(first_claim, NEW.gate_opened_at);
  last_claim := coalesce(last_claim, now_at);
  UPDATE claim_event_sold_out SET sold_out_at = last_claim WHERE template_id = NEW.id;
  SELECT count(*) INTO persisted FROM coupons WHERE template_id = NEW.id;
  PERFORM announce_domain_event(NEW.partner_id, 'event.sold_out', jsonb_build_object(
    'event', 'event.sold_out',
    'occurredAt', stampede_iso_utc(now_at),
    'template', jsonb_build_object('id', NEW.id, 'name', NEW.name, 'totalQuantity', NEW.total_quantity),
    'issuedCount', NEW.issued_count,
    'persistedCount', persisted,
    'firstClaimAt', stampede_iso_utc(first_claim),
    'soldOutAt', stampede_iso_utc(last_claim),
    'secondsToSellOut', CASE WHEN first_claim IS NULL THEN NULL
                             ELSE round(greatest(extract(epoch FROM last_claim - first_claim), 0)::numeric, 3) END,
    'persistedAt', stampede_iso_utc(now_at)), NEW.id);
  RETURN NULL;
END
$$;

CREATE TRIGGER coupon_templates_sold_out
  AFTER UPDATE OF issued_count, total_quantity ON coupon_templates
  FOR EACH ROW
  WHEN (NEW.total_quantity IS NOT NULL AND NEW.issued_count >= NEW.total_quantity
        AND (OLD.total_quantity IS NULL OR OLD.issued_count < OLD.total_quantity))
  EXECUTE FUNCTION announce_event_sold_out();

-- coupon.redeemed / coupon.redemption_cancelled: fired by the redeem and cancel statements'
-- history rows (coupon-repository.ts), in the same statement as the coupon's change. A partner
-- with no webhook for the event pays one indexed look-up.
CREATE FUNCTION announce_coupon_redemption() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  event_name text := CASE WHEN TG_OP = 'INSERT' THEN 'coupon.redeemed' ELSE 'coupon.redemption_cancelled' END;
  coupon record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.partner_id = NEW.partner_id AND event_name = ANY (w.events)) THEN
    RETURN NULL;
  END IF;
  SELECT c.id, c.template_id, c.user_id, c.status INTO coupon FROM coupons c WHERE c.id = NEW.coupon_id;
  PERFORM announce_domain_event(NEW.partner_id, event_name, jsonb_build_object(
    'event', event_name,
    'occurredAt', stampede_iso_utc(coalesce(NEW.cancelled_at, NEW.redeemed_at)),
    'coupon', jsonb_build_object('id', coupon.id, 'templateId', coupon.template_id, 'userId', coupon.user_id, 'status', coupon.status),
    'redemption', jsonb_build_object(
      'orderId', NEW.order_id, 'orderAmount', NEW.order_amount, 'discountAmount', NEW.discount_amount,
      'redeemedAt', stampede_iso_utc(NEW.redeemed_at), 'cancelledAt', stampede_iso_utc(NEW.cancelled_at))), coupon.template_id);
  RETURN NULL;
END
$$;

CREATE TRIGGER coupon_redemptions_redeemed
  AFTER INSERT ON coupon_redemptions
  FOR EACH ROW EXECUTE FUNCTION announce_coupon_redemption();

CREATE TRIGGER coupon_redemptions_cancelled
  AFTER UPDATE OF cancelled_at ON coupon_redemptions
  FOR EACH ROW WHEN (OLD.cancelled_at IS NULL AND NEW.cancelled_at IS NOT NULL)
  EXECUTE FUNCTION announce_coupon_redemption();
