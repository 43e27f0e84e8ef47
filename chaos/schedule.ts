// The fault schedule of a chaos run, derived from its seed alone: the same seed, length and Redis
// topology give the same faults at the same offsets, so a failing run can be replayed (`--seed N`).

export type FaultKind = 'kill-serve' | 'kill-worker' | 'pause-worker' | 'kill-redis' | 'restart-postgres' | 'redis-failover' | 'redis-switchover';

export type RedisTopology = 'single' | 'cluster' | 'sentinel';

export interface Fault {
  /** Milliseconds after the load starts. */
  readonly at: number;
  readonly kind: FaultKind;
  /**
   * Which process: `serve-0`, `worker-1`, `postgres`; for Redis `redis` (single), `redis-replica`
   * / `redis-primary` (Sentinel: whichever node has that role when the fault strikes),
   * `redis-replica-K` / `redis-master-K` (cluster: of shard K, the slots its master first held).
   */
  readonly target: string;
  /** How long the target stays down (or stopped) before it is restarted (or continued). */
  readonly holdMs: number;
}

export interface ScheduleShape {
  readonly durationMs: number;
  readonly serves: number;
  readonly workers: number;
  /** A SIGSTOPped worker stays stopped at least this long: past the persister's reclaim bound. */
  readonly minPauseMs: number;
  /** The Redis topology (single when absent) and, for a cluster, its number of masters. */
  readonly redis?: { readonly topology: RedisTopology; readonly shards: number };
}

/**
 * mulberry32: a 32-bit seeded generator. Five lines, no dependency: a schedule must be a pure
 * function of the seed, and Math.random cannot be seeded.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WEIGHTS: ReadonlyArray<readonly [FaultKind, number]> = [
  ['kill-serve', 3], ['kill-worker', 3], ['pause-worker', 2], ['kill-redis', 2], ['restart-postgres', 2],
];
// With replicas a Redis can fail over: kill -9 of a primary (its replica is promoted) or a planned
// switchover (SENTINEL FAILOVER, CLUSTER FAILOVER). A single Redis keeps the weights above, so its
// seeds replay the schedules they gave before the topologies existed.
const REPLICATED_WEIGHTS: ReadonlyArray<readonly [FaultKind, number]> = [...WEIGHTS, ['redis-failover', 2], ['redis-switchover', 1]];

/** After a failover the old primary restarts, rejoins as a replica and resyncs: no other Redis fault on it meanwhile. */
const FAILOVER_SETTLE_MS = 15_000;
const REPLICA_RESYNC_MS = 5_000;

export function buildSchedule(seed: number, shape: ScheduleShape): Fault[] {
  const random = seededRandom(seed);
  const topology = shape.redis?.topology ?? 'single';
  const weights = topology === 'single' ? WEIGHTS : REPLICATED_WEIGHTS;
  const between = (low: number, high: number) => Math.round(low + random() * (high - low));
  const pick = (): FaultKind => {
    let roll = random() * weights.reduce((sum, [, weight]) => sum + weight, 0);
    for (const [kind, weight] of weights) if ((roll -= weight) < 0) return kind;
    return weights[0]![0];
  };
  /** The Redis target of a fault, and the groups that each take one Redis fault at a time. */
  const redisTarget = (kind: FaultKind): { target: string; groups: string[] } => {
    if (topology === 'single') return { target: 'redis', groups: ['redis'] };
    const role = kind === 'kill-redis' ? 'replica' : topology === 'sentinel' ? 'primary' : 'master';
    if (topology === 'sentinel') return { target: `redis-${role}`, groups: ['redis'] };
    const shard = between(0, shape.redis!.shards - 1);
    // A replica is elected by a majority of the masters: with three, two masters down at once
    // would leave no majority, so failovers and switchovers take turns across the shards.
    return { target: `redis-${role}-${shard}`, groups: kind === 'kill-redis' ? [`redis-shard-${shard}`] : [`redis-shard-${shard}`, 'redis-masters'] };
  };
  const faults: Fault[] = [];
  const busyUntil = new Map<string, number>();
  // Faults start after a calm first stretch and stop early enough for the last one to heal under load.
  for (let at = between(2_000, 5_000); at < shape.durationMs - 8_000; at += between(2_000, 9_000)) {
    const kind = pick();
    const redis = kind === 'kill-redis' || kind === 'redis-failover' || kind === 'redis-switchover' ? redisTarget(kind) : undefined;
    const target = redis?.target ?? (kind === 'kill-serve' ? `serve-${between(0, shape.serves - 1)}`
      : kind === 'kill-worker' || kind === 'pause-worker' ? `worker-${between(0, shape.workers - 1)}` : 'postgres');
    const groups = redis?.groups ?? [target];
    const holdMs = kind === 'pause-worker' ? shape.minPauseMs + between(500, 3_000) : between(500, 4_000);
    // Faults stack (a worker dies while Redis is down), but one target takes one fault at a time.
    if (groups.some((group) => (busyUntil.get(group) ?? 0) > at)) continue;
    const settleMs = kind === 'redis-failover' || kind === 'redis-switchover' ? FAILOVER_SETTLE_MS
      : kind === 'kill-redis' && topology !== 'single' ? REPLICA_RESYNC_MS : 1_000;
    for (const group of groups) busyUntil.set(group, at + holdMs + settleMs);
    faults.push({ at, kind, target, holdMs });
  }
  return faults;
}
