// Revoking unused coupons as a bulk job (POST /v1/coupon-templates/{id}/revocations): the ISSUED
// coupons of a template (all, or those of the listed users) become REVOKED, never redeemable
// again; their stock does not come back (issued_count is unchanged). The coupons to revoke are
// fixed when the job is accepted: their ids are staged into job_chunks by one INSERT … SELECT
// (coupons still on their way from the claim gate are persisted first). Each chunk is one
// conditional UPDATE … WHERE status = 'ISSUED' in the chunk's transaction with the job's progress,
// so a run killed anywhere resumes at its first uncommitted chunk and no coupon is revoked twice;
// a coupon redeemed meanwhile is left alone and counted as skipped.
import type { AppContext } from '../context.ts';
import type { Tx } from '../infra/db.ts';
import type { Job } from '../jobs/job-repository.ts';
import type { ChunkOutcome, JobHandler } from '../jobs/job-runner.ts';
import { revokeChunk, stageRevocation } from './revocation-repository.ts';

export interface RevocationParams {
  templateId: string;
  /** Absent: every ISSUED coupon of the template. */
  userIds?: string[];
}

/** Coupon ids per chunk: one UPDATE of this many rows stays a short transaction. */
export const REVOCATION_CHUNK_COUPONS = 5_000;

/** Stages the ids of the coupons to revoke, in the accepting transaction. */
export async function stageRevocationInput(ctx: AppContext, tx: Tx, jobId: string, partnerId: string, params: RevocationParams) {
  await ctx.pendingCoupons.persistTemplateCoupons(partnerId, params.templateId);
  return stageRevocation(tx, { jobId, partnerId, templateId: params.templateId, userIds: params.userIds, chunkSize: REVOCATION_CHUNK_COUPONS });
}

export const revocationHandler: JobHandler = {
  // No stock to share and disjoint coupon ids: chunks may run side by side.
  async chunksIndependent() {
    return true;
  },

  async processChunk(ctx: AppContext, tx: Tx, job: Job, chunkNo: number): Promise<ChunkOutcome> {
    const { templateId } = job.params as unknown as RevocationParams;
    const { items, revoked } = await revokeChunk(tx, { jobId: job.id, chunkNo, templateId, partnerId: job.partnerId, now: ctx.clock() });
    return { processed: items, succeeded: revoked, skipped: items - revoked, failed: 0, notServed: 0 };
  },
};
