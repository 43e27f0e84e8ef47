// Starts a private redis-server (tests and benchmarks): free port, temp dir, AOF on (appendfsync
// always by default: `serve` and `worker` refuse anything less), noeviction,
// exactly as production must run it. Fails loudly when redis-server is not installed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient } from 'redis';
import { freePort } from '../../src/infra/free-port.ts';
import { waitFor } from './wait-for.ts';

export interface RedisServerHandle {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** Start again on the same port and directory (AOF replayed). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Logical databases of the test harness's Redis: one per test file, reused only past this many. */
export const TEST_REDIS_DATABASES = 256;

export interface RedisServerOptions {
  readonly appendfsync?: 'always' | 'everysec';
  /** Logical databases (Redis's default is 16); the test harness gives each test file its own. */
  readonly databases?: number;
}

export function assertRedisServerInstalled(): void {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      '\n\n  redis-server was not found on PATH. The tests start their own private Redis.\n' +
      '  Install it first, e.g.:  apt-get install -y redis-server   (or run .ci/run)\n\n',
    );
  }
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServerHandle> {
  assertRedisServerInstalled();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stampede-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;

  const launch = async () => {
    child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--appendonly', 'yes', '--appendfsync', options.appendfsync ?? 'always',
      '--maxmemory-policy', 'noeviction', '--save', '', '--databases', String(options.databases ?? 16), '--daemonize', 'no', '--logfile', path.join(dir, 'redis.log'),
    ], { stdio: 'ignore' });
    await waitForPing(`redis://127.0.0.1:${port}`);
  };
  const kill = async () => {
    const proc = child;
    // Gone already (killed by a signal leaves exitCode null): waiting for its 'exit' would wait forever.
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => { proc.once('exit', () => resolve()); proc.kill('SIGKILL'); });
  };

  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    kill,
    restart: launch,
    stop: async () => {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitForPing(url: string): Promise<void> {
  await waitFor(async () => {
    const client = createClient({ url, socket: { reconnectStrategy: false } });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.ping();
      await client.close();
      return true;
    } catch (error) {
      await client.destroy();
      throw error;
    }
  }, { what: `redis-server to start at ${url}`, timeoutMs: 10_000, tolerateErrors: true });
}
