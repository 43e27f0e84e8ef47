// One measured run of the Redis topology comparison: the claim load of measure.ts spread over
// several events (user n claims at event n % events), one event per master where the topology has
// several, verified event by event as measure.ts verifies its one event. CPU is read from /proc per
// process group and per redis-server node.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { Db } from '../../src/infra/db.ts';
import { cpuSecondsBetween, cpuSnapshot, type CpuSnapshot } from '../lib/process-cpu.ts';
import { round, type LatencySummary } from '../lib/stats.ts';
import type { LoadPlan } from './load-generator.ts';
import { pollUntil, runLoadGenerator } from './measure.ts';
import type { BenchTopology } from './redis-topologies.ts';
import type { RunningServer } from './servers.ts';
import { verifyAnswers, verifyRows } from './verify.ts';

export interface SpreadEvent {
  readonly templateId: string;
  /** Index of the master holding it (0 outside a cluster). */
  readonly master: number;
  readonly quantity: number;
}

export interface SpreadPlan {
  readonly users: number;
  readonly claimsPerUser: number;
  readonly connections: number;
  readonly userPrefix: string;
}

export interface SpreadRun {
  readonly requests: number;
  readonly durationSeconds: number;
  /** Claim requests answered per second (201s and refusals alike). */
  readonly claimsPerSecond: number;
  readonly latencyMs: LatencySummary;
  readonly outcomes: Record<string, number>;
  readonly rowsPersisted: number;
  /** From the last 201 received to the first 10 ms poll that saw every event's issued_count complete. */
  readonly rowsInPostgresAfterMs: number | null;
  /** CPU seconds per process group ("server", "postgres", "redis-server", "load generator"). */
  readonly cpuSeconds: Record<string, number>;
  /** CPU seconds of each redis-server of the topology by ":port", masters first (a non-numeric key keeps that order). */
  readonly redisCpuSecondsByPort: Record<string, number>;
  /** CPU µs per claim request (server, every redis-server of the topology, load generator) and PostgreSQL µs per persisted row. */
  readonly micros: { serverPerClaim: number; redisPerClaim: number; loadGeneratorPerClaim: number; postgresPerRow: number };
  readonly loadAverage: number;
  readonly problems: string[];
}

const MAX_TEMPLATES_TO_SPREAD = 60;

/**
 * Opens `count` fresh events of `quantityEach` coupons spread evenly over the topology's masters:
 * templates are created until each master holds its share (their ids decide the slot); the others
 * stay open and unused.
 */
export async function openSpreadEvents(server: RunningServer, topology: BenchTopology, count: number, quantityEach: number): Promise<SpreadEvent[]> {
  const share = Math.ceil(count / topology.masters);
  const held = new Array<number>(topology.masters).fill(0);
  const events: SpreadEvent[] = [];
  for (let created = 0; events.length < count; created++) {
    if (created >= MAX_TEMPLATES_TO_SPREAD) throw new Error(`${created} templates did not spread over ${topology.masters} masters (held: ${held.join(', ')})`);
    const templateId = await server.openEvent(quantityEach);
    const master = await topology.masterOf(templateId);
    if (held[master]! >= share) continue;
    held[master] = held[master]! + 1;
    events.push({ templateId, master, quantity: quantityEach });
  }
  return events;
}

