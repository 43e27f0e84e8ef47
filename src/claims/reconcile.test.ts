// Reconcile: consistent while claims wait in the stream and after the persister drained them;
// drift reported (and a non-zero exit from the CLI) when Redis and PostgreSQL disagree.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { drainClaims, stampede } from '../../test/harness/claims.ts';
import { createTemplate } from '../../test/harness/issue-coupons.ts';
import { spawnStampede } from '../../test/harness/spawn-stampede.ts';
import { createPartner, createTestApp, type TestApp } from '../../test/harness/test-app.ts';
import { reconcileRecentEvents, reconcileTemplate, startReconcileSchedule } from './reconcile.ts';
import { closeContext, testContext } from '../../test/harness/test-app.ts';
import { templateClaimKeys } from './redis-keys.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

describe('stampede reconcile', () => {
  let t: TestApp;
  beforeAll(async () => { t = await createTestApp({ distributed: true }); });
  afterAll(async () => { await t.close(); });

  it('finds no drift with claims still in the stream, nor after the persister drained them', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 40 });
    await stampede(t.app, partner.headers, templateId, 60, 1);
    expect(await reconcileTemplate(t.ctx, templateId)).toMatchObject({
      redis: { issued: 40, slot: 40, unpersisted: 40 }, postgres: { issuedCount: 0, rows: 0 }, drift: 0, problems: [],
    });
    await drainClaims(t.ctx, templateId);
    expect(await reconcileTemplate(t.ctx, templateId)).toMatchObject({
      redis: { issued: 40, unpersisted: 0 }, postgres: { issuedCount: 40, rows: 40, maxSlot: 40 }, drift: 0, problems: [],
    });
  });

  it('reports drift, and the CLI exits 1 on it and 0 without it', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 10 });
    await stampede(t.app, partner.headers, templateId, 5, 1);
    await drainClaims(t.ctx, templateId);
    const env = { DATABASE_URL: inject('databaseUrl'), REDIS_URL: inject('redisUrl'), LOG_LEVEL: 'warn' };

    const clean = spawnStampede(['reconcile', templateId], env);
    expect(await clean.exited).toBe(0);
    expect(clean.output()).toMatch(/consistent: no drift/);

    // Redis counts a coupon that never reached PostgreSQL (e.g. its stream entry was lost).
    await t.ctx.redis!.hIncrBy(templateClaimKeys(templateId).state, 'issued', 1);
    const report = await reconcileTemplate(t.ctx, templateId);
    expect(report).toMatchObject({ drift: 1 });
    expect(report!.problems[0]).toMatch(/drift 1/);
    const drifted = spawnStampede(['reconcile', templateId], env);
    expect(await drifted.exited).toBe(1);
    expect(drifted.output()).toMatch(/DRIFT/);

    const unknown = spawnStampede(['reconcile', '0190a000-0000-7000-8000-000000000000'], env);
    expect(await unknown.exited).toBe(2);
  }, 120_000);

  it('a reconcile run publishes the drift of every recent claim event, and forgets events it no longer checks', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 10 });
    await stampede(t.app, partner.headers, templateId, 4, 1);
    await drainClaims(t.ctx, templateId);
    const drift = async () => (await t.ctx.metrics.reconcileDrift.get()).values.find((v) => v.labels.template === templateId)?.value;

    await t.ctx.redis!.hIncrBy(templateClaimKeys(templateId).state, 'issued', 2);
    expect((await reconcileRecentEvents(t.ctx)).drifting).toBeGreaterThanOrEqual(1);
    expect(await drift()).toBe(2);
    await t.ctx.redis!.hIncrBy(templateClaimKeys(templateId).state, 'issued', -2);
    await reconcileRecentEvents(t.ctx);
    expect(await drift()).toBe(0);
    // An event that ended more than an hour ago is no longer checked, and leaves the gauge.
    await t.ctx.db.query(
      `UPDATE coupon_templates SET claim_starts_at = now() - interval '3 days', claim_ends_at = now() - interval '2 days' WHERE id = $1`,
      [templateId],
    );
    await reconcileRecentEvents(t.ctx);
    expect(await drift()).toBeUndefined();
  });

  it('the schedule fires on its own: the gauge shows drift that appears, and its repair', async () => {
    const partner = await createPartner(t.app);
    const templateId = await createTemplate(t.app, partner.headers, { totalQuantity: 10 });
    await stampede(t.app, partner.headers, templateId, 3, 1);
    await drainClaims(t.ctx, templateId);
    // Another process's context whose schedules run every 200 ms instead of every minute.
    const scheduled = await testContext({ distributed: true, env: { STAMPEDE_SCHEDULE_INTERVAL_MS: '200' } });
    const stop = await startReconcileSchedule(scheduled);
    try {
      const drift = async () => (await scheduled.metrics.reconcileDrift.get()).values.find((v) => v.labels.template === templateId)?.value;
      await waitFor(async () => (await drift()) === 0, { what: 'a scheduled run to publish no drift' });
      await t.ctx.redis!.hIncrBy(templateClaimKeys(templateId).state, 'issued', 3);
      await waitFor(async () => (await drift()) === 3, { what: 'a scheduled run to publish drift 3' });
      await t.ctx.redis!.hIncrBy(templateClaimKeys(templateId).state, 'issued', -3);
      await waitFor(async () => (await drift()) === 0, { what: 'a scheduled run to publish the repair' });
    } finally {
      await stop();
      await closeContext(scheduled);
    }
    // Without Redis there is nothing to reconcile: the schedule starts and stops without error.
    const embedded = await testContext({ env: { STAMPEDE_SCHEDULE_INTERVAL_MS: '200' } });
    try {
      await expect(startReconcileSchedule(embedded).then((stopEmbedded) => stopEmbedded())).resolves.toBeUndefined();
    } finally {
      await closeContext(embedded);
    }
  });
});
