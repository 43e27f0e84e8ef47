import { describe, expect, it } from 'vitest';
import { closeContext, testContext } from '../../test/harness/test-app.ts';
import { startPointsExpiry } from './expiry.ts';

describe('expiry schedule', () => {
  it('the worker starts from the configured schedule and stops cleanly; a malformed one is refused at boot', async () => {
    const ctx = await testContext({ env: { STAMPEDE_POINTS_EXPIRY_SCHEDULE: '*/5 * * * *' } });
    try {
      const stop = await startPointsExpiry(ctx);
      await stop();
    } finally {
      await closeContext(ctx);
    }
    // Refused by loadConfig, before any worker or connection exists (src/config.test.ts has the rest).
    await expect(testContext({ env: { STAMPEDE_POINTS_EXPIRY_SCHEDULE: '61 * * * *' } })).rejects.toThrow(/STAMPEDE_POINTS_EXPIRY_SCHEDULE="61 \* \* \* \*": not a cron schedule/);
  });
});
