// Accepting a bulk job: one transaction creates the job, stages its whole input (COPY) and queues
// its run. Either all of it is committed and the caller answers 202, or nothing is.
//
// Per-partner bounds (STAMPEDE_PARTNER_MAX_QUEUED_JOBS, STAMPEDE_PARTNER_MAX_STAGED_BYTES): a cheap
// count refuses early, before any input is read; the binding check runs last, under a lock on the
// partner held only from there to COMMIT, so a long upload never holds it.
import type { AppContext } from '../context.ts';
import { AppError } from '../errors.ts';
import { withTransaction, type Tx } from '../infra/db.ts';
import { countUnfinishedJobs, insertJob, lockPartnerJobUsage, recordStagedBytes, setStagedInput, type NewJob } from './job-repository.ts';
import { enqueueJobRun, ensureQueueSchema } from './queue.ts';

export interface StagedInput {
  chunkCount: number;
  total: number;
}

/** `stage` writes job_chunks in the transaction; omitted when the job reads its source itself. */
export async function acceptJob(ctx: AppContext, job: NewJob, stage?: (tx: Tx) => Promise<StagedInput>): Promise<void> {
  await ensureQueueSchema(ctx.db, ctx.logger);
  if ((await countUnfinishedJobs(ctx.db, job.partnerId)) >= ctx.config.partnerMaxQueuedJobs) throw queueFull(ctx);
  await withTransaction(ctx.db, async (tx) => {
    await insertJob(tx, job);
    if (stage) {
      const { chunkCount, total } = await stage(tx);
      await setStagedInput(tx, job.id, chunkCount, total);
      await recordStagedBytes(tx, job.id);
    }
    await assertPartnerJobUsage(ctx, tx, job.partnerId);
    await enqueueJobRun(tx, job.id, job.scheduledAt);
  });
}

/** Counts the partner's unfinished jobs, this one included, under the partner's quota lock. */
export async function assertPartnerJobUsage(ctx: AppContext, tx: Tx, partnerId: string): Promise<void> {
  const usage = await lockPartnerJobUsage(tx, partnerId);
  if (usage.jobs > ctx.config.partnerMaxQueuedJobs) throw queueFull(ctx);
  if (usage.stagedBytes > ctx.config.partnerMaxStagedBytes) {
    throw new AppError('JOB_STAGED_BYTES_LIMIT', `A partner's unfinished jobs may hold at most ${ctx.config.partnerMaxStagedBytes} bytes of staged input.`);
  }
}

const queueFull = (ctx: AppContext) =>
  new AppError('JOB_QUEUE_FULL', `A partner may have at most ${ctx.config.partnerMaxQueuedJobs} unfinished jobs.`);
