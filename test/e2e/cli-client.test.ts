// The CLI's client commands against a listening app: `partner create` prints a working key once,
// `jobs watch` follows a job and exits 1 when it does not succeed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, createPartner, createTestApp, type TestApp } from '../harness/test-app.ts';
import { spawnStampede } from '../harness/spawn-stampede.ts';

describe('stampede partner create / jobs watch', () => {
  let t: TestApp;
  let url: string;
  beforeAll(async () => {
    t = await createTestApp();
    url = await t.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => { await t.close(); });

  it('partner create prints the new key alone on stdout, and the key works', async () => {
    const create = spawnStampede(['partner', 'create', 'Acme CLI'], { STAMPEDE_URL: url, STAMPEDE_ADMIN_TOKEN: ADMIN_TOKEN });
    expect(await create.exited).toBe(0);
    const key = create.stdout().trim();
    expect(key).toMatch(/^\S{20,}$/);
    expect(create.stderr()).toMatch(/partner \S+ \("Acme CLI"\) created/);
    expect(create.stderr()).not.toContain(key);
    const list = await fetch(`${url}/v1/coupon-templates`, { headers: { 'x-api-key': key } });
    expect(list.status).toBe(200);

    const refused = spawnStampede(['partner', 'create', 'x', '--url', url], { STAMPEDE_ADMIN_TOKEN: 'wrong-token-0123456789' });
    expect(await refused.exited).toBe(1);
    expect(refused.stderr()).toMatch(/the server refused: 401 ADMIN_TOKEN_INVALID/);
  }, 60_000);

  it('jobs watch follows a job until it ends and exits 1 when it was cancelled', async () => {
    const partner = await createPartner(t.app);
    // Scheduled a day ahead: it stays QUEUED until cancelled (no workers run in this app either).
    const accepted = await t.app.inject({
      method: 'POST', url: '/v1/points/accruals', headers: partner.headers,
      payload: { items: [{ userId: 'u1', amount: 5, idempotencyKey: 'k1' }], scheduledAt: new Date(Date.now() + 86_400_000).toISOString() },
    });
    expect(accepted.statusCode).toBe(202);
    const { jobId } = accepted.json<{ jobId: string }>();

    const watch = spawnStampede(['jobs', 'watch', jobId, '--url', url], { STAMPEDE_API_KEY: partner.apiKey });
    await watch.waitForOutput(/QUEUED 0\/1 items/, 30_000);
    const cancel = await t.app.inject({ method: 'POST', url: `/v1/jobs/${jobId}/cancel`, headers: partner.headers });
    expect(cancel.statusCode).toBe(200);
    expect(await watch.exited).toBe(1);
    expect(watch.stderr()).toMatch(new RegExp(`job ${jobId} CANCELLED: 0/1 processed`));

    const unknown = spawnStampede(['jobs', 'watch', '00000000-0000-7000-8000-000000000000', '--url', url], { STAMPEDE_API_KEY: partner.apiKey });
    expect(await unknown.exited).toBe(1);
    expect(unknown.stderr()).toMatch(/404 JOB_NOT_FOUND/);
  }, 60_000);
});
