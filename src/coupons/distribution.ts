// Coupon distribution as a bulk job: the input (JSON list, uploaded CSV, or a SQL source read when
// the job starts) is staged into job_chunks; each chunk is then applied by one set-based statement
// (distribution-repository.ts) in the chunk's transaction. A line is one grant: a user listed twice
// gets a second coupon only if perUserLimit allows it, otherwise the line is skipped.
import { randomBytes } from 'node:crypto';
import type { AppContext } from '../context.ts';
import { isUniqueViolation, type Tx } from '../infra/db.ts';
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

/**
 * The ids of one chunk's coupons, but for their last 32 bits (a counter the statement adds): UUIDv7
 * (RFC 9562) with the 48-bit millisecond time, the version, the variant and 42 random bits. Two
 * chunks started in the same millisecond collide only if those 42 bits are equal too; the primary
 * key would then refuse the second chunk's transaction, and the job runs it again.
 */
function couponIdPrefix(now: Date): string {
  const hex = now.getTime().toString(16).padStart(12, '0') + randomBytes(6).toString('hex');
  const variant = (0x8 | (Number.parseInt(hex[15]!, 16) & 0x3)).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${hex.slice(12, 15)}-${variant}${hex.slice(16, 19)}-${hex.slice(19, 23)}`;
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
      idPrefix: couponIdPrefix(now), perUserLimit: template.perUserLimit, remaining,
    }).catch((error: unknown) => {
      if (isUniqueViolation(error, 'coupons_pkey')) throw new ChunkRaceError('coupon ids collided with another chunk');
      throw error;
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
