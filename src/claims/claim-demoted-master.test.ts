// A claim that reaches a Redis master just demoted to replica (a failover in progress) answers 503,
// never 500: chaos seed 20261208 (cluster, 30 minutes) saw 4,584 claims answered 500 with
// "ERR WAIT cannot be used with replica instances" and "UNBLOCKED … (master -> replica?)".
// A writable replica stands in for the demoted master deterministically: the claim script runs on
// it (as it ran on the old master), then WAIT fails as it does on any replica.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { redisCommand } from '../../test/harness/redis-nodes.ts';
import { startRedisServer, type RedisServerHandle } from '../../test/harness/redis-server.ts';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

describe('claims on a master demoted to replica (STAMPEDE_REDIS_MIN_REPLICAS=1)', () => {
  let primary: RedisServerHandle;
  let demoted: RedisServerHandle;
  let t: TestApp;
  beforeAll(async () => {
    [primary, demoted] = await Promise.all([startRedisServer(), startRedisServer()]);
    await redisCommand(demoted.url, ['REPLICAOF', '127.0.0.1', String(primary.port)]);
    await redisCommand(demoted.url, ['CONFIG', 'SET', 'replica-read-only', 'no']);
    await waitFor(async () => String(await redisCommand(demoted.url, ['INFO', 'replication'])).includes('master_link_status:up'), { what: 'the replica to sync' });
    t = await createTestApp({ distributed: true, redisUrl: demoted.url, env: { STAMPEDE_REDIS_MIN_REPLICAS: '1', STAMPEDE_REDIS_REPLICA_TIMEOUT_MS: '300' } });
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all([primary?.stop(), demoted?.stop()]);
  });

  it('a claim whose WAIT fails answers 503 CLAIM_NOT_REPLICATED (outcome unknown); a write refused READONLY answers 503 SERVICE_UNAVAILABLE', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 10 });
    const claim = (userId: string) => t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${templateId}/claims`,
      headers: { ...partner.headers, 'idempotency-key': `k-${userId}` }, payload: { userId },
    });

    const unconfirmed = await claim('alice');
    expect(unconfirmed.statusCode, unconfirmed.body).toBe(503);
    expect(unconfirmed.json().error.code).toBe('CLAIM_NOT_REPLICATED');

    await redisCommand(demoted.url, ['CONFIG', 'SET', 'replica-read-only', 'yes']);
    const refused = await claim('bob');
    expect(refused.statusCode, refused.body).toBe(503);
    expect(refused.json().error.code).toBe('SERVICE_UNAVAILABLE');
  });
});
