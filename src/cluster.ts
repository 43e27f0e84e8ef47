// `stampede serve`: one process, or with STAMPEDE_PROCESSES > 1 a node:cluster.
//
// The cluster primary is a supervisor that serves no requests itself: it starts the embedded
// PostgreSQL if needed, applies migrations and checks Redis once, then forks the API processes
// (each with its own pools) and, unless STAMPEDE_WORKERS=off, ONE background-workers process, so
// claim persistence, jobs and schedules never run N times. A fork that dies is forked again (with
// back-off when it dies young) and counted in stampede_process_restarts_total. Any API process
// answers /metrics with the cluster-wide sum (infra/cluster-metrics.ts). SIGTERM to the primary
// drains the API processes first, then the workers process, then stops the embedded PostgreSQL.
import cluster, { type Worker } from 'node:cluster';
import client from 'prom-client';
import type { Config } from './config.ts';
import { answerClusterMetrics, clusterMetricsText, serveClusterMetrics } from './infra/cluster-metrics.ts';
import type { Logger } from './infra/logger.ts';
import { openRuntime } from './runtime.ts';
import { closeOnSignals, startClosingOnSignals, startServer } from './server.ts';

type Role = 'api' | 'workers';

// Set by the primary on each fork; internal plumbing, not operator configuration.
const ROLE_ENV = 'STAMPEDE_CLUSTER_ROLE';
const READY = 'stampede:cluster:ready';
/** A fork that dies younger than this is restarted with growing delays (a crash loop). */
const HEALTHY_UPTIME_MS = 10_000;
const MAX_RESTART_DELAY_MS = 30_000;
/** Time the primary grants forks beyond their own shutdown budget before killing them. */
const FORK_SHUTDOWN_MARGIN_MS = 5_000;

export async function serve(config: Config, logger: Logger): Promise<void> {
  if (cluster.isWorker) return runFork(config, logger);
  if (config.processes === 1) {
    await startClosingOnSignals(startServer(config, logger, { api: true, workers: config.workers }), logger, config.shutdownTimeoutMs);
    return;
  }
  const primary = await startPrimary(config, logger);
  closeOnSignals(primary, logger, config.shutdownTimeoutMs + FORK_SHUTDOWN_MARGIN_MS);
}

async function runFork(config: Config, logger: Logger): Promise<void> {
  const role = process.env[ROLE_ENV] as Role;
  const server = await startClosingOnSignals(startServer(config, logger, { api: role === 'api', workers: role === 'workers' }, {
    preparedByPrimary: true,
    ...(role === 'api' ? { metricsText: clusterMetricsText() } : {}),
  }), logger, config.shutdownTimeoutMs);
  answerClusterMetrics(server.runtime.ctx.metrics.registry);
  // Orphaned by a primary that died: stop rather than serve without supervision.
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  process.send!({ type: READY });
}

/** Metrics only the primary has; exported for the test that checks dashboard and alert names. */
export function createSupervisorMetrics() {
  const registry = new client.Registry();
  const restarts = new client.Counter({
    name: 'stampede_process_restarts_total',
    help: 'Cluster forks that exited unexpectedly and were forked again, by role (api, workers).',
    labelNames: ['role'] as const,
    registers: [registry],
  });
  // Present at 0 from the start, so increase() sees the first restart.
  for (const role of ['api', 'workers'] as const) restarts.inc({ role }, 0);
  return { registry, restarts };
}

interface Primary {
  close(): Promise<void>;
}

async function startPrimary(config: Config, logger: Logger): Promise<Primary> {
  // Refused earlier by loadConfig; kept here because the in-process claim gate would silently
  // split into N independent gates.
  if (config.redisUrl === undefined) throw new Error('STAMPEDE_PROCESSES > 1 requires distributed mode (REDIS_URL)');
  const runtime = await openRuntime(config, logger, { checkRedisDurability: true, runMigrations: true });

  const supervisor = createSupervisorMetrics();
  const restarts = supervisor.restarts;
  const metrics = serveClusterMetrics([runtime.ctx.metrics.registry, supervisor.registry]);

  cluster.setupPrimary({ serialization: 'advanced' });
  const roles = new Map<Worker, { role: Role; forkedAt: number }>();
  const crashLoops: Record<Role, number> = { api: 0, workers: 0 };
  const restartTimers = new Set<NodeJS.Timeout>();
  let closing = false;

  const fork = (role: Role): Worker => {
    const worker = cluster.fork({ [ROLE_ENV]: role, DATABASE_URL: runtime.databaseUrl });
    roles.set(worker, { role, forkedAt: Date.now() });
    return worker;
  };

  const wanted: Role[] = [...Array.from({ length: config.processes }, () => 'api' as const), ...(config.workers ? ['workers' as const] : [])];
  const forks = wanted.map(fork);
  try {
    await Promise.all(forks.map((worker) => new Promise<void>((resolve, reject) => {
      worker.on('message', (message: unknown) => {
        if (typeof message === 'object' && message !== null && (message as { type?: string }).type === READY) resolve();
      });
      worker.once('exit', (code, signal) => reject(new Error(`a ${roles.get(worker)?.role} process exited during startup (${signal ?? `code ${code}`})`)));
    })));
  } catch (error) {
    closing = true;
    for (const worker of forks) worker.process.kill('SIGKILL');
    await runtime.close();
    throw error;
  }

  cluster.on('exit', (worker, code, signal) => {
    const entry = roles.get(worker);
    roles.delete(worker);
    void metrics.retire(worker);
    if (closing || !entry) return;
    restarts.inc({ role: entry.role });
    const diedYoung = Date.now() - entry.forkedAt < HEALTHY_UPTIME_MS;
    crashLoops[entry.role] = diedYoung ? crashLoops[entry.role] + 1 : 0;
    const delayMs = diedYoung ? Math.min(250 * 2 ** crashLoops[entry.role], MAX_RESTART_DELAY_MS) : 0;
    logger.error({ role: entry.role, forkPid: worker.process.pid, code, signal, restartInMs: delayMs }, 'cluster process exited unexpectedly; forking it again');
    const timer = setTimeout(() => { restartTimers.delete(timer); fork(entry.role); }, delayMs);
    restartTimers.add(timer);
  });
  logger.info({ apiProcesses: config.processes, workersProcess: config.workers, port: config.port }, 'cluster ready');

  const stopRole = async (role: Role) => {
    const members = [...roles].filter(([, entry]) => entry.role === role).map(([worker]) => worker);
    await Promise.all(members.map((worker) => new Promise<void>((resolve) => {
      if (worker.isDead()) return resolve();
      worker.once('exit', () => resolve());
      worker.process.kill('SIGTERM');
    })));
  };
  let closed: Promise<void> | undefined;
  return {
    close: () => {
      closed ??= (async () => {
        closing = true;
        for (const timer of restartTimers) clearTimeout(timer);
        // API first, so nothing new arrives while the workers process flushes what remains.
        await stopRole('api');
        await stopRole('workers');
        await runtime.close();
      })();
      return closed;
    },
  };
}
