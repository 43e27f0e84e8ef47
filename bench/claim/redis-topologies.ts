// The Redis topologies bench:claim compares (issue 20): the benchmark's single Redis, a local
// 3-master Redis Cluster, and a primary with one replica (for STAMPEDE_REDIS_MIN_REPLICAS). Every
// node runs AOF `appendfsync always` and noeviction, like the single one. Each topology says which
// master holds an event, so the benchmark can put one event on each master.
import { templateClaimKeys } from '../../src/claims/redis-keys.ts';
import { startRedisCluster } from '../../test/harness/redis-cluster.ts';
import { DURABLE_REDIS_ARGS, redisCommand, startRedisNode, type RedisNodeHandle } from '../../test/harness/redis-nodes.ts';
import { waitFor } from '../../test/harness/wait-for.ts';
import type { BenchServices } from '../lib/services.ts';

export type TopologyKind = 'single' | 'cluster' | 'replicated';
export const TOPOLOGY_KINDS: readonly TopologyKind[] = ['single', 'cluster', 'replicated'];

export interface BenchTopology {
  readonly kind: TopologyKind;
  /** One line for the report. */
  readonly description: string;
  /** The product's Redis settings for this topology (REDIS_URL, STAMPEDE_REDIS_MODE). */
  readonly env: Record<string, string>;
  /** Masters the events are spread over (1 outside a cluster). */
  readonly masters: number;
  /** Ports of every redis-server of this topology, masters first (CPU is reported per node). */
  readonly ports: readonly number[];
  /** Index (0 … masters − 1) of the master holding the template's keys (its {tpl:<id>} slot). */
  masterOf(templateId: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startTopology(kind: TopologyKind, services: BenchServices): Promise<BenchTopology> {
  switch (kind) {
    case 'single':
      return {
        kind,
        description: `one redis-server (:${services.redis.port}), the benchmark's own`,
        env: { REDIS_URL: services.redis.url, STAMPEDE_REDIS_MODE: 'single' },
        masters: 1,
        ports: [services.redis.port],
        masterOf: async () => 0,
        stop: async () => undefined, // the benchmark's services own it
      };
    case 'cluster': {
      const cluster = await startRedisCluster({ masters: 3 });
      return {
        kind,
        description: `Redis Cluster, 3 masters (:${cluster.nodes.map((node) => node.port).join(', :')}), no replicas, redis-cli --cluster create`,
        env: { REDIS_URL: cluster.url, STAMPEDE_REDIS_MODE: 'cluster' },
        masters: cluster.nodes.length,
        ports: cluster.nodes.map((node) => node.port),
        masterOf: async (templateId) => {
          const slot = Number(await redisCommand(cluster.nodes[0]!.url, ['CLUSTER', 'KEYSLOT', templateClaimKeys(templateId).state]));
          return cluster.nodes.indexOf(await cluster.masterOfSlot(slot));
        },
        stop: () => cluster.stop(),
      };
    }
    case 'replicated': {
      const nodes: RedisNodeHandle[] = [await startRedisNode(DURABLE_REDIS_ARGS)];
      try {
        const [primary] = nodes as [RedisNodeHandle];
        nodes.push(await startRedisNode([...DURABLE_REDIS_ARGS, '--replicaof', '127.0.0.1', String(primary.port)]));
        await waitFor(async () => {
          const info = await redisCommand(primary.url, ['INFO', 'replication']) as string;
          return info.includes('connected_slaves:1') && info.includes('state=online');
        }, { timeoutMs: 30_000, what: 'the replica to sync', tolerateErrors: true });
        return {
          kind,
          description: `a primary (:${primary.port}) with one replica (:${nodes[1]!.port}), STAMPEDE_REDIS_MODE=single pointed at the primary`,
          env: { REDIS_URL: primary.url, STAMPEDE_REDIS_MODE: 'single' },
          masters: 1,
          ports: nodes.map((node) => node.port),
          masterOf: async () => 0,
          stop: async () => { await Promise.all(nodes.map((node) => node.stop())); },
        };
      } catch (error) {
        await Promise.all(nodes.map((node) => node.stop()));
        throw error;
      }
    }
  }
}
