// Issue 15: memory is bounded by design, not by the size of an event. An event distributed to
// 1,000,000 users, then a claim before its window, the first claim at opening and claims during
// the event, in both modes: the growth of this process (where the gate runs), of Redis, and the
// first claim's latency are printed and held to their targets; the counts stay exact.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distributeToHolders, measureFirstClaims, type PhaseFigures } from '../../test/harness/first-claim.ts';
import { drainClaims, issuedCountInDb } from '../../test/harness/claims.ts';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import type { CouponTemplate } from '../coupons/template-repository.ts';
import { MemoryClaimGate } from './memory-claim-gate.ts';
import { RedisClaimGate } from './redis-claim-gate.ts';
import { reconcileTemplate } from './reconcile.ts';
import { templateClaimKeys } from './redis-keys.ts';

const HOLDERS = 1_000_000;
const TARGET_GROWTH_MB = 20;
const TARGET_FIRST_CLAIM_MS = 50;
/** The event is opened this many times (a fresh gate each time); the best first claim is held to the target. */
const OPENINGS = 5;
const ISSUED_PER_MODE = OPENINGS + 200;

describe('an event distributed to 1,000,000 users', () => {
  let t: TestApp;
  let template: CouponTemplate;
  beforeAll(async () => {
    t = await createTestApp({ distributed: true });
    const partner = await createPartner(t.app);
    const day = 86_400_000;
    const templateId = await createTemplate(t.app, partner.headers, {
      totalQuantity: HOLDERS + 1_000, perUserLimit: 2,
      claimStartsAt: new Date(Date.now() + day).toISOString(), claimEndsAt: new Date(Date.now() + 2 * day).toISOString(),
    });
    const started = performance.now();
    await distributeToHolders(t.ctx.db, { id: templateId, partnerId: partner.id }, HOLDERS);
    console.log(`distributed to ${HOLDERS} holders in ${Math.round(performance.now() - started)} ms`);
    template = (await t.ctx.claimTemplates.get(templateId))!;
    // Connections open before measuring: the first claim of an event, not of the process.
    await Promise.all(Array.from({ length: 4 }, () => t.ctx.db.query('SELECT 1')));
  }, 180_000);
  afterAll(async () => { await t.close(); });

  const opened = async () => (await t.ctx.db.query<{ opened: boolean }>(
    'SELECT gate_opened_at IS NOT NULL AS opened FROM coupon_templates WHERE id = $1', [template.id])).rows[0]!.opened;

  const checkTargets = (mode: string, figures: PhaseFigures[]) => {
    for (const phase of figures) console.log(JSON.stringify({ mode, holders: HOLDERS, ...phase }));
    const [before, opening, during] = figures;
    expect(before!.outcomes).toEqual({ not_open: 1 });
    expect(opening!.outcomes).toEqual({ issued: OPENINGS });
    expect(during!.outcomes).toEqual({ issued: 200, limit_reached: 1 });
    for (const phase of [before!, opening!]) {
      expect(phase.rssGrowthMb, `${mode}, ${phase.phase}: RSS growth`).toBeLessThan(TARGET_GROWTH_MB);
      expect(phase.redisUsedMemoryGrowthMb ?? 0, `${mode}, ${phase.phase}: Redis growth`).toBeLessThan(TARGET_GROWTH_MB);
    }
    expect(opening!.bestFirstLatencyMs, `${mode}: first claim latency`).toBeLessThan(TARGET_FIRST_CLAIM_MS);
    expect(during!.rssGrowthMb).toBeLessThan(TARGET_GROWTH_MB);
  };

  // Embedded first: its claims are committed when answered, so the Redis gate then opens the same
  // event on top of them and the final counts cover both.
  it('in-process gate: nothing opened before the window; the first claim costs two counters and one user', async () => {
    const newGate = () => new MemoryClaimGate(t.ctx.db, t.ctx.logger, t.ctx.metrics, () => new Date(), { lingerMs: 2, maxBatch: 1_000 });
    let gate = newGate();
    const figures = await measureFirstClaims({
      gate, template, db: t.ctx.db, openings: OPENINGS, reopen: async () => (gate = newGate()), holders: HOLDERS, newcomer: (n) => `embedded-newcomer-${n}`, half: 0,
      onPhase: async (phase) => { if (phase === 'before the window') expect(await opened()).toBe(false); },
    });
    checkTargets('embedded', figures);
    expect(await opened()).toBe(true);
    expect(gate.cacheSizes()).toMatchObject({ events: 1, users: 202, queued: 0 });
    expect(await issuedCountInDb(t.ctx.db, template.id)).toBe(HOLDERS + ISSUED_PER_MODE);
  });

  it('Redis gate: no key before the window; the first claim costs two counters and one user; exact after persisting', async () => {
    const redis = t.ctx.redis!;
    const keys = templateClaimKeys(template.id);
    const figures = await measureFirstClaims({
      gate: new RedisClaimGate(redis, t.ctx.db), template, db: t.ctx.db, openings: OPENINGS,
      // Persisted first, so the state opened again from PostgreSQL is exact.
      reopen: async () => {
        await drainClaims(t.ctx, template.id, 60_000);
        await redis.del([keys.state, keys.users]);
        return new RedisClaimGate(redis, t.ctx.db);
      }, holders: HOLDERS, newcomer: (n) => `distributed-newcomer-${n}`, half: 1, redis,
      onPhase: async (phase) => {
        if (phase === 'before the window') expect(await redis.exists([keys.state, keys.users, keys.claims, keys.stream])).toBe(0);
      },
    });
    checkTargets('distributed', figures);
    for (const phase of figures) expect(phase.redisEventKeysMb!).toBeLessThan(1);
    expect(await redis.hLen(keys.users)).toBe(202);
    // Expires an hour (and a margin) after the window the gate was given.
    const ttl = await redis.pTTL(keys.state);
    expect(ttl).toBeGreaterThan(3_600_000 + 3_600_000);
    expect(ttl).toBeLessThan(3 * 3_600_000);
    expect(Math.abs((await redis.pTTL(keys.users)) - ttl)).toBeLessThan(60_000);

    await drainClaims(t.ctx, template.id, 60_000);
    const total = HOLDERS + 2 * ISSUED_PER_MODE;
    expect(await issuedCountInDb(t.ctx.db, template.id)).toBe(total);
    const report = await reconcileTemplate(t.ctx, template.id);
    expect(report).toMatchObject({ drift: 0, problems: [], postgres: { issuedCount: total, rows: total } });
  });
});
