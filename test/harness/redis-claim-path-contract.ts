// Distributed-mode guarantees beyond the route, as a contract every Redis topology must meet (run
// against a single Redis by redis-claim-path.test.ts, against a 3-master Redis Cluster by
// redis-claim-path-cluster.test.ts and against a primary and replica behind three Sentinels by
// redis-claim-path-sentinel.test.ts): read-your-writes before the persister runs, idempotent
// redelivery, take-over of a dead persister's entries, set-if-absent loading, rebuilding Redis
// state from PostgreSQL, many events at once, the backlog metrics, and the auth and rate-limit keys.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimOnce, couponRows, drainClaims, issuedCountInDb, stampede } from './claims.ts';
import { createTemplate, issueCoupon } from './issue-coupons.ts';
import { adminHeaders, createPartner, createTestApp, type TestApp } from './test-app.ts';
import { loadLuaScript, runLuaScript } from '../../src/infra/lua.ts';
import { hashApiKey } from '../../src/partners/api-key.ts';
import { apiKeyCacheKey } from '../../src/partners/key-authenticator.ts';
import { startClaimPersister } from '../../src/claims/claim-persister.ts';
import { claimFromStreamEntry } from '../../src/claims/claim-record.ts';
import { persistClaims } from '../../src/claims/claim-writer.ts';
import { loadTemplateState } from '../../src/claims/redis-claim-gate.ts';
import { reconcileTemplate } from '../../src/claims/reconcile.ts';
import { activeTemplateIds, PERSISTER_GROUP, templateClaimKeys } from '../../src/claims/redis-keys.ts';
import { metricSample } from './metrics-text.ts';
import { waitFor } from './wait-for.ts';

export interface RedisUnderTest {
  /** REDIS_URL and STAMPEDE_REDIS_MODE of the topology. */
  readonly url: string;
  readonly mode: 'single' | 'cluster' | 'sentinel';
  /** More settings the topology needs (STAMPEDE_REDIS_SENTINEL_MASTER). */
  readonly env?: Record<string, string>;
  stop(): Promise<void>;
}

