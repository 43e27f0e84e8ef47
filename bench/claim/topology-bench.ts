// bench:claim's Redis topology comparison (issue 20), run by `--redis=single,cluster` and/or
// `--min-replicas=0,1`: the distributed server against each Redis topology in the same run, with
// the same load generator, process count and connections, on one scenario: three events (load
// spread over them: user n claims at event n % 3), one per master on the 3-master cluster. Then,
// unless --drain=0, one claim persister's drain rate. Prints its own table and one JSON line last.
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { summariseCpuProfiles } from '../lib/cpu-profile.ts';
import { startBenchServices } from '../lib/services.ts';
import { formatTable, round } from '../lib/stats.ts';
import { measurePersisterDrain, type DrainFigures } from './persister-drain.ts';
import { startTopology, TOPOLOGY_KINDS, type BenchTopology, type TopologyKind } from './redis-topologies.ts';
import { startServer } from './servers.ts';
import { measureSpread, openSpreadEvents, type SpreadRun } from './spread-measure.ts';

export interface TopologyBenchOptions {
  /** Topologies to compare at STAMPEDE_REDIS_MIN_REPLICAS=0 (--redis). */
  readonly redis: readonly string[];
  /** STAMPEDE_REDIS_MIN_REPLICAS values, each on a primary with one replica (--min-replicas). */
  readonly minReplicas: readonly number[];
  readonly quick: boolean;
  readonly processes: readonly number[];
  readonly connections: readonly number[];
  /** Claims for the persister drain (0: skip). */
  readonly drainRows: number | undefined;
  /** Write V8 CPU profiles of each server under this directory and summarise them. */
  readonly profileDir: string | undefined;
  readonly machine: Record<string, unknown>;
  readonly interrupted: () => boolean;
  readonly log: (line?: string) => void;
}

interface Setting {
  readonly topology: TopologyKind;
  readonly minReplicas: number;
}

export interface TopologyRun extends SpreadRun {
  readonly label: string;
  readonly topology: TopologyKind;
  readonly minReplicas: number;
  readonly processes: number;
  readonly connections: number;
  /** Each event's master, as the port of its redis-server. */
  readonly eventMasters: number[];
}

const EVENTS = 3;

const settingLabel = (setting: Setting) => {
  const base = { single: 'single Redis', cluster: 'Redis Cluster, 3 masters', replicated: 'primary + 1 replica' }[setting.topology];
  return setting.topology === 'replicated' ? `${base}, min replicas ${setting.minReplicas}` : base;
};

