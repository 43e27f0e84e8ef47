// Runs a server under test as its own process (the product's bin/stampede.js, or a bench server)
// and waits until it answers GET /health/live. Output is kept (its tail) to explain failures.
import { spawn } from 'node:child_process';

export interface ServerProcess {
  readonly name: string;
  readonly port: number;
  readonly pid: number;
  /** The last 64 KB of stdout and stderr. */
  output(): string;
  /** SIGTERM (graceful: flushes, writes --cpu-prof profiles), SIGKILL after 30 s. */
  stop(): Promise<void>;
}

const OUTPUT_TAIL = 64 * 1024;

export async function startServerProcess(name: string, args: string[], port: number, env: Record<string, string>): Promise<ServerProcess> {
  const child = spawn(process.execPath, args, {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  const keep = (chunk: Buffer) => {
    text += chunk.toString('utf8');
    if (text.length > 2 * OUTPUT_TAIL) text = text.slice(-OUTPUT_TAIL);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let running = true;
  void exited.then(() => { running = false; });

  const deadline = Date.now() + 90_000;
  for (;;) {
    if (!running) throw new Error(`${name} exited before it was ready:\n${text.slice(-4000)}`);
    const live = await fetch(`http://127.0.0.1:${port}/health/live`).then((response) => response.ok, () => false);
    if (live) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} was not ready within 90 s:\n${text.slice(-4000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }

  return {
    name,
    port,
    pid: child.pid!,
    output: () => text.slice(-OUTPUT_TAIL),
    stop: async () => {
      if (!running) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
