// Boot-time configuration: every problem at once, cron schedules included, and the bind address
// that fits the mode.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

const problems = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
};

describe('loadConfig', () => {
  it('reads REDIS_URL as one URL in single mode and as a list of nodes in cluster and sentinel mode', () => {
    expect(loadConfig({ REDIS_URL: 'redis://a:6379' })).toMatchObject({ redisMode: 'single', redisMinReplicas: 0, redisReplicaTimeoutMs: 1_000 });
    expect(problems({ REDIS_URL: 'redis://a:6379,redis://b:6379' })).toEqual(['REDIS_URL: not a valid URL']);
    expect(loadConfig({ REDIS_URL: 'redis://a:6379, redis://b:6379', STAMPEDE_REDIS_MODE: 'cluster', STAMPEDE_REDIS_MIN_REPLICAS: '1' }))
      .toMatchObject({ redisMode: 'cluster', redisMinReplicas: 1 });
    expect(problems({ REDIS_URL: 'redis://a:26379,http://b', STAMPEDE_REDIS_MODE: 'sentinel' })).toEqual([
      'REDIS_URL: protocol must be one of redis:, rediss:',
      'STAMPEDE_REDIS_SENTINEL_MASTER: required when STAMPEDE_REDIS_MODE=sentinel (the master name the Sentinels monitor)',
    ]);
    expect(problems({ STAMPEDE_REDIS_MODE: 'replicated' })).toEqual(['STAMPEDE_REDIS_MODE="replicated": expected one of single, cluster, sentinel']);
  });

  it('refuses malformed cron schedules at boot, with every other problem, at once', () => {
    expect(problems({ STAMPEDE_POINTS_EXPIRY_SCHEDULE: 'bogus', STAMPEDE_RECONCILE_SCHEDULE: '* * * * * * *', PORT: '-1' })).toEqual([
      expect.stringMatching(/^PORT="-1"/),
      expect.stringMatching(/^STAMPEDE_POINTS_EXPIRY_SCHEDULE="bogus": not a cron schedule/),
      expect.stringMatching(/^STAMPEDE_RECONCILE_SCHEDULE=/),
    ]);
    expect(loadConfig({ STAMPEDE_POINTS_EXPIRY_SCHEDULE: '*/15 2-4 * * 1' }).pointsExpirySchedule).toBe('*/15 2-4 * * 1');
  });

  it('binds embedded mode to loopback, a configured database to every address, and HOST wins', () => {
    expect(loadConfig({}).host).toBe('127.0.0.1');
    expect(loadConfig({ DATABASE_URL: 'postgres://u:p@db/stampede' }).host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '::1' }).host).toBe('::1');
    expect(problems({ HOST: 'not a host' })).toEqual([expect.stringMatching(/^HOST="not a host"/)]);
  });
});
