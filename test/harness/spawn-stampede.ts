// Runs `bin/stampede.js <command>` as a real child process, the way an operator would.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/stampede.js', import.meta.url));
const START_SCRIPT = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: { start: string } }).scripts.start;
/** `node`'s arguments before a command: the flags of `npm start` (package.json) and bin/stampede.js. */
export const STAMPEDE_COMMAND: readonly string[] = [...START_SCRIPT.split(' ').filter((word) => word.startsWith('--')), BIN];

export interface StampedeProcess {
  readonly child: ChildProcess;
  /** Everything printed so far (stdout and stderr). */
  output(): string;
  /** What was printed on each stream alone. */
  stdout(): string;
  stderr(): string;
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

export function spawnStampede(args: string[], env: Record<string, string | undefined>, options: { cwd?: string } = {}): StampedeProcess {
  const child = spawn(process.execPath, [...STAMPEDE_COMMAND, ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  let text = '';
  const streams = { stdout: '', stderr: '' };
  const waiters = new Set<() => void>();
  const onData = (stream: keyof typeof streams) => (chunk: Buffer) => {
    text += chunk.toString('utf8');
    streams[stream] += chunk.toString('utf8');
    for (const waiter of waiters) waiter();
  };
  child.stdout!.on('data', onData('stdout'));
  child.stderr!.on('data', onData('stderr'));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    output: () => text,
    stdout: () => streams.stdout,
    stderr: () => streams.stderr,
    exited,
    waitForOutput: (pattern, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = text.match(pattern);
          if (match) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(match);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${pattern}; output so far:\n${text}`));
        }, timeoutMs);
        waiters.add(check);
        void exited.then(() => { if (!text.match(pattern)) { clearTimeout(timer); reject(new Error(`process exited before ${pattern}; output:\n${text}`)); } });
        check();
      }),
  };
}

/** True while a process with this pid exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * `stampede worker` processes on the given services, for tests that kill and restart them:
 * `start` waits until the named worker has started; `killAll` SIGKILLs those still running.
 */
export function stampedeWorkers(env: Record<string, string>) {
  const started: StampedeProcess[] = [];
  return {
    async start(readyWorker: string, extraEnv: Record<string, string> = {}): Promise<StampedeProcess> {
      const worker = spawnStampede(['worker'], { ...env, ...extraEnv });
      started.push(worker);
      await worker.waitForOutput(new RegExp(`"worker":"${readyWorker}"[^\\n]*worker started`), 60_000);
      return worker;
    },
    killAll(): void {
      for (const worker of started) if (worker.child.exitCode === null) worker.child.kill('SIGKILL');
    },
  };
}
