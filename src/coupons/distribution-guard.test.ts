// Bulk distribution refuses a template whose claim event is live (src/claims/claim-event.ts), in
// both modes, and accepts it before the gate served it and an hour after the window closed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimOnce } from '../../test/harness/claims.ts';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';

describe.each([
  { mode: 'embedded', distributed: false },
  { mode: 'distributed', distributed: true },
])('distribution into a live claim event ($mode)', ({ distributed }) => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp({ distributed }); });
  afterAll(async () => { await t.close(); });

  it('is refused with CLAIM_EVENT_LIVE once the gate served the event, and accepted before and after', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 100 });
    const distribute = () => t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${templateId}/distributions`, headers: partner.headers, payload: { userIds: ['bulk-1'] },
    });
    expect((await distribute()).statusCode).toBe(202); // the gate has not served it yet

    expect((await claimOnce(t.app, partner.headers, templateId, 'clicker')).status).toBe(201);
    const refused = await distribute();
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.code).toBe('CLAIM_EVENT_LIVE');

    await t.ctx.db.query(
      `UPDATE coupon_templates SET claim_starts_at = now() - interval '3 hours', claim_ends_at = now() - interval '50 minutes' WHERE id = $1`,
      [templateId],
    );
    expect((await distribute()).statusCode).toBe(409); // closed, but still settling (reconciled)
    await t.ctx.db.query(
      `UPDATE coupon_templates SET claim_ends_at = now() - interval '61 minutes' WHERE id = $1`,
      [templateId],
    );
    expect((await distribute()).statusCode).toBe(202); // the window closed more than an hour ago
  });
});
