// STAMPEDE_REDIS_MIN_REPLICAS: an issued claim is answered 201 only once a replica holds it; when
// the replica does not answer in time the claim answers 503 CLAIM_NOT_REPLICATED, and a retry with
// the same Idempotency-Key gets the first coupon once the replica is back (never a second one).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { couponRows, drainClaims, issuedCountInDb } from '../../test/harness/claims.ts';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { redisCommand } from '../../test/harness/redis-nodes.ts';
import { startRedisSentinel, type RedisSentinelHandle } from '../../test/harness/redis-sentinel.ts';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { waitFor } from '../../test/harness/wait-for.ts';
import { startClaimPersister } from './claim-persister.ts';
import { templateClaimKeys } from './redis-keys.ts';

describe('claims with STAMPEDE_REDIS_MIN_REPLICAS=1 (primary + replica behind Sentinel)', () => {
  let redis: RedisSentinelHandle;
  let t: TestApp;
  beforeAll(async () => {
    redis = await startRedisSentinel({ replicas: 1, downAfterMs: 60_000 });
    t = await createTestApp({ distributed: true, redisUrl: redis.url, env: {
      STAMPEDE_REDIS_MODE: 'sentinel', STAMPEDE_REDIS_SENTINEL_MASTER: redis.masterName,
      STAMPEDE_REDIS_MIN_REPLICAS: '1', STAMPEDE_REDIS_REPLICA_TIMEOUT_MS: '300',
    } });
  });
  afterAll(async () => {
    redis?.nodes[1]?.resume();
    await t?.close();
    await redis?.stop();
  });

  it('answers 201 only with the claim on the replica; 503 CLAIM_NOT_REPLICATED while it is silent; the same key then gets the first coupon', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 10, perUserLimit: 5 });
    const replica = redis.nodes[1]!;
    const claim = (key: string) => t.app.inject({
      method: 'POST', url: `/v1/coupon-templates/${templateId}/claims`,
      headers: { ...partner.headers, 'idempotency-key': key }, payload: { userId: 'alice' },
    });

    const acknowledged = await Promise.all(Array.from({ length: 20 }, (_, i) => claim(`k-${i % 4}`)));
    expect(acknowledged.every((response) => response.statusCode === 201)).toBe(true);
    // Each 201 came after WAIT: the replica already holds every coupon answered.
    for (const response of acknowledged) {
      expect(await redisCommand(replica.url, ['HEXISTS', templateClaimKeys(templateId).claims, response.json().couponId])).toBe(1);
    }

    replica.pause();
    try {
      const unconfirmed = await claim('k-late');
      expect(unconfirmed.statusCode).toBe(503);
      expect(unconfirmed.json().error.code).toBe('CLAIM_NOT_REPLICATED');
      expect((await claim('k-late')).json().error.code).toBe('CLAIM_NOT_REPLICATED');
    } finally {
      replica.resume();
    }
    const confirmed = await claim('k-late');
    expect(confirmed.statusCode).toBe(201);
    const again = await claim('k-late');
    expect(again.json().couponId).toBe(confirmed.json().couponId);

    await drainClaims(t.ctx, templateId);
    expect(await couponRows(t.ctx.db, templateId)).toHaveLength(5);
    expect(await issuedCountInDb(t.ctx.db, templateId)).toBe(5);
  });

  it('a claim answered 503 reaches PostgreSQL only once the replica holds it: neither the persister nor a read writes it before', async () => {
    // Had it been written, a failover to a replica without it would let Redis hand its slot out
    // again, and PostgreSQL would refuse that acknowledged claim (chaos seed 20261209).
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 10, perUserLimit: 1 });
    const replica = redis.nodes[1]!;
    const deferred = async () => (await t.ctx.metrics.claimPersistDeferred.get()).values[0]?.value ?? 0;
    const deferredBefore = await deferred();
    replica.pause();
    const stopPersister = await startClaimPersister(t.ctx);
    try {
      const unconfirmed = await t.app.inject({ method: 'POST', url: `/v1/coupon-templates/${templateId}/claims`, headers: partner.headers, payload: { userId: 'bob' } });
      expect([unconfirmed.statusCode, unconfirmed.json().error.code]).toEqual([503, 'CLAIM_NOT_REPLICATED']);
      await waitFor(async () => (await deferred()) > deferredBefore, { timeoutMs: 30_000, what: 'the persister to defer the unreplicated claim' });
      expect(await couponRows(t.ctx.db, templateId)).toHaveLength(0);
      const read = await t.app.inject({ url: '/v1/users/bob/coupons', headers: partner.headers });
      expect([read.statusCode, read.json().error?.code]).toEqual([503, 'SERVICE_UNAVAILABLE']);
      expect(await couponRows(t.ctx.db, templateId)).toHaveLength(0);
    } finally {
      replica.resume();
    }
    try {
      // Once the replica holds it, the claim is as safe as an acknowledged one and is written.
      await waitFor(async () => (await couponRows(t.ctx.db, templateId)).length === 1, { timeoutMs: 30_000, what: 'the claim persisted once replicated' });
    } finally {
      await stopPersister();
    }
    expect(await issuedCountInDb(t.ctx.db, templateId)).toBe(1);
  });
});
