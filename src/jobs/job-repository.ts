// SQL for jobs, their staged chunks and their item failures. Every read from the API is scoped by
// partner: another partner's job id finds nothing.
import type { Queryable } from '../infra/db.ts';

export type JobType = 'COUPON_DISTRIBUTION' | 'POINT_ACCRUAL' | 'COUPON_REVOCATION';
export type JobStatus = 'QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';
export const FINISHED_STATUSES: readonly JobStatus[] = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

export interface ItemCounts {
  processed: number;
  succeeded: number;
  skipped: number;
  failed: number;
  notServed: number;
}

export interface Job extends ItemCounts {
  id: string;
  partnerId: string;
  type: JobType;
  status: JobStatus;
  params: Record<string, unknown>;
  staged: boolean;
  chunkCount: number;
  nextChunk: number;
  total: number;
  error: string | null;
  scheduledAt: Date | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

interface JobRow {
  id: string;
  partner_id: string;
  type: JobType;
  status: JobStatus;
  params: Record<string, unknown>;
  staged: boolean;
  chunk_count: number;
  next_chunk: number;
  total: number;
  processed: number;
  succeeded: number;
  skipped: number;
  failed: number;
  not_served: number;
  error: string | null;
  scheduled_at: Date | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

const toJob = (row: JobRow): Job => ({
  id: row.id,
  partnerId: row.partner_id,
  type: row.type,
  status: row.status,
  params: row.params,
  staged: row.staged,
  chunkCount: row.chunk_count,
  nextChunk: row.next_chunk,
  total: row.total,
  processed: row.processed,
  succeeded: row.succeeded,
  skipped: row.skipped,
  failed: row.failed,
  notServed: row.not_served,
  error: row.error,
  scheduledAt: row.scheduled_at,
  createdAt: row.created_at,
  startedAt: row.started_at,
  finishedAt: row.finished_at,
});

export interface NewJob {
  id: string;
  partnerId: string;
  type: JobType;
  params: Record<string, unknown>;
  staged: boolean;
  scheduledAt?: Date | undefined;
}

export async function insertJob(db: Queryable, job: NewJob): Promise<void> {
  await db.query(
    'INSERT INTO jobs (id, partner_id, type, params, staged, scheduled_at) VALUES ($1, $2, $3, $4, $5, $6)',
    [job.id, job.partnerId, job.type, JSON.stringify(job.params), job.staged, job.scheduledAt ?? null],
  );
}

/** One chunk row written with a plain INSERT (a source's batch); `payload` is newline-separated, unescaped. */
export async function insertChunk(db: Queryable, chunk: { jobId: string; chunkNo: number; firstPosition: number; itemCount: number; payload: string }): Promise<void> {
  await db.query(
    'INSERT INTO job_chunks (job_id, chunk_no, first_position, item_count, payload) VALUES ($1, $2, $3, $4, $5)',
    [chunk.jobId, chunk.chunkNo, chunk.firstPosition, chunk.itemCount, chunk.payload],
  );
}

/**
 * Records what a run staged from an external source, if the job is still RUNNING and unstaged
 * (undefined otherwise: cancelled meanwhile, and the caller rolls its chunks back).
 */
export async function markStagedFromSource(db: Queryable, jobId: string, input: { chunkCount: number; total: number; bytes: number }): Promise<Job | undefined> {
  const { rows } = await db.query<JobRow>(
    `UPDATE jobs SET staged = true, chunk_count = $2, total = $3, staged_bytes = $4
      WHERE id = $1 AND status = 'RUNNING' AND NOT staged RETURNING *`,
    [jobId, input.chunkCount, input.total, input.bytes],
  );
  return rows[0] && toJob(rows[0]);
}

/** Records the bytes staged for a job accepted with its input (the payloads' sizes, read without detoasting). */
export async function recordStagedBytes(db: Queryable, jobId: string): Promise<void> {
  await db.query('UPDATE jobs SET staged_bytes = (SELECT coalesce(sum(octet_length(payload)), 0) FROM job_chunks WHERE job_id = $1) WHERE id = $1', [jobId]);
}

/**
 * A partner's unfinished jobs and their staged bytes, read under a transaction lock on the partner
 * that every quota check takes: two jobs accepted at once are counted one after the other.
 */
export async function lockPartnerJobUsage(db: Queryable, partnerId: string): Promise<{ jobs: number; stagedBytes: number }> {
  await db.query(`SELECT pg_advisory_xact_lock(hashtextextended('stampede-partner-jobs:' || $1, 0))`, [partnerId]);
  const { rows } = await db.query<{ jobs: number; staged_bytes: number }>(
    `SELECT count(*)::int AS jobs, coalesce(sum(staged_bytes), 0)::bigint AS staged_bytes
       FROM jobs WHERE partner_id = $1 AND status IN ('QUEUED', 'RUNNING')`,
    [partnerId],
  );
  return { jobs: rows[0]!.jobs, stagedBytes: rows[0]!.staged_bytes };
}

/** Unfinished jobs of the partner, without a lock (the early, cheap refusal before staging). */
export async function countUnfinishedJobs(db: Queryable, partnerId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM jobs WHERE partner_id = $1 AND status IN ('QUEUED', 'RUNNING')`, [partnerId]);
  return rows[0]!.n;
}

/** Records what staging wrote: the number of chunks and of items. */
export async function setStagedInput(db: Queryable, jobId: string, chunkCount: number, total: number): Promise<Job> {
  const { rows } = await db.query<JobRow>('UPDATE jobs SET staged = true, chunk_count = $2, total = $3 WHERE id = $1 RETURNING *', [jobId, chunkCount, total]);
  return toJob(rows[0]!);
}

/** Deletes up to `limit` jobs that finished before `before` (their failures and deliveries cascade). */
export async function deleteFinishedJobs(db: Queryable, before: Date, limit: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM jobs WHERE id IN (
       SELECT id FROM jobs WHERE status IN ('SUCCEEDED', 'FAILED', 'CANCELLED') AND finished_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
    [before, limit],
  );
  return rowCount ?? 0;
}

export async function findJob(db: Queryable, partnerId: string, id: string): Promise<Job | undefined> {
  const { rows } = await db.query<JobRow>('SELECT * FROM jobs WHERE id = $1 AND partner_id = $2', [id, partnerId]);
  return rows[0] && toJob(rows[0]);
}

/** The job row, locked until the end of the caller's transaction (one writer of progress at a time). */
export async function lockJob(db: Queryable, id: string): Promise<Job | undefined> {
  const { rows } = await db.query<JobRow>('SELECT * FROM jobs WHERE id = $1 FOR UPDATE', [id]);
  return rows[0] && toJob(rows[0]);
}

/** The job row as committed, without a lock. */
export async function readJob(db: Queryable, id: string): Promise<Job | undefined> {
  const { rows } = await db.query<JobRow>('SELECT * FROM jobs WHERE id = $1', [id]);
  return rows[0] && toJob(rows[0]);
}

/**
 * For chunk lanes (job-runner.ts): locks the lowest chunk of a RUNNING job that no other lane holds
 * and that the sequential cursor has not passed; undefined when there is none.
 */
export async function claimChunk(db: Queryable, jobId: string): Promise<number | undefined> {
  const { rows } = await db.query<{ chunk_no: number }>(
    `SELECT c.chunk_no FROM job_chunks c
      WHERE c.job_id = $1 AND c.chunk_no >= (SELECT next_chunk FROM jobs WHERE id = $1 AND status = 'RUNNING')
      ORDER BY c.chunk_no LIMIT 1
        FOR UPDATE OF c SKIP LOCKED`,
    [jobId],
  );
  return rows[0]?.chunk_no;
}

/**
 * A lane's chunk is done: it is deleted and its counts added. next_chunk moves up to the lowest
 * chunk left (chunks other lanes hold still count as left), never down.
 */
export async function recordClaimedChunk(db: Queryable, id: string, chunkNo: number, counts: ItemCounts): Promise<void> {
  await db.query(
    `WITH done AS (DELETE FROM job_chunks WHERE job_id = $1 AND chunk_no = $2)
     UPDATE jobs SET processed = processed + $3, succeeded = succeeded + $4, skipped = skipped + $5,
            failed = failed + $6, not_served = not_served + $7,
            next_chunk = greatest(next_chunk, coalesce(
              (SELECT min(c.chunk_no) FROM job_chunks c WHERE c.job_id = $1 AND c.chunk_no <> $2 AND c.chunk_no >= jobs.next_chunk),
              chunk_count))
      WHERE id = $1`,
    [id, chunkNo, counts.processed, counts.succeeded, counts.skipped, counts.failed, counts.notServed],
  );
}

export async function markRunning(db: Queryable, id: string, now: Date): Promise<Job> {
  const { rows } = await db.query<JobRow>(
    `UPDATE jobs SET status = 'RUNNING', started_at = $2 WHERE id = $1 RETURNING *`, [id, now]);
  return toJob(rows[0]!);
}

/** Adds a chunk's counts and moves the cursor; `nextChunk` may jump to the end (stock exhausted). */
export async function recordChunk(db: Queryable, id: string, counts: ItemCounts, nextChunk: number): Promise<Job> {
  const { rows } = await db.query<JobRow>(
    `UPDATE jobs SET processed = processed + $2, succeeded = succeeded + $3, skipped = skipped + $4,
            failed = failed + $5, not_served = not_served + $6, next_chunk = $7
      WHERE id = $1 RETURNING *`,
    [id, counts.processed, counts.succeeded, counts.skipped, counts.failed, counts.notServed, nextChunk],
  );
  return toJob(rows[0]!);
}

/** Final state; the staged input is no longer needed. */
export async function finishJob(db: Queryable, id: string, status: 'SUCCEEDED' | 'FAILED', now: Date, error?: string): Promise<Job> {
  const { rows } = await db.query<JobRow>(
    'UPDATE jobs SET status = $2, finished_at = $3, error = $4 WHERE id = $1 RETURNING *', [id, status, now, error ?? null]);
  await deleteChunks(db, id);
  return toJob(rows[0]!);
}

/** Cancels a job that has not finished; returns undefined when it does not exist for this partner. */
export async function cancelJob(db: Queryable, partnerId: string, id: string, now: Date): Promise<Job | undefined> {
  const { rows } = await db.query<JobRow>(
    `UPDATE jobs SET status = 'CANCELLED', finished_at = $3
      WHERE id = $1 AND partner_id = $2 AND status IN ('QUEUED', 'RUNNING') RETURNING *`,
    [id, partnerId, now],
  );
  // A chunk a lane holds is skipped, not waited for: that lane updates the job row (locked here)
  // before it commits, so waiting would deadlock. It commits its chunk after this transaction
  // (counted on the cancelled job), deletes it itself, and its lane then finds the job CANCELLED.
  if (rows[0]) {
    await db.query(
      `DELETE FROM job_chunks WHERE (job_id, chunk_no) IN (
         SELECT job_id, chunk_no FROM job_chunks WHERE job_id = $1 FOR UPDATE SKIP LOCKED)`,
      [id],
    );
  }
  return rows[0] && toJob(rows[0]);
}

const deleteChunks = (db: Queryable, id: string) => db.query('DELETE FROM job_chunks WHERE job_id = $1', [id]);

export interface JobFailure {
  position: number;
  item: string;
  reason: string;
}

export async function listFailures(db: Queryable, jobId: string, limit: number, after?: number): Promise<JobFailure[]> {
  const { rows } = await db.query<JobFailure>(
    `SELECT position, item, reason FROM job_failures
      WHERE job_id = $1 AND ($2::bigint IS NULL OR position > $2) ORDER BY position LIMIT $3`,
    [jobId, after ?? null, limit],
  );
  return rows;
}

/** Unfinished jobs, for the queue's sweeper. */
export async function unfinishedJobIds(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(`SELECT id FROM jobs WHERE status IN ('QUEUED', 'RUNNING')`);
  return rows.map((row) => row.id);
}
