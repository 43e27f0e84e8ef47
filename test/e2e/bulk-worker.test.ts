// Bulk jobs in distributed mode, run by a real `stampede worker` process beside the API: a CSV
// distribution goes through, and an accrual whose worker is SIGKILLed in the middle of a chunk is
// finished by the next worker with every item applied exactly once.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { checkPointsInvariants } from '../../src/points/invariants.ts';
import { createTemplate } from '../harness/issue-coupons.ts';
import { stampedeWorkers } from '../harness/spawn-stampede.ts';
import { createPartner, createTestApp, type TestApp } from '../harness/test-app.ts';
import { finishedJob } from '../harness/job-app.ts';
import { waitFor } from '../harness/wait-for.ts';

describe('bulk jobs under stampede worker (distributed mode)', () => {
  let t: TestApp;
  const workers = stampedeWorkers({ DATABASE_URL: inject('databaseUrl'), REDIS_URL: inject('redisUrl') });
  beforeAll(async () => { t = await createTestApp({ distributed: true }); });
  afterAll(async () => {
    workers.killAll();
    await t.close();
  });

  const startWorker = () => workers.start('job-queue');
  const job = async (headers: Record<string, string>, jobId: string) => (await t.app.inject({ url: `/v1/jobs/${jobId}`, headers })).json();
  const finished = (headers: Record<string, string>, jobId: string) => finishedJob(t.app, headers, jobId, 60_000);

  it('distributes a CSV, and finishes an accrual whose worker was killed mid-chunk, each item once', async () => {
    const partner = await createPartner(t.app);
    const first = await startWorker();

    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: null });
    const csv = ['user_id', ...Array.from({ length: 30_000 }, (_, i) => `w-user-${i}`)].join('\n');
    const distribution = await t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${templateId}/distributions`, headers: { ...partner.headers, 'content-type': 'text/csv' }, payload: csv,
    });
    expect(distribution.statusCode, distribution.body).toBe(202);
    expect(await finished(partner.headers, distribution.json().jobId)).toMatchObject({ status: 'SUCCEEDED', total: 30_000, succeeded: 30_000 });
    const { rows: [coupons] } = await t.ctx.db.query('SELECT count(*)::int AS n, count(DISTINCT user_id)::int AS users FROM coupons WHERE template_id = $1', [templateId]);
    expect(coupons).toEqual({ n: 30_000, users: 30_000 });

    // member-0's wallet exists (one earn through the API) and is held locked: the accrual's first
    // chunk waits on it inside its transaction while the worker is killed.
    const earn = await t.app.inject({
      method: 'POST', url: '/v1/points/earn', headers: { ...partner.headers, 'idempotency-key': 'before-bulk' }, payload: { userId: 'member-0', amount: 1 },
    });
    expect(earn.statusCode).toBe(201);
    const holder = await t.ctx.db.connect();
    await holder.query('BEGIN');
    await holder.query(`SELECT 1 FROM point_wallets WHERE partner_id = $1 AND user_id = 'member-0' FOR UPDATE`, [partner.id]);
    const items = Array.from({ length: 10_000 }, (_, i) => ({ userId: `member-${i % 1_000}`, amount: 1 + (i % 7), idempotencyKey: `worker-crash:${i}` }));
    const accrual = await t.app.inject({ method: 'POST', url: '/v1/points/accruals', headers: partner.headers, payload: { items } });
    expect(accrual.statusCode, accrual.body).toBe(202);
    const { jobId } = accrual.json<{ jobId: string }>();
    await waitFor(async () => (await job(partner.headers, jobId)).status === 'RUNNING', { timeoutMs: 30_000, what: 'the accrual to start' });
    await waitFor(async () => {
      const { rows } = await t.ctx.db.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%accrual_chunk_items%'`);
      return rows.length > 0;
    }, { timeoutMs: 30_000, what: 'the first chunk to wait on the locked wallet' });
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    await holder.query('COMMIT');
    holder.release();
    expect(await job(partner.headers, jobId)).toMatchObject({ status: 'RUNNING', processed: 0 });

    await startWorker();
    expect(await finished(partner.headers, jobId)).toMatchObject({ status: 'SUCCEEDED', total: 10_000, succeeded: 10_000, skipped: 0, failed: 0 });
    const { rows: [ledger] } = await t.ctx.db.query(
      `SELECT (SELECT count(*)::int FROM point_transactions WHERE partner_id = $1 AND type = 'EARN') AS earns,
              (SELECT sum(balance)::int FROM point_wallets WHERE partner_id = $1) AS balance`, [partner.id]);
    expect(ledger).toEqual({ earns: 10_001, balance: 1 + items.reduce((sum, item) => sum + item.amount, 0) });
    expect((await checkPointsInvariants(t.ctx.db, { partnerId: partner.id })).violations).toEqual([]);
  });
});
