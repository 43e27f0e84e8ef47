// One node-redis client per process. node-redis pipelines concurrent commands on one connection
// automatically, which is what the claim path wants: many small EVALSHAs in flight at once.
import { createClient } from 'redis';
import type { Logger } from './logger.ts';

export type Redis = ReturnType<typeof createRedisClient>;

export function createRedisClient(url: string, logger: Logger) {
  const client = createClient({
    url,
    socket: {
      // Bounded back-off; commands issued while disconnected wait in the offline queue.
      reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 2_000),
      connectTimeout: 5_000,
    },
    // node-redis 6 arms a 5 s AbortSignal.timeout per command by default, and each one later fires
    // and builds a DOMException: 7% of the server's CPU in the claim benchmark profile. A dead
    // connection is still detected by the socket (commands fail, the client reconnects).
    commandOptions: { timeout: 0 },
  });
  client.on('error', (error: Error) => logger.warn({ err: error }, 'redis client error'));
  return client;
}

export async function connectRedis(url: string, logger: Logger): Promise<Redis> {
  const client = createRedisClient(url, logger);
  await client.connect();
  return client;
}

/**
 * Problems that make Redis unsafe as the claim gate: keys evicted under memory pressure would
 * forget issued slots, without AOF a restart forgets acknowledged claims, and unless every write
 * is fsynced before Redis replies (`appendfsync always`) a crash of Redis or its host loses the
 * claims answered 201 in the last second or so (`everysec`) or more (`no`).
 */
export async function redisDurabilityProblems(redis: Redis): Promise<string[]> {
  const policy = (await redis.configGet('maxmemory-policy'))['maxmemory-policy'];
  const aof = (await redis.configGet('appendonly'))['appendonly'];
  const fsync = (await redis.configGet('appendfsync'))['appendfsync'];
  const problems: string[] = [];
  if (policy !== 'noeviction') problems.push(`maxmemory-policy is "${policy}", must be "noeviction"`);
  if (aof !== 'yes') problems.push('appendonly is "no", must be "yes" (AOF on)');
  if (fsync !== 'always') {
    problems.push(`appendfsync is "${fsync}", must be "always": a crash of Redis or its host loses the claims ` +
      `answered 201 since the last fsync (${fsync === 'everysec' ? 'about the last second of them' : 'up to the last 30 s of them'}) before they reach PostgreSQL`);
  }
  return problems;
}
