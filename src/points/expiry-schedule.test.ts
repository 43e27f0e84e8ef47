// The expiry schedule fires on its own and expires what is due; a malformed schedule is refused at boot.
import { describe, expect, it } from 'vitest';
import { createPartner, createTestApp, testContext } from '../../test/harness/test-app.ts';
import { pointsClient } from '../../test/harness/points-client.ts';
import { startPointsExpiry } from './expiry.ts';
import { waitFor } from '../../test/harness/wait-for.ts';

describe('expiry schedule', () => {
  it('the worker\'s schedule expires due points without being asked (every 200 ms here instead of hourly)', async () => {
    let now = Date.now();
    const t = await createTestApp({ clock: () => new Date(now), env: { STAMPEDE_SCHEDULE_INTERVAL_MS: '200' } });
    const stop = await startPointsExpiry(t.ctx);
    try {
      const partner = await createPartner(t.app);
      const points = pointsClient(t.app, partner.headers);
      expect((await points.earn({ userId: 'u', amount: 30, expiresAt: new Date(now + 60_000).toISOString() })).status).toBe(201);
      expect((await points.earn({ userId: 'u', amount: 5, expiresInDays: 30 })).status).toBe(201);
      now += 120_000; // the first lot is due: only a sweep writes its EXPIRE
      const expired = async () => (await t.ctx.db.query<{ amount: number }>(
        `SELECT amount FROM point_transactions WHERE partner_id = $1 AND type = 'EXPIRE'`, [partner.id])).rows.map((r) => r.amount);
      await waitFor(async () => (await expired()).length > 0, { what: 'a scheduled sweep to expire the due lot' });
      expect(await expired()).toEqual([-30]);
      expect((await points.balance('u')).balance).toBe(5);
    } finally {
      await stop();
      await t.close();
    }
  });

  it('a malformed schedule is refused at boot', async () => {
    // Refused by loadConfig, before any worker or connection exists (src/config.unit.test.ts has the rest).
    await expect(testContext({ env: { STAMPEDE_POINTS_EXPIRY_SCHEDULE: '61 * * * *' } })).rejects.toThrow(/STAMPEDE_POINTS_EXPIRY_SCHEDULE="61 \* \* \* \*": not a cron schedule/);
  });
});
