-- Coupon templates (events) and issued coupons. PostgreSQL is the final arbiter of the claim
-- path: the UNIQUE constraints and the issued_count CHECK refuse over-issue even if the gate in
-- front (Redis or in-process) lost its state.
CREATE TABLE coupon_templates (
  id                  uuid PRIMARY KEY,
  partner_id          uuid NOT NULL REFERENCES partners (id),
  name                text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  discount_type       text NOT NULL CHECK (discount_type IN ('FIXED', 'PERCENT')),
  discount_value      bigint NOT NULL CHECK (discount_value > 0),
  discount_max_amount bigint CHECK (discount_max_amount > 0),
  min_order_amount    bigint NOT NULL DEFAULT 0 CHECK (min_order_amount >= 0),
  -- NULL: unlimited
  total_quantity      integer CHECK (total_quantity > 0),
  per_user_limit      integer NOT NULL DEFAULT 1 CHECK (per_user_limit BETWEEN 1 AND 100),
  issued_count        integer NOT NULL DEFAULT 0 CHECK (issued_count >= 0),
  claim_starts_at     timestamptz NOT NULL,
  claim_ends_at       timestamptz NOT NULL,
  validity_type       text NOT NULL CHECK (validity_type IN ('ABSOLUTE', 'RELATIVE')),
  valid_from          timestamptz,
  valid_until         timestamptz,
  validity_days       integer,
  created_at          timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT coupon_templates_not_over_issued CHECK (total_quantity IS NULL OR issued_count <= total_quantity),
  CONSTRAINT coupon_templates_window CHECK (claim_ends_at > claim_starts_at),
  CONSTRAINT coupon_templates_percent CHECK (discount_type <> 'PERCENT' OR discount_value <= 100),
  CONSTRAINT coupon_templates_validity CHECK (
    (validity_type = 'ABSOLUTE' AND valid_from IS NOT NULL AND valid_until > valid_from AND validity_days IS NULL)
    OR (validity_type = 'RELATIVE' AND validity_days > 0 AND valid_from IS NULL AND valid_until IS NULL))
);
-- ids are UUIDv7 (time-ordered), so (partner_id, id) serves newest-first cursor pages
CREATE INDEX coupon_templates_partner ON coupon_templates (partner_id, id);

CREATE TABLE coupons (
  id              uuid PRIMARY KEY,
  partner_id      uuid NOT NULL,
  template_id     uuid NOT NULL REFERENCES coupon_templates (id),
  user_id         text NOT NULL CHECK (char_length(user_id) BETWEEN 1 AND 128),
  -- claim order within a limited event (1..total_quantity); NULL when not claimed through the gate
  slot            integer CHECK (slot >= 1),
  -- the user's n-th coupon of this template (1..per_user_limit)
  seq             integer NOT NULL CHECK (seq >= 1),
  status          text NOT NULL DEFAULT 'ISSUED' CHECK (status IN ('ISSUED', 'USED', 'EXPIRED')),
  valid_from      timestamptz NOT NULL,
  valid_until     timestamptz NOT NULL,
  issued_at       timestamptz NOT NULL DEFAULT now(),
  used_at         timestamptz,
  order_id        text,
  order_amount    bigint,
  discount_amount bigint,
  CONSTRAINT coupons_slot_once UNIQUE (template_id, slot),
  CONSTRAINT coupons_user_seq_once UNIQUE (template_id, user_id, seq),
  CONSTRAINT coupons_used_has_order CHECK (status <> 'USED' OR order_id IS NOT NULL)
);
CREATE INDEX coupons_partner_user ON coupons (partner_id, user_id, id);
CREATE INDEX coupons_expiring ON coupons (valid_until) WHERE status = 'ISSUED';
