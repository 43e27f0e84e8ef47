// The claim-path contract (redis-claim-path-contract.ts) against the harness's single Redis.
import { inject } from 'vitest';
import { describeClaimPathContract } from '../../test/harness/redis-claim-path-contract.ts';

describeClaimPathContract('single Redis', async () => ({ url: inject('redisUrl'), mode: 'single', stop: async () => undefined }));
