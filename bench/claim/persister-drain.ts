// How many rows per second one claim persister moves from Redis into PostgreSQL, and what a row
// costs it, PostgreSQL and Redis in CPU: claims are taken by `serve` with STAMPEDE_WORKERS=off (so
// they pile up in the event's stream), then one `stampede worker` starts and drains them. Timed
// from the first poll that sees rows to the one that sees them all, so its start-up is not counted.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { freePort } from '../../src/infra/free-port.ts';
import { STAMPEDE_COMMAND } from '../../test/harness/spawn-stampede.ts';
import { cpuSecondsBetween, cpuSnapshot, type CpuSnapshot } from '../lib/process-cpu.ts';
import { startServerProcess, type ServerProcess } from '../lib/server-process.ts';
import type { BenchServices } from '../lib/services.ts';
import { round } from '../lib/stats.ts';
import { runLoadGenerator } from './measure.ts';
import { startServer } from './servers.ts';
import { verifyAnswers, verifyRows } from './verify.ts';

export interface DrainFigures {
  readonly rows: number;
  /** Claims taken with no persister running (every one a 201). */
  readonly claimsPerSecond: number;
  /** Rows already in PostgreSQL at the first poll that saw any (one batch or a few). */
  readonly rowsAtFirstPoll: number;
  readonly drainSeconds: number | null;
  readonly rowsPerSecond: number | null;
  /** CPU µs per drained row: the persister process, PostgreSQL, Redis. */
  readonly microsPerRow: { persister: number; postgres: number; redis: number } | null;
  readonly loadAverage: number;
  readonly problems: string[];
}

const POLL_INTERVAL_MS = 10;
const DRAIN_DEADLINE_MS = 180_000;

export async function measurePersisterDrain(services: BenchServices, rows: number, connections: number, processes: number): Promise<DrainFigures> {
  const problems: string[] = [];
  const server = await startServer({ kind: 'distributed', processes, env: { STAMPEDE_WORKERS: 'off' } }, services);
  let worker: ServerProcess | undefined;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-bench-worker-'));
  try {
    const templateId = await server.openEvent(rows);
    const load = await runLoadGenerator({
      host: '127.0.0.1', port: server.process.port, path: `/v1/coupon-templates/${templateId}/claims`, headers: server.headers,
      users: rows, claimsPerUser: 1, connections, userPrefix: 'drain-', collectAcknowledged: true, timeoutMs: 30_000,
    });
    problems.push(...verifyAnswers(load, rows, rows, false));
    const issued = async () => (await services.db.query<{ n: number }>('SELECT issued_count AS n FROM coupon_templates WHERE id = $1', [templateId])).rows[0]!.n;
    const early = await issued();
    if (early > 0) problems.push(`${early} rows were persisted before the persister started (STAMPEDE_WORKERS=off ignored?)`);

    const port = await freePort();
    worker = await startServerProcess('persister (stampede worker)', [...STAMPEDE_COMMAND, 'worker'], port, {
      DATABASE_URL: services.databaseUrl,
      REDIS_URL: services.redis.url,
      STAMPEDE_DATA_DIR: dataDir,
      STAMPEDE_METRICS_PORT: String(port), // its /health/live tells startServerProcess it is up
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
    });
    let first: { at: number; rows: number; cpu: CpuSnapshot } | undefined;
    let last: { at: number; cpu: CpuSnapshot } | undefined;
    const deadline = Date.now() + DRAIN_DEADLINE_MS;
    while (last === undefined && Date.now() < deadline) {
      const n = await issued();
      const at = performance.now();
      if (n > 0 && first === undefined) first = { at, rows: n, cpu: cpuSnapshot() };
      if (n >= rows) last = { at, cpu: cpuSnapshot() };
      else await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    }
    if (last === undefined) problems.push(`the persister did not drain ${rows} rows within ${DRAIN_DEADLINE_MS / 1000} s`);
    if (first !== undefined && first.rows >= rows) problems.push('every row was in at the first poll: too few rows to time the drain');
    problems.push(...await verifyRows(services.db, templateId, rows, load.acknowledged));

    const span = first !== undefined && last !== undefined && first.rows < rows ? { first, last, seconds: (last.at - first.at) / 1000 } : undefined;
    const cpu = span ? cpuSecondsBetween(span.first.cpu, span.last.cpu, [worker.pid]) : undefined;
    const drained = rows - (first?.rows ?? 0);
    const perRow = (seconds: number | undefined) => round(((seconds ?? 0) / drained) * 1e6, 1);
    return {
      rows,
      claimsPerSecond: round(load.requestsPerSecond, 1),
      rowsAtFirstPoll: first?.rows ?? 0,
      drainSeconds: span ? round(span.seconds, 3) : null,
      rowsPerSecond: span ? round(drained / span.seconds, 0) : null,
      microsPerRow: cpu ? { persister: perRow(cpu.server), postgres: perRow(cpu.postgres), redis: perRow(cpu['redis-server']) } : null,
      loadAverage: round(os.loadavg()[0]!, 2),
      problems,
    };
  } finally {
    await worker?.stop();
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
