// One node-redis client per process, whatever the topology behind REDIS_URL: a single Redis
// (createClient), a Redis Cluster (createCluster: every command goes to the master of its key's
// slot) or a primary with replicas behind Sentinel (createSentinel: commands go to the current
// primary, re-discovered after a failover). node-redis pipelines concurrent commands on one
// connection per node automatically, which is what the claim path wants: many small EVALSHAs in
// flight at once.
import { createClient, createCluster, createSentinel } from 'redis';
import type { Logger } from './logger.ts';

export type RedisMode = 'single' | 'cluster' | 'sentinel';

/** Where Redis is: REDIS_URL (a list of seed nodes or Sentinels outside single mode) and its mode. */
export interface RedisTarget {
  readonly url: string;
  readonly mode: RedisMode;
  /** Sentinel mode: the master name the Sentinels monitor. */
  readonly sentinelMaster?: string | undefined;
}

/**
 * The command surface the code uses. The three node-redis client kinds share it (same command
 * methods, same argument shapes), so the single client's type stands for all of them; what
 * differs between topologies (keyless commands that must reach every master, WAIT on the node of
 * a key) goes through the functions below, never through casts at call sites.
 */
export type Redis = ReturnType<typeof createSingleClient>;

function createSingleClient(url: string) {
  return createClient({ url, socket, commandOptions });
}

interface Topology {
  readonly mode: RedisMode;
  /** A client per master (every cluster master; the current primary otherwise). */
  masters(): Promise<Redis[]>;
  /** Sends a command to the node that owns `key`'s slot, on the connection the key's writes used. */
  sendToKeyOwner(key: string, args: string[]): Promise<unknown>;
}

const topologies = new WeakMap<object, Topology>();

// Bounded back-off; commands issued while disconnected wait in the offline queue.
const socket = { reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2_000), connectTimeout: 5_000 };
// node-redis 6 arms a 5 s AbortSignal.timeout per command by default, and each one later fires
// and builds a DOMException: 7% of the server's CPU in the claim benchmark profile. A dead
// connection is still detected by the socket (commands fail, the client reconnects).
const commandOptions = { timeout: 0 };

export function parseRedisUrls(url: string): URL[] {
  return url.split(',').map((part) => part.trim()).filter((part) => part !== '').map((part) => new URL(part));
}

export function createRedisClient(target: string | RedisTarget, logger: Logger): Redis {
  const { url, mode, sentinelMaster } = typeof target === 'string' ? { url: target, mode: 'single' as const, sentinelMaster: undefined } : target;
  const onError = (error: Error) => logger.warn({ err: error }, 'redis client error');
  if (mode === 'cluster') {
    const cluster = createCluster({
      rootNodes: parseRedisUrls(url).map((node) => ({ url: node.href })),
      // Discovered nodes take their connection settings (credentials, TLS, timeouts) from here.
      defaults: { socket, ...credentialsOf(parseRedisUrls(url)[0]!) },
      commandOptions,
    });
    cluster.on('error', onError);
    topologies.set(cluster, {
      mode,
      masters: () => Promise.all(cluster.masters.map((node) => cluster.nodeClient(node))) as unknown as Promise<Redis[]>,
      sendToKeyOwner: (key, args) => cluster.sendCommand(key, false, args),
    });
    return cluster as unknown as Redis;
  }
  if (mode === 'sentinel') {
    const sentinels = parseRedisUrls(url);
    const sentinel = createSentinel({
      name: sentinelMaster!,
      sentinelRootNodes: sentinels.map((node) => ({ host: node.hostname, port: Number(node.port || 26379) })),
      nodeClientOptions: { socket, ...credentialsOf(sentinels[0]!) },
      sentinelClientOptions: { socket },
      // Follow a promotion within a second or two (the default scan is every 10 s).
      scanInterval: 1_000,
      commandOptions,
    });
    sentinel.on('error', onError);
    const self = sentinel as unknown as Redis;
    topologies.set(sentinel, {
      mode,
      masters: async () => [self],
      sendToKeyOwner: (_key, args) => sentinel.sendCommand(false, args),
    });
    return self;
  }
  const client = createSingleClient(url);
  client.on('error', onError);
  topologies.set(client, { mode: 'single', masters: async () => [client], sendToKeyOwner: (_key, args) => client.sendCommand(args) });
  return client;
}

export async function connectRedis(target: string | RedisTarget, logger: Logger): Promise<Redis> {
  const client = createRedisClient(target, logger);
  await client.connect();
  return client;
}

function credentialsOf(url: URL): { username?: string; password?: string } {
  return {
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
  };
}

function topologyOf(redis: Redis): Topology {
  const topology = topologies.get(redis);
  if (!topology) throw new Error('not a client made by createRedisClient');
  return topology;
}

export const redisMode = (redis: Redis): RedisMode => topologyOf(redis).mode;

/** A client for every master (every cluster master; the current primary otherwise). */
export const redisMasters = (redis: Redis): Promise<Redis[]> => topologyOf(redis).masters();

/**
 * `WAIT replicas timeoutMs` on the connection that wrote `key`: how many replicas have every write
 * sent on it so far (at least `replicas`, or fewer once the timeout passed).
 */
export async function waitForReplicas(redis: Redis, key: string, replicas: number, timeoutMs: number): Promise<number> {
  return Number(await topologyOf(redis).sendToKeyOwner(key, ['WAIT', String(replicas), String(timeoutMs)]));
}

/**
 * Problems that make Redis unsafe as the claim gate, checked on every master: keys evicted under
 * memory pressure would forget issued slots, without AOF a restart forgets acknowledged claims,
 * and unless every write is fsynced before Redis replies (`appendfsync always`) a crash of Redis
 * or its host loses the claims answered 201 in the last second or so (`everysec`) or more (`no`).
 */
export async function redisDurabilityProblems(redis: Redis): Promise<string[]> {
  const masters = await redisMasters(redis);
  const problems: string[] = [];
  for (const [index, master] of masters.entries()) {
    const where = masters.length > 1 ? `master ${index + 1} of ${masters.length}: ` : '';
    for (const problem of await nodeDurabilityProblems(master)) problems.push(where + problem);
  }
  return problems;
}

async function nodeDurabilityProblems(redis: Redis): Promise<string[]> {
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
