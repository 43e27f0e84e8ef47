import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminHeaders, createPartner, createTestApp, templateBody, type TestApp } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

describe.each([{ distributed: false }, { distributed: true }])('partners and API keys (distributed: $distributed)', ({ distributed }) => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp({ distributed, env: { STAMPEDE_API_KEY_CACHE_MS: '300' } }); });
  afterAll(async () => { await t.close(); });

  it('refuses admin calls without the bearer token', async () => {
    const missing = await t.app.inject({ method: 'POST', url: '/v1/partners', payload: { name: 'x' } });
    expect(missing.statusCode).toBe(401);
    expect(missing.json().error.code).toBe('ADMIN_TOKEN_INVALID');
    const wrong = await t.app.inject({ method: 'POST', url: '/v1/partners', headers: { authorization: 'Bearer nope' }, payload: { name: 'x' } });
    expect(wrong.json().error.code).toBe('ADMIN_TOKEN_INVALID');
  });

  it('answers 401 with distinct codes for a missing, malformed, unknown and revoked key', async () => {
    const partner = await createPartner(t.app);
    const url = '/v1/coupon-templates';
    expect((await t.app.inject({ url })).json().error.code).toBe('API_KEY_MISSING');
    expect((await t.app.inject({ url, headers: { 'x-api-key': 'short' } })).json().error.code).toBe('API_KEY_INVALID');
    const unknown = `stp_${'A'.repeat(43)}`;
    const unknownResponse = await t.app.inject({ url, headers: { 'x-api-key': unknown } });
    expect(unknownResponse.statusCode).toBe(401);
    expect(unknownResponse.json().error.code).toBe('API_KEY_INVALID');
    expect((await t.app.inject({ url, headers: partner.headers })).statusCode).toBe(200);
  });

  it('issues extra keys, and a revoked key stops working at once in this process', async () => {
    const partner = await createPartner(t.app);
    const issued = await t.app.inject({ method: 'POST', url: `/v1/partners/${partner.id}/api-keys`, headers: adminHeaders });
    expect(issued.statusCode).toBe(201);
    const { id, apiKey } = issued.json<{ id: string; apiKey: string }>();
    expect(apiKey).toMatch(/^stp_/);
    const headers = { 'x-api-key': apiKey };
    expect((await t.app.inject({ url: '/v1/coupon-templates', headers })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/api-keys/${id}`, headers: adminHeaders })).statusCode).toBe(204);
    const after = await t.app.inject({ url: '/v1/coupon-templates', headers });
    expect(after.statusCode).toBe(401);
    expect(after.json().error.code).toBe('API_KEY_INVALID');
    // the partner's other key still works
    expect((await t.app.inject({ url: '/v1/coupon-templates', headers: partner.headers })).statusCode).toBe(200);
  });

  it('answers 404 for an unknown partner or key', async () => {
    const unknown = '00000000-0000-7000-8000-000000000000';
    expect((await t.app.inject({ method: 'POST', url: `/v1/partners/${unknown}/api-keys`, headers: adminHeaders })).json().error.code).toBe('PARTNER_NOT_FOUND');
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/api-keys/${unknown}`, headers: adminHeaders })).json().error.code).toBe('API_KEY_NOT_FOUND');
  });

  it('stores only a hash of the key', async () => {
    const partner = await createPartner(t.app);
    const { rows } = await t.ctx.db.query('SELECT prefix, key_hash FROM api_keys WHERE partner_id = $1', [partner.id]);
    expect(rows).toHaveLength(1);
    expect(partner.apiKey.startsWith(rows[0].prefix)).toBe(true);
    expect(Buffer.from(rows[0].key_hash).toString('utf8')).not.toContain(partner.apiKey.slice(4));
  });

  it('makes zero database queries for authentication in steady state', async () => {
    const partner = await createPartner(t.app);
    await t.app.inject({ url: '/v1/coupon-templates', headers: partner.headers }); // warm the caches
    const created = await t.app.inject({ method: 'POST', url: '/v1/coupon-templates', headers: partner.headers, payload: templateBody() });
    const templateId = created.json().id as string;

    const original = t.ctx.db.query.bind(t.ctx.db);
    const seen: string[] = [];
    (t.ctx.db as unknown as { query: unknown }).query = (...args: Parameters<typeof original>) => {
      seen.push(String(typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text));
      return original(...args);
    };
    try {
      for (let i = 0; i < 20; i++) {
        const response = await t.app.inject({ url: `/v1/coupon-templates/${templateId}`, headers: partner.headers });
        expect(response.statusCode).toBe(200);
      }
    } finally {
      (t.ctx.db as unknown as { query: unknown }).query = original;
    }
    // 20 template reads, and not one api_keys lookup
    expect(seen.filter((sql) => sql.includes('api_keys'))).toEqual([]);
    expect(seen).toHaveLength(20);
  });
});

describe('revocation across processes (distributed)', () => {
  // How late a process may see a revocation is its local cache lifetime (STAMPEDE_API_KEY_CACHE_MS,
  // 500 ms by default), a property of the LRU's TTL: not timed here on a shared machine. What is
  // checked: a process without a local entry refuses at once, and one with an entry refuses well
  // before its shared (Redis) cache entry could expire (600 s): the tombstone is what it sees.
  it('is seen by another process at once without a local cache, and once its local entry expires', async () => {
    const a = await createTestApp({ distributed: true });
    const b = await createTestApp({ distributed: true });
    const c = await createTestApp({ distributed: true, env: { STAMPEDE_API_KEY_CACHE_MS: '0' } });
    try {
      const partner = await createPartner(a.app);
      const issued = (await a.app.inject({ method: 'POST', url: `/v1/partners/${partner.id}/api-keys`, headers: adminHeaders })).json();
      const headers = { 'x-api-key': issued.apiKey as string };
      expect((await b.app.inject({ url: '/v1/coupon-templates', headers })).statusCode).toBe(200); // b caches it
      expect((await c.app.inject({ url: '/v1/coupon-templates', headers })).statusCode).toBe(200); // in Redis too
      expect((await a.app.inject({ method: 'DELETE', url: `/v1/api-keys/${issued.id}`, headers: adminHeaders })).statusCode).toBe(204);
      expect((await c.app.inject({ url: '/v1/coupon-templates', headers })).statusCode).toBe(401);
      const status = await waitFor(async () => {
        const seen = (await b.app.inject({ url: '/v1/coupon-templates', headers })).statusCode;
        return seen !== 200 && seen;
      }, { what: 'process b to refuse the revoked key', timeoutMs: 30_000 });
      expect(status).toBe(401);
    } finally {
      await a.close();
      await b.close();
      await c.close();
    }
  });
});
