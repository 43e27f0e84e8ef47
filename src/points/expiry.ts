// Point expiry: a sweep over all partners, in bounded batches, each batch one transaction that
// locks its wallets in ascending id order. Safe with several processes sweeping at once (a lot
// expired by one is no longer due for the other) and safe to re-run (nothing due: nothing done).
// Run on demand (POST /v1/admin/points/expire) and by the schedule below.
import type { AppContext, WorkerStarter } from '../context.ts';
import { withRetry, withTransaction } from '../infra/db.ts';
import { startCronTask } from '../infra/schedule.ts';
import { IDEMPOTENCY_RETENTION_MS } from './idempotency.ts';
import { expireDueLots, pruneIdempotencyRecords, walletsWithDueLots } from './ledger-repository.ts';

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
 * Runs the sweep at every minute matching config.pointsExpirySchedule (default "0 * * * *":
 * hourly). Every process running workers sweeps; that is safe (see above) and the sweeps after the
 * first find little to do. Until a sweep runs, reads never count due lots and every write expires
 * its wallet's due lots itself.
 */
export const startPointsExpiry: WorkerStarter = async (ctx) =>
  startCronTask('points-expiry', ctx.config.pointsExpirySchedule, ctx.logger, () => expireDuePoints(ctx, ctx.clock()), ctx.config.scheduleIntervalMs);
