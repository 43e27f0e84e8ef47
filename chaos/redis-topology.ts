// The Redis of a chaos run in one of the topologies Stampede supports, with the Redis faults each
// can take. single: one redis-server, kill -9 and restart (AOF `always` replayed). sentinel: a
// primary and one replica behind three Sentinels; cluster: three masters with one replica each.
// With replicas the run sets STAMPEDE_REDIS_MIN_REPLICAS=1 (a 201 only once the replica holds the
// claim), so a failover may lose no acknowledged claim; every node keeps AOF `always` too.
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { RedisTarget } from '../src/infra/redis.ts';
import { startRedisCluster } from '../test/harness/redis-cluster.ts';
import { redisCommand, type RedisNodeHandle } from '../test/harness/redis-nodes.ts';
import { startRedisSentinel } from '../test/harness/redis-sentinel.ts';
import { startRedisServer } from '../test/harness/redis-server.ts';
// Every wait below tolerates errors: a node restarting or a replica being promoted is "not yet".
import { waitFor } from '../test/harness/wait-for.ts';
import type { Fault, RedisTopology } from './schedule.ts';

export interface ChaosRedis {
  readonly topology: RedisTopology;
  /** Cluster masters (the schedule's shards); 1 otherwise. */
  readonly shards: number;
  /** What connectRedis takes, for the run's own look at the claim streams. */
  readonly target: RedisTarget;
  /** REDIS_URL and the settings that go with it, for every Stampede process. */
  readonly env: Record<string, string>;
  inject(fault: Fault): Promise<void>;
  heal(fault: Fault): Promise<void>;
  /** Every node up, and (with replicas) every primary with a synced replica again. */
  healAll(): Promise<void>;
  /** Stops every node; each node's redis.log is copied to logDir first. */
  stop(logDir: string): Promise<void>;
}

/** The cluster's masters, each with one replica: the schedule's shards. */
export const CLUSTER_MASTERS = 3;

/** How long a failover may take before the run says it did not happen (and restarts the node anyway). */
const PROMOTION_DEADLINE_MS = 60_000;

export async function startChaosRedis(topology: RedisTopology, log: (line: string) => void): Promise<ChaosRedis> {
  if (topology === 'single') return startSingle();
  return topology === 'sentinel' ? startSentinel(log) : startCluster(log);
}

async function startSingle(): Promise<ChaosRedis> {
  const redis = await startRedisServer({ appendfsync: 'always' });
  let down = false;
  let killedBy: Fault | undefined;
  return {
    topology: 'single',
    shards: 1,
    target: { url: redis.url, mode: 'single' },
    env: { REDIS_URL: redis.url },
    inject: async (fault) => {
      if (down) throw new Error('Redis is still down from another fault');
      down = true;
      killedBy = fault;
      await redis.kill();
    },
    heal: async (fault) => { if (down && killedBy === fault) { await redis.restart(); down = false; } },
    healAll: async () => { if (down) { await redis.restart(); down = false; } },
    stop: async (logDir) => { await keepLog(redis.dir, logDir, 'redis'); await redis.stop(); },
  };
}

/**
 * Faults that take turns from inject to the end of their heal: the schedule spaces them out, but on
 * a loaded machine a failover can outlast that space, and two at once are no longer a failover
 * (a Sentinel set-up with both nodes down; a cluster with two of three masters down has no
 * majority left to elect a replica).
 */
class Turns {
  private last: Promise<void> = Promise.resolve();
  private readonly releases = new Map<Fault, () => void>();
  async take(fault: Fault, inject: () => Promise<void>): Promise<void> {
    const previous = this.last;
    let release!: () => void;
    this.last = new Promise((resolve) => { release = resolve; });
    await previous;
    try {
      await inject();
      this.releases.set(fault, release);
    } catch (error) {
      release();
      throw error;
    }
  }
  async end(fault: Fault, heal: () => Promise<void>): Promise<void> {
    const release = this.releases.get(fault);
    if (!release) return; // never injected: nothing to heal
    this.releases.delete(fault);
    try { await heal(); } finally { release(); }
  }
}

/** Nodes killed by a fault and not yet restarted, so a node is never launched twice. */
class DownNodes {
  private readonly down = new Set<RedisNodeHandle>();
  private readonly byFault = new Map<Fault, RedisNodeHandle>();
  async kill(fault: Fault, node: RedisNodeHandle): Promise<void> {
    this.byFault.set(fault, node);
    this.down.add(node);
    await node.kill();
  }
  killedBy(fault: Fault): RedisNodeHandle | undefined { return this.byFault.get(fault); }
  has(node: RedisNodeHandle): boolean { return this.down.has(node); }
  async restart(node: RedisNodeHandle): Promise<void> {
    if (!this.down.delete(node)) return;
    await node.restart();
  }
  async restartAll(): Promise<void> { for (const node of [...this.down]) await this.restart(node); }
}

