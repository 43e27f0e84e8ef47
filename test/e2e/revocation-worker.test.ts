// Revocation as a bulk job run by a real `stampede worker`, SIGKILLed while a chunk waits inside
// its transaction, then finished by the next worker: every ISSUED coupon of the template revoked
// once, the ones redeemed before (or after the job was accepted) untouched and counted as skipped.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTemplate } from '../harness/issue-coupons.ts';
import { stampedeWorkers } from '../harness/spawn-stampede.ts';
import { createPartner, createTestApp, type TestApp } from '../harness/test-app.ts';
import { waitFor } from '../harness/wait-for.ts';

const COUPONS = 20_000;

describe('coupon revocation under stampede worker (distributed mode)', () => {
  let t: TestApp;
  const workers = stampedeWorkers({ DATABASE_URL: inject('databaseUrl'), REDIS_URL: inject('redisUrl') });
  beforeAll(async () => { t = await createTestApp({ distributed: true, env: { STAMPEDE_WEBHOOK_ALLOW_PRIVATE: 'true' } }); });
  afterAll(async () => {
    workers.killAll();
    await t.close();
  });

  const job = async (headers: Record<string, string>, jobId: string) => (await t.app.inject({ url: `/v1/jobs/${jobId}`, headers })).json();
  const redeem = (headers: Record<string, string>, couponId: string, userId: string) => t.app.inject({
    method: 'POST', url: `/v1/coupons/${couponId}/redeem`, headers, payload: { userId, orderId: `o-${randomUUID()}`, orderAmount: 50_000 },
  });

  it('revokes every ISSUED coupon once across a worker killed mid-chunk; redeemed ones stay USED', async () => {
    const partner = await createPartner(t.app);
    const hook = await t.app.inject({ method: 'POST', url: '/v1/webhooks', headers: partner.headers, payload: { url: 'http://127.0.0.1:9/hook', kind: 'json', events: ['job.started', 'job.succeeded'] } });
    expect(hook.statusCode).toBe(201);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: null });
    // The coupons, as a distribution would have written them (no worker needed for the set-up).
    await t.ctx.db.query(
      `INSERT INTO coupons (id, partner_id, template_id, user_id, seq, valid_from, valid_until)
       SELECT gen_random_uuid(), $1, $2, 'r-' || i, 1, now() - interval '1 minute', now() + interval '30 days' FROM generate_series(1, $3) i`,
      [partner.id, templateId, COUPONS]);
    await t.ctx.db.query('UPDATE coupon_templates SET issued_count = $2 WHERE id = $1', [templateId, COUPONS]);
    const { rows: byId } = await t.ctx.db.query<{ id: string; user_id: string }>('SELECT id, user_id FROM coupons WHERE template_id = $1 ORDER BY id', [templateId]);

    // 50 redeemed before the job: never staged.
    for (const coupon of byId.slice(100, 150)) expect((await redeem(partner.headers, coupon.id, coupon.user_id)).statusCode).toBe(200);

    const accepted = await t.app.inject({ method: 'POST', url: `/v1/coupon-templates/${templateId}/revocations`, headers: partner.headers, payload: {} });
    expect(accepted.statusCode, accepted.body).toBe(202);
    const { jobId } = accepted.json<{ jobId: string }>();
    expect(await job(partner.headers, jobId)).toMatchObject({ type: 'COUPON_REVOCATION', status: 'QUEUED', total: COUPONS - 50 });

    // 10 redeemed after the job was accepted (staged, still ISSUED then): left alone, skipped.
    for (const coupon of byId.slice(-10)) expect((await redeem(partner.headers, coupon.id, coupon.user_id)).statusCode).toBe(200);

    // The first coupon is held locked: the first chunk waits on it inside its transaction.
    const holder = await t.ctx.db.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM coupons WHERE id = $1 FOR UPDATE', [byId[0]!.id]);
    const first = await workers.start('job-queue');
    await waitFor(async () => {
      const { rows } = await t.ctx.db.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%SET status = ''REVOKED''%'`);
      return rows.length > 0;
    }, { timeoutMs: 60_000, what: 'a revocation chunk to wait on the locked coupon' }).catch(async (error: unknown) => {
      await holder.query('ROLLBACK');
      holder.release();
      throw new Error(`${String(error)}; job ${JSON.stringify(await job(partner.headers, jobId))}; worker said:\n${first.output().slice(-3000)}`);
    });
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    await holder.query('COMMIT');
    holder.release();
    const cut = await job(partner.headers, jobId);
    expect(cut.status).toBe('RUNNING');
    expect(cut.processed).toBeLessThan(cut.total);

    await workers.start('job-queue');
    await waitFor(async () => ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes((await job(partner.headers, jobId)).status), { timeoutMs: 120_000, what: 'the revocation to finish' });
    expect(await job(partner.headers, jobId)).toMatchObject({
      status: 'SUCCEEDED', total: COUPONS - 50, processed: COUPONS - 50, succeeded: COUPONS - 60, skipped: 10, failed: 0,
    });
    const { rows: statuses } = await t.ctx.db.query<{ status: string; n: number; stamped: number }>(
      'SELECT status, count(*)::int AS n, count(revoked_at)::int AS stamped FROM coupons WHERE template_id = $1 GROUP BY status ORDER BY status', [templateId]);
    expect(statuses).toEqual([{ status: 'REVOKED', n: COUPONS - 60, stamped: COUPONS - 60 }, { status: 'USED', n: 60, stamped: 0 }]);
    // Stock does not come back.
    expect((await t.app.inject({ url: `/v1/coupon-templates/${templateId}`, headers: partner.headers })).json()).toMatchObject({ issuedCount: COUPONS });

    const revoked = byId[0]!;
    expect((await t.app.inject({ url: `/v1/coupons/${revoked.id}`, headers: partner.headers })).json().status).toBe('REVOKED');
    const refused = await redeem(partner.headers, revoked.id, revoked.user_id);
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.code).toBe('COUPON_REVOKED');

    const { rows: announced } = await t.ctx.db.query<{ event: string }>('SELECT DISTINCT event FROM webhook_deliveries WHERE job_id = $1 ORDER BY event', [jobId]);
    expect(announced.map((row) => row.event)).toEqual(['job.started', 'job.succeeded']);
  }, 300_000);
});
