// The job queue's worker, with every kind of bulk job it can run. Registered in src/workers.ts.
import { distributionHandler } from '../coupons/distribution.ts';
import { revocationHandler } from '../coupons/revocation.ts';
import { accrualHandler } from '../points/accrual.ts';
import { makeQueueTasks } from './job-runner.ts';
import { jobQueueWorker } from './queue.ts';

export const startJobQueue = jobQueueWorker(makeQueueTasks({
  COUPON_DISTRIBUTION: distributionHandler,
  POINT_ACCRUAL: accrualHandler,
  COUPON_REVOCATION: revocationHandler,
}));
