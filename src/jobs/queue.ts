// The job queue: graphile-worker on the same PostgreSQL, in both modes. Stampede's own `jobs` table
// is the source of truth for a job's state; the queue only says "run job X now" or "deliver
// webhook Y", and those entries are added with SQL inside the caller's transaction, so a job or a
// delivery exists if and only if its queue entry does.
//
// Crash recovery: graphile-worker 0.16 leaves a job locked by a killed process for 4 hours. A job
// run holds a session advisory lock on its own connection for as long as it runs, so PostgreSQL
// itself knows whether the runner is alive: the sweeper unlocks queue entries locked for a while
// whose advisory lock is free (their process is gone), and another worker resumes them at once.
//
// Database blips: each runner is a graphile-worker pool kept running by keepQueuePoolRunning (below).
import { EventEmitter } from 'node:events';
import { Logger as QueueLogger, runMigrations, runTaskList, type Task, type TaskList, type WorkerEvents, type WorkerPool } from 'graphile-worker';
import type { AppContext, WorkerStarter } from '../context.ts';
import type { Db, Queryable } from '../infra/db.ts';
import type { Logger } from '../infra/logger.ts';

export const RUN_JOB_TASK = 'stampede.run-job';
export const DELIVER_WEBHOOK_TASK = 'stampede.deliver-webhook';

/** The queue entry of a job is keyed, so it can be replaced (continuation) or removed (cancel). */
export const queueKeyOf = (jobId: string) => `stampede-job:${jobId}`;
/** SQL for a job's advisory lock key from its id ($1): the 64 random-ish low bits of the UUID. */
export const JOB_LOCK_KEY_SQL = `('x' || right(replace($1::text, '-', ''), 16))::bit(64)::bigint`;

// Bulk jobs run for minutes and each holds a connection; webhook deliveries are short. Separate
// runners so a queue full of bulk jobs never delays an announcement. How many bulk jobs run at once
// is STAMPEDE_BULK_JOB_CONCURRENCY (default 2: inserting is CPU in the PostgreSQL backend, one
// core per job; on the 2-core benchmark machine 3 or 4 only added contention, bench/RESULTS.md).
export const WEBHOOK_CONCURRENCY = 4;
const JOB_MAX_ATTEMPTS = 10;
export const WEBHOOK_MAX_ATTEMPTS = 8;
const SWEEP_INTERVAL_MS = 5_000;
/** A live runner takes its advisory lock within milliseconds of being handed its queue entry. */
const ORPHAN_AFTER_SECONDS = 10;
const SCHEMA_LOCK_ID = 0x5741_4d51;
/** How long a stopping worker lets its runs reach their next step before interrupting them. */
const HAND_OVER_MS = 2_000;
/** A runner that stopped on an error starts again after 1 s, doubling to 30 s while it keeps failing. */
export const RUNNER_RESTART_DELAYS = { firstMs: 1_000, maxMs: 30_000 } as const;

const schemaReady = new WeakMap<Db, Promise<void>>();

/**
 * Installs or upgrades the queue's schema once per pool, under an advisory lock: graphile-worker's
 * own migration takes no lock, and several processes (or test files) start at once.
 */
export function ensureQueueSchema(db: Db, logger: Logger): Promise<void> {
  let ready = schemaReady.get(db);
  if (!ready) {
    ready = (async () => {
      const client = await db.connect();
      try {
        await client.query('SELECT pg_advisory_lock($1)', [SCHEMA_LOCK_ID]);
        await runMigrations({ pgPool: db, logger: queueLogger(logger) });
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [SCHEMA_LOCK_ID]).catch(() => undefined);
        client.release();
      }
    })();
    ready.catch(() => schemaReady.delete(db));
    schemaReady.set(db, ready);
  }
  return ready;
}

/**
 * Queues a run of the job (now, or at `runAt`); replaces a waiting entry, never a running one.
 *
 * Fair share between partners: each partner's runs share one named queue, which graphile-worker
 * runs one entry at a time (at most one running job per partner), and an entry's priority is the
 * number of the partner's unfinished jobs older than it, so the workers take every partner's first
 * job before anyone's second (round robin by rank; lower priority runs first, then run_at).
 */
export async function enqueueJobRun(tx: Queryable, jobId: string, runAt?: Date): Promise<void> {
  await tx.query(
    `SELECT graphile_worker.add_job($1, json_build_object('jobId', $2::text), queue_name := 'stampede-partner:' || j.partner_id,
              run_at := $3, job_key := $4, max_attempts := $5,
              priority := least((SELECT count(*) FROM jobs o WHERE o.partner_id = j.partner_id AND o.id < j.id
                                   AND o.status IN ('QUEUED', 'RUNNING')), 32767)::int)
       FROM jobs j WHERE j.id = $2::uuid`,
    [RUN_JOB_TASK, jobId, runAt ?? null, queueKeyOf(jobId), JOB_MAX_ATTEMPTS],
  );
}

