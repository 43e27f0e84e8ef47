// Bulk point accrual as a bulk job (src/jobs/): the request's items are staged as JSON chunks with
// each item's earn fingerprint (the same one POST /v1/points/earn computes, so one key is applied
// once whichever path sends it), then applied chunk by chunk (accrual-repository.ts).
import { v7 as uuidv7 } from 'uuid';
import type { AppContext } from '../context.ts';
import { isUniqueViolation, type Tx } from '../infra/db.ts';
import { ChunkCopyWriter, escapeCopyText } from '../jobs/chunk-staging.ts';
import type { Job } from '../jobs/job-repository.ts';
import { ChunkRaceError, type ChunkOutcome, type JobHandler } from '../jobs/job-runner.ts';
import { applyAccrualChunk, createMissingWallets, loadChunkItems, lockChunkWallets } from './accrual-repository.ts';
import { earnFingerprint } from './idempotency.ts';
import { expireDueLots } from './repository.ts';

export const MAX_ACCRUAL_ITEMS = 10_000;
const ACCRUAL_CHUNK_ITEMS = 2_000;

export interface AccrualItem {
  userId: string;
  amount: number;
  expiresAt?: string | undefined;
  idempotencyKey: string;
}

export interface AccrualParams {
  pointType: string;
}

/** Stages the items as JSON chunks; positions are indexes in the request's list. */
export async function stageAccrualItems(tx: Tx, jobId: string, pointType: string, items: readonly AccrualItem[]): Promise<number> {
  const writer = new ChunkCopyWriter(tx, jobId);
  for (let start = 0; start < items.length; start += ACCRUAL_CHUNK_ITEMS) {
    const slice = items.slice(start, start + ACCRUAL_CHUNK_ITEMS).map((item, i) => ({
      p: start + i,
      u: item.userId,
      a: item.amount,
      e: item.expiresAt === undefined ? null : new Date(item.expiresAt).toISOString(),
      k: item.idempotencyKey,
      h: earnFingerprint({ userId: item.userId, amount: item.amount, pointType, expiresAt: item.expiresAt }).toString('hex'),
      // the EARN's id if the item is applied: UUIDv7 like every ledger id, so the transactions'
      // primary key and the lots' source index grow at their right edge instead of at random
      t: uuidv7(),
    }));
    await writer.write(start, slice.length, escapeCopyText(JSON.stringify(slice)));
  }
  return writer.finish();
}

export const accrualHandler: JobHandler = {
  async processChunk(ctx: AppContext, tx: Tx, job: Job, chunkNo: number): Promise<ChunkOutcome> {
    const { pointType } = job.params as unknown as AccrualParams;
    const p = { jobId: job.id, chunkNo, partnerId: job.partnerId, pointType, now: ctx.clock() };
    await loadChunkItems(tx, p);
    await createMissingWallets(tx, p);
    const due = await lockChunkWallets(tx, p);
    if (due.length > 0) await expireDueLots(tx, due, p.now);
    const counts = await applyAccrualChunk(tx, p).catch((error: unknown) => {
      // A key recorded by a concurrent writer after the statement's snapshot: run the chunk again.
      if (isUniqueViolation(error, 'point_idempotency_pkey')) throw new ChunkRaceError('an idempotency key was recorded by a concurrent writer');
      throw error;
    });
    const failed = counts.reused + counts.expired;
    return { processed: counts.items, succeeded: counts.recorded, skipped: counts.items - counts.fresh - failed, failed, notServed: 0 };
  },
};
