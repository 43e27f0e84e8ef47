// Fast refusals (test/harness/refusal-flags-contract.ts) against a private single Redis: the
// harness's shared server would count other files' scripts and lose their subscriptions to
// CLIENT KILL.
import { describeFastRefusals } from '../../test/harness/refusal-flags-contract.ts';
import { DURABLE_REDIS_ARGS, startRedisNode } from '../../test/harness/redis-nodes.ts';

describeFastRefusals('single Redis', { unflagBeforeAcknowledgement: true }, async () => {
  const node = await startRedisNode(DURABLE_REDIS_ARGS);
  return { url: node.url, mode: 'single', dataNodeUrls: [node.url], stop: () => node.stop() };
});
