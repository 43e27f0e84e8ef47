// Bulk point accrual as a bulk job (src/jobs/): the request's items are staged as JSON chunks with
// each item's earn fingerprint (the same one POST /v1/points/earn computes, so one key is applied
// once whichever path sends it), then applied chunk by chunk (accrual-repository.ts).
import { setImmediate } from 'node:timers/promises';
import { v7 as uuidv7 } from 'uuid';
import type { AppContext } from '../context.ts';
import { isUniqueViolation, type Tx } from '../infra/db.ts';
import { ChunkCopyWriter, escapeCopyText } from '../jobs/chunk-staging.ts';
import type { Job } from '../jobs/job-repository.ts';
import { ChunkRaceError, type ChunkOutcome, type JobHandler } from '../jobs/job-runner.ts';
import { applyAccrualChunk, createMissingWallets, loadChunkItems, type AccrualChunkParams, type AccrualChunkResult } from './accrual-repository.ts';
import { earnFingerprint } from './idempotency.ts';
import { expireDueLots } from './ledger-repository.ts';

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

/** Items per piece of a chunk's payload sent to COPY: ~25 KB, well below V8's large-object size. */
const PIECE_ITEMS = 100;

/**
 * Stages the items as JSON chunks (arrays of {p, u, a, e, k, h, t}); positions are indexes in the
 * request's list. Each chunk is sent in pieces of PIECE_ITEMS items, written as text directly.
 */
export async function stageAccrualItems(tx: Tx, jobId: string, pointType: string, items: readonly AccrualItem[]): Promise<number> {
  const writer = new ChunkCopyWriter(tx, jobId);
  for (let start = 0; start < items.length; start += ACCRUAL_CHUNK_ITEMS) {
    const end = Math.min(items.length, start + ACCRUAL_CHUNK_ITEMS);
    await writer.writeInPieces(start, end - start, chunkPieces(items, start, end, pointType));
  }
  return writer.finish();
}

/**
 * Yields each piece after a turn of the event loop: a request's 10,000 fingerprints are ~100 ms of
 * CPU, and the job runners sharing this event loop (the chunks of earlier requests) would otherwise
 * wait that long for every answer from PostgreSQL.
 */
async function* chunkPieces(items: readonly AccrualItem[], start: number, end: number, pointType: string): AsyncGenerator<string> {
  let piece = '[';
  for (let position = start; position < end; position++) {
    const item = items[position]!;
    const expiresAt = item.expiresAt === undefined ? null : new Date(item.expiresAt).toISOString();
    const hash = earnFingerprint({ userId: item.userId, amount: item.amount, pointType, expiresAt: item.expiresAt }).toString('hex');
    // t: the EARN's id if the item is applied: UUIDv7 like every ledger id, so the transactions'
    // primary key and the lots' source index grow at their right edge instead of at random
    piece += `${position > start ? ',' : ''}{"p":${position},"u":${JSON.stringify(item.userId)},"a":${item.amount},`
      + `"e":${expiresAt === null ? 'null' : `"${expiresAt}"`},"k":${JSON.stringify(item.idempotencyKey)},"h":"${hash}","t":"${uuidv7()}"}`;
    if ((position - start + 1) % PIECE_ITEMS === 0) {
      yield escapeCopyText(piece);
      piece = '';
      await setImmediate();
    }
  }
  yield escapeCopyText(`${piece}]`);
}

/** A key recorded by a concurrent writer after the statement's snapshot: run the chunk again. */
async function applyChunk(tx: Tx, p: AccrualChunkParams): Promise<AccrualChunkResult> {
  return applyAccrualChunk(tx, p).catch((error: unknown) => {
    if (isUniqueViolation(error, 'point_idempotency_pkey')) throw new ChunkRaceError('an idempotency key was recorded by a concurrent writer');
    throw error;
  });
}

export const accrualHandler: JobHandler = {
  async processChunk(ctx: AppContext, tx: Tx, job: Job, chunkNo: number): Promise<ChunkOutcome> {
    const { pointType } = job.params as unknown as AccrualParams;
    const p = { jobId: job.id, chunkNo, partnerId: job.partnerId, pointType, now: ctx.clock() };
    await loadChunkItems(tx, p);
    let result = await applyChunk(tx, p);
    if (result.missingWallets) {
      await createMissingWallets(tx, p);
      result = await applyChunk(tx, p);
    }
    if (result.dueWallets.length > 0) {
      await expireDueLots(tx, result.dueWallets, p.now);
      result = await applyChunk(tx, p);
    }
    // Not expected (wallets are never deleted; the due lots were expired under locks still held),
    // but a chunk that wrote nothing must not be counted as applied: run it again.
    if (result.missingWallets || result.dueWallets.length > 0) throw new ChunkRaceError('the chunk\'s wallets changed while it was applied');
    const { counts } = result;
    const failed = counts.reused + counts.expired + counts.overLimit + counts.malformed;
    return { processed: counts.items, succeeded: counts.recorded, skipped: counts.items - counts.fresh - failed, failed, notServed: 0 };
  },
};
