// Picks the claim adapters for the mode: Redis gate (behind the refusal shortcuts of every API
// process) + Redis read-your-writes in distributed mode, the in-process group-commit gate (which
// never leaves coupons pending, and whose refusals are already local) in embedded mode.
import type { Config } from '../config.ts';
import { NO_PENDING_COUPONS, type PendingCoupons } from '../coupons/pending-coupons.ts';
import type { Db } from '../infra/db.ts';
import type { Logger } from '../infra/logger.ts';
import type { Metrics } from '../infra/metrics.ts';
import type { Redis } from '../infra/redis.ts';
import type { ClaimGate } from './claim-gate.ts';
import { replicationOf } from './claim-replication-fence.ts';
import { MemoryClaimGate } from './memory-claim-gate.ts';
import { RedisClaimGate } from './redis-claim-gate.ts';
import { RedisPendingCoupons } from './redis-pending-coupons.ts';
import { FastRefusalGate } from './fast-refusal-gate.ts';
import { RefusalFlags } from './refusal-flags.ts';
import { RefusalFlagSubscriber } from './refusal-flag-subscriber.ts';
import { templateClaimKeys } from './redis-keys.ts';
import { ClaimTemplates } from './claim-templates.ts';

export interface ClaimParts {
  readonly claimTemplates: ClaimTemplates;
  readonly claimGate: ClaimGate;
  readonly pendingCoupons: PendingCoupons;
}

export function createClaimParts(parts: { config: Config; logger: Logger; db: Db; redis: Redis | undefined; metrics: Metrics; clock: () => Date }): ClaimParts {
  const claimTemplates = new ClaimTemplates(parts.db);
  if (parts.redis) {
    const redis = parts.redis;
    const replication = replicationOf(parts.config);
    const gate = new RedisClaimGate(redis, parts.db, replication);
    const flags = new RefusalFlags(parts.config.claimRefusalFlagTtlMs);
    const subscriber = new RefusalFlagSubscriber(redis, flags, parts.logger, (subscribed) => {
      parts.metrics.claimRefusalFlagsSubscribed.set(subscribed ? 1 : 0);
      if (!subscribed) parts.metrics.claimRefusalFlagsInterruptions.inc();
    });
    // A read of the event's state after its change: the change's message went out before its reply.
    const settled = (templateId: string) => redis.hGet(templateClaimKeys(templateId).state, 'ver');
    return {
      claimTemplates,
      claimGate: new FastRefusalGate(gate, flags, subscriber, settled, parts.metrics),
      pendingCoupons: new RedisPendingCoupons({ ...parts, redis: parts.redis, templates: claimTemplates, replication }),
    };
  }
  return {
    claimTemplates,
    claimGate: new MemoryClaimGate(parts.db, parts.logger, parts.metrics, parts.clock,
      { lingerMs: parts.config.claimGroupCommitMs, maxBatch: parts.config.claimBatchSize, commitsInFlight: parts.config.claimCommitsInFlight }),
    pendingCoupons: NO_PENDING_COUPONS,
  };
}
