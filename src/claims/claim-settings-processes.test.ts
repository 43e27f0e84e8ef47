// Two API processes sharing Redis (two apps, each with its own template cache and gate): a change
// made through one is obeyed by the other at its very next claim, though the other's cache still
// holds the template as it was. The pause with two real `serve` processes: test/e2e/two-api-processes.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { claimOnce, drainClaims } from '../../test/harness/claims.ts';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { reconcileTemplate } from './reconcile.ts';

describe('a change through one API process, claims through another (distributed)', () => {
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => { [a, b] = await Promise.all([createTestApp({ distributed: true }), createTestApp({ distributed: true })]); });
  afterAll(async () => { await Promise.all([a.close(), b.close()]); });

  it('pause, stock and end made through A are obeyed by B at its next claim', async () => {
    const partner = await createPartner(a.app);
    const id = await createTemplate(a.app, partner.headers, { totalQuantity: 100, perUserLimit: 1 });
    // B has the template cached and the event opened.
    expect((await claimOnce(b.app, partner.headers, id, 'u-0')).status).toBe(201);
    const patch = (payload: Record<string, unknown>) => a.app.inject({ method: 'PATCH', url: `/v1/coupon-templates/${id}`, headers: partner.headers, payload });

    expect((await patch({ paused: true })).statusCode).toBe(200);
    expect(await claimOnce(b.app, partner.headers, id, 'u-1')).toMatchObject({ status: 409, code: 'CLAIM_PAUSED' });
    expect((await patch({ paused: false })).statusCode).toBe(200);
    expect((await claimOnce(b.app, partner.headers, id, 'u-1')).status).toBe(201);

    expect((await patch({ totalQuantity: 2 })).statusCode).toBe(200);
    expect(await claimOnce(b.app, partner.headers, id, 'u-2')).toMatchObject({ status: 409, code: 'SOLD_OUT' });
    expect((await patch({ totalQuantity: 3, perUserLimit: 2 })).statusCode).toBe(200);
    expect((await claimOnce(b.app, partner.headers, id, 'u-1')).status).toBe(201);

    expect((await patch({ totalQuantity: 50, claimEndsAt: 'now' })).statusCode).toBe(200);
    expect(await claimOnce(b.app, partner.headers, id, 'u-3')).toMatchObject({ status: 409, code: 'CLAIM_CLOSED' });

    await drainClaims(b.ctx, id);
    expect(await reconcileTemplate(b.ctx, id)).toMatchObject({ drift: 0, problems: [], postgres: { issuedCount: 3, rows: 3 } });
  });
});
