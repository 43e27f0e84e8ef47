// POST /v1/jobs/{id}/cancel answers at once whatever the run is doing: here a chunk that waits on a
// wallet another transaction holds (it holds the job row while it waits). The run is interrupted,
// rolls its chunk back and hands over; the job stays CANCELLED with nothing applied.
import { describe, expect, it } from 'vitest';
import { waitFor, withDeadline } from '../../test/harness/wait-for.ts';
import { appWithJobQueue } from '../../test/harness/job-app.ts';
import { createPartner } from '../../test/harness/test-app.ts';

describe('cancel of a running job', () => {
  const t = appWithJobQueue();

  it('answers at once while a chunk waits on a lock, and the run lets go of the job', async () => {
    const partner = await createPartner(t.app);
    const earn = await t.app.inject({
      method: 'POST', url: '/v1/points/earn', headers: { ...partner.headers, 'idempotency-key': 'before-bulk' }, payload: { userId: 'held-0', amount: 1 },
    });
    expect(earn.statusCode, earn.body).toBe(201);
    const holder = await t.ctx.db.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM point_wallets WHERE partner_id = $1 AND user_id = 'held-0' FOR UPDATE`, [partner.id]);
      const items = Array.from({ length: 2_000 }, (_, i) => ({ userId: `held-${i % 100}`, amount: 1, idempotencyKey: `cancel-${i}` }));
      const accrual = await t.app.inject({ method: 'POST', url: '/v1/points/accruals', headers: partner.headers, payload: { items } });
      expect(accrual.statusCode, accrual.body).toBe(202);
      const { jobId } = accrual.json<{ jobId: string }>();
      await waitFor(async () => {
        const { rows } = await t.ctx.db.query(
          `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%accrual_chunk_items%' AND pid <> pg_backend_pid()`);
        return rows.length > 0;
      }, { timeoutMs: 30_000, what: 'the first chunk to wait on the locked wallet' });

      // The wallet stays locked until the end of this block: a cancel that waited on it would never answer.
      const cancelled = await withDeadline(t.app.inject({ method: 'POST', url: `/v1/jobs/${jobId}/cancel`, headers: partner.headers }), 30_000, 'the cancel answering while the wallet is locked');
      expect(cancelled.statusCode, cancelled.body).toBe(200);
      expect(cancelled.json()).toMatchObject({ status: 'CANCELLED', processed: 0 });
      // The interrupted run no longer waits on the wallet, while the wallet is still held.
      await waitFor(async () => {
        const { rows } = await t.ctx.db.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%accrual_chunk_items%' AND pid <> pg_backend_pid()`);
        return rows.length === 0;
      }, { timeoutMs: 30_000, what: 'the run to stop waiting' });
      await holder.query('COMMIT');
      await waitFor(async () => {
        const { rows } = await t.ctx.db.query(`SELECT 1 FROM graphile_worker.jobs WHERE key = $1`, [`stampede-job:${jobId}`]);
        return rows.length === 0;
      }, { timeoutMs: 15_000, what: 'the job to leave the queue' });
      const job = (await t.app.inject({ url: `/v1/jobs/${jobId}`, headers: partner.headers })).json();
      expect(job).toMatchObject({ status: 'CANCELLED', processed: 0, succeeded: 0 });
      const { rows: [ledger] } = await t.ctx.db.query(`SELECT count(*)::int AS earns FROM point_transactions WHERE partner_id = $1`, [partner.id]);
      expect(ledger!.earns).toBe(1);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
    }
  });
});
