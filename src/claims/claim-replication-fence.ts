// Claims reach PostgreSQL only once replicated (STAMPEDE_REDIS_MIN_REPLICAS ≥ 1). A claim whose WAIT
// failed was answered 503, yet it ran on the master and sits in its stream; if a failover then
// promotes a replica without it, Redis forgets it and hands its slot out again. Had the persister
// written it meanwhile, PostgreSQL would refuse the new claim of that slot: an acknowledged claim
// lost (chaos seed 20261209, Sentinel: a switchover to a replica that had not finished its sync).
import type { Config } from '../config.ts';
import { waitForReplicas, type Redis } from '../infra/redis.ts';
import { replicationFenceKey } from './redis-keys.ts';

export interface ReplicationOptions {
  /** Replicas that must hold an issued claim before it is answered (0: none, no WAIT). */
  readonly minReplicas: number;
  readonly timeoutMs: number;
}

export const replicationOf = (config: Config): ReplicationOptions => ({ minReplicas: config.redisMinReplicas, timeoutMs: config.redisReplicaTimeoutMs });

/**
 * Whether `minReplicas` replicas hold every write the event's master took before this call. WAIT
 * counts from the connection's last write, so a write of the event's slot goes first (it expires at
 * once): then the offset waited for is the master's own, past every stream entry already read.
 */
export async function replicatedNow(redis: Redis, templateId: string, { minReplicas, timeoutMs }: ReplicationOptions): Promise<boolean> {
  if (minReplicas === 0) return true;
  const key = replicationFenceKey(templateId);
  const [, acknowledged] = await Promise.all([redis.set(key, '1', { PX: 1 }), waitForReplicas(redis, key, minReplicas, timeoutMs)]);
  return acknowledged >= minReplicas;
}
