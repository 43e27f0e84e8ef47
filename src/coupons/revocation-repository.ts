// SQL of coupon revocation (revocation.ts): staging the coupon ids to revoke, and revoking a chunk.
import type { Queryable } from '../infra/db.ts';

/**
 * One statement: the ids of the template's ISSUED coupons (of the listed users, if any) in id
 * order, `chunkSize` per job_chunks row (newline-separated). Returns the chunks and coupons staged.
 */
export async function stageRevocation(
  db: Queryable, q: { jobId: string; partnerId: string; templateId: string; userIds: readonly string[] | undefined; chunkSize: number },
): Promise<{ chunkCount: number; total: number }> {
  const { rows } = await db.query<{ chunks: number; total: number }>(
    `WITH targets AS (
       SELECT id, row_number() OVER (ORDER BY id) - 1 AS position FROM coupons
        WHERE template_id = $2 AND partner_id = $3 AND status = 'ISSUED' AND ($4::text[] IS NULL OR user_id = ANY ($4::text[]))
     ), staged AS (
       INSERT INTO job_chunks (job_id, chunk_no, first_position, item_count, payload)
       SELECT $1, position / $5, min(position), count(*), string_agg(id::text, E'\\n' ORDER BY position)
         FROM targets GROUP BY position / $5
       RETURNING item_count
     )
     SELECT count(*)::int AS chunks, coalesce(sum(item_count), 0)::int AS total FROM staged`,
    [q.jobId, q.templateId, q.partnerId, q.userIds ?? null, q.chunkSize],
  );
  return { chunkCount: rows[0]!.chunks, total: rows[0]!.total };
}

/** Revokes the chunk's coupons that are still ISSUED; returns the chunk's size and how many were revoked. */
export async function revokeChunk(
  db: Queryable, q: { jobId: string; chunkNo: number; templateId: string; partnerId: string; now: Date },
): Promise<{ items: number; revoked: number }> {
  const { rows } = await db.query<{ items: number; revoked: number }>(
    `WITH chunk AS (
       SELECT item_count, string_to_array(payload, E'\\n')::uuid[] AS ids FROM job_chunks WHERE job_id = $1 AND chunk_no = $2
     ), revoked AS (
       UPDATE coupons c SET status = 'REVOKED', revoked_at = $5
         FROM chunk WHERE c.id = ANY (chunk.ids) AND c.template_id = $3 AND c.partner_id = $4 AND c.status = 'ISSUED'
       RETURNING 1
     )
     SELECT (SELECT item_count FROM chunk) AS items, (SELECT count(*) FROM revoked)::int AS revoked`,
    [q.jobId, q.chunkNo, q.templateId, q.partnerId, q.now],
  );
  const row = rows[0]!;
  if (row.items === null) throw new Error(`chunk ${q.chunkNo} of job ${q.jobId} is missing`);
  return { items: row.items, revoked: row.revoked };
}
