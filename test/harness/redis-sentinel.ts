// A private Redis primary with replicas behind three Sentinels (all redis-server), for tests of
// STAMPEDE_REDIS_MODE=sentinel and of failover: kill -9 the primary and the Sentinels promote a
// replica within about down-after-milliseconds + a second.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { redisCommand, startRedisNode, DURABLE_REDIS_ARGS, type RedisNodeHandle } from './redis-nodes.ts';
import { waitFor } from './wait-for.ts';

export const SENTINEL_MASTER_NAME = 'stampede';

export interface RedisSentinelHandle {
  /** Sentinel list for REDIS_URL with STAMPEDE_REDIS_MODE=sentinel. */
  readonly url: string;
  readonly masterName: string;
  /** Data nodes: [0] is the first primary, the rest its replicas. */
  readonly nodes: readonly RedisNodeHandle[];
  readonly sentinels: readonly RedisNodeHandle[];
  /** The data node the Sentinels name as primary now. */
  currentPrimary(): Promise<RedisNodeHandle>;
  stop(): Promise<void>;
}

export interface RedisSentinelOptions {
  readonly replicas?: number;
  /**
   * How long the primary must be silent before the Sentinels call it down. 30 s unless a test
   * fails it over on purpose: a primary fsyncing every write (appendfsync always) on a loaded
   * disk can be silent for a second, and an unasked failover mid-test loses unreplicated writes.
   */
  readonly downAfterMs?: number;
}

export async function startRedisSentinel(options: RedisSentinelOptions = {}): Promise<RedisSentinelHandle> {
  const primary = await startRedisNode(DURABLE_REDIS_ARGS);
  const nodes: RedisNodeHandle[] = [primary];
  const sentinels: RedisNodeHandle[] = [];
  const stop = async () => { await Promise.all([...sentinels, ...nodes].map((node) => node.stop())); };
  try {
    nodes.push(...await Promise.all(Array.from({ length: options.replicas ?? 1 }, () =>
      startRedisNode([...DURABLE_REDIS_ARGS, '--replicaof', '127.0.0.1', String(primary.port)]))));
    await waitFor(async () => {
      const info = await redisCommand(primary.url, ['INFO', 'replication']) as string;
      return info.includes(`connected_slaves:${nodes.length - 1}`) && (info.match(/state=online/g)?.length ?? 0) === nodes.length - 1;
    }, { timeoutMs: 30_000, what: 'the replicas to sync', tolerateErrors: true });
    sentinels.push(...await Promise.all(Array.from({ length: 3 }, () => startRedisNode(['--sentinel'], {
      configFile: async (dir, port) => {
        const file = path.join(dir, 'sentinel.conf');
        await writeFile(file, [
          `port ${port}`,
          `sentinel monitor ${SENTINEL_MASTER_NAME} 127.0.0.1 ${primary.port} 2`,
          `sentinel down-after-milliseconds ${SENTINEL_MASTER_NAME} ${options.downAfterMs ?? 30_000}`,
          `sentinel failover-timeout ${SENTINEL_MASTER_NAME} 10000`,
          `sentinel parallel-syncs ${SENTINEL_MASTER_NAME} 1`,
          '',
        ].join('\n'));
        return file;
      },
    }))));
    await waitFor(async () => {
      const known = await Promise.all(sentinels.map((sentinel) =>
        redisCommand(sentinel.url, ['SENTINEL', 'SENTINELS', SENTINEL_MASTER_NAME]) as Promise<unknown[]>));
      return known.every((others) => others.length === 2);
    }, { timeoutMs: 30_000, what: 'the Sentinels to know each other', tolerateErrors: true });
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: sentinels.map((sentinel) => sentinel.url).join(','),
    masterName: SENTINEL_MASTER_NAME,
    nodes,
    sentinels,
    currentPrimary: async () => {
      for (const sentinel of sentinels) {
        try {
          const [, port] = await redisCommand(sentinel.url, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_MASTER_NAME]) as [string, string];
          const found = nodes.find((node) => node.port === Number(port));
          if (found) return found;
        } catch {
          // a dead Sentinel: ask the next
        }
      }
      throw new Error('no Sentinel names a primary');
    },
    stop,
  };
}
