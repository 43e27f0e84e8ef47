// The Redis safety check at start: a Redis that may evict keys or has no AOF can lose acknowledged
// claims (as does one that does not fsync every write), so serve refuses it unless STAMPEDE_ALLOW_UNSAFE_REDIS is set (then it warns).
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startRedisServer, type RedisServerHandle } from '../test/harness/redis-server.ts';
import { spawnStampede } from '../test/harness/spawn-stampede.ts';
import { testConfig } from '../test/harness/test-app.ts';
import { connectRedis, redisDurabilityProblems, type Redis } from './infra/redis.ts';
import { openRuntime } from './runtime.ts';

describe('Redis safety check', () => {
  let server: RedisServerHandle;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedisServer();
    admin = await connectRedis(server.url, pino({ level: 'silent' }));
  });
  afterAll(async () => {
    await admin.close();
    await server.stop();
  });

  const configure = async (policy: string, aof: 'yes' | 'no', fsync: 'always' | 'everysec' | 'no' = 'always') => {
    await admin.configSet('maxmemory-policy', policy);
    await admin.configSet('appendonly', aof);
    await admin.configSet('appendfsync', fsync);
  };

  const open = async (env: Record<string, string> = {}) => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => { lines.push(line); } });
    const runtime = await openRuntime(testConfig({ distributed: true, redisUrl: server.url, env }), logger,
      { checkRedisDurability: true, runMigrations: false });
    await runtime.close();
    return lines.join('');
  };

  it('accepts noeviction with AOF on', async () => {
    await configure('noeviction', 'yes');
    expect(await redisDurabilityProblems(admin)).toEqual([]);
    expect(await open()).not.toMatch(/unsafe Redis/);
  });

  it('refuses an evicting policy and AOF off, naming both', async () => {
    await configure('allkeys-lru', 'no');
    const problems = await redisDurabilityProblems(admin);
    expect(problems).toHaveLength(2);
    await expect(open()).rejects.toThrow(/maxmemory-policy is "allkeys-lru".*appendonly is "no".*STAMPEDE_ALLOW_UNSAFE_REDIS/s);
  });

  it('refuses AOF off alone', async () => {
    await configure('noeviction', 'no');
    await expect(open()).rejects.toThrow(/appendonly/);
  });

  it('refuses appendfsync everysec, naming what a crash loses', async () => {
    await configure('noeviction', 'yes', 'everysec');
    expect(await redisDurabilityProblems(admin)).toEqual([expect.stringMatching(/appendfsync is "everysec", must be "always".*loses the claims answered 201/)]);
    await expect(open()).rejects.toThrow(/appendfsync is "everysec".*STAMPEDE_ALLOW_UNSAFE_REDIS/s);
    const warning = JSON.parse(await open({ STAMPEDE_ALLOW_UNSAFE_REDIS: 'true' }));
    expect(warning).toMatchObject({ level: 40, msg: expect.stringMatching(/claims answered 201 can be lost/) });
    expect(warning.problems).toEqual([expect.stringMatching(/appendfsync.*about the last second/)]);
  });

  it('starts with the override flag, and warns', async () => {
    await configure('volatile-lru', 'yes');
    const warning = JSON.parse(await open({ STAMPEDE_ALLOW_UNSAFE_REDIS: 'true' }));
    expect(warning).toMatchObject({ level: 40, msg: expect.stringMatching(/unsafe Redis/) });
    expect(warning.problems).toEqual([expect.stringMatching(/volatile-lru/)]);
  });

  it('`stampede serve` exits non-zero and says why on an unsafe Redis', async () => {
    await configure('allkeys-lru', 'yes', 'everysec');
    const serve = spawnStampede(['serve'], { DATABASE_URL: inject('databaseUrl'), REDIS_URL: server.url, PORT: '0', STAMPEDE_WORKERS: 'off' });
    expect(await serve.exited).toBe(1);
    expect(serve.output()).toMatch(/maxmemory-policy is \\?"allkeys-lru\\?"/);
    expect(serve.output()).toMatch(/appendfsync is \\?"everysec\\?"/);
  }, 60_000);
});
