// The harness's Redis handle is killed by chaos runs at any moment, sometimes again before it was
// restarted: kill() of a server already gone must return, not wait for an 'exit' that came and
// went (a 30-minute chaos run, seed 5640708, hung for good after its load on exactly that).
import { describe, expect, it } from 'vitest';
import { withDeadline } from './wait-for.ts';
import { startRedisServer } from './redis-server.ts';

describe('startRedisServer', () => {
  it('kill() of a server already killed returns at once; restart() brings it back', async () => {
    const redis = await startRedisServer();
    try {
      await redis.kill();
      await withDeadline(redis.kill(), 5_000, 'a second kill() of a dead redis-server to return');
      await redis.restart();
      expect(redis.port).toBeGreaterThan(0);
    } finally {
      await redis.stop();
    }
  });
});
