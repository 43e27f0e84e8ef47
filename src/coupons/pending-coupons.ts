// Read-your-writes for claims (docs/architecture.md, "Claims"). A coupon acknowledged with 201 may not be in
// PostgreSQL yet when the claim gate persists asynchronously (Redis stream + worker). Readers and
// redemption call this first so such a coupon is inserted from its claim record before they look
// at the coupons table. Inserting is idempotent (same id, ON CONFLICT DO NOTHING), so the worker
// writing the same claim later changes nothing.
export interface PendingCoupons {
  /** Makes sure a pending coupon with this id, if any, is in PostgreSQL. */
  persistCoupon(partnerId: string, couponId: string): Promise<void>;
  /** Makes sure every pending coupon of this user, if any, is in PostgreSQL. */
  persistUserCoupons(partnerId: string, userId: string): Promise<void>;
  /** Makes sure every coupon of this template acknowledged so far is in PostgreSQL (a revocation's snapshot). */
  persistTemplateCoupons(partnerId: string, templateId: string): Promise<void>;
}

/**
 * Gates that answer 201 only after the row is committed (the embedded group-commit gate) never
 * have pending coupons.
 */
export const NO_PENDING_COUPONS: PendingCoupons = {
  persistCoupon: async () => undefined,
  persistUserCoupons: async () => undefined,
  persistTemplateCoupons: async () => undefined,
};
