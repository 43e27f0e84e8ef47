// A key in use never drops out of the process's cache (decision 250): its entry is read again in
// the background before it lapses. Each lapse sent every request of the next few event-loop turns
// to the slow path at once (Fastify's pipeline instead of the claim fast path, a look-up each).
// The revocation bound is unchanged: partners.test.ts ("revocation across processes") revokes a
// key another process keeps using.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { hashApiKey } from './api-key.ts';
import { apiKeyCacheKey } from './key-authenticator.ts';

const LIFETIME_MS = 1_000;

// Distributed: the embedded process keeps keys for 5 minutes (runtime.ts), the same refresh at half.
describe('API key cache (distributed)', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp({ distributed: true, env: { STAMPEDE_API_KEY_CACHE_MS: String(LIFETIME_MS) } }); });
  afterAll(async () => { await t.close(); });

  it('keeps a key in use cached past its lifetime, and reads it again meanwhile', async () => {
    const partner = await createPartner(t.app);
    expect((await t.app.inject({ url: '/v1/coupon-templates', headers: partner.headers })).statusCode).toBe(200);
    let misses = 0;
    const until = performance.now() + 3.5 * LIFETIME_MS;
    while (performance.now() < until) {
      if (t.ctx.keys.cached(partner.apiKey) === undefined) misses += 1;
      expect((await t.app.inject({ url: '/v1/coupon-templates', headers: partner.headers })).statusCode).toBe(200);
      await sleep(50);
    }
    expect(misses).toBe(0);
  });

  it('drops a key whose background read finds it revoked', async () => {
    const partner = await createPartner(t.app);
    const issued = (await t.app.inject({ method: 'POST', url: `/v1/partners/${partner.id}/api-keys`, headers: adminHeaders })).json<{ id: string; apiKey: string }>();
    expect(t.ctx.keys.cached(issued.apiKey)).toBeUndefined();
    expect(await t.ctx.keys.authenticate(issued.apiKey, '127.0.0.1')).not.toBeNull();
    // Revoked behind this process's back (the row and the tombstone, as another process revokes):
    // only the background read can find out, once the entry is half its lifetime old.
    await t.ctx.db.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [issued.id]);
    await t.ctx.redis!.set(apiKeyCacheKey(hashApiKey(issued.apiKey).toString('hex')), 'revoked');
    await sleep(LIFETIME_MS / 2 + 50);
    expect(t.ctx.keys.cached(issued.apiKey)).not.toBeNull(); // the stale entry answers while the read runs
    await expect.poll(() => t.ctx.keys.cached(issued.apiKey), { timeout: LIFETIME_MS, interval: 20 }).toBeNull();
  });
});