async function startSentinel(log: (line: string) => void): Promise<ChaosRedis> {
  // down-after 3 s, as test/e2e/redis-failover.test.ts: Sentinel skips a replica whose link has been
  // down longer than 10 × down-after, which a loaded machine can reach with 1 s.
  const sentinel = await startRedisSentinel({ replicas: 1, downAfterMs: 3_000 });
  const down = new DownNodes();
  const primary = () => sentinel.currentPrimary();
  const replica = async () => { const p = await primary(); return sentinel.nodes.find((node) => node !== p)!; };
  const askSentinels = async (args: string[]) => {
    for (const node of sentinel.sentinels) {
      try { return await redisCommand(node.url, args); } catch { /* the next one */ }
    }
    throw new Error(`no Sentinel answered ${args.join(' ')}`);
  };
  const switchedFrom = new Map<Fault, RedisNodeHandle>();
  const turns = new Turns();
  return {
    topology: 'sentinel',
    shards: 1,
    target: { url: sentinel.url, mode: 'sentinel', sentinelMaster: sentinel.masterName },
    env: { REDIS_URL: sentinel.url, STAMPEDE_REDIS_MODE: 'sentinel', STAMPEDE_REDIS_SENTINEL_MASTER: sentinel.masterName, STAMPEDE_REDIS_MIN_REPLICAS: '1' },
    inject: (fault) => turns.take(fault, async () => {
      if (fault.kind === 'kill-redis') await down.kill(fault, await replica());
      else if (fault.kind === 'redis-failover') {
        // Only a replica in sync can be promoted; without one this would be an outage, not a failover.
        const p = await primary();
        const info = await redisCommand(p.url, ['INFO', 'replication']) as string;
        if (!info.includes('state=online')) throw new Error('the primary has no replica in sync: no failover now');
        await down.kill(fault, p);
      } else {
        switchedFrom.set(fault, await primary());
        await askSentinels(['SENTINEL', 'FAILOVER', sentinel.masterName]);
      }
    }),
    heal: (fault) => turns.end(fault, async () => {
      if (fault.kind === 'redis-switchover') {
        const from = switchedFrom.get(fault);
        if (from) await waitFor(async () => (await primary()) !== from, { timeoutMs: PROMOTION_DEADLINE_MS, what: 'the Sentinels to switch the primary over', tolerateErrors: true });
        return;
      }
      const node = down.killedBy(fault);
      if (!node) return;
      if (fault.kind === 'redis-failover') {
        // The old primary returns only once its replica is promoted: then it rejoins as a replica.
        await waitFor(async () => (await primary()) !== node, { timeoutMs: PROMOTION_DEADLINE_MS, what: 'the Sentinels to promote the replica', tolerateErrors: true })
          .catch((error) => log(`failover: ${String(error)}; restarting the old primary anyway`));
      }
      await down.restart(node);
    }),
    healAll: async () => {
      await down.restartAll();
      await waitFor(async () => {
        const info = await redisCommand((await primary()).url, ['INFO', 'replication']) as string;
        return info.includes('role:master') && info.includes('connected_slaves:1') && info.includes('state=online');
      }, { timeoutMs: 120_000, what: 'the primary to have its replica in sync', tolerateErrors: true });
    },
    stop: async (logDir) => {
      for (const [i, node] of [...sentinel.nodes, ...sentinel.sentinels].entries()) {
        await keepLog(node.dir, logDir, i < sentinel.nodes.length ? `redis-data-${node.port}` : `redis-sentinel-${node.port}`);
      }
      await sentinel.stop();
    },
  };
}

/** One row of CLUSTER NODES. */
interface ClusterNodeRow { readonly id: string; readonly port: number; readonly flags: string[]; readonly masterId: string; readonly slots: Array<[number, number]> }

function parseClusterNodes(text: string): ClusterNodeRow[] {
  return text.trim().split('\n').map((line) => {
    const [id, address, flags, masterId, , , , , ...slots] = line.trim().split(' ');
    return {
      id: id!,
      port: Number(address!.split('@')[0]!.split(':').pop()),
      flags: flags!.split(','),
      masterId: masterId!,
      slots: slots.filter((range) => /^\d+(-\d+)?$/.test(range)).map((range) => {
        const [from, to] = range.split('-').map(Number);
        return [from!, to ?? from!] as [number, number];
      }),
    };
  });
}

