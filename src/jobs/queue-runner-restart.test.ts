// A database blip must neither kill the worker process nor leave it alive running no jobs. Found by
// the 30-minute chaos run (seed 5640708, PostgreSQL restarted 53 times): a runner's start-up query
// failed, graphile-worker stopped the runner and rejected a promise nobody handled, and the process
// exited 1. Each test makes a runner meet a real PostgreSQL error, then checks that a job queued
// afterwards still runs and that no rejection escaped. The queue's tasks here only record what they
// were given: the queue under test and its database are real.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppContext } from '../context.ts';
import { closeContext, testContext } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';
import { DELIVER_WEBHOOK_TASK, ensureQueueSchema, jobQueueWorker, WEBHOOK_CONCURRENCY, type QueueTasks } from './queue.ts';

describe('job queue runners after a database error', () => {
  let ctx: AppContext;
  const delivered: string[] = [];
  const tasks: QueueTasks = {
    runJob: async () => undefined,
    interruptJob: async () => undefined,
    abandonJob: async () => undefined,
    deliverWebhook: async (deliveryId) => { delivered.push(deliveryId); },
  };
  const startWorker = jobQueueWorker(() => tasks);
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => { unhandled.push(reason); };

  beforeAll(async () => {
    ctx = await testContext();
    await ensureQueueSchema(ctx.db, ctx.logger);
    process.on('unhandledRejection', onUnhandled);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await closeContext(ctx);
  });

  const enqueueDelivery = (deliveryId: string) =>
    ctx.db.query(`SELECT graphile_worker.add_job($1, json_build_object('deliveryId', $2::text))`, [DELIVER_WEBHOOK_TASK, deliveryId]);
  /** Delivered, and its queue entry completed (deleted). */
  const deliveredAndCompleted = (deliveryId: string) => waitFor(async () => {
    if (!delivered.includes(deliveryId)) return false;
    const { rowCount } = await ctx.db.query(`SELECT 1 FROM graphile_worker._private_jobs WHERE payload->>'deliveryId' = $1`, [deliveryId]);
    return rowCount === 0;
  }, { what: `delivery ${deliveryId} to run and complete`, timeoutMs: 30_000 });
  const webhookRestarts = async () =>
    (await ctx.metrics.jobRunnerRestarts.get()).values.find((value) => value.labels.runner === 'webhooks')?.value ?? 0;

  it('a worker whose job completion cannot be written is replaced: jobs still run', async () => {
    // The real path of a blip during a job: the task ran, then graphile-worker cannot delete the
    // queue entry (in the chaos run the connection was refused; here a trigger refuses it). Such a
    // worker "commits seppuku" and graphile-worker 0.16 never replaces it: once every worker of
    // the pool has met it, the pool runs nothing. The refused entries are the test's own.
    await ctx.db.query(`
      CREATE FUNCTION refuse_test_completion() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF OLD.payload->>'deliveryId' LIKE 'refused-%' THEN RAISE EXCEPTION 'completion refused (test)'; END IF;
        RETURN OLD;
      END $$;
      CREATE TRIGGER refuse_test_completion BEFORE DELETE ON graphile_worker._private_jobs
        FOR EACH ROW EXECUTE FUNCTION refuse_test_completion();`);
    const stop = await startWorker(ctx);
    try {
      // One refused entry per worker of the pool: a worker dies after its first one, so each is
      // taken by a different worker and, without a restart, none is left.
      const refused = Array.from({ length: WEBHOOK_CONCURRENCY }, (_, i) => `refused-${i}`);
      for (const id of refused) await enqueueDelivery(id);
      await waitFor(() => refused.every((id) => delivered.includes(id)), { what: 'every refused delivery to run' });

      await enqueueDelivery('after-refusals');
      await deliveredAndCompleted('after-refusals');
      expect(await webhookRestarts()).toBeGreaterThanOrEqual(1);
      expect(unhandled).toEqual([]);
    } finally {
      await stop();
      await ctx.db.query(`DROP TRIGGER refuse_test_completion ON graphile_worker._private_jobs; DROP FUNCTION refuse_test_completion();
                          DELETE FROM graphile_worker._private_jobs WHERE payload->>'deliveryId' LIKE 'refused-%'`);
    }
  });

  it('a connection killed while a runner starts does not crash the process: jobs still run', async () => {
    // The chaos run's crash: graphile-worker's run() starts a cron (Stampede has no cron items)
    // whose first query reads _private_known_crontabs; the database restarted under it. Here that
    // table is locked while the worker starts, and every session waiting on the lock is killed as
    // a restart would (the bulk runner's cron query waits there long before the webhook runner has
    // delivered anything). The runners must not depend on that query, nor crash when it fails.
    const locker: pg.PoolClient = await ctx.db.connect();
    let stop: (() => Promise<void>) | undefined;
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE graphile_worker._private_known_crontabs IN ACCESS EXCLUSIVE MODE');
      stop = await startWorker(ctx);
      await enqueueDelivery('while-locked');
      await deliveredAndCompleted('while-locked');
      await ctx.db.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND $1 = ANY (pg_blocking_pids(pid))`, [(await locker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid]);
      await locker.query('COMMIT');

      await enqueueDelivery('after-kill');
      await deliveredAndCompleted('after-kill');
      expect(unhandled).toEqual([]);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      locker.release();
      await stop?.();
    }
  });
});
