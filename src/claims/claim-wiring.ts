// Picks the claim adapters for the mode: Redis gate + Redis read-your-writes in distributed mode,
// the in-process group-commit gate (which never leaves coupons pending) in embedded mode.
import type { Config } from '../config.ts';
import { NO_PENDING_COUPONS, type PendingCoupons } from '../coupons/pending-coupons.ts';
import type { Db } from '../infra/db.ts';
import type { Logger } from '../infra/logger.ts';
import type { Metrics } from '../infra/metrics.ts';
import type { Redis } from '../infra/redis.ts';
import type { ClaimGate } from './claim-gate.ts';
import { MemoryClaimGate } from './memory-claim-gate.ts';
import { RedisClaimGate } from './redis-claim-gate.ts';
import { RedisPendingCoupons } from './redis-pending-coupons.ts';
import { ClaimTemplates } from './claim-templates.ts';

export interface ClaimParts {
  readonly claimTemplates: ClaimTemplates;
  readonly claimGate: ClaimGate;
  readonly pendingCoupons: PendingCoupons;
}

export function createClaimParts(parts: { config: Config; logger: Logger; db: Db; redis: Redis | undefined; metrics: Metrics; clock: () => Date }): ClaimParts {
  const claimTemplates = new ClaimTemplates(parts.db);
  if (parts.redis) {
    return {
      claimTemplates,
      claimGate: new RedisClaimGate(parts.redis, parts.db,
        { minReplicas: parts.config.redisMinReplicas, timeoutMs: parts.config.redisReplicaTimeoutMs }),
      pendingCoupons: new RedisPendingCoupons({ ...parts, redis: parts.redis, templates: claimTemplates }),
    };
  }
  return {
    claimTemplates,
    claimGate: new MemoryClaimGate(parts.db, parts.logger, parts.metrics, parts.clock,
      { lingerMs: parts.config.claimGroupCommitMs, maxBatch: parts.config.claimBatchSize, commitsInFlight: parts.config.claimCommitsInFlight }),
    pendingCoupons: NO_PENDING_COUPONS,
  };
}
