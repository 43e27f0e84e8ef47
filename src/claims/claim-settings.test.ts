// PATCH /v1/coupon-templates/{id} against both gates: each change is obeyed by the next claim,
// refusals are catalogued, every change is kept and listed, and event.changed is in the outbox.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { claimOnce, couponRows, drainClaims } from '../../test/harness/claims.ts';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';

describe.each([
  ['embedded (in-process gate)', false],
  ['distributed (Redis gate)', true],
])('template changes, %s', (_mode, distributed) => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp({ distributed, env: { STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'true' } }); });
  afterAll(async () => { await t.close(); });

  const patch = (headers: Record<string, string>, id: string, payload: Record<string, unknown>) =>
    t.app.inject({ method: 'PATCH', url: `/v1/coupon-templates/${id}`, headers, payload });

  it('pause refuses the next claim with CLAIM_PAUSED, resume admits it; reads show paused', async () => {
    const partner = await createPartner(t.app);
    const id = await createTemplate(t.app, partner.headers, { totalQuantity: 10 });
    expect((await claimOnce(t.app, partner.headers, id, 'u-1')).status).toBe(201);
    const paused = await patch(partner.headers, id, { paused: true });
    expect(paused.statusCode).toBe(200);
    expect(paused.json()).toMatchObject({ paused: true, issuedCount: 1, remaining: 9 });
    expect(await claimOnce(t.app, partner.headers, id, 'u-2')).toMatchObject({ status: 409, code: 'CLAIM_PAUSED' });
    expect((await patch(partner.headers, id, { paused: false })).json()).toMatchObject({ paused: false });
    expect((await claimOnce(t.app, partner.headers, id, 'u-2')).status).toBe(201);
  });

  it('a pause before the first claim holds when the event opens', async () => {
    const partner = await createPartner(t.app);
    const id = await createTemplate(t.app, partner.headers, { totalQuantity: 10 });
    expect((await patch(partner.headers, id, { paused: true })).statusCode).toBe(200);
    expect(await claimOnce(t.app, partner.headers, id, 'u-1')).toMatchObject({ status: 409, code: 'CLAIM_PAUSED' });
    await patch(partner.headers, id, { paused: false });
    expect((await claimOnce(t.app, partner.headers, id, 'u-1')).status).toBe(201);
  });

  it('lowers the stock to the issued count (sold out), refuses below it, raises it again', async () => {
    const partner = await createPartner(t.app);
    const id = await createTemplate(t.app, partner.headers, { totalQuantity: 10 });
    for (const user of ['a', 'b', 'c']) expect((await claimOnce(t.app, partner.headers, id, user)).status).toBe(201);
    const below = await patch(partner.headers, id, { totalQuantity: 2 });
    expect(below.statusCode).toBe(409);
    expect(below.json().error).toMatchObject({ code: 'TOTAL_QUANTITY_BELOW_ISSUED', details: { issuedCount: 3 } });
    expect((await patch(partner.headers, id, { totalQuantity: 3 })).json()).toMatchObject({ totalQuantity: 3, remaining: 0 });
    expect(await claimOnce(t.app, partner.headers, id, 'd')).toMatchObject({ status: 409, code: 'SOLD_OUT' });
    expect((await patch(partner.headers, id, { totalQuantity: 4 })).json()).toMatchObject({ totalQuantity: 4, remaining: 1 });
    expect((await claimOnce(t.app, partner.headers, id, 'd')).status).toBe(201);
    expect(await claimOnce(t.app, partner.headers, id, 'e')).toMatchObject({ status: 409, code: 'SOLD_OUT' });
    await drainClaims(t.ctx, id);
    expect(await couponRows(t.ctx.db, id)).toHaveLength(4);
  });

  it('ends the event now, reopens it later; perUserLimit raise only; end never before start', async () => {
    const partner = await createPartner(t.app);
    const id = await createTemplate(t.app, partner.headers, { totalQuantity: 10, perUserLimit: 1 });
    expect((await claimOnce(t.app, partner.headers, id, 'a')).status).toBe(201);
    expect(await claimOnce(t.app, partner.headers, id, 'a')).toMatchObject({ status: 409, code: 'CLAIM_LIMIT_REACHED' });
    expect((await patch(partner.headers, id, { perUserLimit: 2 })).json()).toMatchObject({ perUserLimit: 2 });
    expect((await claimOnce(t.app, partner.headers, id, 'a')).status).toBe(201);
    const lowered = await patch(partner.headers, id, { perUserLimit: 1 });
    expect(lowered.json().error.code).toBe('PER_USER_LIMIT_LOWERED');

    expect((await patch(partner.headers, id, { claimEndsAt: 'now' })).statusCode).toBe(200);
    expect(await claimOnce(t.app, partner.headers, id, 'b')).toMatchObject({ status: 409, code: 'CLAIM_CLOSED' });
    const beforeStart = await patch(partner.headers, id, { claimEndsAt: '2000-01-01T00:00:00Z' });
    expect(beforeStart.json().error.code).toBe('CLAIM_END_BEFORE_START');
    const later = new Date(Date.now() + 3_600_000).toISOString();
    expect((await patch(partner.headers, id, { claimEndsAt: later })).statusCode).toBe(200);
    expect((await claimOnce(t.app, partner.headers, id, 'b')).status).toBe(201);
  });

  it('a new validity applies to coupons claimed from then on', async () => {
    const partner = await createPartner(t.app);
    const id = await createTemplate(t.app, partner.headers, { totalQuantity: 10 });
    const first = await t.app.inject({ method: 'POST', url: `/v1/coupon-templates/${id}/claims`, headers: partner.headers, payload: { userId: 'a' } });
    expect((await patch(partner.headers, id, { validity: { type: 'RELATIVE', days: 2 } })).statusCode).toBe(200);
    const second = await t.app.inject({ method: 'POST', url: `/v1/coupon-templates/${id}/claims`, headers: partner.headers, payload: { userId: 'b' } });
    const { validFrom, validUntil } = second.json();
    expect(Date.parse(validUntil) - Date.parse(validFrom)).toBe(2 * 86_400_000);
    expect(first.json().validUntil).not.toBe(validUntil);
    await drainClaims(t.ctx, id);
    const rows = await couponRows(t.ctx.db, id);
    const row = rows.find((r) => r.user_id === 'b')!;
    expect(row.valid_until.toISOString()).toBe(new Date(validUntil).toISOString());
    expect(rows.find((r) => r.user_id === 'a')!.valid_until.toISOString()).toBe(first.json().validUntil);
  });

  it('keeps every change with its key and diff, newest first, paginated; a no-op is not recorded', async () => {
    const partner = await createPartner(t.app);
    const id = await createTemplate(t.app, partner.headers, { totalQuantity: 10 });
    await patch(partner.headers, id, { name: 'Renamed', totalQuantity: 20 });
    await patch(partner.headers, id, { paused: true });
    await patch(partner.headers, id, { paused: true });
    const page = (await t.app.inject({ url: `/v1/coupon-templates/${id}/changes?limit=1`, headers: partner.headers })).json();
    expect(page.items).toHaveLength(1);
    expect(page.items[0]).toMatchObject({ templateId: id, before: { paused: false }, after: { paused: true } });
    expect(page.items[0].apiKeyId).toMatch(/^[0-9a-f-]{36}$/);
    const next = (await t.app.inject({ url: `/v1/coupon-templates/${id}/changes?limit=1&cursor=${page.nextCursor}`, headers: partner.headers })).json();
    expect(next.items[0]).toMatchObject({ before: { name: 'Black Friday 10%', totalQuantity: 10 }, after: { name: 'Renamed', totalQuantity: 20 } });
    expect(next.nextCursor).toBeNull();
    const other = await createPartner(t.app);
    expect((await t.app.inject({ url: `/v1/coupon-templates/${id}/changes`, headers: other.headers })).statusCode).toBe(404);
    expect((await patch(other.headers, id, { paused: false })).statusCode).toBe(404);
  });

  it('writes an event.changed outbox row with the diff in the change\'s transaction', async () => {
    const partner = await createPartner(t.app);
    const hook = await t.app.inject({ method: 'POST', url: '/v1/webhooks', headers: partner.headers, payload: { url: 'http://127.0.0.1:9/hook', kind: 'json', events: ['event.changed'] } });
    expect(hook.statusCode).toBe(201);
    const id = await createTemplate(t.app, partner.headers, { totalQuantity: 10 });
    await patch(partner.headers, id, { totalQuantity: 12 });
    const { rows } = await t.ctx.db.query<{ event: string; payload: { change: { before: unknown; after: unknown } } }>(
      'SELECT event, payload FROM webhook_deliveries WHERE template_id = $1', [id]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ event: 'event.changed', payload: { change: { before: { totalQuantity: 10 }, after: { totalQuantity: 12 } } } });
  });
});
