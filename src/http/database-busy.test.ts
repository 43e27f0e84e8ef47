// Pool exhaustion is "busy, come back", not a server error: 503 DATABASE_BUSY with Retry-After; and
// authentication has its own connections, so it still answers while the general pool is held.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Tx } from '../infra/db.ts';
import { generateApiKey } from '../partners/api-key.ts';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';

describe('an exhausted database pool', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ env: { STAMPEDE_DB_POOL_SIZE: '2', STAMPEDE_DB_ACQUIRE_TIMEOUT_MS: '300' } });
  });
  afterAll(async () => { await t.close(); });

  it('answers 503 DATABASE_BUSY with Retry-After, while API keys are still checked on their own pool', async () => {
    const partner = await createPartner(t.app);
    const held: Tx[] = [await t.ctx.db.connect(), await t.ctx.db.connect()]; // the whole general pool
    try {
      // the key is not cached yet: its look-up needs a connection, and gets one of the auth pool
      const busy = await t.app.inject({ url: '/v1/coupon-templates', headers: partner.headers });
      expect(busy.statusCode, busy.body).toBe(503);
      expect(busy.json().error.code).toBe('DATABASE_BUSY');
      expect(Number(busy.headers['retry-after'])).toBeGreaterThan(0);
      const unknown = await t.app.inject({ url: '/v1/coupon-templates', headers: { 'x-api-key': generateApiKey().apiKey } });
      expect(unknown.statusCode, unknown.body).toBe(401);
      expect(unknown.json().error.code).toBe('API_KEY_INVALID');
    } finally {
      for (const client of held) client.release();
    }
    expect((await t.app.inject({ url: '/v1/coupon-templates', headers: partner.headers })).statusCode).toBe(200);
  });
});
