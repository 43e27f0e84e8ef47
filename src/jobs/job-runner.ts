// Runs a bulk job as a sequence of small transactions on one connection:
//   QUEUED → RUNNING → [stage the external source] → announced (with its total) → chunk 0, 1, …
//   → SUCCEEDED (announced)
// Each step locks the job row, so progress has one writer at a time, and commits its own effects
// together with the job's progress: a crash between two steps loses and repeats nothing, and the
// next run (after the queue's sweeper notices the dead process) continues at the first step not
// committed. The connection holds the job's advisory lock for the whole run (see queue.ts).
import type pg from 'pg';
import type { AppContext } from '../context.ts';
import { AppError, catalogReason } from '../errors.ts';
import { withRetry, type Tx } from '../infra/db.ts';
import {
  claimChunk, FINISHED_STATUSES, finishJob, lockJob, lockPartnerJobUsage, markRunning, markStagedFromSource, readJob, recordChunk, recordClaimedChunk,
  type ItemCounts, type Job, type JobType,
} from './job-repository.ts';
import { enqueueJobRun, interruptJobRun, JOB_LOCK_KEY_SQL, type QueueTasks } from './queue.ts';
import { deliverWebhook } from './webhook-delivery.ts';
import { announceJobEvent } from './webhook-repository.ts';

export interface ChunkOutcome extends ItemCounts {
  /** No later item can succeed (a limited template ran out): the rest of the input is not served. */
  exhausted?: boolean;
}

/** One kind of bulk job; both functions run inside the caller's transaction. */
export interface JobHandler {
  /**
   * Reads an external source into job_chunks (jobs created with staged = false), in the caller's
   * transaction, without the job row locked (cancel does not wait for it). `signal` aborts when
   * the job is cancelled or the worker stops: the read must then stop at once and reject.
   */
  stage?(ctx: AppContext, tx: Tx, job: Job, signal: AbortSignal): Promise<{ chunkCount: number; total: number; bytes: number }>;
  /** Applies staged chunk `chunkNo`: its rows and its failures; the runner records the progress. */
  processChunk(ctx: AppContext, tx: Tx, job: Job, chunkNo: number): Promise<ChunkOutcome>;
  /**
   * True when the job's chunks give the same result in any order and at the same time (no stock to
   * share, nothing one chunk reads that another writes): CHUNK_LANES connections then apply them.
   */
  chunksIndependent?(ctx: AppContext, job: Job): Promise<boolean>;
}

export type JobHandlers = Readonly<Record<JobType, JobHandler>>;

/** Thrown inside a chunk to have its transaction rolled back and run again (a lost race). */
export class ChunkRaceError extends Error {
  readonly code = '40001'; // retried like a serialization failure (withRetry)
  constructor(message: string) {
    super(message);
    this.name = 'ChunkRaceError';
  }
}

