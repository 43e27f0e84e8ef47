// The claim-path contract (redis-claim-path-contract.ts) and the fast-refusals contract
// (refusal-flags-contract.ts: plain Pub/Sub through the cluster bus) against a private 3-master
// Redis Cluster, and what only a cluster has: the start-up durability check asks every master.
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { startRedisCluster, type RedisClusterHandle } from '../../test/harness/redis-cluster.ts';
import { redisCommand } from '../../test/harness/redis-nodes.ts';
import { connectRedis, redisDurabilityProblems, redisMasters } from '../infra/redis.ts';
import { describeClaimPathContract } from '../../test/harness/redis-claim-path-contract.ts';
import { describeFastRefusals } from '../../test/harness/refusal-flags-contract.ts';

let cluster: RedisClusterHandle | undefined;
const clusterStarted = async () => (cluster ??= await startRedisCluster({ masters: 3 }));
afterAll(async () => { await cluster?.stop(); });

describeClaimPathContract('3-master Redis Cluster', async () => ({ url: (await clusterStarted()).url, mode: 'cluster', stop: async () => undefined }));
describeFastRefusals('3-master Redis Cluster', { unflagBeforeAcknowledgement: false }, async () => {
  const { url, nodes } = await clusterStarted();
  return { url, mode: 'cluster', dataNodeUrls: nodes.map((node) => node.url), stop: async () => undefined };
});

describe('Redis Cluster durability check', () => {
  it('asks every master and names the one that does not fsync every write', async () => {
    const { url, nodes } = await clusterStarted();
    const redis = await connectRedis({ url, mode: 'cluster' }, pino({ level: 'silent' }));
    try {
      expect(await redisMasters(redis)).toHaveLength(3);
      expect(await redisDurabilityProblems(redis)).toEqual([]);
      await redisCommand(nodes[1]!.url, ['CONFIG', 'SET', 'appendfsync', 'everysec']);
      expect(await redisDurabilityProblems(redis)).toEqual([expect.stringMatching(/^master \d of 3: appendfsync is "everysec", must be "always"/)]);
    } finally {
      await redisCommand(nodes[1]!.url, ['CONFIG', 'SET', 'appendfsync', 'always']);
      await redis.close();
    }
  });
});