export async function measureSpread(server: RunningServer, db: Db, topology: BenchTopology, events: readonly SpreadEvent[], plan: SpreadPlan): Promise<SpreadRun> {
  const paths = events.map((event) => `/v1/coupon-templates/${event.templateId}/claims`);
  const loadPlan: LoadPlan = {
    host: '127.0.0.1',
    port: server.process.port,
    path: paths[0]!,
    paths,
    headers: server.headers,
    users: plan.users,
    claimsPerUser: plan.claimsPerUser,
    connections: plan.connections,
    userPrefix: plan.userPrefix,
    collectAcknowledged: true,
    timeoutMs: 30_000,
  };
  const total = events.reduce((sum, event) => sum + event.quantity, 0);
  const templateIds = events.map((event) => event.templateId);
  let state: 'running' | 'done' | 'failed' = 'running';
  let complete: number | null = null;
  const poller = pollUntil(
    // One indexed read: the persister raises issued_count in the statement that inserts the rows.
    async () => (await db.query<{ n: number }>('SELECT coalesce(sum(issued_count), 0)::int AS n FROM coupon_templates WHERE id = ANY($1::uuid[])', [templateIds])).rows[0]!.n,
    total, () => state, (at) => { complete = at; });

  const before = cpuSnapshot();
  let load: Awaited<ReturnType<typeof runLoadGenerator>>;
  try {
    load = await runLoadGenerator(loadPlan);
    state = 'done';
  } catch (error) {
    state = 'failed';
    await poller;
    throw error;
  }
  await poller;
  // After the rows are in (a few ms past the load), so PostgreSQL's share covers every row.
  const after = cpuSnapshot();
  const cpuSeconds: Record<string, number> = { ...cpuSecondsBetween(before, after, server.pids), 'load generator': load.cpuSeconds };
  const redisCpuSecondsByPort = redisSecondsByPort(before, after, topology.ports);

  const problems = verifyAnswers(load, plan.users * plan.claimsPerUser, total, false);
  const eventOf = (userId: string) => Number(userId.slice(plan.userPrefix.length)) % events.length;
  for (const [index, event] of events.entries()) {
    const acknowledged = load.acknowledged.filter(([, userId]) => eventOf(userId) === index);
    if (acknowledged.length !== event.quantity) problems.push(`event ${index + 1}: ${acknowledged.length} × 201, expected exactly ${event.quantity}`);
    for (const problem of await verifyRows(db, event.templateId, event.quantity, acknowledged)) problems.push(`event ${index + 1}: ${problem}`);
  }
  if (complete === null) problems.push('the rows never all reached PostgreSQL');
  const lag = complete !== null && load.last201At !== null ? Math.max(0, complete - load.last201At) : null;
  const micros = (seconds: number | undefined, per: number) => round(((seconds ?? 0) / Math.max(1, per)) * 1e6, 1);
  return {
    requests: load.requests,
    durationSeconds: round(load.durationMs / 1000, 2),
    claimsPerSecond: round(load.requestsPerSecond, 1),
    latencyMs: load.latencyMs,
    outcomes: load.outcomes,
    rowsPersisted: total,
    rowsInPostgresAfterMs: lag === null ? null : round(lag, 1),
    cpuSeconds: Object.fromEntries(Object.entries(cpuSeconds).map(([group, seconds]) => [group, round(seconds, 2)])),
    redisCpuSecondsByPort,
    micros: {
      serverPerClaim: micros(cpuSeconds.server, load.requests),
      // The topology's own nodes (an idle other topology's serverCron stays out).
      redisPerClaim: micros(Object.values(redisCpuSecondsByPort).reduce((sum, seconds) => sum + seconds, 0), load.requests),
      loadGeneratorPerClaim: micros(cpuSeconds['load generator'], load.requests),
      postgresPerRow: micros(cpuSeconds.postgres, total),
    },
    loadAverage: round(os.loadavg()[0]!, 2),
    problems,
  };
}


/** CPU seconds of each redis-server whose title names one of `ports` ("redis-server 127.0.0.1:6379 [cluster]"), by ":port". */
export function redisSecondsByPort(before: CpuSnapshot, after: CpuSnapshot, ports: readonly number[]): Record<string, number> {
  const seconds: Record<string, number> = Object.fromEntries(ports.map((port) => [`:${port}`, 0]));
  for (const [pid, times] of after) {
    if (times.comm !== 'redis-server') continue;
    let title: string;
    try {
      title = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
    } catch {
      continue; // exited
    }
    const port = /:\d+/.exec(title)?.[0];
    if (port === undefined || !(port in seconds)) continue;
    seconds[port] = seconds[port]! + (times.ticks - (before.get(pid)?.ticks ?? 0)) / 100; // USER_HZ
  }
  return Object.fromEntries(Object.entries(seconds).map(([port, value]) => [port, round(value, 2)]));
}