/**
 * Interrupts the statement that the run of a job is executing, wherever it runs (the session that
 * holds the job's advisory lock, see the header): the run rolls back what it was doing, releasing
 * the job row, and hands over (job-runner.ts). For a cancel that must not wait for a chunk stuck on
 * a lock, and for a shutdown that must not wait at all.
 */
export async function interruptJobRun(db: Queryable, jobId: string): Promise<void> {
  await db.query(
    `SELECT pg_cancel_backend(l.pid) FROM pg_locks l
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND ((l.classid::bigint << 32) | l.objid::bigint) = ${JOB_LOCK_KEY_SQL}`,
    [jobId],
  );
}

/** Drops a job's waiting queue entry (a running one is left to notice the job's new status). */
export async function removeJobRun(tx: Queryable, jobId: string): Promise<void> {
  await tx.query('SELECT graphile_worker.remove_job($1)', [queueKeyOf(jobId)]);
}

export interface QueueTasks {
  runJob(jobId: string, attempt: { number: number; last: boolean }, shouldStop: () => boolean): Promise<void>;
  /** Interrupts a run of this process that did not hand over in time (shutdown). */
  interruptJob(jobId: string): Promise<void>;
  deliverWebhook(deliveryId: string, attempt: { number: number; last: boolean }): Promise<void>;
  /** Called by the sweeper for unfinished jobs whose queue entry is gone or gave up. */
  abandonJob(jobId: string): Promise<void>;
}

/** Runs both queue runners and the sweeper; stopping lets running jobs hand over at a chunk boundary. */
export function jobQueueWorker(makeTasks: (ctx: AppContext) => QueueTasks): WorkerStarter {
  return async (ctx) => {
    await ensureQueueSchema(ctx.db, ctx.logger);
    const tasks = makeTasks(ctx);
    let stopping = false;
    const attemptOf = (helpers: Parameters<Task>[1]) => ({ number: helpers.job.attempts, last: helpers.job.attempts >= helpers.job.max_attempts });
    const running = new Set<string>();
    const runJobTask: Task = async (payload, helpers) => {
      const { jobId } = payload as { jobId: string };
      running.add(jobId);
      try {
        await tasks.runJob(jobId, attemptOf(helpers), () => stopping);
      } finally {
        running.delete(jobId);
      }
    };
    const deliverTask: Task = async (payload, helpers) => {
      await tasks.deliverWebhook((payload as { deliveryId: string }).deliveryId, attemptOf(helpers));
    };
    const options = { noHandleSignals: true, pollInterval: 1_000, logger: queueLogger(ctx.logger) };
    const pool = (concurrency: number, taskList: TaskList) => (events: WorkerEvents) =>
      runTaskList({ ...options, concurrency, events }, taskList, ctx.db);
    const restarted = (runner: string) => () => ctx.metrics.jobRunnerRestarts.inc({ runner });
    const runners = [
      keepQueuePoolRunning('bulk-jobs', pool(ctx.config.bulkJobConcurrency, { [RUN_JOB_TASK]: runJobTask }), ctx.logger, restarted('bulk-jobs')),
      keepQueuePoolRunning('webhooks', pool(WEBHOOK_CONCURRENCY, { [DELIVER_WEBHOOK_TASK]: deliverTask }), ctx.logger, restarted('webhooks')),
    ];

    let sweeping: Promise<void> = Promise.resolve();
    const sweep = () => {
      sweeping = sweepQueue(ctx, tasks).catch((error: unknown) => ctx.logger.warn({ err: error }, 'job queue sweep failed; retrying'));
    };
    sweep();
    const timer = setInterval(sweep, SWEEP_INTERVAL_MS);
    timer.unref();

    return async () => {
      stopping = true;
      clearInterval(timer);
      await sweeping;
      // Runs hand over at their next step; one stuck in a statement (a chunk waiting on a lock) is
      // interrupted after a while, so shutdown never waits on it (and PostgreSQL is stopped after).
      const stopped = Promise.all(runners.map((runner) => runner.stop()));
      const interrupter = setTimeout(() => {
        for (const jobId of running) void tasks.interruptJob(jobId).catch(() => undefined);
      }, HAND_OVER_MS);
      try {
        await stopped;
      } finally {
        clearTimeout(interrupter);
      }
    };
  };
}

/** Starts one graphile-worker pool that emits its events on `events`. */
export type QueuePoolStarter = (events: WorkerEvents) => WorkerPool;

/**
 * Keeps a graphile-worker pool running until `stop()`: a pool that ends, or loses a worker, while
 * not stopping is logged and replaced by a new one after a backoff (RUNNER_RESTART_DELAYS, back to
 * the first delay once a pool has lived for the longest one); a start that throws is retried the same way.
 *
 * Why a bare pool and not 0.16's `run()`: `run()` adds a cron (we have no cron items) whose start-up
 * query is what failed on a database restart, stopping the runner and rejecting a promise inside
 * graphile-worker that no caller can handle (runner.js `cron.promise.finally`): an unhandled
 * rejection, so the process exited. And a pool's worker whose job completion cannot be written
 * (the database is down) "commits seppuku" and is never replaced, so a few blips idle a pool.
 * The dying pool is shut down gracefully beside its replacement (its other jobs finish), so bulk
 * jobs may briefly run above their configured concurrency.
 */
