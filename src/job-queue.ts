// The job queue's worker with every kind of bulk job it runs: the kinds register here, in the
// composition root, so jobs/ (queue, runner, retention, webhooks) knows none of them.
import { distributionHandler } from './coupons/distribution.ts';
import { revocationHandler } from './coupons/revocation.ts';
import { makeQueueTasks } from './jobs/job-runner.ts';
import { jobQueueWorker } from './jobs/queue.ts';
import { accrualHandler } from './points/accrual.ts';

export const startJobQueue = jobQueueWorker(makeQueueTasks({
  COUPON_DISTRIBUTION: distributionHandler,
  POINT_ACCRUAL: accrualHandler,
  COUPON_REVOCATION: revocationHandler,
}));