export function describeClaimPathContract(name: string, startRedis: () => Promise<RedisUnderTest>): void {
describe(`claim path in distributed mode (${name})`, () => {
  let t: TestApp;
  let target: RedisUnderTest;
  beforeAll(async () => {
    target = await startRedis();
    t = await createTestApp({ distributed: true, redisUrl: target.url, env: { STAMPEDE_CLAIM_RECLAIM_IDLE_MS: '300', STAMPEDE_REDIS_MODE: target.mode, ...target.env } });
  });
  afterAll(async () => {
    await t?.close();
    await target?.stop();
  });
  const redis = () => t.ctx.redis!;

  it('read-your-writes: a claimed coupon is persisted on demand by id or by user, once, with the persister paused', async () => {
    const partner = await createPartner(t.app);
    const stranger = await createPartner(t.app);
    const first = await createTemplate(t.app, partner.headers, { perUserLimit: 3 });
    const second = await createTemplate(t.app, partner.headers, { validity: { type: 'RELATIVE', days: 3 } });
    const a = await claimOnce(t.app, partner.headers, first, 'alice');
    const b = await claimOnce(t.app, partner.headers, first, 'alice');
    const c = await claimOnce(t.app, partner.headers, second, 'alice');
    const bob = await claimOnce(t.app, partner.headers, first, 'bob');
    expect([a, b, c, bob].map((x) => x.status)).toEqual([201, 201, 201, 201]);
    expect(await couponRows(t.ctx.db, first)).toEqual([]);

    await t.ctx.pendingCoupons.persistCoupon(stranger.id, a.couponId!);
    expect(await couponRows(t.ctx.db, first)).toEqual([]);

    await t.ctx.pendingCoupons.persistCoupon(partner.id, a.couponId!);
    await t.ctx.pendingCoupons.persistCoupon(partner.id, a.couponId!);
    expect((await couponRows(t.ctx.db, first)).map((row) => row.id)).toEqual([a.couponId]);
    expect(await issuedCountInDb(t.ctx.db, first)).toBe(1);

    await t.ctx.pendingCoupons.persistUserCoupons(partner.id, 'alice');
    expect((await couponRows(t.ctx.db, first)).map((row) => row.id)).toEqual([a.couponId, b.couponId]);
    const [relative] = await couponRows(t.ctx.db, second);
    expect(relative!.id).toBe(c.couponId);
    expect(relative!.valid_until.getTime() - relative!.valid_from.getTime()).toBe(3 * 86_400_000);
    expect(await issuedCountInDb(t.ctx.db, first)).toBe(2);

    await drainClaims(t.ctx, first);
    await drainClaims(t.ctx, second);
    expect((await couponRows(t.ctx.db, first)).map((row) => row.user_id).sort()).toEqual(['alice', 'alice', 'bob']);
    expect(await issuedCountInDb(t.ctx.db, first)).toBe(3);
    expect(await issuedCountInDb(t.ctx.db, second)).toBe(1);
    expect(await redis().hLen(templateClaimKeys(first).claims)).toBe(0);
  });

  it('processing the same stream entries twice changes nothing', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 50 });
    await stampede(t.app, partner.headers, templateId, 80, 2);
    const entries = (await redis().xRange(templateClaimKeys(templateId).stream, '-', '+')) ?? [];
    expect(entries).toHaveLength(50);
    const claims = entries.map((entry) => claimFromStreamEntry(entry.message));
    const template = (await t.ctx.claimTemplates.get(templateId))!;

    const once = await persistClaims(t.ctx, template, claims);
    const twice = await persistClaims(t.ctx, template, claims);
    expect(once).toMatchObject({ inserted: 50, alreadyPresent: 0, refused: [] });
    expect(twice).toMatchObject({ inserted: 0, alreadyPresent: 50, refused: [] });
    expect(await issuedCountInDb(t.ctx.db, templateId)).toBe(50);

    await drainClaims(t.ctx, templateId);
    expect(await couponRows(t.ctx.db, templateId)).toHaveLength(50);
    expect(await issuedCountInDb(t.ctx.db, templateId)).toBe(50);
  });

  it('takes over entries a dead persister read but never acknowledged', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 30 });
    await stampede(t.app, partner.headers, templateId, 30, 1);
    const keys = templateClaimKeys(templateId);
    await redis().xGroupCreate(keys.stream, PERSISTER_GROUP, '0', { MKSTREAM: true });
    const taken = await redis().xReadGroup(PERSISTER_GROUP, 'dead-persister', { key: keys.stream, id: '>' }, { COUNT: 20 }) as Array<{ messages: unknown[] }>;
    expect(taken[0]!.messages).toHaveLength(20);

    const stop = await startClaimPersister(t.ctx);
    try {
      await waitFor(async () => (await couponRows(t.ctx.db, templateId)).length === 30, { timeoutMs: 20_000, what: 'reclaimed entries to be persisted' });
      await waitFor(async () => (await redis().xLen(keys.stream)) === 0, { timeoutMs: 20_000, what: 'stream to drain' });
    } finally {
      await stop();
    }
    expect(await issuedCountInDb(t.ctx.db, templateId)).toBe(30);
    const pending = await redis().xPending(keys.stream, PERSISTER_GROUP);
    expect(pending.pending).toBe(0);
  });

  it('loading is set-if-absent: racing loaders and a late loader never overwrite a live counter', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 10 });
    const template = (await t.ctx.claimTemplates.get(templateId))!;
    const loaded = await Promise.all(Array.from({ length: 5 }, () => loadTemplateState(redis(), t.ctx.db, template, 'opener')));
    expect(loaded.filter((opening) => opening.loaded)).toHaveLength(1);

    await stampede(t.app, partner.headers, templateId, 4, 1);
    // A loader that read PostgreSQL (issued 0) before those claims arrives late:
    const keys = templateClaimKeys(templateId);
    const late = await runLuaScript(redis(), loadLuaScript(new URL('../../src/claims/load-template-2.lua', import.meta.url)),
      [keys.state, keys.users], ['10', '1', '0', '0', String(Date.now() + 3_600_000)]);
    expect(late).toBe(0);
    expect((await loadTemplateState(redis(), t.ctx.db, template, 'opener')).loaded).toBe(false);
    expect(await redis().hGet(keys.state, 'issued')).toBe('4');
    expect(await redis().hLen(keys.users)).toBe(4);
    const answers = await stampede(t.app, partner.headers, templateId, 10, 1, 'later');
    expect(answers.filter((a) => a.status === 201)).toHaveLength(6);
    await drainClaims(t.ctx, templateId);
  });

  it('rebuilds lost Redis state from PostgreSQL: remaining = total − issued, holders stay at their limit', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 5, perUserLimit: 2 });
    await stampede(t.app, partner.headers, templateId, 2, 2);
    await drainClaims(t.ctx, templateId);
    const keys = templateClaimKeys(templateId);
    await redis().del([keys.state, keys.users, keys.claims, keys.stream]);

    expect(await claimOnce(t.app, partner.headers, templateId, 'user-0')).toMatchObject({ status: 409, code: 'CLAIM_LIMIT_REACHED' });
    expect(await claimOnce(t.app, partner.headers, templateId, 'newcomer')).toMatchObject({ status: 201 });
    expect(await claimOnce(t.app, partner.headers, templateId, 'late')).toMatchObject({ status: 409, code: 'SOLD_OUT' });
    await drainClaims(t.ctx, templateId);
    const rows = await couponRows(t.ctx.db, templateId);
    expect(rows.map((row) => row.slot)).toEqual([1, 2, 3, 4, 5]);
    expect(await issuedCountInDb(t.ctx.db, templateId)).toBe(5);
  });

  it('opens an event with its counters only, loads each user on the first claim, and expires the state after the event', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 3, perUserLimit: 1 });
    const template = (await t.ctx.claimTemplates.get(templateId))!;
    await issueCoupon(t.ctx.db, { partnerId: partner.id, templateId, userId: 'holder', validFrom: new Date(), validUntil: new Date(Date.now() + 86_400_000) });
    await t.ctx.db.query('UPDATE coupon_templates SET issued_count = issued_count + 1 WHERE id = $1', [templateId]);
    const keys = templateClaimKeys(templateId);

    expect(await claimOnce(t.app, partner.headers, templateId, 'holder')).toMatchObject({ status: 409, code: 'CLAIM_LIMIT_REACHED' });
    expect(await redis().hGetAll(keys.users)).toEqual({ holder: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    expect((await claimOnce(t.app, partner.headers, templateId, 'first')).status).toBe(201);
    expect((await claimOnce(t.app, partner.headers, templateId, 'second')).status).toBe(201);
    // Sold out: a user never seen is answered without reading PostgreSQL or growing the hash.
    expect(await claimOnce(t.app, partner.headers, templateId, 'late')).toMatchObject({ status: 409, code: 'SOLD_OUT' });
    expect(await redis().hLen(keys.users)).toBe(3);

    // A user's coupons read from PostgreSQL before their claims reached Redis never overwrite Redis.
    const stale = await runLuaScript(redis(), loadLuaScript(new URL('../../src/claims/claim-5.lua', import.meta.url)), keys.claimScriptKeys,
      ['0190a000-0000-7000-8000-000000000001', 'first', String(template.claimStartsAt.getTime()), String(template.claimEndsAt.getTime()), '', '']);
    expect(stale).toEqual([-4]);

    // State and holdings expire together, an hour and ten minutes after the window.
    const expiresAt = template.claimEndsAt.getTime() + 70 * 60_000;
    for (const key of [keys.state, keys.users]) {
      expect(Math.abs(Date.now() + (await redis().pTTL(key)) - expiresAt)).toBeLessThan(60_000);
    }
    await drainClaims(t.ctx, templateId);
    expect(await issuedCountInDb(t.ctx.db, templateId)).toBe(3);
  });

  it('a fresh event (no coupon when opened) reads no holdings: a user new to Redis is decided in one script call', async () => {
    const partner = await createPartner(t.app);
    const claimScript = loadLuaScript(new URL('../../src/claims/claim-5.lua', import.meta.url));
    const direct = async (templateId: string, couponId: string, userId: string) => {
      const template = (await t.ctx.claimTemplates.get(templateId))!;
      return runLuaScript(redis(), claimScript, templateClaimKeys(templateId).claimScriptKeys,
        [couponId, userId, String(template.claimStartsAt.getTime()), String(template.claimEndsAt.getTime()), '']);
    };
    const fresh = await createTemplate(t.app, partner.headers, { totalQuantity: 3, perUserLimit: 1 });
    expect((await claimOnce(t.app, partner.headers, fresh, 'opener')).status).toBe(201);
    expect(await redis().hGet(templateClaimKeys(fresh).state, 'fresh')).toBe('1');
    expect((await direct(fresh, '0190a000-0000-7000-8000-00000000f001', 'newcomer') as unknown[]).slice(0, 5)).toEqual([2, 1, expect.any(Number), 2, '0190a000-0000-7000-8000-00000000f001']);

    // A coupon of the template existed before the opening: users new to Redis are read from PostgreSQL (-6).
    const held = await createTemplate(t.app, partner.headers, { totalQuantity: 3, perUserLimit: 1 });
    await issueCoupon(t.ctx.db, { partnerId: partner.id, templateId: held, userId: 'holder', validFrom: new Date(), validUntil: new Date(Date.now() + 86_400_000) });
    await t.ctx.db.query('UPDATE coupon_templates SET issued_count = issued_count + 1 WHERE id = $1', [held]);
    expect((await claimOnce(t.app, partner.headers, held, 'opener')).status).toBe(201);
    expect(await redis().hGet(templateClaimKeys(held).state, 'fresh')).toBe('0');
    expect(await direct(held, '0190a000-0000-7000-8000-00000000f002', 'holder')).toEqual([-6]);
    expect(await claimOnce(t.app, partner.headers, held, 'holder')).toMatchObject({ status: 409, code: 'CLAIM_LIMIT_REACHED' });
    await drainClaims(t.ctx, fresh);
    await drainClaims(t.ctx, held);
    expect(await issuedCountInDb(t.ctx.db, fresh)).toBe(2);
  });

  it('GET template shows the live count before the persister has written anything', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 10 });
    await stampede(t.app, partner.headers, templateId, 3, 1);
    expect(await issuedCountInDb(t.ctx.db, templateId)).toBe(0);
    const template = (await t.app.inject({ url: `/v1/coupon-templates/${templateId}`, headers: partner.headers })).json();
    expect(template).toMatchObject({ issuedCount: 3, remaining: 7 });
    await drainClaims(t.ctx, templateId);
  });

  it('many events at once: each is indexed, persisted, reconciled without drift, and leaves nothing behind', async () => {
    const partner = await createPartner(t.app);
    const templateIds = await Promise.all(Array.from({ length: 6 }, () => createTemplate(t.app, partner.headers, { totalQuantity: 20 })));
    const answers = await Promise.all(templateIds.map((templateId) => stampede(t.app, partner.headers, templateId, 25, 1)));
    for (const perEvent of answers) expect(perEvent.filter((a) => a.status === 201)).toHaveLength(20);
    expect(await activeTemplateIds(redis())).toEqual(expect.arrayContaining(templateIds));
    for (const templateId of templateIds) {
      const during = await reconcileTemplate(t.ctx, templateId);
      expect(during).toMatchObject({ drift: 0, redis: { issued: 20 } });
      await drainClaims(t.ctx, templateId);
      expect(new Set((await couponRows(t.ctx.db, templateId)).map((row) => row.slot)).size).toBe(20);
      expect(await reconcileTemplate(t.ctx, templateId)).toMatchObject({ drift: 0, problems: [], redis: { unpersisted: 0 } });
    }
  });

  it('the backlog metrics read each event\'s stream on the node that holds it', async () => {
    // Two events, so in a cluster their streams may sit on different masters; nothing persists here.
    const partner = await createPartner(t.app);
    const templateIds = await Promise.all([createTemplate(t.app, partner.headers), createTemplate(t.app, partner.headers)]);
    for (const [i, templateId] of templateIds.entries()) {
      for (let n = 0; n <= i; n++) expect((await claimOnce(t.app, partner.headers, templateId, `backlog-${n}`)).status).toBe(201);
    }
    const metrics = (await t.app.inject({ url: '/metrics' })).body;
    expect(templateIds.map((id) => metricSample(metrics, `stampede_claim_stream_length{template="${id}"}`))).toEqual([1, 2]);
    for (const id of templateIds) expect(metricSample(metrics, `stampede_claim_consumer_lag_seconds{template="${id}"}`)).toBeGreaterThanOrEqual(0);
    for (const templateId of templateIds) await drainClaims(t.ctx, templateId);
  });

  it('API-key cache, revocation tombstones and rate limits live in this Redis', async () => {
    const partner = await createPartner(t.app, { rateLimitPerSecond: 1 });
    expect((await t.app.inject({ url: '/v1/coupon-templates', headers: partner.headers })).statusCode).toBe(200);
    const cacheKey = apiKeyCacheKey(hashApiKey(partner.apiKey).toString('hex'));
    expect(JSON.parse((await redis().get(cacheKey))!)).toMatchObject({ partnerId: partner.id });
    const burst = await Promise.all(Array.from({ length: 5 }, () => t.app.inject({ url: '/v1/coupon-templates', headers: partner.headers })));
    expect(burst.some((response) => response.statusCode === 429)).toBe(true);

    const issued = (await t.app.inject({ method: 'POST', url: `/v1/partners/${partner.id}/api-keys`, headers: adminHeaders })).json<{ id: string; apiKey: string }>();
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/api-keys/${issued.id}`, headers: adminHeaders })).statusCode).toBe(204);
    expect(await redis().get(apiKeyCacheKey(hashApiKey(issued.apiKey).toString('hex')))).toBe('revoked');
    expect((await t.app.inject({ url: '/v1/coupon-templates', headers: { 'x-api-key': issued.apiKey } })).statusCode).toBe(401);
  });
});
}
