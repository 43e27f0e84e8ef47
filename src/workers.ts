// Background work a process runs besides (or instead of) the API: claim persistence, the job
// queue and schedules. Each domain contributes a starter; `serve` runs them unless
// STAMPEDE_WORKERS=off and `stampede worker` runs only them.
import type { AppContext, WorkerStarter } from './context.ts';
import { startPointsExpiry } from './points/expiry.ts';
import { startPointsExpiringDigest } from './points/expiring-digest.ts';
import { couponExpiryWorker } from './coupons/coupon-expiry.ts';
import { startClaimPersister } from './claims/claim-persister.ts';
import { startJobQueue } from './job-queue.ts';
import { startJobRetention } from './jobs/job-retention.ts';
import { startReconcileSchedule } from './claims/reconcile.ts';

const STARTERS: ReadonlyArray<{ name: string; start: WorkerStarter }> = [
  { name: 'points-expiry', start: startPointsExpiry },
  { name: 'claim-persister', start: startClaimPersister },
  { name: 'coupon-expiry', start: couponExpiryWorker() },
  { name: 'job-queue', start: startJobQueue },
  { name: 'job-retention', start: startJobRetention },
  { name: 'claim-reconcile', start: startReconcileSchedule },
  { name: 'points-expiring-digest', start: startPointsExpiringDigest },
];

export async function startWorkers(ctx: AppContext): Promise<() => Promise<void>> {
  // Background work runs on its own pool: a burst of bulk jobs cannot take the connections the
  // API's requests need, and a burst of requests cannot stall the jobs (issue 15).
  const workerCtx: AppContext = { ...ctx, db: ctx.workerDb };
  const stops: Array<() => Promise<void>> = [];
  try {
    for (const { name, start } of STARTERS) {
      stops.push(await start(workerCtx));
      ctx.logger.info({ worker: name }, 'worker started');
    }
  } catch (error) {
    for (const stop of stops.reverse()) await stop();
    throw error;
  }
  return async () => {
    for (const stop of stops.reverse()) await stop();
  };
}