export async function runTopologyBench(options: TopologyBenchOptions): Promise<never> {
  const { log } = options;
  for (const name of options.redis) if (!TOPOLOGY_KINDS.includes(name as TopologyKind) || name === 'replicated') throw new Error(`--redis: unknown topology "${name}" (single, cluster)`);
  for (const value of options.minReplicas) if (!Number.isInteger(value) || value < 0 || value > 1) throw new Error(`--min-replicas: ${value} (0 or 1: the primary has one replica)`);
  const settings: Setting[] = [
    ...options.redis.map((topology) => ({ topology: topology as TopologyKind, minReplicas: 0 })),
    ...options.minReplicas.map((minReplicas) => ({ topology: 'replicated' as const, minReplicas })),
  ];
  const scale = options.quick
    ? { users: 10_000, quantity: 999, warmUsers: 1_500, warmQuantity: 300, drainRows: 20_000 }
    : { users: 100_000, quantity: 9_999, warmUsers: 3_000, warmQuantity: 999, drainRows: 100_000 };
  const drainRows = options.drainRows ?? scale.drainRows;
  const claimsPerUser = 3;
  const startedAt = new Date();
  const runs: TopologyRun[] = [];
  const problems: string[] = [];
  let drain: DrainFigures | undefined;
  let runNumber = 0;

  log(`bench:claim --redis/--min-replicas  ${startedAt.toISOString()}`);
  log(`machine: ${JSON.stringify(options.machine)}`);
  log(`scenario: ${EVENTS} events of ${(scale.quantity / EVENTS).toLocaleString('en')} coupons each (1 per user), ${scale.users.toLocaleString('en')} users (user n claims at event n % ${EVENTS}) × ${claimsPerUser} claims back to back ` +
    `= ${(scale.users * claimsPerUser).toLocaleString('en')} requests per run at ${options.connections.join(' and ')} keep-alive connections from one load-generator process; ` +
    `distributed server with STAMPEDE_PROCESSES=${options.processes.join(' and ')}; warm-up of ${scale.warmUsers.toLocaleString('en')} users before each server's runs`);
  log(`settings: ${settings.map(settingLabel).join('; ')}; every redis-server with appendonly yes, appendfsync always, noeviction` +
    `${drainRows > 0 ? `; then one persister draining ${drainRows.toLocaleString('en')} claims` : ''}`);
  log();

  const services = await startBenchServices();
  try {
    for (const kind of [...new Set(settings.map((setting) => setting.topology))]) {
      if (options.interrupted()) break;
      const topology = await startTopology(kind, services);
      log(`${kind}: ${topology.description}`);
      try {
        for (const processes of options.processes) {
          for (const setting of settings.filter((candidate) => candidate.topology === kind)) {
            if (options.interrupted()) break;
            await benchSetting(setting, topology, processes);
          }
        }
      } finally {
        await topology.stop();
      }
    }
    if (drainRows > 0 && !options.interrupted()) {
      log(`\npersister drain: ${drainRows.toLocaleString('en')} claims taken with STAMPEDE_WORKERS=off, then one \`stampede worker\` …`);
      try {
        drain = await measurePersisterDrain(services, drainRows, options.connections[0]!, Math.max(...options.processes));
        log(`  ${drain.rowsPerSecond?.toLocaleString('en') ?? '-'} rows/s (${drain.drainSeconds ?? '-'} s after ${drain.rowsAtFirstPoll} rows were first seen), ` +
          `CPU µs per row: ${JSON.stringify(drain.microsPerRow)}, claims taken at ${Math.round(drain.claimsPerSecond).toLocaleString('en')}/s, load ${drain.loadAverage}, ` +
          `${drain.problems.length === 0 ? 'verified' : `FAILED: ${drain.problems.join('; ')}`}`);
        for (const problem of drain.problems) problems.push(`persister drain: ${problem}`);
      } catch (error) {
        problems.push(`persister drain: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  } finally {
    await services.stop();
  }

  async function benchSetting(setting: Setting, topology: BenchTopology, processes: number): Promise<void> {
    const label = `${settingLabel(setting)}, ${processes} proc`;
    const profileDir = options.profileDir ? path.join(options.profileDir, `${setting.topology}-${setting.minReplicas}-${processes}`) : undefined;
    if (profileDir) await mkdir(profileDir, { recursive: true });
    const server = await startServer({
      kind: 'distributed', processes, env: { ...topology.env, STAMPEDE_REDIS_MIN_REPLICAS: String(setting.minReplicas) }, ...(profileDir ? { cpuProfileDir: profileDir } : {}),
    }, services); // the topology's REDIS_URL and mode override the services' single Redis
    try {
      const run = async (users: number, quantity: number, connections: number) => {
        const events = await openSpreadEvents(server, topology, EVENTS, quantity / EVENTS);
        const figures = await measureSpread(server, services.db, topology, events, { users, claimsPerUser, connections, userPrefix: `t${runNumber++}-` });
        return { ...figures, eventMasters: events.map((event) => topology.ports[event.master]!) };
      };
      const warm = await run(scale.warmUsers, scale.warmQuantity, 128);
      for (const problem of warm.problems) problems.push(`${label} warm-up: ${problem}`);
      for (const connections of options.connections) {
        if (options.interrupted()) break;
        const figures: TopologyRun = { label, topology: setting.topology, minReplicas: setting.minReplicas, processes, connections, ...await run(scale.users, scale.quantity, connections) };
        runs.push(figures);
        for (const problem of figures.problems) problems.push(`${label} @${connections}: ${problem}`);
        log(`  ${label} @${connections}: ${Math.round(figures.claimsPerSecond).toLocaleString('en')} claims/s, p50/p99 ${figures.latencyMs.p50}/${figures.latencyMs.p99} ms, ` +
          `${JSON.stringify(figures.outcomes)}, events on :${figures.eventMasters.join(', :')}, CPU µs ${JSON.stringify(figures.micros)}, redis s by port ${JSON.stringify(figures.redisCpuSecondsByPort)}, ` +
          `load ${figures.loadAverage}, ${figures.problems.length === 0 ? 'verified' : `FAILED: ${figures.problems.join('; ')}`}`);
      }
    } catch (error) {
      if (options.interrupted()) return;
      problems.push(`${label}: ${error instanceof Error ? error.message : String(error)}`);
      log(`  ${label}: ERROR ${error instanceof Error ? error.message : String(error)}\n  server output:\n${server.process.output().slice(-3000)}`);
    } finally {
      await server.stop();
    }
    if (profileDir) log(`\nCPU profile of ${label} (warm-up included):\n${await summariseCpuProfiles(profileDir, fileURLToPath(new URL('../../', import.meta.url)))}\n`);
  }

  const comparisons = compare(runs);
  log('\nfigures (claims/s = claim requests answered per second, 201s and refusals alike; CPU µs per claim request from /proc;');
  log(' redis = every redis-server of the topology (replica included); pg µs per persisted row; load avg = 1-minute load average at the end of the run)');
  log(formatTable(
    ['setting', 'conns', 'claims/s', 'p50 ms', 'p99 ms', 'max ms', '201', 'server µs/claim', 'redis µs/claim', 'redis by node µs/claim', 'pg µs/row', 'rows in PG after last 201', 'load avg', 'verified'],
    runs.map((run) => [
      run.label, String(run.connections), Math.round(run.claimsPerSecond).toLocaleString('en'), run.latencyMs.p50.toFixed(1), run.latencyMs.p99.toFixed(1),
      run.latencyMs.max.toFixed(0), String(run.outcomes['201'] ?? 0), String(Math.round(run.micros.serverPerClaim)), String(Math.round(run.micros.redisPerClaim)),
      Object.values(run.redisCpuSecondsByPort).map((seconds) => Math.round((seconds / run.requests) * 1e6)).join(' / '),
      String(Math.round(run.micros.postgresPerRow)), run.rowsInPostgresAfterMs === null ? 'NEVER' : `${Math.round(run.rowsInPostgresAfterMs)} ms`,
      run.loadAverage.toFixed(1), run.problems.length === 0 ? 'yes' : 'NO',
    ]),
  ));
  if (comparisons.length > 0) {
    log('\ncomparisons (same run, same processes and connections)');
    for (const comparison of comparisons) log(`  ${comparison.name.padEnd(56)} claims/s ${comparison.claimsPerSecondRatio}×, p99 ${comparison.p99Ms[0]} → ${comparison.p99Ms[1]} ms`);
  }
  log(problems.length === 0 ? '\nVERIFIED: every event of every run issued exactly its coupons, to distinct users, all in PostgreSQL' : `\nFAILED:\n  ${problems.join('\n  ')}`);
  const summary = JSON.stringify({
    bench: 'claim',
    scenario: 'redis-topologies',
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: options.machine,
    loadAverageAtEnd: os.loadavg().map((load) => round(load, 2)),
    config: { ...scale, drainRows, events: EVENTS, claimsPerUser, requestsPerRun: scale.users * claimsPerUser, processes: options.processes, connections: options.connections, settings: settings.map(settingLabel), quick: options.quick },
    runs,
    comparisons,
    persisterDrain: drain ?? null,
    verified: problems.length === 0,
    problems,
  });
  return new Promise<never>(() => {
    process.stdout.write(`${summary}\n`, () => process.exit(problems.length === 0 ? 0 : 1));
  });
}

interface Comparison {
  readonly name: string;
  readonly claimsPerSecondRatio: number;
  readonly p99Ms: [number, number];
}

/** cluster ÷ single, and min replicas 1 ÷ 0, at each process and connection count both ran. */
function compare(runs: readonly TopologyRun[]): Comparison[] {
  const find = (topology: TopologyKind, minReplicas: number, processes: number, connections: number) =>
    runs.find((run) => run.topology === topology && run.minReplicas === minReplicas && run.processes === processes && run.connections === connections);
  const comparisons: Comparison[] = [];
  const pairs = [...new Set(runs.map((run) => `${run.processes}:${run.connections}`))].map((key) => key.split(':').map(Number) as [number, number]);
  for (const [processes, connections] of pairs) {
    const pair = (name: string, base: TopologyRun | undefined, other: TopologyRun | undefined) => {
      if (base && other) comparisons.push({ name: `${name}, ${processes} proc @${connections}`, claimsPerSecondRatio: round(other.claimsPerSecond / base.claimsPerSecond, 3), p99Ms: [base.latencyMs.p99, other.latencyMs.p99] });
    };
    pair('cluster ÷ single', find('single', 0, processes, connections), find('cluster', 0, processes, connections));
    pair('min replicas 1 ÷ 0 (primary + 1 replica)', find('replicated', 0, processes, connections), find('replicated', 1, processes, connections));
  }
  return comparisons;
}
