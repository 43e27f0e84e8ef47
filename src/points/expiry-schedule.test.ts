import { describe, expect, it } from 'vitest';
import { closeContext, testContext } from '../../test/harness/test-app.ts';
import { startPointsExpiry } from './expiry.ts';

describe('expiry schedule', () => {
  it('the worker starts from the configured schedule and stops cleanly; a malformed one fails the start', async () => {
    const ctx = await testContext();
    const bad = await testContext({ env: { STAMPEDE_POINTS_EXPIRY_SCHEDULE: '61 * * * *' } });
    try {
      const stop = await startPointsExpiry(ctx);
      await stop();
      await expect(startPointsExpiry(bad)).rejects.toThrow();
    } finally {
      await closeContext(ctx);
      await closeContext(bad);
    }
  });
});
