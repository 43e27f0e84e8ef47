import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';

describe.each([{ distributed: false }, { distributed: true }])('operational routes (distributed: $distributed)', ({ distributed }) => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp({ distributed }); });
  afterAll(async () => { await t.close(); });

  it('reports live and ready with the checks it ran', async () => {
    expect((await t.app.inject({ url: '/health/live' })).json()).toEqual({ status: 'ok' });
    const ready = await t.app.inject({ url: '/health/ready' });
    expect(ready.statusCode).toBe(200);
    expect(Object.keys(ready.json().checks).sort()).toEqual(distributed ? ['database', 'redis'] : ['database']);
  });

  it('exports Prometheus metrics with per-route latency', async () => {
    await t.app.inject({ url: '/health/live' });
    const metrics = await t.app.inject({ url: '/metrics' });
    expect(metrics.headers['content-type']).toContain('text/plain');
    expect(metrics.body).toMatch(/stampede_http_request_duration_seconds_count\{route="\/health\/live",method="GET",status_class="2xx"\} \d+/);
  });

  it('serves the OpenAPI document at /docs', async () => {
    const spec = (await t.app.inject({ url: '/docs/json' })).json();
    expect(spec.openapi).toMatch(/^3\./);
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/v1/partners', '/v1/coupon-templates', '/v1/coupon-templates/{id}']));
    expect((await t.app.inject({ url: '/docs' })).statusCode).toBeLessThan(400);
  });

  it('echoes a request id and answers unknown routes with the error shape', async () => {
    const response = await t.app.inject({ url: '/nope', headers: { 'x-request-id': 'abc-123' } });
    expect(response.statusCode).toBe(404);
    expect(response.headers['x-request-id']).toBe('abc-123');
    expect(response.json().error.code).toBe('ROUTE_NOT_FOUND');
  });

  it('rate-limits per key with 429, Retry-After and a code', async () => {
    // Windows are whole seconds: a run that straddled a boundary (a loaded machine) is run again with a fresh key.
    let statuses: number[] = [];
    let limited;
    for (let run = 0; run < 5; run++) {
      const partner = await createPartner(t.app, { rateLimitPerSecond: 5 });
      const second = Math.floor(Date.now() / 1000);
      statuses = [];
      limited = undefined;
      for (let i = 0; i < 8; i++) {
        const response = await t.app.inject({ url: '/v1/coupon-templates', headers: partner.headers });
        statuses.push(response.statusCode);
        if (response.statusCode === 429) limited = response;
      }
      if (Math.floor(Date.now() / 1000) === second) break;
    }
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(5);
    expect(limited?.json().error.code).toBe('RATE_LIMITED');
    expect(Number(limited?.headers['retry-after'])).toBeGreaterThanOrEqual(0);
    // another partner is not affected
    const other = await createPartner(t.app);
    expect((await t.app.inject({ url: '/v1/coupon-templates', headers: other.headers })).statusCode).toBe(200);
  });
});
