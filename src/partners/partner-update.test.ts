// PATCH /v1/partners/{id}: a new rate limit takes effect at once, even for a key whose principal
// is cached (the update invalidates it); unknown partners are 404; null restores the default.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';

describe('PATCH /v1/partners/{id}', () => {
  let t: TestApp;
  // A key cache far longer than the test: only the invalidation can make the new limit visible.
  beforeAll(async () => { t = await createTestApp({ env: { STAMPEDE_API_KEY_CACHE_MS: '60000' } }); });
  afterAll(async () => { await t?.close(); });

  const burst = async (headers: Record<string, string>, n: number) => {
    const answers = await Promise.all(Array.from({ length: n }, () => t.app.inject({ url: '/v1/users/u/points', headers })));
    return answers.map((a) => (a.statusCode === 429 ? a.json().error.code : a.statusCode));
  };
  const patch = (id: string, payload: Record<string, unknown>) => t.app.inject({ method: 'PATCH', url: `/v1/partners/${id}`, headers: adminHeaders, payload });

  it('lowers and restores a partner\'s rate limit, effective at once', async () => {
    const partner = await createPartner(t.app, { rateLimitPerSecond: 1_000 });
    expect(await burst(partner.headers, 8)).toEqual(Array(8).fill(200)); // cached with a limit of 1,000

    const lowered = await patch(partner.id, { rateLimitPerSecond: 1 });
    expect(lowered.statusCode).toBe(200);
    expect(lowered.json()).toEqual({ id: partner.id, name: expect.any(String), rateLimitPerSecond: 1, pointsExpiringNoticeDays: 7 });
    // 8 at once within at most two 1-s windows: at most 2 pass.
    const limited = await burst(partner.headers, 8);
    expect(limited.filter((a) => a === 200).length).toBeLessThanOrEqual(2);
    expect(limited.filter((a) => a === 'RATE_LIMITED').length).toBeGreaterThanOrEqual(6);

    const restored = await patch(partner.id, { rateLimitPerSecond: null });
    expect(restored.json()).toMatchObject({ rateLimitPerSecond: null });
  });

  it('404 PARTNER_NOT_FOUND for an unknown partner, 400 for a bad limit, 401 without the admin token', async () => {
    const unknown = await patch('0190a000-0000-7000-8000-000000000000', { rateLimitPerSecond: 5 });
    expect([unknown.statusCode, unknown.json().error.code]).toEqual([404, 'PARTNER_NOT_FOUND']);
    const partner = await createPartner(t.app);
    expect((await patch(partner.id, { rateLimitPerSecond: 0 })).statusCode).toBe(400);
    expect((await patch(partner.id, { name: 'renamed' })).statusCode).toBe(400);
    const anonymous = await t.app.inject({ method: 'PATCH', url: `/v1/partners/${partner.id}`, payload: { rateLimitPerSecond: 5 } });
    expect(anonymous.statusCode).toBe(401);
  });
});
