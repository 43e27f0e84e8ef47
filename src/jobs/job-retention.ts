// Finished jobs are kept STAMPEDE_JOB_RETENTION_DAYS (default 30) after they finish, then deleted
// with everything that hangs off them (item failures, webhook deliveries; their staged chunks were
// deleted as they were applied). Unfinished jobs are never touched. Hourly, in batches, each its
// own statement: safe to run in several processes at once and to re-run.
import type { AppContext, WorkerStarter } from '../context.ts';
import { startCronTask } from '../infra/schedule.ts';
import { deleteFinishedJobs } from './job-repository.ts';

const RETENTION_SCHEDULE = '30 * * * *';
/** Jobs per statement: a big distribution's job carries up to ~100,000 failure rows with it. */
const PRUNE_BATCH_JOBS = 100;

export async function pruneFinishedJobs(ctx: AppContext, now: Date): Promise<number> {
  const before = new Date(now.getTime() - ctx.config.jobRetentionDays * 86_400_000);
  let pruned = 0;
  for (let deleted = PRUNE_BATCH_JOBS; deleted === PRUNE_BATCH_JOBS;) {
    deleted = await deleteFinishedJobs(ctx.db, before, PRUNE_BATCH_JOBS);
    pruned += deleted;
  }
  return pruned;
}

export const startJobRetention: WorkerStarter = async (ctx) =>
  startCronTask('job-retention', RETENTION_SCHEDULE, ctx.logger, () => pruneFinishedJobs(ctx, ctx.clock()), ctx.config.scheduleIntervalMs);
