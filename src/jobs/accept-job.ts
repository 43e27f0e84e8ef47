// Accepting a bulk job: one transaction creates the job, stages its whole input (COPY) and queues
// its run. Either all of it is committed and the caller answers 202, or nothing is.
import type { AppContext } from '../context.ts';
import { withTransaction, type Tx } from '../infra/db.ts';
import { insertJob, setStagedInput, type NewJob } from './job-repository.ts';
import { enqueueJobRun, ensureQueueSchema } from './queue.ts';

export interface StagedInput {
  chunkCount: number;
  total: number;
}

/** `stage` writes job_chunks in the transaction; omitted when the job reads its source itself. */
export async function acceptJob(ctx: AppContext, job: NewJob, stage?: (tx: Tx) => Promise<StagedInput>): Promise<void> {
  await ensureQueueSchema(ctx.db, ctx.logger);
  await withTransaction(ctx.db, async (tx) => {
    await insertJob(tx, job);
    if (stage) {
      const { chunkCount, total } = await stage(tx);
      await setStagedInput(tx, job.id, chunkCount, total);
    }
    await enqueueJobRun(tx, job.id, job.scheduledAt);
  });
}
