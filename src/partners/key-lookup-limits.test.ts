// Unknown API keys cannot stampede authentication: each client address may make only so many
// look-ups of keys that do not exist (429 beyond), an unknown key asked again costs nothing, and a
// flood of unknown keys cannot push real keys out of the cache.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';

const randomKey = () => `stp_${randomBytes(32).toString('base64url')}`;

describe.each([{ distributed: false }, { distributed: true }])('API key look-up limits (distributed: $distributed)', ({ distributed }) => {
  let t: TestApp;
  let keyQueries = 0;
  beforeAll(async () => {
    t = await createTestApp({ distributed, env: { STAMPEDE_UNKNOWN_KEY_LOOKUPS_PER_MINUTE: '5', STAMPEDE_API_KEY_CACHE_MS: '60000' } });
    const original = t.ctx.db.query.bind(t.ctx.db) as (...args: unknown[]) => Promise<unknown>;
    (t.ctx.db as unknown as { query: unknown }).query = (...args: unknown[]) => {
      const sql = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string }).text ?? '';
      if (sql.includes('FROM api_keys k')) keyQueries += 1;
      return original(...args);
    };
  });
  afterAll(async () => { await t.close(); });

  const get = (apiKey: string, remoteAddress: string) =>
    t.app.inject({ url: '/v1/coupon-templates', headers: { 'x-api-key': apiKey }, remoteAddress });

  it('answers 429 with Retry-After once an address has looked up its share of unknown keys; known keys and other addresses pass', async () => {
    const partner = await createPartner(t.app);
    const address = distributed ? '198.51.100.7' : '198.51.100.8';
    expect((await get(partner.apiKey, address)).statusCode).toBe(200); // cached from now on
    for (let i = 0; i < 5; i++) expect((await get(randomKey(), address)).json().error.code).toBe('API_KEY_INVALID');
    const limited = await get(randomKey(), address);
    expect(limited.statusCode).toBe(429);
    expect(limited.json().error.code).toBe('API_KEY_LOOKUPS_LIMITED');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect((await get(partner.apiKey, address)).statusCode).toBe(200);
    expect((await get(randomKey(), '203.0.113.9')).json().error.code).toBe('API_KEY_INVALID');
  });

  it('caches an unknown key briefly: asking again queries nothing', async () => {
    const unknown = randomKey();
    expect((await get(unknown, '192.0.2.1')).statusCode).toBe(401);
    const before = keyQueries;
    for (let i = 0; i < 10; i++) expect((await get(unknown, '192.0.2.1')).statusCode).toBe(401);
    expect(keyQueries).toBe(before);
  });

  it('keeps a known key cached through 12,000 unknown ones', async () => {
    const partner = await createPartner(t.app);
    expect(await t.ctx.keys.authenticate(partner.apiKey, '192.0.2.2')).not.toBeNull();
    for (let i = 0; i < 12_000; i += 200) {
      await Promise.all(Array.from({ length: 200 }, (_, j) => t.ctx.keys.authenticate(randomKey(), `10.1.${Math.floor((i + j) / 250)}.${(i + j) % 250}`)));
    }
    const before = keyQueries;
    expect(await t.ctx.keys.authenticate(partner.apiKey, '192.0.2.2')).toMatchObject({ partnerId: partner.id });
    expect(keyQueries).toBe(before);
  }, 60_000);
});
