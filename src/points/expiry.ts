// Point expiry: a sweep over all partners, in bounded batches, each batch one transaction that
// locks its wallets in ascending id order. Safe with several processes sweeping at once (a lot
// expired by one is no longer due for the other) and safe to re-run (nothing due: nothing done).
// Run on demand (POST /v1/admin/points/expire) and by the schedule below.
import { parseCronItem } from 'graphile-worker';
import type { AppContext } from '../context.ts';
import { withRetry, withTransaction } from '../infra/db.ts';
import type { WorkerStarter } from '../workers.ts';
import { IDEMPOTENCY_RETENTION_MS } from './idempotency.ts';
import { expireDueLots, pruneIdempotencyRecords, walletsWithDueLots } from './repository.ts';

/** Lots looked at per batch (their wallets are locked together, so keep it modest). */
export const EXPIRY_BATCH_LOTS = 500;
const PRUNE_BATCH = 5_000;

export interface ExpiryResult {
  readonly expiredLots: number;
  readonly expiredPoints: number;
  readonly prunedIdempotencyRecords: number;
}

/** Expires every lot due at `now`, then prunes idempotency records past their retention. */
export async function expireDuePoints(ctx: AppContext, now: Date, batchLots = EXPIRY_BATCH_LOTS): Promise<ExpiryResult> {
  let expiredLots = 0;
  let expiredPoints = 0;
  for (;;) {
    const walletIds = await walletsWithDueLots(ctx.db, now, batchLots);
    if (walletIds.length === 0) break;
    const batch = await withRetry(() => withTransaction(ctx.db, (tx) => expireDueLots(tx, walletIds, now)));
    expiredLots += batch.lots;
    expiredPoints += batch.points;
  }
  let prunedIdempotencyRecords = 0;
  const pruneBefore = new Date(now.getTime() - IDEMPOTENCY_RETENTION_MS);
  for (let pruned = PRUNE_BATCH; pruned === PRUNE_BATCH;) {
    pruned = await pruneIdempotencyRecords(ctx.db, pruneBefore, PRUNE_BATCH);
    prunedIdempotencyRecords += pruned;
  }
  ctx.metrics.pointsOperations.inc({ operation: 'expire', outcome: 'ok' });
  return { expiredLots, expiredPoints, prunedIdempotencyRecords };
}

/**
 * Whether a cron schedule (graphile-worker crontab syntax, minute resolution, UTC) fires in the
 * minute that contains `at`. Throws on a malformed schedule.
 */
export function cronMatcher(schedule: string): (at: Date) => boolean {
  const item = parseCronItem({ task: 'points-expiry', match: schedule });
  return (at) => item.match({
    min: at.getUTCMinutes(), hour: at.getUTCHours(), date: at.getUTCDate(), month: at.getUTCMonth() + 1, dow: at.getUTCDay(),
  });
}

/**
 * Runs the sweep at every minute matching config.pointsExpirySchedule (default "0 * * * *":
 * hourly). Every process running workers sweeps; that is safe (see above) and the sweeps after the
 * first find little to do. A minute missed while the process was down or busy is not replayed:
 * the next sweep expires everything due by then, and until it runs reads never count due lots and
 * every write expires its wallet's due lots itself.
 */
export const startPointsExpiry: WorkerStarter = async (ctx) => {
  const fires = cronMatcher(ctx.config.pointsExpirySchedule);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  const scheduleNext = () => {
    const delay = 60_000 - (Date.now() % 60_000);
    timer = setTimeout(() => {
      const minute = new Date(Date.now() + 1_000); // inside the minute that has just begun
      // A sweep still running when the schedule fires again (e.g. every minute) is not doubled.
      if (fires(minute) && !running) {
        running = expireDuePoints(ctx, ctx.clock()).then(
          (result) => ctx.logger.info(result, 'points expiry sweep done'),
          (error: unknown) => ctx.logger.error({ err: error }, 'points expiry sweep failed; the next one retries'),
        ).finally(() => { running = undefined; });
      }
      scheduleNext();
    }, delay);
    timer.unref();
  };
  scheduleNext();
  return async () => {
    clearTimeout(timer);
    await running;
  };
};
