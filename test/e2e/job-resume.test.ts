// A bulk job whose `stampede worker` is SIGKILLed in the middle of a chunk is resumed by another
// worker: the queue entry the dead worker locked would stay locked for hours in graphile-worker;
// the sweeper (every 5 s) sees that nobody holds the job's lock and releases it. Small on purpose
// (one accrual of 200 items) so that it fits a loaded machine; bulk-worker.test.ts has the big one.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stampedeWorkers } from '../harness/spawn-stampede.ts';
import { createPartner, createTestApp, type TestApp } from '../harness/test-app.ts';
import { waitFor } from '../harness/wait-for.ts';

describe('a job whose worker is killed mid-chunk', () => {
  let t: TestApp;
  const workers = stampedeWorkers({ DATABASE_URL: inject('databaseUrl'), REDIS_URL: inject('redisUrl'), LOG_LEVEL: 'info' });
  beforeAll(async () => { t = await createTestApp({ distributed: true }); });
  afterAll(async () => {
    workers.killAll();
    await t?.close();
  });

  it('is finished by the next worker, each item applied once', async () => {
    const partner = await createPartner(t.app);
    const job = async (jobId: string) => (await t.app.inject({ url: `/v1/jobs/${jobId}`, headers: partner.headers })).json();
    const first = await workers.start('job-queue');
    // member-0's wallet exists and is held locked: the accrual's chunk waits on it, in its
    // transaction, while its worker is killed.
    expect((await t.app.inject({
      method: 'POST', url: '/v1/points/earn', headers: { ...partner.headers, 'idempotency-key': 'seed' }, payload: { userId: 'member-0', amount: 1 },
    })).statusCode).toBe(201);
    const holder = await t.ctx.db.connect();
    let released = false;
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM point_wallets WHERE partner_id = $1 AND user_id = 'member-0' FOR UPDATE`, [partner.id]);
      const pid = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const items = Array.from({ length: 200 }, (_, i) => ({ userId: `member-${i % 20}`, amount: 1 + (i % 3), idempotencyKey: `resume:${i}` }));
      const accrual = await t.app.inject({ method: 'POST', url: '/v1/points/accruals', headers: partner.headers, payload: { items } });
      expect(accrual.statusCode, accrual.body).toBe(202);
      const { jobId } = accrual.json<{ jobId: string }>();
      await waitFor(async () => (await t.ctx.db.query('SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [pid])).rows.length > 0,
        { timeoutMs: 90_000, what: 'the chunk waiting on the held wallet' });
      first.child.kill('SIGKILL');
      expect(await first.exited).toBe('SIGKILL');
      await holder.query('COMMIT');
      released = true;
      expect(await job(jobId)).toMatchObject({ status: 'RUNNING', processed: 0 });

      await workers.start('job-queue');
      await waitFor(async () => ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes((await job(jobId)).status), { timeoutMs: 120_000, what: 'the job to finish', intervalMs: 200 });
      expect(await job(jobId)).toMatchObject({ status: 'SUCCEEDED', total: 200, succeeded: 200, failed: 0 });
      const { rows: [ledger] } = await t.ctx.db.query(
        `SELECT (SELECT count(*)::int FROM point_transactions WHERE partner_id = $1 AND type = 'EARN') AS earns,
                (SELECT sum(balance)::int FROM point_wallets WHERE partner_id = $1) AS balance`, [partner.id]);
      expect(ledger).toEqual({ earns: 201, balance: 1 + items.reduce((sum, item) => sum + item.amount, 0) });
    } finally {
      if (!released) await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
    }
  }, 300_000);
});