async function startCluster(log: (line: string) => void): Promise<ChaosRedis> {
  const MASTERS = CLUSTER_MASTERS;
  // node timeout 2 s: a replica refuses to fail over once its link has been down 10 × that long.
  const cluster = await startRedisCluster({ masters: MASTERS, replicasPerMaster: 1, nodeTimeoutMs: 2_000 });
  const down = new DownNodes();
  const nodeOn = (port: number) => cluster.nodes.find((node) => node.port === port);
  // Shard K: the slots the K-th master first held (redis-cli splits 16384 slots evenly); its first slot names it.
  const firstSlots: number[] = [];
  {
    const rows = parseClusterNodes(await redisCommand(cluster.nodes[0]!.url, ['CLUSTER', 'NODES']) as string);
    const masters = rows.filter((row) => row.flags.includes('master')).sort((a, b) => a.slots[0]![0] - b.slots[0]![0]);
    firstSlots.push(...masters.map((row) => row.slots[0]![0]));
  }
  /** The master and replica of shard K as a live node sees them now. */
  const shard = async (k: number): Promise<{ master: RedisNodeHandle; replica: RedisNodeHandle | undefined }> => {
    const slot = firstSlots[k]!;
    for (const node of cluster.nodes) {
      if (down.has(node)) continue;
      let rows: ClusterNodeRow[];
      try { rows = parseClusterNodes(await redisCommand(node.url, ['CLUSTER', 'NODES']) as string); } catch { continue; }
      const master = rows.find((row) => row.flags.includes('master') && !row.flags.includes('fail') && row.slots.some(([from, to]) => slot >= from && slot <= to));
      if (!master) continue;
      const replica = rows.find((row) => row.flags.includes('slave') && row.masterId === master.id && !row.flags.includes('fail'));
      return { master: nodeOn(master.port)!, replica: replica ? nodeOn(replica.port) : undefined };
    }
    throw new Error(`no live node names a master of slot ${slot}`);
  };
  const shardOf = (fault: Fault) => Number(fault.target.split('-').pop());
  const switched = new Map<Fault, RedisNodeHandle>();
  const injectOnShard = async (fault: Fault): Promise<void> => {
    const { master, replica } = await shard(shardOf(fault));
    // Only a replica in sync can be promoted; without one a failover would be an outage of the shard.
    const synced = replica !== undefined && (await redisCommand(replica.url, ['INFO', 'replication']) as string).includes('master_link_status:up');
    if (!replica || (fault.kind !== 'kill-redis' && !synced)) throw new Error(`shard ${shardOf(fault)} has no replica in sync: no ${fault.kind} now`);
    if (fault.kind === 'redis-failover') await down.kill(fault, master);
    else if (fault.kind === 'kill-redis') await down.kill(fault, replica);
    else {
      // A planned switchover: the replica catches up with its master, then takes its slots.
      switched.set(fault, replica);
      await redisCommand(replica.url, ['CLUSTER', 'FAILOVER']);
    }
  };
  const healOnShard = async (fault: Fault): Promise<void> => {
    if (fault.kind === 'redis-switchover') {
      const to = switched.get(fault);
      if (to) await waitFor(async () => (await shard(shardOf(fault))).master === to, { timeoutMs: PROMOTION_DEADLINE_MS, what: 'the replica to take over its master\'s slots', tolerateErrors: true });
      return;
    }
    const node = down.killedBy(fault);
    if (!node) return;
    if (fault.kind === 'redis-failover') {
      // The old master returns only once its replica is promoted: then it rejoins as a replica.
      await waitFor(async () => (await shard(shardOf(fault))).master !== node, { timeoutMs: PROMOTION_DEADLINE_MS, what: 'the cluster to promote the replica', tolerateErrors: true })
        .catch((error) => log(`failover: ${String(error)}; restarting the old master anyway`));
    }
    await down.restart(node);
  };
  const masterTurns = new Turns();
  return {
    topology: 'cluster',
    shards: MASTERS,
    target: { url: cluster.url, mode: 'cluster' },
    env: { REDIS_URL: cluster.url, STAMPEDE_REDIS_MODE: 'cluster', STAMPEDE_REDIS_MIN_REPLICAS: '1' },
    inject: (fault) => (fault.kind === 'kill-redis' ? injectOnShard(fault) : masterTurns.take(fault, () => injectOnShard(fault))),
    heal: (fault) => (fault.kind === 'kill-redis' ? healOnShard(fault) : masterTurns.end(fault, () => healOnShard(fault))),
    healAll: async () => {
      await down.restartAll();
      await waitFor(async () => {
        const infos = await Promise.all(cluster.nodes.map((node) => redisCommand(node.url, ['CLUSTER', 'INFO']) as Promise<string>));
        if (!infos.every((info) => info.includes('cluster_state:ok'))) return false;
        const replication = await Promise.all(cluster.nodes.map((node) => redisCommand(node.url, ['INFO', 'replication']) as Promise<string>));
        return replication.filter((info) => info.includes('role:slave') && info.includes('master_link_status:up')).length === MASTERS;
      }, { timeoutMs: 120_000, what: 'the cluster to be ok with every replica in sync', tolerateErrors: true });
    },
    stop: async (logDir) => {
      for (const node of cluster.nodes) await keepLog(node.dir, logDir, `redis-${node.port}`);
      await cluster.stop();
    },
  };
}

async function keepLog(dir: string, logDir: string, name: string): Promise<void> {
  await mkdir(logDir, { recursive: true });
  await copyFile(path.join(dir, 'redis.log'), path.join(logDir, `${name}.log`)).catch(() => undefined);
}
