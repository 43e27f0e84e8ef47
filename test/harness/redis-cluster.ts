// A private Redis Cluster for tests and benchmarks: `masters` redis-server processes with
// --cluster-enabled yes (plus `replicasPerMaster` replicas each), joined by
// `redis-cli --cluster create … --cluster-yes`, ready once every node reports cluster_state:ok.
import { spawn } from 'node:child_process';
import { redisCommand, startRedisNode, DURABLE_REDIS_ARGS, type RedisNodeHandle } from './redis-nodes.ts';
import { waitFor } from './wait-for.ts';

export interface RedisClusterHandle {
  /** Seed-node list for REDIS_URL with STAMPEDE_REDIS_MODE=cluster. */
  readonly url: string;
  readonly nodes: readonly RedisNodeHandle[];
  /** The node currently master of `slot` (asks a live node). */
  masterOfSlot(slot: number): Promise<RedisNodeHandle>;
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  readonly masters?: number;
  readonly replicasPerMaster?: number;
  /**
   * cluster-node-timeout: how long a silent master takes to be failed over (ms). Redis' default
   * 15 s unless a test fails one over on purpose: with no replica to promote, a master marked
   * failing after a 1 s fsync stall under load takes the cluster down (CLUSTERDOWN) mid-test.
   */
  readonly nodeTimeoutMs?: number;
}

export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 0;
  const started = await Promise.allSettled(Array.from({ length: masters * (1 + replicas) }, () => startRedisNode([
    ...DURABLE_REDIS_ARGS, '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
    '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 15_000),
  ])));
  const nodes = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = started.find((result) => result.status === 'rejected');
  if (failed) {
    // One node did not start: the others must not outlive the attempt.
    await Promise.all(nodes.map((node) => node.stop()));
    throw failed.reason;
  }
  const stop = async () => { await Promise.all(nodes.map((node) => node.stop())); };
  try {
    await runRedisCli(['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`),
      '--cluster-replicas', String(replicas), '--cluster-yes']);
    await waitFor(async () => {
      const infos = await Promise.all(nodes.map((node) => redisCommand(node.url, ['CLUSTER', 'INFO']) as Promise<string>));
      return infos.every((info) => info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${nodes.length}`));
    }, { timeoutMs: 30_000, what: 'the cluster to be ok on every node', tolerateErrors: true });
    if (replicas > 0) {
      // Replicas must have synced before a test kills their master, or there is nothing to promote.
      await waitFor(async () => {
        const roles = await Promise.all(nodes.map((node) => redisCommand(node.url, ['INFO', 'replication']) as Promise<string>));
        return roles.filter((info) => info.includes('role:slave') && info.includes('master_link_status:up')).length === masters * replicas;
      }, { timeoutMs: 30_000, what: 'every replica to sync', tolerateErrors: true });
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: nodes.slice(0, masters).map((node) => node.url).join(','),
    nodes,
    masterOfSlot: async (slot) => {
      for (const node of nodes) {
        try {
          const shards = await redisCommand(node.url, ['CLUSTER', 'SLOTS']) as Array<[number, number, [string, number, ...unknown[]]]>;
          const owner = shards.find(([from, to]) => slot >= from && slot <= to);
          const port = owner?.[2][1];
          const found = nodes.find((candidate) => candidate.port === Number(port));
          if (found) return found;
        } catch {
          // a dead node: ask the next
        }
      }
      throw new Error(`no live node knows the master of slot ${slot}`);
    },
    stop,
  };
}

function runRedisCli(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`redis-cli ${args.join(' ')} exited ${code}:\n${output}`))));
  });
}
