// Revocation in-process (embedded mode): of the listed users only, claimed coupons included; a
// revoked coupon reads REVOKED and answers COUPON_REVOKED; a USED one is left alone.
import { describe, expect, it } from 'vitest';
import { claimOnce } from '../../test/harness/claims.ts';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { appWithJobQueue } from '../../test/harness/job-app.ts';
import { createPartner } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

describe.each([
  ['embedded (in-process gate)', false],
  ['distributed (Redis gate, claims not yet persisted)', true],
])('coupon revocation, %s', (_mode, distributed) => {
  const t = appWithJobQueue({ distributed });

  it('revokes the listed users\' unused coupons only; redeemed ones stay USED', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 100, perUserLimit: 2 });
    const coupons: Record<string, string[]> = {};
    for (const user of ['a', 'b', 'c']) {
      for (let i = 0; i < 2; i++) (coupons[user] ??= []).push((await claimOnce(t.app, partner.headers, templateId, user)).couponId!);
    }
    const used = await t.app.inject({ method: 'POST', url: `/v1/coupons/${coupons.a![0]}/redeem`, headers: partner.headers, payload: { userId: 'a', orderId: 'o-1', orderAmount: 50_000 } });
    expect(used.statusCode).toBe(200);

    const accepted = await t.app.inject({ method: 'POST', url: `/v1/coupon-templates/${templateId}/revocations`, headers: partner.headers, payload: { userIds: ['a', 'b'] } });
    expect(accepted.statusCode, accepted.body).toBe(202);
    const { jobId } = accepted.json();
    const job = async () => (await t.app.inject({ url: `/v1/jobs/${jobId}`, headers: partner.headers })).json();
    await waitFor(async () => ['SUCCEEDED', 'FAILED'].includes((await job()).status), { timeoutMs: 60_000, what: 'the revocation to finish' });
    expect(await job()).toMatchObject({ status: 'SUCCEEDED', total: 3, processed: 3, succeeded: 3, skipped: 0, failed: 0 });

    const status = async (id: string) => (await t.app.inject({ url: `/v1/coupons/${id}`, headers: partner.headers })).json().status;
    expect(await status(coupons.a![0]!)).toBe('USED');
    for (const id of [coupons.a![1]!, ...coupons.b!]) expect(await status(id)).toBe('REVOKED');
    for (const id of coupons.c!) expect(await status(id)).toBe('ISSUED');
    const refused = await t.app.inject({ method: 'POST', url: `/v1/coupons/${coupons.b![0]}/redeem`, headers: partner.headers, payload: { userId: 'b', orderId: 'o-2', orderAmount: 50_000 } });
    expect(refused.json().error.code).toBe('COUPON_REVOKED');
    const listed = (await t.app.inject({ url: '/v1/users/b/coupons?status=REVOKED', headers: partner.headers })).json();
    expect(listed.items).toHaveLength(2);
    // Stock does not come back.
    expect((await t.app.inject({ url: `/v1/coupon-templates/${templateId}`, headers: partner.headers })).json()).toMatchObject({ issuedCount: 6, remaining: 94 });
  });
});