const ZERO: ItemCounts = { processed: 0, succeeded: 0, skipped: 0, failed: 0, notServed: 0 };
// Errors worth another attempt later: the database or the network went away, or contention.
const TRANSIENT_CODES = new Set(['40001', '40P01', '53300', '57P01', '57P02', '57P03', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE']);
const isTransient = (error: unknown): boolean => {
  const code = String((error as { code?: unknown })?.code ?? '');
  return TRANSIENT_CODES.has(code) || code.startsWith('08') || /Connection terminated|Client has encountered a connection error/.test(String(error));
};
const RUN_AGAIN_WHEN_BUSY_MS = 5_000;
/** How often a run that stages a source looks whether its job was cancelled or its worker stops. */
const STAGING_WATCH_MS = 200;
/** query_canceled: interruptJobRun (pg_cancel_backend) reached the run's statement. */
const isInterrupted = (error: unknown): boolean => (error as { code?: unknown })?.code === '57014';
/**
 * Connections that apply independent chunks side by side. Inserting is CPU in the PostgreSQL
 * backend (index entries, foreign-key checks), so one connection uses one core: two on the
 * 2-core benchmark machine.
 */
const CHUNK_LANES = 2;

type StepResult =
  | { state: 'continue'; chunk?: { job: Job; counts: ItemCounts } }
  | { state: 'finished'; job?: Job };

export function makeQueueTasks(handlers: JobHandlers) {
  return (ctx: AppContext): QueueTasks => ({
    runJob: (jobId, attempt, shouldStop) => runJob(ctx, handlers, jobId, attempt, shouldStop),
    deliverWebhook: (deliveryId, attempt) => deliverWebhook(ctx, deliveryId, attempt),
    interruptJob: (jobId) => interruptJobRun(ctx.db, jobId),
    abandonJob: async (jobId) => { await failJob(ctx, jobId, catalogReason(undefined, 'JOB_ABANDONED')); },
  });
}

export async function runJob(
  ctx: AppContext, handlers: JobHandlers, jobId: string, attempt: { last: boolean }, shouldStop: () => boolean,
): Promise<void> {
  const client = await ctx.db.connect();
  let broken = false;
  let locked = false;
  try {
    locked = (await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${JOB_LOCK_KEY_SQL}) AS ok`, [jobId])).rows[0]!.ok;
    if (!locked) {
      // Another process runs it right now; look again later in case that run hands over.
      await enqueueJobRun(ctx.db, jobId, new Date(Date.now() + RUN_AGAIN_WHEN_BUSY_MS));
      return;
    }
    let lanesTried = false;
    for (;;) {
      if (shouldStop()) {
        // Shutting down: hand the rest to whichever worker comes next (a new queue entry).
        await enqueueJobRun(ctx.db, jobId);
        return;
      }
      const job = await readJob(client, jobId);
      if (job?.status === 'RUNNING' && !job.staged) {
        await stageFromSource(ctx, handlers[job.type], client, job, shouldStop);
        continue;
      }
      if (!lanesTried && job?.status === 'RUNNING' && job.staged) {
        lanesTried = true;
        const handler = handlers[job.type];
        if (job.nextChunk < job.chunkCount && (await handler.chunksIndependent?.(ctx, job))) await runLanes(ctx, handler, job, shouldStop);
        continue;
      }
      const result = await withRetry(() => transact(client, () => step(ctx, handlers, client, jobId)));
      if (result.state === 'finished') {
        if (result.job) ctx.metrics.jobs.inc({ type: result.job.type, status: result.job.status });
        return;
      }
      if (result.chunk) countItems(ctx, result.chunk.job.type, result.chunk.counts);
    }
  } catch (error) {
    if (isInterrupted(error)) {
      // interruptJobRun: a cancel (the job is CANCELLED by now, and the next run sees it) or a
      // shutdown. Hand over; never mark the job FAILED for it.
      ctx.logger.info({ jobId }, 'bulk job run interrupted; handing over');
      await enqueueJobRun(ctx.db, jobId).catch((enqueueError: unknown) => ctx.logger.warn({ err: enqueueError, jobId }, 'could not queue the interrupted job again'));
      return;
    }
    broken = isTransient(error);
    if (broken && !attempt.last) throw error; // the queue retries with backoff
    ctx.logger.error({ err: error, jobId }, 'bulk job failed');
    await failJob(ctx, jobId, catalogReason(error, broken ? 'SERVICE_UNAVAILABLE' : 'JOB_FAILED'));
  } finally {
    if (locked && !broken) await client.query(`SELECT pg_advisory_unlock(${JOB_LOCK_KEY_SQL})`, [jobId]).catch(() => { broken = true; });
    // A connection in doubt is destroyed, which also drops its advisory lock.
    client.release(broken);
  }
}

function countItems(ctx: AppContext, type: JobType, counts: ItemCounts): void {
  for (const key of ['succeeded', 'skipped', 'failed'] as const) {
    if (counts[key] > 0) ctx.metrics.jobItems.inc({ type, result: key }, counts[key]);
  }
  if (counts.notServed > 0) ctx.metrics.jobItems.inc({ type, result: 'not_served' }, counts.notServed);
}

/**
 * Independent chunks, CHUNK_LANES at a time, each lane on its own connection. A lane's transaction
 * claims the lowest chunk no other lane holds (FOR UPDATE SKIP LOCKED), applies it, deletes it and
 * adds its counts to the job, so a chunk is applied once whatever crashes, and a resumed run (lanes
 * again, or the sequential steps) finds only the chunks not committed. Lanes stop when no chunk is
 * left to claim, the job is no longer RUNNING (cancelled) or the worker shuts down; the caller's
 * sequential steps then finish the job.
 */
async function runLanes(ctx: AppContext, handler: JobHandler, job: Job, shouldStop: () => boolean): Promise<void> {
  const lanes = await Promise.allSettled(Array.from({ length: CHUNK_LANES }, async () => {
    const client = await ctx.db.connect();
    let broken = false;
    try {
      while (!shouldStop()) {
        const counts = await withRetry(() => transact(client, async () => {
          const chunkNo = await claimChunk(client, job.id);
          if (chunkNo === undefined) return undefined;
          const outcome = await handler.processChunk(ctx, client, job, chunkNo);
          const chunkCounts: ItemCounts = { ...ZERO, ...outcome };
          await recordClaimedChunk(client, job.id, chunkNo, chunkCounts);
          return chunkCounts;
        }));
        if (!counts) return;
        countItems(ctx, job.type, counts);
      }
    } catch (error) {
      broken = isTransient(error);
      throw error;
    } finally {
      client.release(broken);
    }
  }));
  const failed = lanes.find((lane): lane is PromiseRejectedResult => lane.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * Stages a job's external source in one transaction on the run's connection, without locking the
 * job row: a cancel answers at once, and the watcher below aborts the read when it sees the job
 * CANCELLED or the worker stopping. The chunks are kept only if the job is still RUNNING when they
 * are recorded; otherwise they are rolled back, and the caller's loop sees why.
 */
async function stageFromSource(ctx: AppContext, handler: JobHandler, client: pg.PoolClient, job: Job, shouldStop: () => boolean): Promise<void> {
  const abort = new AbortController();
  let reading = false;
  const watcher = setInterval(() => {
    if (shouldStop()) abort.abort(new Error('the worker is stopping'));
    if (abort.signal.aborted || reading) return;
    reading = true;
    readJob(ctx.db, job.id).then(
      (current) => { if (current?.status !== 'RUNNING') abort.abort(new Error('the job is no longer running')); },
      () => undefined,
    ).finally(() => { reading = false; });
  }, STAGING_WATCH_MS);
  try {
    await transact(client, async () => {
      const input = await handler.stage!(ctx, client, job, abort.signal);
      abort.signal.throwIfAborted();
      // The staged bytes count against the partner's bound like an upload's.
      const usage = await lockPartnerJobUsage(client, job.partnerId);
      if (usage.stagedBytes + input.bytes > ctx.config.partnerMaxStagedBytes) {
        throw new AppError('JOB_STAGED_BYTES_LIMIT', `The source's ${input.bytes} bytes exceed what the partner's unfinished jobs may hold (${ctx.config.partnerMaxStagedBytes}).`);
      }
      const staged = await markStagedFromSource(client, job.id, input);
      if (!staged) {
        // Cancelled meanwhile: roll the chunks back (the transaction fails; the abort marks it expected).
        abort.abort(new Error('the job is no longer running'));
        abort.signal.throwIfAborted();
      }
      await announceJobEvent(client, staged!, 'job.started', ctx.clock());
    });
  } catch (error) {
    if (!abort.signal.aborted) throw error;
  } finally {
    clearInterval(watcher);
  }
}

async function step(ctx: AppContext, handlers: JobHandlers, tx: Tx, jobId: string): Promise<StepResult> {
  const job = await lockJob(tx, jobId);
  if (!job || FINISHED_STATUSES.includes(job.status)) return { state: 'finished' };
  const now = ctx.clock();
  if (job.status === 'QUEUED') {
    const running = await markRunning(tx, job.id, now);
    // A job read from a source is announced once staged, with its total.
    if (running.staged) await announceJobEvent(tx, running, 'job.started', now);
    return { state: 'continue' };
  }
  const handler = handlers[job.type];
  if (!job.staged) return { state: 'continue' }; // staged by stageFromSource, outside the row lock
  if (job.nextChunk >= job.chunkCount) {
    const done = await finishJob(tx, job.id, 'SUCCEEDED', now);
    await announceJobEvent(tx, done, 'job.succeeded', now);
    return { state: 'finished', job: done };
  }
  const outcome = await handler.processChunk(ctx, tx, job, job.nextChunk);
  const counts: ItemCounts = { ...ZERO, ...outcome };
  let next = job.nextChunk + 1;
  if (outcome.exhausted) {
    // Everything after this chunk is not served; count it without reading it.
    counts.notServed += job.total - job.processed - counts.processed;
    counts.processed = job.total - job.processed;
    next = job.chunkCount;
  }
  const updated = await recordChunk(tx, job.id, counts, next);
  return { state: 'continue', chunk: { job: updated, counts } };
}

/** Marks an unfinished job FAILED and announces it; a finished job is left as it is. */
async function failJob(ctx: AppContext, jobId: string, reason: string): Promise<void> {
  const failed = await withRetry(async () => {
    const client = await ctx.db.connect();
    try {
      return await transact(client, async () => {
        const job = await lockJob(client, jobId);
        if (!job || FINISHED_STATUSES.includes(job.status)) return undefined;
        const now = ctx.clock();
        const done = await finishJob(client, jobId, 'FAILED', now, reason.slice(0, 1000));
        await announceJobEvent(client, done, 'job.failed', now);
        return done;
      });
    } finally {
      client.release();
    }
  });
  if (failed) ctx.metrics.jobs.inc({ type: failed.type, status: 'FAILED' });
}

async function transact<T>(client: pg.PoolClient, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await work();
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