export function keepQueuePoolRunning(
  name: string,
  start: QueuePoolStarter,
  logger: Logger,
  onRestart: () => void,
  delays: { readonly firstMs: number; readonly maxMs: number } = RUNNER_RESTART_DELAYS,
): { stop(): Promise<void> } {
  let stopping = false;
  let current: WorkerPool | undefined;
  let startedAt = 0;
  let delayMs = delays.firstMs;
  let retry: NodeJS.Timeout | undefined;
  const shutdowns = new Map<WorkerPool, Promise<void>>();
  const shutDown = (pool: WorkerPool, reason: string) => {
    let done = shutdowns.get(pool);
    if (!done) {
      done = pool.gracefulShutdown(reason)
        .catch((error: unknown) => logger.warn({ err: error, runner: name }, 'job queue runner did not shut down cleanly'))
        .then(() => pool.promise)
        .finally(() => shutdowns.delete(pool));
      shutdowns.set(pool, done);
    }
    return done;
  };
  const restartAfterError = (pool: WorkerPool | undefined, error: unknown) => {
    if (stopping || pool !== current) return; // stopping, or this pool was already replaced
    current = undefined;
    if (Date.now() - startedAt >= delays.maxMs) delayMs = delays.firstMs;
    logger.warn({ err: error, runner: name, restartInMs: delayMs }, 'job queue runner stopped on an error; starting it again');
    if (pool) void shutDown(pool, `Restarting the ${name} runner after an error`);
    retry = setTimeout(launch, delayMs);
    delayMs = Math.min(delayMs * 2, delays.maxMs);
  };
  function launch() {
    retry = undefined;
    if (stopping) return;
    if (startedAt !== 0) onRestart();
    startedAt = Date.now();
    const events: WorkerEvents = new EventEmitter();
    let pool: WorkerPool;
    try {
      pool = start(events);
    } catch (error) {
      restartAfterError(undefined, error);
      return;
    }
    current = pool;
    events.on('worker:fatalError', ({ error }) => restartAfterError(pool, error));
    pool.promise.then(
      () => restartAfterError(pool, new Error('the worker pool ended by itself')),
      (error: unknown) => restartAfterError(pool, error),
    );
  }
  launch();
  return {
    async stop() {
      stopping = true;
      clearTimeout(retry);
      if (current) void shutDown(current, `Stopping the ${name} runner`);
      await Promise.all(shutdowns.values());
    },
  };
}

async function sweepQueue(ctx: AppContext, tasks: QueueTasks): Promise<void> {
  // Queue entries of job runs whose process died: locked, but nobody holds the job's lock.
  const { rows: orphans } = await ctx.db.query<{ locked_by: string; key: string }>(
    `SELECT locked_by, key FROM graphile_worker.jobs
      WHERE task_identifier = $1 AND key LIKE 'stampede-job:%' AND locked_at < now() - make_interval(secs => $2)`,
    [RUN_JOB_TASK, ORPHAN_AFTER_SECONDS],
  );
  for (const orphan of orphans) {
    const jobId = orphan.key.slice('stampede-job:'.length);
    const client = await ctx.db.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ free: boolean }>(`SELECT pg_try_advisory_xact_lock(${JOB_LOCK_KEY_SQL}) AS free`, [jobId]);
      if (rows[0]!.free) {
        await client.query('SELECT graphile_worker.force_unlock_workers($1::text[])', [[orphan.locked_by]]);
        ctx.logger.warn({ jobId, worker: orphan.locked_by }, 'resuming a job whose worker died');
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  // Unfinished jobs the queue no longer holds a live entry for (it gave up after its retries).
  const { rows: lost } = await ctx.db.query<{ id: string; last_error: string | null }>(
    `SELECT j.id, (SELECT g.last_error FROM graphile_worker.jobs g WHERE g.key = 'stampede-job:' || j.id) AS last_error
       FROM jobs j
      WHERE j.status IN ('QUEUED', 'RUNNING')
        AND NOT EXISTS (SELECT 1 FROM graphile_worker.jobs g
                         WHERE g.key = 'stampede-job:' || j.id AND (g.attempts < g.max_attempts OR g.locked_at IS NOT NULL))`,
  );
  for (const job of lost) {
    // The queue's last error is the operator's (logged), never the partner's: it may quote a source.
    ctx.logger.warn({ jobId: job.id, lastError: job.last_error }, 'the job queue gave up on a job');
    await tasks.abandonJob(job.id);
  }
}

/** graphile-worker logs through pino; its routine chatter goes to debug. */
function queueLogger(logger: Logger): QueueLogger {
  return new QueueLogger((scope) => (level, message, meta) => {
    const fields = { queue: scope, ...(meta ?? {}) };
    if (level === 'error') logger.error(fields, message);
    else if (level === 'warning') logger.warn(fields, message);
    else logger.debug(fields, message);
  });
}
