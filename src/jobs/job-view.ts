// The public JSON view of a job: what GET /v1/jobs/{id} answers and what webhooks announce.
import type { Job } from './job-repository.ts';

export function jobView(job: Job) {
  return {
    id: job.id,
    type: job.type,
    status: job.status,
    total: job.total,
    processed: job.processed,
    succeeded: job.succeeded,
    skipped: job.skipped,
    failed: job.failed,
    notServed: job.notServed,
    error: job.error,
    scheduledAt: job.scheduledAt?.toISOString() ?? null,
    createdAt: job.createdAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
  };
}

export type JobView = ReturnType<typeof jobView>;
