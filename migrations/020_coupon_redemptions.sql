-- Redemption history: one row per use of a coupon on an order, kept when the order is cancelled
-- (cancelled_at set). Written by the same statement that marks the coupon USED or cancels it.
CREATE TABLE coupon_redemptions (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  coupon_id       uuid NOT NULL REFERENCES coupons (id),
  partner_id      uuid NOT NULL,
  order_id        text NOT NULL CHECK (char_length(order_id) BETWEEN 1 AND 128),
  order_amount    bigint NOT NULL CHECK (order_amount >= 0),
  discount_amount bigint NOT NULL CHECK (discount_amount >= 0 AND discount_amount <= order_amount),
  redeemed_at     timestamptz NOT NULL,
  cancelled_at    timestamptz
);
-- The arbiter behind the conditional UPDATE: a coupon has at most one redemption in force, so a
-- double use cannot be committed even by code that bypassed the status check.
CREATE UNIQUE INDEX coupon_redemptions_one_in_force ON coupon_redemptions (coupon_id) WHERE cancelled_at IS NULL;
CREATE INDEX coupon_redemptions_order ON coupon_redemptions (partner_id, order_id);

-- The discount rule of src/coupons/discount-rules.ts (discountFor), for use inside the redeem
-- UPDATE: FIXED never above the order; PERCENT rounded down (integer division of non-negative
-- numbers) and capped by max_amount. A test runs both on the same cases.
CREATE FUNCTION coupon_discount(discount_type text, discount_value bigint, max_amount bigint, order_amount bigint)
RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE discount_type
    WHEN 'FIXED' THEN LEAST(discount_value, order_amount)
    ELSE LEAST(order_amount * discount_value / 100, COALESCE(max_amount, order_amount))
  END
$$;
