import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPartner, createTestApp, templateBody, type TestApp } from '../../test/harness/test-app.ts';

describe('coupon templates', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp(); });
  afterAll(async () => { await t.close(); });

  it('creates and reads a template with issuedCount and remaining', async () => {
    const partner = await createPartner(t.app);
    const created = await t.app.inject({ method: 'POST', url: '/v1/coupon-templates', headers: partner.headers, payload: templateBody() });
    expect(created.statusCode).toBe(201);
    const template = created.json();
    expect(template).toMatchObject({ name: 'Black Friday 10%', totalQuantity: 100, perUserLimit: 1, issuedCount: 0, remaining: 100 });
    const read = await t.app.inject({ url: `/v1/coupon-templates/${template.id}`, headers: partner.headers });
    expect(read.json()).toEqual(template);
  });

  it('defaults perUserLimit to 1 and accepts unlimited quantity and relative validity', async () => {
    const partner = await createPartner(t.app);
    const { perUserLimit: _omit, ...body } = templateBody({ totalQuantity: null, validity: { type: 'RELATIVE', days: 7 } });
    const created = await t.app.inject({ method: 'POST', url: '/v1/coupon-templates', headers: partner.headers, payload: body });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ perUserLimit: 1, totalQuantity: null, remaining: null, validity: { type: 'RELATIVE', days: 7 } });
  });

  it('answers 404 for another partner’s template, never its data', async () => {
    const a = await createPartner(t.app);
    const b = await createPartner(t.app);
    const created = (await t.app.inject({ method: 'POST', url: '/v1/coupon-templates', headers: a.headers, payload: templateBody() })).json();
    const probe = await t.app.inject({ url: `/v1/coupon-templates/${created.id}`, headers: b.headers });
    expect(probe.statusCode).toBe(404);
    expect(probe.json().error.code).toBe('TEMPLATE_NOT_FOUND');
    const list = (await t.app.inject({ url: '/v1/coupon-templates', headers: b.headers })).json();
    expect(list.items).toEqual([]);
  });

  it('pages newest first with an opaque cursor', async () => {
    const partner = await createPartner(t.app);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await t.app.inject({ method: 'POST', url: '/v1/coupon-templates', headers: partner.headers, payload: templateBody({ name: `t${i}` }) })).json().id);
    }
    const first = (await t.app.inject({ url: '/v1/coupon-templates?limit=2', headers: partner.headers })).json();
    expect(first.items.map((item: { id: string }) => item.id)).toEqual([ids[4], ids[3]]);
    const second = (await t.app.inject({ url: `/v1/coupon-templates?limit=2&cursor=${first.nextCursor}`, headers: partner.headers })).json();
    expect(second.items.map((item: { id: string }) => item.id)).toEqual([ids[2], ids[1]]);
    const third = (await t.app.inject({ url: `/v1/coupon-templates?limit=2&cursor=${second.nextCursor}`, headers: partner.headers })).json();
    expect(third.items.map((item: { id: string }) => item.id)).toEqual([ids[0]]);
    expect(third.nextCursor).toBeNull();
    const bad = await t.app.inject({ url: '/v1/coupon-templates?cursor=garbage', headers: partner.headers });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details[0].field).toBe('querystring.cursor');
  });

  it.each([
    ['a missing name', { name: undefined }, 'body.name'],
    ['a too long name', { name: 'x'.repeat(201) }, 'body.name'],
    ['a negative quantity', { totalQuantity: -1 }, 'body.totalQuantity'],
    ['an unknown field', { surprise: true }, 'body.surprise'],
    ['a percent above 100', { discount: { type: 'PERCENT', value: 150 } }, 'body.discount'],
    ['a window that ends before it starts', { claimStartsAt: '2030-01-02T00:00:00Z', claimEndsAt: '2030-01-01T00:00:00Z' }, 'body.claimEndsAt'],
    ['a malformed date', { claimStartsAt: 'tomorrow' }, 'body.claimStartsAt'],
    ['a per-user limit of 0', { perUserLimit: 0 }, 'body.perUserLimit'],
  ])('refuses %s with 400 VALIDATION_FAILED naming the field', async (_label, overrides, field) => {
    const partner = await createPartner(t.app);
    const response = await t.app.inject({ method: 'POST', url: '/v1/coupon-templates', headers: partner.headers, payload: templateBody(overrides) });
    expect(response.statusCode).toBe(400);
    const { error } = response.json();
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.details.map((d: { field: string }) => d.field).some((f: string) => f.startsWith(field))).toBe(true);
    const list = (await t.app.inject({ url: '/v1/coupon-templates', headers: partner.headers })).json();
    expect(list.items).toEqual([]);
  });

  it('refuses an oversized body with 413 and malformed JSON with 400', async () => {
    const partner = await createPartner(t.app);
    const huge = await t.app.inject({
      method: 'POST', url: '/v1/coupon-templates', headers: { ...partner.headers, 'content-type': 'application/json' },
      payload: JSON.stringify(templateBody({ name: 'x'.repeat(2_000_000) })),
    });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error.code).toBe('PAYLOAD_TOO_LARGE');
    const malformed = await t.app.inject({
      method: 'POST', url: '/v1/coupon-templates', headers: { ...partner.headers, 'content-type': 'application/json' }, payload: '{"name":',
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error.code).toBe('MALFORMED_JSON');
  });
});
