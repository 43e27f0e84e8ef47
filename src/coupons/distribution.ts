// Coupon distribution as a bulk job: the input (JSON list, uploaded CSV, or a SQL source read when
// the job starts) is staged into job_chunks; each chunk is then applied in its own transaction:
// its coupons are decided (lines checked in Node, holdings looked up in SQL) and written by COPY
// (distribution-repository.ts). A line is one grant: a user listed twice gets a second coupon only
// if perUserLimit allows it, otherwise the line is skipped.
import { claimEventIsLive, holdOffGateOpening } from './gate-lock.ts';
import type { AppContext } from '../context.ts';
import { AppError } from '../errors.ts';
import { isUniqueViolation, type Tx } from '../infra/db.ts';
import { ChunkCopyWriter, DISTRIBUTION_CHUNK_LINES, escapeCopyText } from '../jobs/chunk-staging.ts';
import { insertChunk, type Job } from '../jobs/job-repository.ts';
import { isUserId } from '../user-id.ts';
import { ChunkRaceError, type ChunkOutcome, type JobHandler } from '../jobs/job-runner.ts';
import { addIssued, couponIdPrefix, decideChunk, lockRemainingStock, MALFORMED_SOURCE_LINE, MISSING_USER_ID_LINE, othersHold, writeCoupons } from './distribution-repository.ts';
import { readSource } from '../partners/sql-source.ts';
import { findTemplate, type CouponTemplate } from './template-repository.ts';
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
 * One coupon per user and no stock to share: every line asks for seq 1 and the unique index has the
 * last word, so chunks may run side by side and need not look holders up first.
 */
const oneEachUnlimited = (template: CouponTemplate) => template.perUserLimit === 1 && template.totalQuantity === null;

export const distributionHandler: JobHandler = {
  // Source rows are staged with one plain INSERT per batch, never a COPY: a COPY left open by a
  // source that fails mid-stream wedged the connection, and the ROLLBACK behind it waited forever.
  async stage(ctx: AppContext, tx: Tx, job: Job, signal: AbortSignal) {
    const { input } = job.params as unknown as DistributionParams;
    if (input.kind !== 'sql') throw new Error(`distribution input ${input.kind} is staged when the job is accepted`);
    let chunkCount = 0;
    let total = 0;
    let bytes = 0;
    let position = 1;
    await readSource(ctx, tx, job.partnerId, input.query, signal, async (values) => {
      // A NULL row is an item without a user id, a row that is no user id a malformed item: both
      // reported by their chunk with their row number, never with the row's text.
      const lines = values.map((value) => {
        if (value === null) return MISSING_USER_ID_LINE;
        const line = value.trim();
        return line === '' || isUserId(line) ? line : MALFORMED_SOURCE_LINE;
      });
      const items = lines.filter((line) => line !== '').length;
      const payload = lines.join('\n');
      await insertChunk(tx, { jobId: job.id, chunkNo: chunkCount++, firstPosition: position, itemCount: items, payload });
      total += items;
      bytes += Buffer.byteLength(payload);
      position += lines.length;
    });
    return { chunkCount, total, bytes };
  },

  // Chunks insert in user id order: no deadlock between chunks running side by side.
  async chunksIndependent(ctx: AppContext, job: Job) {
    const { templateId } = job.params as unknown as DistributionParams;
    const template = await findTemplate(ctx.db, job.partnerId, templateId);
    return template !== undefined && oneEachUnlimited(template);
  },

  async processChunk(ctx: AppContext, tx: Tx, job: Job, chunkNo: number): Promise<ChunkOutcome> {
    const { templateId } = job.params as unknown as DistributionParams;
    const template = await findTemplate(tx, job.partnerId, templateId);
    if (!template) throw new Error(`template ${templateId} no longer exists`);
    // Checked when the job was accepted, and again by every chunk, under the lock that keeps a gate
    // from opening the event until this chunk has committed (gate-lock.ts): a job queued behind
    // others or running for minutes must not write behind the back of a gate that opened the event
    // meanwhile. The job fails; the chunks committed before stay, counted, and the gate saw them.
    await holdOffGateOpening(tx, templateId);
    if (await claimEventIsLive(tx, ctx.clock(), template)) {
      throw new AppError('CLAIM_EVENT_LIVE', 'CLAIM_EVENT_LIVE: the template\'s claim event went live while the job ran; the rest of the input was not served');
    }
    const limited = template.totalQuantity !== null;
    const remaining = limited ? Math.max(0, (await lockRemainingStock(tx, templateId)) ?? 0) : null;
    const now = ctx.clock();
    const { validFrom, validUntil } = couponValidity(template.validity, now);
    const rules = { jobId: job.id, chunkNo, templateId, perUserLimit: template.perUserLimit, remaining };
    const rows = { partnerId: job.partnerId, templateId, validFrom, validUntil, idPrefix: couponIdPrefix(now) };
    // Looking up holders user by user is ~10 % of a row's cost. When every coupon of the template is
    // this job's, a holder can only be a user repeated in an earlier chunk, which the unique index
    // refuses anyway: skip the lookup, and should COPY hit one, go back and decide with it.
    const optimistic = oneEachUnlimited(template) && !(await othersHold(tx, templateId, job.id));
    if (optimistic) await tx.query('SAVEPOINT optimistic_chunk');
    let decision = await decideChunk(tx, { ...rules, probeHolders: !optimistic });
    const write = () => writeCoupons(tx, rows, decision).catch((error: unknown) => {
      // Taken since the decision: a claim, or a line of a chunk running beside this one (or, at odds
      // of 2^-42 per chunk started in the same millisecond, an id). Run the chunk again: it sees it.
      if (isUniqueViolation(error)) throw new ChunkRaceError('a coupon was taken while the chunk was written');
      throw error;
    });
    let inserted: number;
    try {
      inserted = await write();
    } catch (error) {
      if (!optimistic || !(error instanceof ChunkRaceError)) throw error;
      await tx.query('ROLLBACK TO SAVEPOINT optimistic_chunk');
      decision = await decideChunk(tx, { ...rules, probeHolders: true });
      inserted = await write();
    }
    await addIssued(tx, templateId, inserted);
    const { counts } = decision;
    // users who held their coupon already, and lines repeating a user of the chunk
    const held = counts.attempted - inserted;
    const notServed = counts.eligible - counts.attempted;
    return {
      processed: counts.lines,
      succeeded: inserted,
      skipped: counts.lines - counts.malformed - counts.eligible + held,
      failed: counts.malformed,
      notServed,
      exhausted: remaining !== null && remaining - inserted <= 0,
    };
  },
};
