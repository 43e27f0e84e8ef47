// The claim-path contract (redis-claim-path-contract.ts) and the fast-refusals contract
// (refusal-flags-contract.ts) against a private primary with one replica behind three Sentinels
// (STAMPEDE_REDIS_MODE=sentinel).
import { startRedisSentinel } from '../../test/harness/redis-sentinel.ts';
import { describeClaimPathContract } from '../../test/harness/redis-claim-path-contract.ts';
import { describeFastRefusals } from '../../test/harness/refusal-flags-contract.ts';

describeClaimPathContract('primary + replica behind 3 Sentinels', async () => {
  const sentinel = await startRedisSentinel({ replicas: 1 });
  return { url: sentinel.url, mode: 'sentinel', env: { STAMPEDE_REDIS_SENTINEL_MASTER: sentinel.masterName }, stop: () => sentinel.stop() };
});

describeFastRefusals('primary + replica behind 3 Sentinels', { unflagBeforeAcknowledgement: true }, async () => {
  const sentinel = await startRedisSentinel({ replicas: 1 });
  return {
    url: sentinel.url, mode: 'sentinel', env: { STAMPEDE_REDIS_SENTINEL_MASTER: sentinel.masterName },
    dataNodeUrls: sentinel.nodes.map((node) => node.url), stop: () => sentinel.stop(),
  };
});
