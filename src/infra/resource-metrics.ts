// Metrics about the resources a process holds, read when Prometheus scrapes rather than kept up
// to date on every call: PostgreSQL pool occupancy, whether PostgreSQL and Redis answer, and Redis
// client errors. Registered once per context (runtime.ts createContext), beside the domain metrics.
import client from 'prom-client';
import pg from 'pg';
import type { Db } from './db.ts';
import type { Metrics } from './metrics.ts';
import type { Redis } from './redis.ts';

/** A scrape must answer within a second even when a dependency hangs. */
export const DEPENDENCY_PROBE_TIMEOUT_MS = 500;

/** The process's PostgreSQL pools: `general`, `ledger` (points calls, pipelined), `auth` (API key look-ups) and `worker` (background work). */
export interface Pools {
  readonly general: Db;
  readonly ledger: Db;
  readonly auth: Db;
  readonly worker: Db;
}

export function observeResources(metrics: Metrics, pools: Pools, redis: Redis | undefined): void {
  const registers = [metrics.registry];
  const named = Object.entries(pools) as Array<[keyof Pools, Db]>;
  new client.Gauge({
    name: 'stampede_db_pool_connections',
    help: 'PostgreSQL pool connections by pool and state (in_use, idle) and the pool maximum (max).',
    labelNames: ['pool', 'state'] as const,
    registers,
    collect() {
      for (const [pool, db] of named) {
        this.set({ pool, state: 'in_use' }, db.totalCount - db.idleCount);
        this.set({ pool, state: 'idle' }, db.idleCount);
        this.set({ pool, state: 'max' }, db.options.max ?? 10);
      }
    },
  });
  new client.Gauge({
    name: 'stampede_db_pool_waiting',
    help: 'Queries waiting for a free PostgreSQL pool connection, by pool.',
    labelNames: ['pool'] as const,
    registers,
    collect() {
      for (const [pool, db] of named) this.set({ pool }, db.waitingCount);
    },
  });
  new client.Gauge({
    name: 'stampede_dependency_up',
    help: `1 if the dependency (database, redis) answered a probe at scrape time within ${DEPENDENCY_PROBE_TIMEOUT_MS} ms, else 0; the minimum across cluster processes.`,
    labelNames: ['dependency'] as const,
    // One process that cannot reach a dependency is an outage for the requests it serves.
    aggregator: 'min',
    registers,
    async collect() {
      const probes = [probe(() => probeDatabase(pools.general)).then((up) => this.set({ dependency: 'database' }, up))];
      if (redis) probes.push(probe(() => probeRedis(redis)).then((up) => this.set({ dependency: 'redis' }, up)));
      await Promise.all(probes);
    },
  });
  // Connection-level failures surface as 'error' events (the client reconnects by itself);
  // command failures reach the caller, and the HTTP edge answers them with 503.
  redis?.on('error', () => metrics.redisErrors.inc());
}

// Through the pool when it has room; a fresh connection when it is saturated, since under a flash
// crowd a probe queued behind claims would report a healthy database as down.
async function probeDatabase(db: Db): Promise<void> {
  if (db.idleCount > 0 || db.totalCount < (db.options.max ?? 10)) {
    await db.query('SELECT 1');
    return;
  }
  const probeClient = new pg.Client({ connectionString: db.options.connectionString, connectionTimeoutMillis: DEPENDENCY_PROBE_TIMEOUT_MS });
  probeClient.on('error', () => undefined);
  try {
    await probeClient.connect();
    await probeClient.query('SELECT 1');
  } finally {
    await probeClient.end().catch(() => undefined);
  }
}

async function probeRedis(redis: Redis): Promise<void> {
  // While reconnecting, commands wait in the offline queue: that is "down" for this scrape.
  if (!redis.isReady) throw new Error('redis client is not connected');
  await redis.ping();
}

async function probe(check: () => Promise<void>): Promise<0 | 1> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('timed out')), DEPENDENCY_PROBE_TIMEOUT_MS); }),
    ]);
    return 1;
  } catch {
    return 0;
  } finally {
    clearTimeout(timer);
  }
}
