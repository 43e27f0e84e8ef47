// Coupon distribution as a bulk job: the input (JSON list, uploaded CSV, or a SQL source read when
// the job starts) is staged into job_chunks; each chunk is then applied by one set-based statement
// (distribution-repository.ts) in the chunk's transaction. A line is one grant: a user listed twice
// gets a second coupon only if perUserLimit allows it, otherwise the line is skipped.
import { randomInt } from 'node:crypto';
import type { AppContext } from '../context.ts';
import type { Tx } from '../infra/db.ts';
import { ChunkCopyWriter, DISTRIBUTION_CHUNK_LINES, escapeCopyText } from '../jobs/chunk-staging.ts';
import type { Job } from '../jobs/job-repository.ts';
import { ChunkRaceError, type ChunkOutcome, type JobHandler } from '../jobs/job-runner.ts';
import { addIssued, distributeChunk, lockRemainingStock } from './distribution-repository.ts';
import { readSource } from './distribution-source.ts';
import { findTemplate } from './template-repository.ts';
import { couponValidity } from './validity.ts';

export type DistributionInput = { kind: 'list' } | { kind: 'csv' } | { kind: 'sql'; query: string };
export interface DistributionParams {
  templateId: string;
  input: DistributionInput;
}

/** Stages a JSON list (already validated) as chunks; positions are array indexes. */
export async function stageUserIdList(tx: Tx, jobId: string, userIds: readonly string[]): Promise<number> {
  const writer = new ChunkCopyWriter(tx, jobId);
  for (let start = 0; start < userIds.length; start += DISTRIBUTION_CHUNK_LINES) {
    const slice = userIds.slice(start, start + DISTRIBUTION_CHUNK_LINES);
    await writer.write(start, slice.length, slice.map(escapeCopyText).join('\\n'));
  }
  return writer.finish();
}

/** UUIDv7 prefix for the ids of one chunk: 48-bit millisecond time, version 7, 4 random bits. */
function idPrefix(now: Date): Buffer {
  const prefix = Buffer.alloc(7);
  prefix.writeUIntBE(now.getTime(), 0, 6);
  prefix[6] = 0x70 | randomInt(16);
  return prefix;
}

export const distributionHandler: JobHandler = {
  async stage(ctx: AppContext, tx: Tx, job: Job) {
    const { input } = job.params as unknown as DistributionParams;
    if (input.kind !== 'sql') throw new Error(`distribution input ${input.kind} is staged when the job is accepted`);
    const url = ctx.config.sourceDatabaseUrl;
    if (!url) throw new Error('STAMPEDE_SOURCE_DATABASE_URL is not configured on this worker');
    const writer = new ChunkCopyWriter(tx, job.id);
    let total = 0;
    let position = 1;
    await readSource(url, input.query, async (values) => {
      // NULL ids become blank lines: ignored, like blank lines of an upload.
      const lines = values.map((value) => (value === null ? '' : escapeCopyText(value.trim().slice(0, 200))));
      const items = lines.filter((line) => line !== '').length;
      await writer.write(position, items, lines.join('\\n'));
      total += items;
      position += lines.length;
    });
    return { chunkCount: await writer.finish(), total };
  },

  // One coupon per user and no stock: every line asks for seq 1 and the unique index alone decides,
  // so chunks may run at the same time (they insert in user id order: no deadlock between them).
  async chunksIndependent(ctx: AppContext, job: Job) {
    const { templateId } = job.params as unknown as DistributionParams;
    const template = await findTemplate(ctx.db, job.partnerId, templateId);
    return template !== undefined && template.totalQuantity === null && template.perUserLimit === 1;
  },

  async processChunk(ctx: AppContext, tx: Tx, job: Job, chunkNo: number): Promise<ChunkOutcome> {
    const { templateId } = job.params as unknown as DistributionParams;
    const template = await findTemplate(tx, job.partnerId, templateId);
    if (!template) throw new Error(`template ${templateId} no longer exists`);
    const limited = template.totalQuantity !== null;
    const remaining = limited ? Math.max(0, (await lockRemainingStock(tx, templateId)) ?? 0) : null;
    const now = ctx.clock();
    const { validFrom, validUntil } = couponValidity(template.validity, now);
    const counts = await distributeChunk(tx, {
      jobId: job.id, chunkNo, templateId, partnerId: job.partnerId, validFrom, validUntil,
      idPrefix: idPrefix(now), perUserLimit: template.perUserLimit, remaining,
    });
    const conflicts = counts.attempted - counts.inserted;
    const notServed = counts.eligible - counts.attempted;
    // Lines were cut for lack of stock, yet some coupons were refused by a concurrent claim, so
    // stock is left: run the chunk again, now seeing those claims, rather than under-serve.
    if (conflicts > 0 && notServed > 0) throw new ChunkRaceError('a claim raced the chunk of a limited template');
    await addIssued(tx, templateId, counts.inserted);
    return {
      processed: counts.lines,
      succeeded: counts.inserted,
      skipped: counts.lines - counts.malformed - counts.eligible + conflicts,
      failed: counts.malformed,
      notServed,
      exhausted: remaining !== null && remaining - counts.inserted <= 0,
    };
  },
};
