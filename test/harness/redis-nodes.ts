// Private redis-server processes for the topology tests (cluster, Sentinel): each on a free port in
// its own temp dir, AOF on with appendfsync always and noeviction, as production must run them.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient } from 'redis';
import { freePort } from '../../src/infra/free-port.ts';
import { assertRedisServerInstalled } from './redis-server.ts';
import { waitFor } from './wait-for.ts';

export interface RedisNodeHandle {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** SIGKILL, as a crash would; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts it again after kill(): same port, directory and arguments (its AOF replayed). */
  restart(): Promise<void>;
  /** SIGSTOP / SIGCONT: the node stays connected but answers nothing (a hung host). */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

export const DURABLE_REDIS_ARGS = ['--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction', '--save', ''];

/** Starts `redis-server [configFile] --port <free> … extraArgs` and waits until it answers PING. */
export async function startRedisNode(extraArgs: string[], options: { configFile?: (dir: string, port: number) => Promise<string> } = {}): Promise<RedisNodeHandle> {
  assertRedisServerInstalled();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stampede-redis-node-'));
  const port = await freePort();
  const config = options.configFile ? [await options.configFile(dir, port)] : [];
  const launch = (): ChildProcess => spawn('redis-server', [
    ...config, '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no',
    '--logfile', path.join(dir, 'redis.log'), ...extraArgs,
  ], { stdio: 'ignore' });
  let child = launch();
  const url = `redis://127.0.0.1:${port}`;
  const kill = async () => {
    if (child.exitCode !== null || (child.signalCode !== null && child.signalCode !== 'SIGSTOP')) return;
    await new Promise<void>((resolve) => { child.once('exit', () => resolve()); child.kill('SIGKILL'); });
  };
  try {
    // A deadline, not a speed bound: at a load average of 30 a fresh redis-server took over 10 s to answer.
    await waitFor(async () => { await redisCommand(url, ['PING']); return true; }, { timeoutMs: 30_000, what: `redis-server at ${url} to answer`, tolerateErrors: true });
  } catch (error) {
    await kill();
    throw error;
  }
  const restart = async () => {
    child = launch();
    await waitFor(async () => { await redisCommand(url, ['PING']); return true; }, { timeoutMs: 30_000, what: `redis-server at ${url} to answer again`, tolerateErrors: true });
  };
  return { port, url, dir, kill, restart, pause: () => child.kill('SIGSTOP'), resume: () => child.kill('SIGCONT'), stop: async () => { await kill(); await rm(dir, { recursive: true, force: true }); } };
}

/** One command on a fresh connection (harness control traffic: CLUSTER INFO, SENTINEL …). */
export async function redisCommand(url: string, args: string[]): Promise<unknown> {
  const client = createClient({ url, socket: { reconnectStrategy: false, connectTimeout: 2_000 } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.sendCommand(args);
  } finally {
    client.destroy();
  }
}
