// The scheduled job that marks coupons past their window EXPIRED in the table. Readers never
// wait for it (they compute EXPIRED from validUntil); it keeps the stored status, the partial
// index of ISSUED coupons and reports honest. Each batch is its own statement and transaction,
// so a killed process loses at most one uncommitted batch, which the next run redoes; several
// processes may run it at once (SKIP LOCKED in expireCouponBatch).
import type { AppContext, WorkerStarter } from '../context.ts';
import { expireCouponBatch } from './coupon-repository.ts';

export interface ExpiryOptions {
  readonly intervalMs: number;
  readonly batchSize: number;
  /** Bounds one run, so a huge backlog is worked off over several runs, never in one burst. */
  readonly maxBatchesPerRun: number;
}

export const DEFAULT_EXPIRY_OPTIONS: ExpiryOptions = { intervalMs: 60_000, batchSize: 1_000, maxBatchesPerRun: 100 };

/** One run: batches until none is full or the run's bound is reached. Returns coupons expired. */
export async function expireDueCoupons(ctx: AppContext, options: ExpiryOptions = DEFAULT_EXPIRY_OPTIONS): Promise<number> {
  let total = 0;
  for (let batch = 0; batch < options.maxBatchesPerRun; batch++) {
    const expired = await expireCouponBatch(ctx.db, ctx.clock(), options.batchSize);
    total += expired;
    if (expired < options.batchSize) break;
  }
  if (total > 0) ctx.logger.info({ expired: total }, 'coupons expired');
  return total;
}

export function couponExpiryWorker(options: ExpiryOptions = DEFAULT_EXPIRY_OPTIONS): WorkerStarter {
  return async (ctx) => {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    let running: Promise<void> = Promise.resolve();
    // The next run is scheduled when the previous one ends, so slow runs never pile up.
    const schedule = () => {
      timer = setTimeout(() => {
        running = expireDueCoupons(ctx, options).then(
          () => undefined,
          (error: unknown) => { ctx.logger.error({ err: error }, 'coupon expiry run failed; the next run retries'); },
        ).finally(() => { if (!stopped) schedule(); });
      }, options.intervalMs);
    };
    schedule();
    return async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    };
  };
}
